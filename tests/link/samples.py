"""One valid example of every message type, and hypothesis strategies for the important ones."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from shouyin.link import (
    AbortRequest,
    AbortResponse,
    AcquirerData,
    AdminAction,
    AdminRequest,
    AdminResponse,
    CardEntry,
    DiagnosisRequest,
    DiagnosisResponse,
    DisplayRequest,
    DisplayResponse,
    DocumentKind,
    ErrorCondition,
    EventNotification,
    FirmwarePackage,
    HeartbeatRequest,
    HeartbeatResponse,
    LinkCounters,
    LoginConfirm,
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    LogoutResponse,
    MessageBase,
    NotificationKind,
    PairingChallenge,
    PairingComplete,
    PairingConfirm,
    PairingRequest,
    PaperState,
    PaymentKind,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    PowerSource,
    PrintRequest,
    PrintResponse,
    ProgressStage,
    ReconciliationKind,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    RefundResponse,
    Rejected,
    Result,
    ReversalReason,
    ReversalRequest,
    ReversalResponse,
    TerminalHealth,
    Totals,
    TransactionKind,
    TransactionRecord,
    TransactionState,
    TransactionStatusRequest,
    TransactionStatusResponse,
    Wallet,
)

from .helpers import ecr_capabilities, poi_capabilities

AT = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
OK = Result.SUCCESS

ACQUIRER = AcquirerData(
    rrn="407312345678",
    trace="000123",
    batch="000045",
    auth_code="A1B2C3",
    masked_pan="622848******1234",
    card_brand="UnionPay",
    entry=CardEntry.CHIP,
    merchant_id="898310048161234",
    acquirer_terminal_id="12345678",
    transaction_time=AT,
)

TYPICAL_PAYMENT_REQUEST = PaymentRequest(
    service_id="E42",
    ecr_ref="L01-20250314-000123",
    amount=12_345,
    kind=PaymentKind.CARD,
    operator_id="cashier-07",
    description="Sale 000123 lane 01",
)
TYPICAL_PAYMENT_RESPONSE = PaymentResponse(
    service_id="E42",
    ecr_ref="L01-20250314-000123",
    result=OK,
    amount=12_345,
    kind=PaymentKind.CARD,
    acquirer=ACQUIRER,
)
QR_PAYMENT_REQUEST = PaymentRequest(
    service_id="E43",
    ecr_ref="L01-20250314-000124",
    amount=880,
    kind=PaymentKind.QR_CODE,
    auth_code="134567890123456789",
)
HEALTH = TerminalHealth(
    power=PowerSource.BATTERY,
    battery_percent=64,
    paper=PaperState.LOW,
    temperature_c=41,
    firmware="SIM-1.0.0",
    link=LinkCounters(crc_errors=2, retransmissions=3),
)

SAMPLES: list[MessageBase] = [
    LoginRequest(
        service_id="E1",
        ecr_id="lane-01",
        key_id="0a1b2c3d",
        protocol_versions=(1,),
        capabilities=ecr_capabilities(),
        nonce="ab" * 32,
        operator_id="cashier-07",
        ecr_time=AT,
    ),
    LoginResponse(
        service_id="E1",
        result=OK,
        terminal_id="T0001",
        protocol_version=1,
        supported_versions=(1,),
        capabilities=poi_capabilities(),
        nonce="cd" * 32,
    ),
    LoginResponse(
        service_id="E1",
        result=Result.FAILURE,
        error_condition=ErrorCondition.INCOMPATIBLE,
        supported_versions=(2, 3),
        message="no common protocol version",
    ),
    LoginConfirm(service_id="E1"),
    LogoutRequest(service_id="E9"),
    LogoutResponse(service_id="E9", result=OK),
    HeartbeatRequest(service_id="E7"),
    HeartbeatResponse(service_id="E7", result=OK, health=HEALTH),
    Rejected(),
    TYPICAL_PAYMENT_REQUEST,
    TYPICAL_PAYMENT_RESPONSE,
    QR_PAYMENT_REQUEST,
    PaymentResponse(
        service_id="E43",
        ecr_ref="L01-20250314-000124",
        result=OK,
        amount=880,
        kind=PaymentKind.QR_CODE,
        acquirer=AcquirerData(wallet=Wallet.WECHAT, wallet_order_id="4200001234202503141234"),
    ),
    PaymentResponse(
        service_id="E44",
        ecr_ref="L01-20250314-000125",
        result=Result.FAILURE,
        error_condition=ErrorCondition.INSUFFICIENT_FUNDS,
        message="余额不足",
    ),
    PaymentProgress(service_id="E42", stage=ProgressStage.PIN_ENTRY, message="请输入密码"),
    ReversalRequest(
        service_id="E50", ecr_ref="L01-20250314-000123", reason=ReversalReason.UNKNOWN_OUTCOME
    ),
    ReversalResponse(service_id="E50", ecr_ref="L01-20250314-000123", result=OK),
    RefundRequest(
        service_id="E51",
        ecr_ref="R01-20250315-000001",
        amount=5_000,
        original_ecr_ref="L01-20250314-000123",
    ),
    RefundResponse(
        service_id="E51", ecr_ref="R01-20250315-000001", result=OK, amount=5_000, acquirer=ACQUIRER
    ),
    TransactionStatusRequest(service_id="E52", ecr_ref="L01-20250314-000123"),
    TransactionStatusResponse(
        service_id="E52",
        ecr_ref="L01-20250314-000123",
        result=OK,
        transaction=TransactionRecord(
            ecr_ref="L01-20250314-000123",
            kind=TransactionKind.PAYMENT,
            state=TransactionState.APPROVED,
            amount=12_345,
            acquirer=ACQUIRER,
            at=AT,
        ),
    ),
    TransactionStatusResponse(
        service_id="E53",
        ecr_ref="L01-nope",
        result=Result.FAILURE,
        error_condition=ErrorCondition.NOT_FOUND,
    ),
    AbortRequest(service_id="E54", target_service_id="E42", reason="customer left"),
    AbortResponse(service_id="E54", result=OK),
    ReconciliationRequest(service_id="E55", kind=ReconciliationKind.SETTLEMENT),
    ReconciliationResponse(
        service_id="E55",
        result=OK,
        batch="000045",
        totals=(
            Totals(
                kind=PaymentKind.CARD, count=12, amount=345_600, refund_count=1, refund_amount=5_000
            ),
            Totals(kind=PaymentKind.QR_CODE, wallet=Wallet.ALIPAY, count=30, amount=99_900),
        ),
    ),
    DiagnosisRequest(service_id="E56", check_acquirer=True),
    DiagnosisResponse(service_id="E56", result=OK, health=HEALTH, acquirer_reachable=True),
    PrintRequest(service_id="E57", document=DocumentKind.RECEIPT, lines=("超市", "合计 ￥123.45")),
    PrintResponse(
        service_id="E57", result=Result.FAILURE, error_condition=ErrorCondition.PAPER_OUT
    ),
    DisplayRequest(
        service_id="E58", lines=("请扫码支付", "￥8.80"), qr_payload="https://qr.example/x"
    ),
    DisplayResponse(service_id="E58", result=OK),
    EventNotification(event=NotificationKind.PAPER_OUT, detail="printer cover open"),
    AdminRequest(
        service_id="E59",
        action=AdminAction.FIRMWARE_UPDATE,
        firmware=FirmwarePackage(version="1.1.0", sha256="0f" * 32, size=1_048_576),
    ),
    AdminResponse(service_id="E59", result=OK, firmware_version="1.1.0"),
    PairingRequest(service_id="P1", terminal_id="T0001", pake="42" * 33, csr="-----BEGIN..."),
    PairingChallenge(service_id="P1", ecr_id="lane-01", pake="41" * 33, confirm="ee" * 32),
    PairingConfirm(service_id="P1", confirm="dd" * 32),
    PairingConfirm(service_id="P1"),
    PairingComplete(
        service_id="P1", result=OK, key_id="0a1b2c3d", certificate="PEM", mac="cc" * 32
    ),
]

# -- strategies --------------------------------------------------------------------------------

idents = st.from_regex(r"\A[A-Za-z0-9._:\-]{1,64}\Z")
texts = st.text(max_size=40)
amounts = st.integers(min_value=1, max_value=10**10)
digits = st.from_regex(r"\A[0-9]{6}\Z")
masked_pans = st.builds(
    lambda head, stars, tail: f"{head}{'*' * stars}{tail}",
    st.from_regex(r"\A[0-9]{6}\Z"),
    st.integers(min_value=3, max_value=9),  # 13 to 19 digit card numbers
    st.from_regex(r"\A[0-9]{4}\Z"),
)
aware_times = st.datetimes(timezones=st.just(UTC))

acquirer_data = st.builds(
    AcquirerData,
    rrn=st.none() | st.from_regex(r"\A[0-9A-Za-z]{12}\Z"),
    trace=st.none() | digits,
    batch=st.none() | digits,
    auth_code=st.none() | st.from_regex(r"\A[0-9A-Za-z]{1,6}\Z"),
    masked_pan=st.none() | masked_pans,
    card_brand=st.none() | st.text(max_size=32),
    entry=st.none() | st.sampled_from(CardEntry),
    wallet=st.none() | st.sampled_from(Wallet),
    transaction_time=st.none() | aware_times,
)


@st.composite
def payment_requests(draw: st.DrawFn) -> PaymentRequest:
    kind = draw(st.sampled_from(PaymentKind))
    return PaymentRequest(
        service_id=draw(idents),
        ecr_ref=draw(idents),
        amount=draw(amounts),
        kind=kind,
        auth_code=draw(st.from_regex(r"\A[0-9]{10,32}\Z")) if kind is PaymentKind.QR_CODE else None,
        operator_id=draw(st.none() | idents),
        description=draw(st.none() | texts),
    )


@st.composite
def payment_responses(draw: st.DrawFn) -> PaymentResponse:
    result = draw(st.sampled_from(Result))
    return PaymentResponse(
        service_id=draw(idents),
        ecr_ref=draw(idents),
        result=result,
        error_condition=draw(st.sampled_from(ErrorCondition))
        if result is not Result.SUCCESS
        else draw(st.none() | st.sampled_from(ErrorCondition)),
        message=draw(st.none() | texts),
        amount=draw(st.none() | amounts),
        kind=draw(st.none() | st.sampled_from(PaymentKind)),
        acquirer=draw(st.none() | acquirer_data),
    )


progress = st.builds(
    PaymentProgress,
    service_id=idents,
    stage=st.sampled_from(ProgressStage),
    message=st.none() | texts,
)
notifications = st.builds(
    EventNotification,
    event=st.sampled_from(NotificationKind),
    detail=st.none() | texts,
    notification_id=st.none() | idents,
)
heartbeat_responses = st.builds(
    HeartbeatResponse,
    service_id=idents,
    result=st.just(Result.SUCCESS),
    health=st.none()
    | st.builds(
        TerminalHealth,
        power=st.none() | st.sampled_from(PowerSource),
        battery_percent=st.none() | st.integers(0, 100),
        paper=st.none() | st.sampled_from(PaperState),
        temperature_c=st.none() | st.integers(-60, 150),
    ),
)
messages = st.one_of(
    payment_requests(), payment_responses(), progress, notifications, heartbeat_responses
)
