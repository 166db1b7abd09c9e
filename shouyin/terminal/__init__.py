"""shouyin.terminal: the simulated payment terminal (电签POS), the POI side of ``shouyin.link``.

The core is :class:`TerminalApp` (no I/O of its own: requests in, messages out through an
outbox), with its edges as ports (:mod:`~shouyin.terminal.ports`: the clock, the card reader,
the acquirer host), its durable state directory (:class:`TerminalState`), its health
(:class:`TerminalStatus`), its fault switches (:class:`Faults`) and its test mode
(:class:`TestMode`: test host and test journal). :class:`TerminalSim` runs it
as a process on a pty, a serial device, TCP or TLS (``shouyin terminal sim``, see
:mod:`~shouyin.terminal.cli`).

Errors derive from :class:`TerminalError`.
"""

from shouyin.link.wallets import DEFAULT_WALLET_RULES, WalletRule, recognise_wallet
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import (
    PinBehaviour,
    ReaderRule,
    RulesReader,
    read_test_card,
    rule_from_dict,
)
from shouyin.terminal.control import ControlHandler, ControlServer
from shouyin.terminal.errors import (
    AcquirerFailure,
    AcquirerNoAnswer,
    AcquirerUnavailable,
    PowerLoss,
    StateError,
    TerminalError,
)
from shouyin.terminal.faults import AcquirerFault, FaultPlan, Faults, Step, WriteAction, WriteKind
from shouyin.terminal.faulty import FaultyTransport
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.ports import (
    AcquirerPort,
    CardData,
    CardPrompt,
    CardReader,
    Clock,
    Cvm,
    HostReply,
    PinEntry,
    QrStatus,
    QueryAuth,
    RefundAuth,
    ReversalAuth,
    SaleAuth,
    SettleAuth,
    Signature,
    SystemClock,
    VoidAuth,
    mask_pan,
)
from shouyin.terminal.records import (
    FirmwareSlots,
    JournalEntry,
    PendingReversal,
    Stage,
    TerminalConfig,
)
from shouyin.terminal.sim import POWER_LOSS_EXIT, SimOptions, TerminalSim, terminal_capabilities
from shouyin.terminal.slips import Slip, SlipKind, signature_png, signature_ref
from shouyin.terminal.state import TerminalState
from shouyin.terminal.status import TerminalStatus
from shouyin.terminal.test_mode import TEST_BANNER, TEST_DIR, TestMode

__all__ = [
    "DEFAULT_WALLET_RULES",
    "POWER_LOSS_EXIT",
    "TEST_BANNER",
    "TEST_DIR",
    "AcquirerFailure",
    "AcquirerFault",
    "AcquirerNoAnswer",
    "AcquirerPort",
    "AcquirerUnavailable",
    "CardData",
    "CardPrompt",
    "CardReader",
    "Clock",
    "ControlHandler",
    "ControlServer",
    "Cvm",
    "FaultPlan",
    "Faults",
    "FaultyTransport",
    "FirmwareSlots",
    "HostReply",
    "JournalEntry",
    "MemoryAcquirer",
    "PendingReversal",
    "PinBehaviour",
    "PinEntry",
    "PowerLoss",
    "QrStatus",
    "QueryAuth",
    "ReaderRule",
    "RefundAuth",
    "ReversalAuth",
    "RulesReader",
    "SaleAuth",
    "SettleAuth",
    "Signature",
    "SimOptions",
    "Slip",
    "SlipKind",
    "Stage",
    "StateError",
    "Step",
    "SystemClock",
    "TerminalApp",
    "TerminalConfig",
    "TerminalError",
    "TerminalSim",
    "TerminalState",
    "TerminalStatus",
    "TestMode",
    "VoidAuth",
    "WalletRule",
    "WriteAction",
    "WriteKind",
    "mask_pan",
    "read_test_card",
    "recognise_wallet",
    "rule_from_dict",
    "signature_png",
    "signature_ref",
    "terminal_capabilities",
]
