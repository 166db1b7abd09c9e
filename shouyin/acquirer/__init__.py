"""shouyin.acquirer: the acquirer host simulator the simulated terminal reaches over its SIM link.

It speaks ISO 8583 (pyiso8583) with AES-CMAC MACs, answers by the test-card rules, keeps a
ledger (the third record of reconciliation) and has fault switches. Layers, inside out:

* :mod:`~shouyin.acquirer.codes` (MTIs, processing codes, response codes),
  :mod:`~shouyin.acquirer.iso` (the pyiso8583 spec, pack/unpack, TLV),
  :mod:`~shouyin.acquirer.fieldmap`, :mod:`~shouyin.acquirer.messages` and
  :mod:`~shouyin.acquirer.totals` (typed messages), :mod:`~shouyin.acquirer.framing`
  (``LEN(2) | TPDU | message``);
* :mod:`~shouyin.acquirer.mac` (TMK derivation, working keys, MAC, PIN blocks),
  :mod:`~shouyin.acquirer.pan` (masking and the log scrubber);
* :mod:`~shouyin.acquirer.testcards` (cards and payment codes and what they do),
  :mod:`~shouyin.acquirer.rules`;
* sans-I/O host: :mod:`~shouyin.acquirer.host` with :mod:`~shouyin.acquirer.financial` and
  :mod:`~shouyin.acquirer.aftercare` over :mod:`~shouyin.acquirer.ledger` (SQLite);
  sans-I/O terminal side: :mod:`~shouyin.acquirer.session`;
* I/O: :mod:`~shouyin.acquirer.server` (asyncio, control channel, faults),
  :mod:`~shouyin.acquirer.client` (``AcquirerClient``), :mod:`~shouyin.acquirer.cli`.

Errors derive from :class:`AcquirerError`.
"""

from shouyin.acquirer.client import AcquirerClient, AcquirerControl
from shouyin.acquirer.codes import (
    RESPONSE_TEXT,
    EntryMode,
    Mti,
    ProcessingCode,
    ResponseCode,
    TotalsKind,
    TxnKind,
    TxnStatus,
    Wallet,
    WalletStatus,
)
from shouyin.acquirer.errors import (
    AcquirerError,
    AcquirerTimeout,
    AcquirerUnreachable,
    FrameError,
    HostRefused,
    IsoFormatError,
    LocalAcquirerError,
    MacError,
    NotSignedIn,
    RemoteAcquirerError,
)
from shouyin.acquirer.faults import Faults
from shouyin.acquirer.host import Host, HostConfig, HostReply
from shouyin.acquirer.ledger import Ledger, LedgerEntry
from shouyin.acquirer.mac import TEST_MASTER_KEY, derive_tmk, encrypt_pin_block
from shouyin.acquirer.messages import (
    CardSaleRequest,
    EchoResponse,
    FinancialResponse,
    QueryResponse,
    RefundResponse,
    ReversalResponse,
    SettlementResponse,
    SignInResponse,
)
from shouyin.acquirer.pan import PanScrubber, luhn_valid, mask_pan, scrub
from shouyin.acquirer.server import DEFAULT_PORT, AcquirerServer
from shouyin.acquirer.session import TerminalSession
from shouyin.acquirer.testcards import (
    TEST_CARDS,
    CardBehaviour,
    QrBehaviour,
    TestCard,
    card_by_name,
    card_by_pan,
    qr_behaviour,
    qr_code,
    recognise_wallet,
)
from shouyin.acquirer.totals import BatchTotals, KindTotals

__all__ = [
    "DEFAULT_PORT",
    "RESPONSE_TEXT",
    "TEST_CARDS",
    "TEST_MASTER_KEY",
    "AcquirerClient",
    "AcquirerControl",
    "AcquirerError",
    "AcquirerServer",
    "AcquirerTimeout",
    "AcquirerUnreachable",
    "BatchTotals",
    "CardBehaviour",
    "CardSaleRequest",
    "EchoResponse",
    "EntryMode",
    "Faults",
    "FinancialResponse",
    "FrameError",
    "Host",
    "HostConfig",
    "HostRefused",
    "HostReply",
    "IsoFormatError",
    "KindTotals",
    "Ledger",
    "LedgerEntry",
    "LocalAcquirerError",
    "MacError",
    "Mti",
    "NotSignedIn",
    "PanScrubber",
    "ProcessingCode",
    "QrBehaviour",
    "QueryResponse",
    "RefundResponse",
    "RemoteAcquirerError",
    "ResponseCode",
    "ReversalResponse",
    "SettlementResponse",
    "SignInResponse",
    "TerminalSession",
    "TestCard",
    "TotalsKind",
    "TxnKind",
    "TxnStatus",
    "Wallet",
    "WalletStatus",
    "card_by_name",
    "card_by_pan",
    "derive_tmk",
    "encrypt_pin_block",
    "luhn_valid",
    "mask_pan",
    "qr_behaviour",
    "qr_code",
    "recognise_wallet",
    "scrub",
]
