"""Card slips (签购单) and the electronic signature (电签) image attached to them.

A :class:`Slip` holds what DESIGN.md section 6 lists: merchant name and 15-character number,
8-character terminal number, operator, masked card, card type, 6-digit batch and trace, auth
code, reference number, date/time, amount and a reference to the signature. :meth:`Slip.lines`
lays it out for 58 mm paper (32 columns). :func:`signature_png` draws the cardholder's strokes
into a small grayscale PNG with nothing but :mod:`zlib` (deterministic: the same strokes give the
same bytes), and :func:`signature_ref` names it by batch, trace and digest.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import zlib
from datetime import tzinfo
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shouyin.link.values import CardEntry, Wallet
from shouyin.terminal.ports import CHINA_TZ, Signature

__all__ = ["Slip", "SlipKind", "format_fen", "signature_png", "signature_ref"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_WIDTH = 32


class SlipKind(StrEnum):
    """The transaction type printed on the slip."""

    SALE = "消费(SALE)"
    VOID = "撤销(VOID)"
    REFUND = "退货(REFUND)"


def format_fen(amount: int) -> str:
    """``1234`` -> ``"￥12.34"`` (fullwidth yuan sign, as the receipts print it)."""
    sign = "-" if amount < 0 else ""
    yuan, fen = divmod(abs(amount), 100)
    return f"{sign}￥{yuan}.{fen:02d}"


class Slip(BaseModel):
    """A 签购单 for one card or QR transaction (masked card number only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SlipKind
    ecr_ref: str
    merchant_name: str
    merchant_id: str
    terminal_no: str
    operator: str
    masked_pan: str | None = None
    card_type: str | None = None
    entry: CardEntry | None = None
    wallet: Wallet | None = None
    wallet_order_id: str | None = None
    batch: str
    trace: str
    auth_code: str | None = None
    rrn: str | None = None
    at: AwareDatetime
    amount: int
    signature_ref: str | None = None
    reprint: bool = False

    def lines(self, tz: tzinfo = CHINA_TZ) -> tuple[str, ...]:
        """The slip as printed lines (32 columns on 58 mm paper)."""
        entry = {CardEntry.CHIP: "I", CardEntry.CONTACTLESS: "C", CardEntry.SWIPE: "S"}
        local = self.at.astimezone(tz)
        amount = -self.amount if self.kind is not SlipKind.SALE else self.amount
        out = [
            "POS签购单".center(_WIDTH - 4),
            "商户存根 MERCHANT COPY",
            "-" * _WIDTH,
            f"商户名称: {self.merchant_name}",
            f"商户编号: {self.merchant_id}",
            f"终端编号: {self.terminal_no}",
            f"操作员号: {self.operator}",
        ]
        if self.masked_pan is not None:
            mode = entry.get(self.entry, "") if self.entry else ""
            out.append(f"卡号: {self.masked_pan} {mode}".rstrip())
        if self.card_type is not None:
            out.append(f"卡类型: {self.card_type}")
        if self.wallet is not None:
            out.append(f"钱包: {self.wallet.value}")
        if self.wallet_order_id is not None:
            out.append(f"订单号: {self.wallet_order_id}")
        out += [
            f"交易类型: {self.kind.value}",
            f"批次号: {self.batch}  凭证号: {self.trace}",
            f"授权码: {self.auth_code or ''}",
            f"参考号: {self.rrn or ''}",
            f"日期/时间: {local:%Y/%m/%d %H:%M:%S}",
            f"金额: {format_fen(amount)}",
            "-" * _WIDTH,
        ]
        if self.signature_ref is not None:
            out.append(f"持卡人签名: [电子签名 {self.signature_ref}]")
        elif self.masked_pan is not None:
            out.append("持卡人签名: 免签")
        out.append("本人确认以上交易，同意将其记入本卡账户")
        if self.reprint:
            out.append("重打印 REPRINT")
        return tuple(out)


def _draw_line(
    pixels: bytearray, width: int, height: int, a: tuple[int, int], b: tuple[int, int]
) -> None:
    """Bresenham, two pixels thick, clipped to the pad."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        for px, py in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1)):
            if 0 <= px < width and 0 <= py < height:
                pixels[py * width + px] = 0
        if (x0, y0) == (x1, y1):
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def signature_png(signature: Signature) -> bytes:
    """The signature drawn black on white as an 8-bit grayscale PNG (deterministic bytes)."""
    width, height = signature.width, signature.height
    pixels = bytearray(b"\xff" * (width * height))
    for stroke in signature.strokes:
        for start, end in itertools.pairwise(stroke):
            _draw_line(pixels, width, height, start, end)
        if len(stroke) == 1:
            _draw_line(pixels, width, height, stroke[0], stroke[0])
    raw = b"".join(
        b"\x00" + bytes(pixels[row * width : (row + 1) * width]) for row in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        _PNG_MAGIC
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def signature_ref(batch: str, trace: str, png: bytes) -> str:
    """The name under which a signature image is kept and printed on the slip."""
    return f"SIG-{batch}-{trace}-{hashlib.sha256(png).hexdigest()[:12]}"
