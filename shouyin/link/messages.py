"""Typed link messages (modelled on the nexo Sale-to-POI set) and their compact JSON codec.

Every message is a frozen pydantic model with a literal ``type`` field; :data:`Message` is the
discriminated union of all of them, :func:`encode` turns one into compact JSON bytes (no spaces,
``None`` fields left out) and :func:`decode` turns bytes back into the right class or raises
:class:`~shouyin.link.errors.MessageDecodeError` naming the first bad field (never its value).

Shapes:

* a **request** (:class:`Request`) carries ``service_id``, unique among the sender's pending
  requests (financial requests also carry ``ecr_ref``, the idempotency key of section 5);
* a **response** (:class:`Response`) carries the request's ``service_id``, a ``result``
  (success / failure / partial) and an ``error_condition`` (required unless success), plus for
  financial ones the acquirer data;
* **notices** are neither: :class:`PaymentProgress` (restarts the payment timeout),
  :class:`EventNotification`, :class:`LoginConfirm` and :class:`Rejected` (the only thing a peer is
  ever told about a refused frame).

Which side may send what, and in which session state, is in :mod:`shouyin.link.states`.
Pairing and Login travel unsealed (there are no session keys yet) and carry no secrets.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, Field, TypeAdapter, ValidationError, model_validator

from shouyin.link.errors import MessageDecodeError
from shouyin.link.values import (
    AcquirerData,
    AdminAction,
    Amount,
    AuthCode,
    Capabilities,
    DocumentKind,
    ErrorCondition,
    FirmwarePackage,
    Hex,
    Hex32,
    Ident,
    NotificationKind,
    PaymentKind,
    Pem,
    ProgressStage,
    ReconciliationKind,
    Result,
    ReversalReason,
    TerminalHealth,
    Text,
    Totals,
    TransactionRecord,
    WireModel,
)

__all__ = [
    "AbortRequest",
    "AbortResponse",
    "AdminRequest",
    "AdminResponse",
    "DiagnosisRequest",
    "DiagnosisResponse",
    "DisplayRequest",
    "DisplayResponse",
    "EventNotification",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "LoginConfirm",
    "LoginRequest",
    "LoginResponse",
    "LogoutRequest",
    "LogoutResponse",
    "Message",
    "MessageBase",
    "PairingChallenge",
    "PairingComplete",
    "PairingConfirm",
    "PairingRequest",
    "PaymentProgress",
    "PaymentRequest",
    "PaymentResponse",
    "PrintRequest",
    "PrintResponse",
    "ReconciliationRequest",
    "ReconciliationResponse",
    "RefundRequest",
    "RefundResponse",
    "Rejected",
    "Request",
    "Response",
    "ReversalRequest",
    "ReversalResponse",
    "TransactionStatusRequest",
    "TransactionStatusResponse",
    "decode",
    "encode",
    "failure_response",
    "response_type_for",
]

Lines = Annotated[tuple[Text, ...], Field(max_length=200)]
ProtocolVersion = Annotated[int, Field(strict=True, ge=1, le=255)]


class MessageBase(WireModel):
    """Base of every message: ``type`` comes first on the wire and selects the class."""

    type: str


class Request(MessageBase):
    """Base of requests: ``service_id`` correlates the response."""

    service_id: Ident


class Response(MessageBase):
    """Base of responses: the request's ``service_id``, a result and an error condition."""

    service_id: Ident
    result: Result
    error_condition: ErrorCondition | None = None
    message: Text | None = None
    test: bool | None = None  # answered in test mode (测试交易): no money moved

    @model_validator(mode="after")
    def _condition_explains_failure(self) -> Self:
        if self.result is not Result.SUCCESS and self.error_condition is None:
            raise ValueError("a failure or partial result needs an error_condition")
        return self


# -- session -------------------------------------------------------------------------------------


class LoginRequest(Request):
    """签到, ECR -> POI, unsealed: protocol versions, capabilities and a fresh nonce."""

    type: Literal["login_request"] = "login_request"
    ecr_id: Ident
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8}$")]
    protocol_versions: Annotated[tuple[ProtocolVersion, ...], Field(min_length=1, max_length=16)]
    capabilities: Capabilities
    nonce: Hex32
    operator_id: Ident | None = None
    ecr_time: AwareDatetime | None = None


