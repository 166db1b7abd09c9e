"""The code tables of the acquirer's ISO 8583 dialect: MTIs, processing codes, entry modes,
response codes, and the names the ledger uses.

Message types (field ``t``) and processing codes (field 3, ``TTFFTT``: transaction type, from
account, to account; account type ``90``/``91`` is private to this simulator and means a QR
wallet):

=====  ======  ==========================================================================
MTI    proc    meaning
=====  ======  ==========================================================================
0200   000000  card sale (消费)
0200   009000  QR micropay: the cashier scanned the customer's 付款码 (field 48 tag ``AC``)
0200   009100  QR precreate: the terminal shows a merchant code for the customer to scan
0200   200000  void (撤销) of a sale of the open batch (field 61: original batch and trace)
0220   200000  refund (退货) of an earlier sale, found by its RRN (field 37)
0400   (orig)  reversal (冲正) / QR revoke; field 11 and 60 name the original transaction
0500   -       settlement (结算) of the batch in field 60, terminal totals in field 63
0600   -       status query (查询) of the transaction named by field 11 and 60
0800   -       network management: sign-in (签到) or echo test, by field 60 positions 7-9
=====  ======  ==========================================================================

Answers use the request MTI + 10 (0210, 0230, 0410, 0510, 0610, 0810).

Void uses 0200 and refund 0220/0230, as China UnionPay POS terminals do: a void cancels the
authorisation in the open batch, a refund is a new credit against a settled one.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "RESPONSE_TEXT",
    "EntryMode",
    "Mti",
    "NetCode",
    "ProcessingCode",
    "ResponseCode",
    "TotalsKind",
    "TxnKind",
    "TxnStatus",
    "Wallet",
    "WalletStatus",
    "response_mti",
]


class Mti(StrEnum):
    """Message type identifiers used by the simulator."""

    FINANCIAL_REQUEST = "0200"
    FINANCIAL_RESPONSE = "0210"
    ADVICE = "0220"
    ADVICE_RESPONSE = "0230"
    REVERSAL = "0400"
    REVERSAL_RESPONSE = "0410"
    SETTLEMENT = "0500"
    SETTLEMENT_RESPONSE = "0510"
    QUERY = "0600"
    QUERY_RESPONSE = "0610"
    NETWORK = "0800"
    NETWORK_RESPONSE = "0810"


def response_mti(request_mti: str) -> str:
    """The answer MTI of a request MTI (``0200`` -> ``0210``).

    Args:
        request_mti: a four-digit request MTI.

    Returns:
        The MTI with the message-function digit raised by one.
    """
    return request_mti[:2] + str(int(request_mti[2]) + 1) + request_mti[3]


class ProcessingCode(StrEnum):
    """Field 3 values (see the module table)."""

    CARD_SALE = "000000"
    QR_SALE = "009000"
    QR_PRECREATE = "009100"
    VOID = "200000"
    REFUND = "200000"  # an alias of VOID: the MTI (0220) tells a refund from a void


class EntryMode(StrEnum):
    """Field 22, first two digits (ISO 8583 POS entry mode). The third digit is ``1`` when a
    PIN block (field 52) is included and ``2`` when not (China UnionPay usage)."""

    MANUAL = "01"
    SWIPE = "02"
    QR = "03"
    CHIP = "05"
    CONTACTLESS = "07"


class NetCode(StrEnum):
    """Network management information code: field 60 positions 7-9 of an 0800."""

    SIGN_IN = "001"
    ECHO = "301"


class ResponseCode(StrEnum):
    """Field 39 values answered by the simulator."""

    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    IN_PROGRESS = "09"  # QR order waiting for the customer (USERPAYING): query again
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD = "14"
    NOT_FOUND = "25"
    FORMAT_ERROR = "30"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    SIGN_IN_AGAIN = "77"
    ISSUER_UNAVAILABLE = "91"
    DUPLICATE = "94"
    RECONCILE_ERROR = "95"
    SYSTEM_ERROR = "96"
    REVERSAL_TIMEOUT = "98"  # reason code carried by a 0400 request
    MAC_ERROR = "A0"


RESPONSE_TEXT: dict[str, str] = {
    "00": "approved 承兑",
    "05": "do not honour 不予承兑",
    "09": "request in progress 处理中",
    "12": "invalid transaction 无效交易",
    "13": "invalid amount 无效金额",
    "14": "invalid card number 无效卡号",
    "25": "original not found 找不到原始交易",
    "30": "format error 格式错误",
    "51": "insufficient funds 余额不足",
    "54": "expired card 过期卡",
    "55": "incorrect PIN 密码错",
    "77": "sign in again 请重新签到",
    "91": "issuer unavailable 发卡行无法处理",
    "94": "duplicate transmission 重复交易",
    "95": "reconciliation error 对账不平",
    "96": "system malfunction 系统故障",
    "A0": "MAC error MAC校验错",
}
"""Human text of each response code (English and Chinese), for logs and slips."""


class Wallet(StrEnum):
    """QR wallets (values equal :class:`shouyin.link.values.Wallet`'s)."""

    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"


class WalletStatus(StrEnum):
    """A wallet order's state, named as the wallets name it (field 48 tag ``WS``)."""

    SUCCESS = "SUCCESS"
    USERPAYING = "USERPAYING"
    NOTPAY = "NOTPAY"
    PAYERROR = "PAYERROR"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    REFUND = "REFUND"
    SYSTEMERROR = "SYSTEMERROR"


class TxnKind(StrEnum):
    """Kind of a ledger entry."""

    SALE = "sale"
    QR = "qr"
    REFUND = "refund"
    VOID = "void"
    REVERSAL = "reversal"


class TxnStatus(StrEnum):
    """Status of a ledger entry."""

    APPROVED = "approved"
    DECLINED = "declined"
    PENDING = "pending"  # a QR order waiting for the customer
    REVERSED = "reversed"
    VOIDED = "voided"
    SETTLED = "settled"


class TotalsKind(StrEnum):
    """Payment kinds of the settlement totals (field 63 tags)."""

    CARD = "CD"
    WECHAT = "WX"
    ALIPAY = "AL"
    UNIONPAY = "UP"

    @classmethod
    def of(cls, wallet: Wallet | None) -> TotalsKind:
        """The totals kind of a transaction paid by ``wallet`` (``None``: a card).

        Args:
            wallet: the wallet, or ``None`` for a card payment.

        Returns:
            The matching totals kind.
        """
        if wallet is None:
            return cls.CARD
        return {Wallet.WECHAT: cls.WECHAT, Wallet.ALIPAY: cls.ALIPAY}.get(wallet, cls.UNIONPAY)
