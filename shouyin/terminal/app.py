"""The terminal application: every request a cashier system sends, answered as a 电签POS would.

:class:`TerminalApp` is the core of the simulator. It does no I/O of its own: requests come in
through :meth:`TerminalApp.handle` (the process wrapper calls it for every request the link
delivers, the tests do the same over a ``LinkPair``), messages go out through the outbox, the
acquirer and the card reader are ports (:mod:`shouyin.terminal.ports`), and the state directory
(:class:`~shouyin.terminal.state.TerminalState`) keeps everything a restart must not lose.

Financial requests (Payment, Refund, Reversal, Reconciliation) run one at a time; the others
(TransactionStatus, Abort, Diagnosis, Print, Display, Admin) are answered at once, also while a
payment runs. Heartbeat and Logout are answered by the link itself.

Idempotency: a Payment whose ``ecr_ref`` the journal knows is answered from the journal, never
charged again; one that reuses an ``ecr_ref`` for a different amount or kind is refused.

Test mode (Admin ``test_mode_start`` / ``test_mode_end``, :mod:`shouyin.terminal.test_mode`):
requests run against the test services (test host, test journal) instead, their answers marked
``test``; requests naming a real transaction never do (see :meth:`TerminalApp._names_real`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from shouyin.link.messages import (
    AbortRequest,
    AbortResponse,
    AdminRequest,
    AdminResponse,
    DiagnosisRequest,
    DiagnosisResponse,
    DisplayRequest,
    DisplayResponse,
    EventNotification,
    MessageBase,
    PaymentRequest,
    PaymentResponse,
    PrintRequest,
    PrintResponse,
    ReconciliationRequest,
    RefundRequest,
    Request,
    Response,
    ReversalRequest,
    TransactionStatusRequest,
    TransactionStatusResponse,
    failure_response,
)
from shouyin.link.values import (
    AdminAction,
    DocumentKind,
    ErrorCondition,
    NotificationKind,
    PaperState,
    PaymentKind,
    Result,
    TransactionKind,
    TransactionState,
)
from shouyin.link.wallets import DEFAULT_WALLET_RULES, WalletRule
from shouyin.terminal.after_sale import refund, reversal
from shouyin.terminal.card import card_sale
from shouyin.terminal.common import fail, new_entry, print_lines
from shouyin.terminal.context import Outbox, Services, Txn
from shouyin.terminal.errors import AcquirerFailure, PowerLoss
from shouyin.terminal.faults import Faults, Step
from shouyin.terminal.firmware import recover_slots, update_firmware
from shouyin.terminal.outcomes import payment_response
from shouyin.terminal.ports import AcquirerPort, CardReader, Clock, SystemClock
from shouyin.terminal.qr import merchant_qr_sale, qr_sale
from shouyin.terminal.recovery import ReversalWorker, recover
from shouyin.terminal.settlement import reconciliation
from shouyin.terminal.state import TerminalState
from shouyin.terminal.status import TerminalStatus
from shouyin.terminal.test_mode import TestMode

__all__ = ["TerminalApp"]

logger = logging.getLogger(__name__)

_FINANCIAL = (PaymentRequest, RefundRequest, ReversalRequest, ReconciliationRequest)
_OK = Result.SUCCESS


def _drop(message: MessageBase) -> None:
    logger.debug("no outbox yet: %s dropped", message.type)


class TerminalApp:
    """The simulated terminal's application.

    Args:
        state: the opened state directory.
        acquirer: the acquirer host.
        reader: the card reader, PIN pad and signature pad.
        clock: the wall clock.
        status: the live status (default: fresh, with the stored firmware slots).
        faults: the fault switches.
        outbox: sends messages to the cashier system (settable later with :meth:`set_outbox`).
        wallet_rules: how QR payment codes are recognised.
    """

    def __init__(
        self,
        state: TerminalState,
        acquirer: AcquirerPort,
        reader: CardReader,
        *,
        clock: Clock | None = None,
        status: TerminalStatus | None = None,
        faults: Faults | None = None,
        outbox: Outbox | None = None,
        wallet_rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES,
    ) -> None:
        self._real = Services(
            state=state,
            acquirer=acquirer,
            reader=reader,
            clock=clock or SystemClock(),
            status=status or TerminalStatus(state.firmware()),
            faults=faults or Faults(),
            outbox=outbox or _drop,
            wallet_rules=wallet_rules,
        )
        # Reversals are only ever the real ones: test mode keeps its own flags in its journal.
        self.reversals = ReversalWorker(self._real)
        self._real.kick_reversals = self.reversals.kick
        self._current: Txn | None = None
        self._one_at_a_time = asyncio.Lock()
        self._updating = asyncio.Lock()
        self.test_mode = TestMode(self._real, self._one_at_a_time.locked)

    @property
    def services(self) -> Services:
        """The services requests run against: the test services while in test mode."""
        return self.test_mode.services or self._real

    @property
    def state(self) -> TerminalState:
        """The (real) state directory; the test journal is ``test_mode.services.state``."""
        return self._real.state

    @property
    def status(self) -> TerminalStatus:
        """The live status."""
        return self.services.status

    @property
    def faults(self) -> Faults:
        """The fault switches."""
        return self.services.faults

    def set_outbox(self, outbox: Outbox) -> None:
        """Where messages to the cashier system go from now on."""
        self._real.outbox = outbox

    def recover(self) -> int:
        """Call once at start-up: close what a restart interrupted (see
        :mod:`shouyin.terminal.recovery`; an interrupted firmware update boots the last good
        slot); returns how many transactions were closed."""
        self.status.firmware = recover_slots(self._real.state)
        return recover(self._real)

    def set_status(self, **changes: object) -> list[EventNotification]:
        """Change the status (control channel) and notify the cashier system of transitions.

        Raises:
            ValueError: an unknown field or value.
        """
        events = self.status.update(**changes)  # type: ignore[arg-type]
        for event in events:
            self.services.send(event)
        return events

    def abort_current(self, reason: str) -> bool:
        """Abort the transaction in hand if it still can be (e.g. the session was reset)."""
        txn = self._current
        if txn is None or not txn.abortable:
            return False
        logger.info("aborting %s: %s", txn.ecr_ref, reason)
        txn.aborted.set()
        return True

    # -- requests ------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer ``request``: send progress, the response and follow-up notifications through
        the outbox; return the response.

        Raises:
            PowerLoss: a fault switch cut the power; the process must stop at once.
        """
        self.test_mode.expire()
        testing = self.test_mode.active
        if testing:
            real = self._names_real(request)
            if real is not None:  # about a real transaction: never run on the test services
                self.services.send(real)
                return real
        if isinstance(request, _FINANCIAL):
            response, txn = await self._financial(request)
            if testing:
                response = _as_test(response)
            self.services.step(Step.BEFORE_RESPONSE)
            self.services.send(response)
            self.services.step(Step.AFTER_RESPONSE)
            for message in txn.after:
                self.services.send(message)
            return response
        response = await self._other(request)
        if testing:
            response = _as_test(response)
        self.services.send(response)
        return response

    def _names_real(self, request: Request) -> Response | None:
        """In test mode: the answer to a request naming a real transaction, if it does.

        A status query is answered from the real journal (the cashier system may be recovering
        a real payment); a payment, void or refund naming a real transaction is refused as
        ``busy``, to be retried once test mode ends.
        """
        real, test = self._real.state, self.services.state
        ecr_ref = getattr(request, "ecr_ref", None)
        if isinstance(request, TransactionStatusRequest):
            entry = real.get(request.ecr_ref)
            if entry is None or test.get(request.ecr_ref) is not None:
                return None
            return TransactionStatusResponse(
                service_id=request.service_id,
                result=_OK,
                ecr_ref=request.ecr_ref,
                transaction=entry.record(),
            )
        names = {ecr_ref} if isinstance(ecr_ref, str) else set()
        if isinstance(request, RefundRequest):
            if request.original_ecr_ref is not None:
                names.add(request.original_ecr_ref)
            if request.original_rrn is not None and test.find_by_rrn(request.original_rrn) is None:
                original = real.find_by_rrn(request.original_rrn)
                names.update({original.ecr_ref} if original is not None else set())
        if any(real.get(name) is not None and test.get(name) is None for name in names):
            return failure_response(request, ErrorCondition.BUSY, "终端处于测试模式，请稍后重试")
        return None

    async def _financial(self, request: Request) -> tuple[Response, Txn]:
        txn = Txn(request.service_id, str(getattr(request, "ecr_ref", request.service_id)))
        async with self._one_at_a_time:  # FIFO: in arrival order
            self._current = txn
            try:
                return await self._run(txn, request), txn
            except PowerLoss:
                raise
            except Exception:
                logger.exception("%s %s failed", request.type, txn.ecr_ref)
                entry = self.services.state.get(txn.ecr_ref)
                if (
                    isinstance(request, PaymentRequest)
                    and entry is not None
                    and entry.state is not TransactionState.IN_PROGRESS
                ):
                    # The outcome was committed before the error (e.g. printing the slip
                    # failed): the journal is the truth; never report an approved sale as
                    # failed, or the cashier would take the money twice.
                    return payment_response(entry, request.service_id), txn
                self._salvage(txn.ecr_ref)
                return failure_response(request, ErrorCondition.UNAVAILABLE_SERVICE), txn
            finally:
                self._current = None

    async def _run(self, txn: Txn, request: Request) -> Response:
        services = self.services
        if isinstance(request, PaymentRequest):
            return await self._payment(txn, request)
        if isinstance(request, RefundRequest):
            return await refund(services, txn, request)
        if isinstance(request, ReversalRequest):
            return await reversal(services, txn, request)
        if isinstance(request, ReconciliationRequest):
            return await reconciliation(services, txn, request)
        return failure_response(request, ErrorCondition.UNAVAILABLE_SERVICE)

    async def _payment(self, txn: Txn, request: PaymentRequest) -> PaymentResponse:
        services = self.services
        existing = services.state.get(request.ecr_ref)
        if existing is not None:
            same = (
                existing.kind is TransactionKind.PAYMENT
                and existing.amount == request.amount
                and existing.payment_kind is request.kind
            )
            if not same:
                response = failure_response(
                    request, ErrorCondition.NOT_ALLOWED, "收银流水号已用于另一笔交易"
                )
                assert isinstance(response, PaymentResponse)
                return response
            logger.info("repeated payment %s: the original result, no new charge", request.ecr_ref)
            return payment_response(existing, request.service_id)
        entry = new_entry(
            services, request.ecr_ref, TransactionKind.PAYMENT, request.amount, request.kind
        )
        services.step(Step.REQUEST_RECEIVED)
        if request.kind is PaymentKind.CARD:
            return await card_sale(services, txn, request, entry)
        if request.kind is PaymentKind.QR_CODE:
            return await qr_sale(services, txn, request, entry)
        return await merchant_qr_sale(services, txn, request, entry)

    def _salvage(self, ecr_ref: str) -> None:
        """After an unexpected error: arm its reversal flags and close the entry."""
        services = self.services
        for flag in services.state.reversals(armed=False):
            if flag.ecr_ref == ecr_ref:
                services.state.update_reversal(flag.model_copy(update={"armed": True}))
                services.kick_reversals()
        entry = services.state.get(ecr_ref)
        if entry is not None and entry.state is TransactionState.IN_PROGRESS:
            fail(services, entry, ErrorCondition.UNAVAILABLE_SERVICE, "终端内部错误")

    async def _other(self, request: Request) -> Response:  # noqa: PLR0911 - one per category
        sid = request.service_id
        if isinstance(request, TransactionStatusRequest):
            entry = self.services.state.get(request.ecr_ref)
            if entry is None:
                return failure_response(request, ErrorCondition.NOT_FOUND, "无此交易")
            return TransactionStatusResponse(
                service_id=sid, result=_OK, ecr_ref=request.ecr_ref, transaction=entry.record()
            )
        if isinstance(request, AbortRequest):
            return self._abort(request)
        if isinstance(request, DiagnosisRequest):
            return await self._diagnosis(request)
        if isinstance(request, PrintRequest):
            return self._print(request)
        if isinstance(request, DisplayRequest):
            self.status.screen = tuple(request.lines) + (
                (request.qr_payload,) if request.qr_payload else ()
            )
            return DisplayResponse(service_id=sid, result=_OK)
        if isinstance(request, AdminRequest):
            return await self._admin(request)
        return failure_response(request, ErrorCondition.UNAVAILABLE_SERVICE)

    def _abort(self, request: AbortRequest) -> AbortResponse:
        txn = self._current
        sid = request.service_id
        if txn is None or txn.service_id != request.target_service_id:
            return AbortResponse(
                service_id=sid,
                result=Result.FAILURE,
                error_condition=ErrorCondition.NOT_FOUND,
                message="没有进行中的该交易",
            )
        if not txn.abortable:
            return AbortResponse(
                service_id=sid,
                result=Result.FAILURE,
                error_condition=ErrorCondition.NOT_ALLOWED,
                message="交易已提交，不能取消",
            )
        txn.aborted.set()
        return AbortResponse(service_id=sid, result=_OK, message="正在取消交易")

    async def _diagnosis(self, request: DiagnosisRequest) -> DiagnosisResponse:
        reachable: bool | None = None
        if request.check_acquirer:
            services = self._real
            timeout = min(5.0, services.config.acquirer_timeout)
            try:
                reply = await services.call(  # the real acquirer, in test mode too
                    "echo", services.acquirer.echo, timeout=timeout, exclusive=False
                )
                reachable = reply.approved
            except AcquirerFailure:
                reachable = False
        return DiagnosisResponse(
            service_id=request.service_id,
            result=_OK,
            health=self.status.health(),
            acquirer_reachable=reachable,
            message=self.status.summary(),
        )

    def _print(self, request: PrintRequest) -> PrintResponse:
        sid = request.service_id
        if self.status.paper is PaperState.OUT:
            return PrintResponse(
                service_id=sid,
                result=Result.FAILURE,
                error_condition=ErrorCondition.PAPER_OUT,
                message="打印机缺纸",
            )
        lines = tuple(request.lines)
        if request.document is DocumentKind.CARD_SLIP:
            wanted = lines[0].strip() if lines and lines[0].strip().isdigit() else None
            slip = self.services.state.slip(trace=f"{int(wanted):06d}" if wanted else None)
            if slip is None:
                return PrintResponse(
                    service_id=sid,
                    result=Result.FAILURE,
                    error_condition=ErrorCondition.NOT_FOUND,
                    message="无此签购单",
                )
            lines = slip.model_copy(update={"reprint": True}).lines()
        for _ in range(request.copies):
            print_lines(self.services, request.document, lines)
        return PrintResponse(service_id=sid, result=_OK)

    async def _admin(self, request: AdminRequest) -> AdminResponse:
        sid = request.service_id
        if request.action in (AdminAction.TEST_MODE_START, AdminAction.TEST_MODE_END):
            return self._switch_test_mode(request)
        if request.action is AdminAction.FIRMWARE_UPDATE and request.firmware is not None:
            if self._updating.locked():  # one update at a time: both would write the same slot
                return AdminResponse(
                    service_id=sid,
                    result=Result.FAILURE,
                    error_condition=ErrorCondition.BUSY,
                    message="正在更新固件",
                    firmware_version=self._real.state.firmware().running,
                )
            async with self._updating:
                outcome = await update_firmware(self._real, request.firmware)
            if outcome.condition is not None:
                return AdminResponse(
                    service_id=sid,
                    result=Result.FAILURE,
                    error_condition=outcome.condition,
                    message=outcome.message,
                    firmware_version=outcome.slots.running,
                )
        elif request.action is AdminAction.REBOOT:
            self.services.send(EventNotification(event=NotificationKind.REBOOTING))
        return AdminResponse(
            service_id=sid,
            result=_OK,
            firmware_version=self._real.state.firmware().running,
            message=self.status.summary(),
        )

    def _switch_test_mode(self, request: AdminRequest) -> AdminResponse:
        sid = request.service_id
        firmware = self._real.state.firmware().running
        if self._one_at_a_time.locked():  # never switch the services under a transaction
            return AdminResponse(
                service_id=sid,
                result=Result.FAILURE,
                error_condition=ErrorCondition.BUSY,
                message="交易进行中，不能切换测试模式",
                firmware_version=firmware,
                test_mode=self.test_mode.active,
            )
        if request.action is AdminAction.TEST_MODE_END:
            self.test_mode.end("command")
            return AdminResponse(
                service_id=sid,
                result=_OK,
                message="已退出测试模式",
                firmware_version=firmware,
                test_mode=False,
            )
        timeout = request.test_mode_timeout or self._real.config.test_mode_timeout
        until = self.test_mode.start(timeout)
        return AdminResponse(
            service_id=sid,
            result=_OK,
            message="已进入测试模式：测试交易 / TEST，不入账",
            firmware_version=firmware,
            test_mode=True,
            test_mode_until=until,
        )


def _as_test(response: Response) -> Response:
    """Mark an answer given in test mode (测试交易): no money moved."""
    return response.model_copy(update={"test": True})