class LoginResponse(Response):
    """签到 answer, POI -> ECR, unsealed: chosen version, capabilities and the terminal nonce."""

    type: Literal["login_response"] = "login_response"
    terminal_id: Ident | None = None
    protocol_version: ProtocolVersion | None = None
    supported_versions: tuple[ProtocolVersion, ...] = ()
    capabilities: Capabilities | None = None
    nonce: Hex32 | None = None

    @model_validator(mode="after")
    def _success_is_complete(self) -> Self:
        if self.result is Result.SUCCESS and None in (
            self.terminal_id,
            self.protocol_version,
            self.capabilities,
            self.nonce,
        ):
            raise ValueError("a successful login names terminal, version, capabilities and nonce")
        return self


class LoginConfirm(MessageBase):
    """First sealed message of each side after Login: proves both hold the session keys."""

    type: Literal["login_confirm"] = "login_confirm"
    service_id: Ident


class LogoutRequest(Request):
    """签退, ECR -> POI."""

    type: Literal["logout_request"] = "logout_request"


class LogoutResponse(Response):
    """签退 answer."""

    type: Literal["logout_response"] = "logout_response"


class HeartbeatRequest(Request):
    """Sent by the ECR when the link is idle; a dead link is detected by the missing traffic."""

    type: Literal["heartbeat_request"] = "heartbeat_request"


class HeartbeatResponse(Response):
    """Heartbeat answer with the terminal's health snapshot."""

    type: Literal["heartbeat_response"] = "heartbeat_response"
    health: TerminalHealth | None = None


class Rejected(MessageBase):
    """The only thing a peer is told about a refused frame. Unsealed and never answered."""

    type: Literal["rejected"] = "rejected"


# -- financial -----------------------------------------------------------------------------------


class PaymentRequest(Request):
    """消费: a sale paid by card or by the customer's QR payment code."""

    type: Literal["payment_request"] = "payment_request"
    ecr_ref: Ident
    amount: Amount
    currency: Literal["CNY"] = "CNY"
    kind: PaymentKind
    auth_code: AuthCode | None = None
    operator_id: Ident | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _auth_code_iff_qr(self) -> Self:
        if (self.kind is PaymentKind.QR_CODE) != (self.auth_code is not None):
            raise ValueError("auth_code is required for qr_code payments and only for them")
        return self


class PaymentResponse(Response):
    """Payment answer: approved amount and acquirer data."""

    type: Literal["payment_response"] = "payment_response"
    ecr_ref: Ident
    amount: Amount | None = None
    kind: PaymentKind | None = None
    acquirer: AcquirerData | None = None


class PaymentProgress(MessageBase):
    """POI -> ECR during a financial transaction ("insert card", "PIN entry"...)."""

    type: Literal["payment_progress"] = "payment_progress"
    service_id: Ident
    stage: ProgressStage
    message: Text | None = None


class ReversalRequest(Request):
    """冲正 (unknown outcome) or 撤销 (void) of the transaction ``ecr_ref``."""

    type: Literal["reversal_request"] = "reversal_request"
    ecr_ref: Ident
    reason: ReversalReason
    amount: Amount | None = None


class ReversalResponse(Response):
    """Reversal answer."""

    type: Literal["reversal_response"] = "reversal_response"
    ecr_ref: Ident
    acquirer: AcquirerData | None = None


class RefundRequest(Request):
    """退货: ``ecr_ref`` is the refund's own unique number (retried with the same number)."""

    type: Literal["refund_request"] = "refund_request"
    ecr_ref: Ident
    amount: Amount
    currency: Literal["CNY"] = "CNY"
    original_ecr_ref: Ident | None = None
    original_rrn: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{12}$")] | None = None
    operator_id: Ident | None = None

    @model_validator(mode="after")
    def _names_original(self) -> Self:
        if self.original_ecr_ref is None and self.original_rrn is None:
            raise ValueError("a refund names the original by original_ecr_ref or original_rrn")
        return self


class RefundResponse(Response):
    """Refund answer."""

    type: Literal["refund_response"] = "refund_response"
    ecr_ref: Ident
    amount: Amount | None = None
    acquirer: AcquirerData | None = None


class TransactionStatusRequest(Request):
    """查询: what became of the transaction ``ecr_ref``."""

    type: Literal["transaction_status_request"] = "transaction_status_request"
    ecr_ref: Ident


