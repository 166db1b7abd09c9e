"""The card-data canary (DESIGN.md section 7).

Luhn-valid card numbers, track-2 strings and CVVs are pushed through every input that exists so
far (link messages, the sale's payment references, the lane services and their storage, the CLI,
logs); afterwards the database files, the captured logs and every output are scanned: nothing
beyond first 6 + last 4 may be found. Grows with every part that touches card data.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouyin.cli import app
from shouyin.domain.errors import CardDataError
from shouyin.domain.money import Money
from shouyin.domain.product import Product
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.link.errors import MessageDecodeError
from shouyin.link.messages import decode
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.uow import SqlUnitOfWork, make_session_factory


def _luhn_complete(partial: str) -> str:
    for digit in "0123456789":
        candidate = partial + digit
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


PANS = [_luhn_complete(p) for p in ("622848001234567", "411111111111111", "525252525252525")]
TRACK2 = [f"{pan}=2812{'1' * 3}{'0' * 10}" for pan in PANS]
CVV = "737"
NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def leaks(blob: str) -> list[str]:
    """Every full PAN or track-2 string found in ``blob`` (masked forms are fine)."""
    found = [pan for pan in PANS if pan in blob]
    found += [t for t in TRACK2 if t in blob]
    found += re.findall(r"(?<![0-9])[0-9]{13,19}=[0-9]{4}", blob)
    return found


def test_a_full_pan_is_refused_as_a_payment_reference_without_being_echoed() -> None:
    for pan in PANS:
        with pytest.raises(CardDataError) as caught:
            PaymentRef(ecr_ref="E1", masked_pan=pan)
        assert not leaks(str(caught.value))


@pytest.mark.parametrize("field", ["masked_pan", "card_brand", "auth_code"])
def test_a_link_message_carrying_a_pan_is_refused_without_being_echoed(field: str) -> None:
    body = {
        "type": "payment_response",
        "id": "r1",
        "request_id": "q1",
        "ecr_ref": "E1",
        "result": "success",
        "acquirer": {field: TRACK2[0]},
    }
    with pytest.raises(MessageDecodeError) as caught:
        decode(json.dumps(body).encode())
    assert not leaks(str(caught.value))


def test_stored_sales_logs_and_cli_output_hold_no_card_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SHOUYIN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'shouyin.db'}")
    upgrade(engine)
    cola = Product(sku="C1", name="可乐", price=Money(350), barcodes=("6901234567892",))
    factory = make_session_factory(engine)
    sale = Sale.open(
        sale_id="s1",
        receipt_no="L01-000001",
        lane_id="L01",
        shift_id="sh1",
        cashier_id="u1",
        now=NOW,
    )
    sale.add_product(cola)
    for pan in PANS:  # a careless integration would hand over the full number: refused
        with pytest.raises(CardDataError):
            sale.add_tender(TenderKind.CARD, Money(350), PaymentRef(ecr_ref="E1", masked_pan=pan))
    masked = PANS[0][:6] + "*" * (len(PANS[0]) - 10) + PANS[0][-4:]
    sale.add_tender(TenderKind.CARD, Money(350), PaymentRef(ecr_ref="E1", masked_pan=masked))
    sale.complete(NOW)
    with SqlUnitOfWork(factory, catalogue=None) as uow:
        uow.sales.save(sale)
        uow.commit()
    engine.dispose()

    runner = CliRunner()
    outputs = [
        runner.invoke(app, ["report", "x"]).output,
        runner.invoke(app, ["link", "trace", json.dumps({"pan": PANS[1], "t2": TRACK2[1]})]).output,
        runner.invoke(app, ["users", "add", PANS[2], "--password", CVV * 3]).output,
    ]
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert not leaks(stored.decode("latin-1"))
    assert not leaks(caplog.text)
    assert not leaks("\n".join(outputs))
