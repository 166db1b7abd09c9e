"""shouyin.payments: card and QR payments through the lane's terminal, taken exactly once.

DESIGN.md sections 5 and 6. The pieces, from the outside in:

* :class:`PaymentOrchestrator` (:mod:`~shouyin.payments.orchestrator`): ``pay``, ``abort``,
  ``void`` and ``refund`` through a :class:`TerminalPort` (a ``LinkEndpoint``), with live
  progress in plain Chinese, and ``recover_all`` at start-up. Its module docstring gives the
  exactly-once argument;
* :class:`Recovery` (:mod:`~shouyin.payments.recovery`): status queries, reversals retried until
  acknowledged, voids and refunds sent again until answered;
* the journal (:mod:`~shouyin.payments.journal`): :class:`PaymentIntent`, its states and the one
  transition table, persisted by :class:`~shouyin.store.payment_repo.SqlPaymentUnitOfWork`
  together with the sales; every durable write is in :mod:`~shouyin.payments.recording`
  (and :mod:`~shouyin.payments.refunds`);
* pure helpers: wallet recognition of a 付款码 (:mod:`~shouyin.payments.wallets`), verdicts on
  terminal answers (:mod:`~shouyin.payments.verdicts`), what the cashier is told
  (:mod:`~shouyin.payments.wording`), the invariants (:mod:`~shouyin.payments.invariants`), and
  the named kill points for crash tests (:mod:`~shouyin.payments.killpoints`);
* in-memory twins for tests (:mod:`~shouyin.payments.fakes`).

Errors derive from :class:`PaymentError`; domain refusals (``ReturnError``,
``PermissionDenied``...) pass through unchanged.
"""

from shouyin.payments.errors import (
    AmountRefused,
    IllegalIntentTransition,
    PaymentError,
    PaymentInProgress,
    RecoveryPending,
    RefundRefused,
    SaleNotPayable,
    UnknownIntent,
    UnrecognisedPaymentCode,
    VoidRefused,
)
from shouyin.payments.invariants import violations
from shouyin.payments.journal import (
    OPEN_STATES,
    RETRY_STATES,
    SETTLED_STATES,
    TRANSITIONS,
    IntentEvent,
    IntentKind,
    IntentState,
    PaymentIntent,
    PaymentIntentRepository,
    PaymentUnitOfWork,
    advance,
    format_ecr_ref,
)
from shouyin.payments.killpoints import Checkpoint, KillPoint, no_checkpoint
from shouyin.payments.orchestrator import PaymentOrchestrator, PaymentOutcome
from shouyin.payments.policy import PaymentPolicy
from shouyin.payments.port import Channel, Exchange, TerminalPort
from shouyin.payments.recovery import Notify, Recovery, RecoveryReport, Resolution
from shouyin.payments.wallets import (
    DEFAULT_WALLET_RULES,
    WalletRule,
    code_tail,
    normalise_code,
    recognise_wallet,
    rules_from_config,
)
from shouyin.payments.wording import Explanation, ProgressEvent, Step, explain

__all__ = [
    "DEFAULT_WALLET_RULES",
    "OPEN_STATES",
    "RETRY_STATES",
    "SETTLED_STATES",
    "TRANSITIONS",
    "AmountRefused",
    "Channel",
    "Checkpoint",
    "Exchange",
    "Explanation",
    "IllegalIntentTransition",
    "IntentEvent",
    "IntentKind",
    "IntentState",
    "KillPoint",
    "Notify",
    "PaymentError",
    "PaymentInProgress",
    "PaymentIntent",
    "PaymentIntentRepository",
    "PaymentOrchestrator",
    "PaymentOutcome",
    "PaymentPolicy",
    "PaymentUnitOfWork",
    "ProgressEvent",
    "Recovery",
    "RecoveryPending",
    "RecoveryReport",
    "RefundRefused",
    "Resolution",
    "SaleNotPayable",
    "Step",
    "TerminalPort",
    "UnknownIntent",
    "UnrecognisedPaymentCode",
    "VoidRefused",
    "WalletRule",
    "advance",
    "code_tail",
    "explain",
    "format_ecr_ref",
    "no_checkpoint",
    "normalise_code",
    "recognise_wallet",
    "rules_from_config",
    "violations",
]