class TransactionStatusResponse(Response):
    """Status answer; ``transaction`` is ``None`` with ``not_found``."""

    type: Literal["transaction_status_response"] = "transaction_status_response"
    ecr_ref: Ident
    transaction: TransactionRecord | None = None


class AbortRequest(Request):
    """Ask the terminal to abort the request ``target_service_id`` (e.g. a payment)."""

    type: Literal["abort_request"] = "abort_request"
    target_service_id: Ident
    reason: Text | None = None


class AbortResponse(Response):
    """Abort answer (the aborted request still gets its own response)."""

    type: Literal["abort_response"] = "abort_response"


class ReconciliationRequest(Request):
    """结算: close the batch (``settlement``) or report its totals."""

    type: Literal["reconciliation_request"] = "reconciliation_request"
    kind: ReconciliationKind = ReconciliationKind.SETTLEMENT


class ReconciliationResponse(Response):
    """Batch number and totals per payment kind."""

    type: Literal["reconciliation_response"] = "reconciliation_response"
    batch: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None
    totals: Annotated[tuple[Totals, ...], Field(max_length=32)] = ()


# -- devices, diagnosis, administration ----------------------------------------------------------


class DiagnosisRequest(Request):
    """Connection and health test; optionally check the acquirer host too."""

    type: Literal["diagnosis_request"] = "diagnosis_request"
    check_acquirer: bool = False


class DiagnosisResponse(Response):
    """Diagnosis answer."""

    type: Literal["diagnosis_response"] = "diagnosis_response"
    health: TerminalHealth | None = None
    acquirer_reachable: bool | None = None


class PrintRequest(Request):
    """Print a document on the terminal's printer."""

    type: Literal["print_request"] = "print_request"
    document: DocumentKind
    lines: Lines
    copies: int = Field(default=1, strict=True, ge=1, le=5)


class PrintResponse(Response):
    """Print answer (``paper_out`` on failure)."""

    type: Literal["print_response"] = "print_response"


class DisplayRequest(Request):
    """Show lines (and optionally a QR code) on the terminal's display."""

    type: Literal["display_request"] = "display_request"
    lines: Annotated[tuple[Text, ...], Field(max_length=16)]
    qr_payload: Annotated[str, Field(max_length=512)] | None = None


class DisplayResponse(Response):
    """Display answer."""

    type: Literal["display_response"] = "display_response"


class EventNotification(MessageBase):
    """Unsolicited POI -> ECR event: paper out, low battery, card removed..."""

    type: Literal["event_notification"] = "event_notification"
    event: NotificationKind
    detail: Text | None = None
    notification_id: Ident | None = None


class AdminRequest(Request):
    """Administrative request, e.g. install a firmware package into the inactive slot, or start
    or end test mode (``test_mode_timeout``: seconds until test mode ends by itself)."""

    type: Literal["admin_request"] = "admin_request"
    action: AdminAction
    firmware: FirmwarePackage | None = None
    test_mode_timeout: int | None = Field(default=None, strict=True, ge=1, le=3600)

    @model_validator(mode="after")
    def _firmware_iff_update(self) -> Self:
        if (self.action is AdminAction.FIRMWARE_UPDATE) != (self.firmware is not None):
            raise ValueError("firmware is required for firmware_update and only for it")
        if self.test_mode_timeout is not None and self.action is not AdminAction.TEST_MODE_START:
            raise ValueError("test_mode_timeout goes only with test_mode_start")
        return self


class AdminResponse(Response):
    """Admin answer; ``test_mode`` (and until when) after a test-mode command."""

    type: Literal["admin_response"] = "admin_response"
    firmware_version: Annotated[str, Field(max_length=64)] | None = None
    test_mode: bool | None = None
    test_mode_until: AwareDatetime | None = None


# -- pairing (unsealed; see shouyin.link.pairing) ------------------------------------------------


class PairingRequest(MessageBase):
    """POI -> ECR: the terminal's identity, its SPAKE2 message and optionally a CSR (PEM)."""

    type: Literal["pairing_request"] = "pairing_request"
    service_id: Ident
    terminal_id: Ident
    pake: Hex
    csr: Pem | None = None


class PairingChallenge(MessageBase):
    """ECR -> POI: the ECR's identity, its SPAKE2 message and its key confirmation."""

    type: Literal["pairing_challenge"] = "pairing_challenge"
    service_id: Ident
    ecr_id: Ident
    pake: Hex
    confirm: Hex32


class PairingConfirm(MessageBase):
    """POI -> ECR: the terminal's key confirmation, or ``None`` when the ECR's did not verify."""

    type: Literal["pairing_confirm"] = "pairing_confirm"
    service_id: Ident
    confirm: Hex32 | None = None


class PairingComplete(Response):
    """ECR -> POI: pairing result, the key id and optionally certificates, MACed under the PAKE."""

    type: Literal["pairing_complete"] = "pairing_complete"
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8}$")] | None = None
    certificate: Pem | None = None
    ca_certificate: Pem | None = None
    mac: Hex32 | None = None


Message = Annotated[
    LoginRequest
    | LoginResponse
    | LoginConfirm
    | LogoutRequest
    | LogoutResponse
    | HeartbeatRequest
    | HeartbeatResponse
    | Rejected
    | PaymentRequest
    | PaymentResponse
    | PaymentProgress
    | ReversalRequest
    | ReversalResponse
    | RefundRequest
    | RefundResponse
    | TransactionStatusRequest
    | TransactionStatusResponse
    | AbortRequest
    | AbortResponse
    | ReconciliationRequest
    | ReconciliationResponse
    | DiagnosisRequest
    | DiagnosisResponse
    | PrintRequest
    | PrintResponse
    | DisplayRequest
    | DisplayResponse
    | EventNotification
    | AdminRequest
    | AdminResponse
    | PairingRequest
    | PairingChallenge
    | PairingConfirm
    | PairingComplete,
    Field(discriminator="type"),
]
"""Any link message; ``type`` selects the class."""

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)

_RESPONSES: dict[type[Request], type[Response]] = {
    LoginRequest: LoginResponse,
    LogoutRequest: LogoutResponse,
    HeartbeatRequest: HeartbeatResponse,
    PaymentRequest: PaymentResponse,
    ReversalRequest: ReversalResponse,
    RefundRequest: RefundResponse,
    TransactionStatusRequest: TransactionStatusResponse,
    AbortRequest: AbortResponse,
    ReconciliationRequest: ReconciliationResponse,
    DiagnosisRequest: DiagnosisResponse,
    PrintRequest: PrintResponse,
    DisplayRequest: DisplayResponse,
    AdminRequest: AdminResponse,
}


def response_type_for(request: Request) -> type[Response]:
    """The response class that answers ``request``."""
    return _RESPONSES[type(request)]


def failure_response(
    request: Request, condition: ErrorCondition, message: str | None = None
) -> Response:
    """Build the failure response of the right class for ``request`` (copying its ``ecr_ref``).

    Used by the terminal side to refuse a request it cannot take, e.g. ``busy``.
    """
    fields: dict[str, Any] = {
        "service_id": request.service_id,
        "result": Result.FAILURE,
        "error_condition": condition,
        "message": message,
    }
    ecr_ref = getattr(request, "ecr_ref", None)
    if ecr_ref is not None:
        fields["ecr_ref"] = ecr_ref
    return response_type_for(request).model_validate(fields)


def encode(message: MessageBase) -> bytes:
    """Compact JSON of ``message`` (UTF-8, no spaces, ``None`` fields omitted)."""
    return message.model_dump_json(exclude_none=True).encode()


def decode(body: bytes) -> Message:
    """Parse a message body.

    Raises:
        MessageDecodeError: not JSON, unknown ``type``, missing or invalid field. The error names
            the field and the rule, never the offending value (it could be a card number).
    """
    try:
        return _ADAPTER.validate_json(body)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False, include_context=False)[0]
        loc = [str(part) for part in first["loc"]]
        reason = first["msg"]
        if first["type"] == "extra_forbidden" and loc:
            loc[-1] = "<unexpected field>"  # the name itself came from the peer
        elif first["type"].startswith("union_tag"):
            reason = "unknown or missing message type"
        field = _redact(".".join(loc))
        # Deliberately not chained: the ValidationError's text includes the input values.
        raise MessageDecodeError(field, _redact(reason)) from None


_LONG_DIGITS = re.compile(r"[0-9]{13,}")


def _redact(text: str) -> str:
    """Hide any run of 13+ digits (a possible card number) in peer-controlled error text."""
    return _LONG_DIGITS.sub("<digits>", text)
