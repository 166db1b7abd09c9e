"""Requests and responses: correlation, every category, payment timeouts, one payment in flight."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from shouyin.link import (
    AbortRequest,
    AbortResponse,
    Busy,
    ConnectionState,
    ErrorCondition,
    Event,
    EventNotification,
    FrameRefused,
    LateResponse,
    LinkConfig,
    LocalProtocolError,
    LoggedOut,
    MessageBase,
    MessageReceived,
    NotificationKind,
    PaymentKind,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    ProgressStage,
    Request,
    RequestRefused,
    Response,
    ResponseTimedOut,
    Result,
    TimeoutReason,
    TransactionStatusRequest,
    TransactionStatusResponse,
    response_type_for,
)

from .helpers import Framing, LinkPair, make_pair, of_type
from .samples import SAMPLES, TYPICAL_PAYMENT_REQUEST, TYPICAL_PAYMENT_RESPONSE

CONFIG = LinkConfig(payment_timeout=30.0, payment_hard_limit=90.0, dead_after=1000.0)


def payment(pair: LinkPair, ecr_ref: str = "L01-1") -> PaymentRequest:
    return PaymentRequest(
        service_id=pair.cashier.new_service_id(), ecr_ref=ecr_ref, amount=100, kind=PaymentKind.CARD
    )


def approve(request: PaymentRequest) -> PaymentResponse:
    return PaymentResponse(
        service_id=request.service_id,
        ecr_ref=request.ecr_ref,
        result=Result.SUCCESS,
        amount=request.amount,
    )


def received(events: Iterable[Event]) -> list[MessageBase]:
    return [e.message for e in events if isinstance(e, MessageReceived)]


@pytest.mark.parametrize("framing", ["stream", "serial"])
def test_payment_with_progress_is_correlated_end_to_end(framing: Framing) -> None:
    pair = make_pair(framing)
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    assert received(pair.terminal_events) == [TYPICAL_PAYMENT_REQUEST]
    assert pair.states() == (ConnectionState.BUSY, ConnectionState.BUSY)
    for stage in (ProgressStage.INSERT_CARD, ProgressStage.PIN_ENTRY, ProgressStage.PROCESSING):
        pair.terminal.send(PaymentProgress(service_id="E42", stage=stage), pair.now)
    pair.terminal.send(TYPICAL_PAYMENT_RESPONSE, pair.now)
    pair.pump()
    events = of_type(pair.cashier_events, MessageReceived)
    assert [e.message.type for e in events] == ["payment_progress"] * 3 + ["payment_response"]
    assert events[-1].message == TYPICAL_PAYMENT_RESPONSE
    assert events[-1].in_reply_to == TYPICAL_PAYMENT_REQUEST
    assert pair.states() == (ConnectionState.READY, ConnectionState.READY)


REQUEST_SAMPLES = [
    s
    for s in SAMPLES
    if isinstance(s, Request)
    and s.type not in ("login_request", "logout_request", "heartbeat_request")
]


@pytest.mark.parametrize("framing", ["stream", "serial"])
def test_every_request_category_is_exchanged(framing: Framing) -> None:
    pair = make_pair(framing)
    for request in REQUEST_SAMPLES:
        pair.cashier.send(request, pair.now)
        pair.pump()
        assert received(pair.terminal_events)[-1] == request
        answer = next(
            s
            for s in SAMPLES
            if isinstance(s, response_type_for(request)) and isinstance(s, Response)
        )
        answer = answer.model_copy(update={"service_id": request.service_id})
        if hasattr(request, "ecr_ref"):
            answer = answer.model_copy(update={"ecr_ref": request.ecr_ref})
        pair.terminal.send(answer, pair.now)
        pair.pump()
        event = of_type(pair.cashier_events, MessageReceived)[-1]
        assert (event.message, event.in_reply_to) == (answer, request)
    assert pair.cashier.state is ConnectionState.READY
    assert not of_type(pair.cashier_events + pair.terminal_events, FrameRefused)


def test_event_notification_reaches_the_cashier() -> None:
    pair = make_pair()
    note = EventNotification(event=NotificationKind.PAPER_OUT)
    pair.terminal.send(note, pair.now)
    pair.pump()
    assert received(pair.cashier_events) == [note]


def test_second_payment_while_one_is_in_flight_raises_busy() -> None:
    pair = make_pair()
    first = payment(pair)
    pair.cashier.send(first, pair.now)
    with pytest.raises(Busy) as caught:
        pair.cashier.send(payment(pair, "L01-2"), pair.now)
    assert caught.value.in_flight == first.service_id


def test_status_query_and_abort_flow_during_a_payment() -> None:
    pair = make_pair()
    request = payment(pair)
    pair.cashier.send(request, pair.now)
    query = TransactionStatusRequest(service_id=pair.cashier.new_service_id(), ecr_ref="L01-1")
    abort = AbortRequest(
        service_id=pair.cashier.new_service_id(), target_service_id=request.service_id
    )
    pair.cashier.send(query, pair.now)
    pair.cashier.send(abort, pair.now)
    pair.pump()
    assert received(pair.terminal_events) == [request, query, abort]
    pair.terminal.send(
        TransactionStatusResponse(
            service_id=query.service_id,
            ecr_ref="L01-1",
            result=Result.PARTIAL,
            error_condition=ErrorCondition.IN_PROGRESS,
        ),
        pair.now,
    )
    pair.terminal.send(AbortResponse(service_id=abort.service_id, result=Result.SUCCESS), pair.now)
    pair.terminal.send(
        PaymentResponse(
            service_id=request.service_id,
            ecr_ref="L01-1",
            result=Result.FAILURE,
            error_condition=ErrorCondition.ABORTED,
        ),
        pair.now,
    )
    pair.pump()
    assert [m.type for m in received(pair.cashier_events)] == [
        "transaction_status_response",
        "abort_response",
        "payment_response",
    ]
    assert pair.cashier.state is ConnectionState.READY


def test_progress_restarts_the_payment_timeout() -> None:
    pair = make_pair(config=CONFIG)
    request = payment(pair)
    pair.cashier.send(request, pair.now)
    pair.pump()
    for _ in range(2):  # a long PIN entry: 2 x 25 s > 30 s, yet no timeout
        pair.advance(25.0)
        pair.terminal.send(
            PaymentProgress(service_id=request.service_id, stage=ProgressStage.PIN_ENTRY), pair.now
        )
        pair.pump()
    assert not of_type(pair.cashier_events, ResponseTimedOut)
    pair.advance(29.9)
    assert not of_type(pair.cashier_events, ResponseTimedOut)
    pair.advance(0.2)
    [timeout] = of_type(pair.cashier_events, ResponseTimedOut)
    assert (timeout.request, timeout.reason) == (request, TimeoutReason.INACTIVITY)
    assert pair.cashier.state is ConnectionState.READY


def test_hard_limit_holds_despite_progress() -> None:
    pair = make_pair(config=CONFIG)
    request = payment(pair)
    pair.cashier.send(request, pair.now)
    pair.pump()
    started = pair.now
    while not of_type(pair.cashier_events, ResponseTimedOut):
        pair.advance(10.0)
        if pair.terminal.state is ConnectionState.BUSY:
            pair.terminal.send(
                PaymentProgress(service_id=request.service_id, stage=ProgressStage.PROCESSING),
                pair.now,
            )
            pair.pump()
    [timeout] = of_type(pair.cashier_events, ResponseTimedOut)
    assert timeout.reason is TimeoutReason.HARD_LIMIT
    assert pair.now - started == pytest.approx(90.0)


def test_non_financial_request_times_out() -> None:
    pair = make_pair(config=CONFIG)
    query = TransactionStatusRequest(service_id=pair.cashier.new_service_id(), ecr_ref="L01-1")
    pair.cashier.send(query, pair.now)
    pair.pump()
    pair.advance(CONFIG.request_timeout)
    [timeout] = of_type(pair.cashier_events, ResponseTimedOut)
    assert timeout.reason is TimeoutReason.NO_RESPONSE


def test_approval_after_the_timeout_is_reported_as_a_late_response() -> None:
    pair = make_pair(config=CONFIG)
    request = payment(pair)
    pair.cashier.send(request, pair.now)
    pair.pump()
    pair.advance(30.0)
    assert of_type(pair.cashier_events, ResponseTimedOut)
    pair.terminal.send(approve(request), pair.now)
    pair.pump()
    [late] = of_type(pair.cashier_events, LateResponse)
    assert late.request == request
    assert isinstance(late.message, PaymentResponse) and late.message.result is Result.SUCCESS


def test_terminal_answers_busy_to_a_payment_while_still_processing_one() -> None:
    pair = make_pair(config=CONFIG)
    first = payment(pair)
    pair.cashier.send(first, pair.now)
    pair.pump()
    pair.advance(30.0)  # the cashier gave up; the terminal is still busy with the customer
    second = payment(pair, "L01-2")
    pair.cashier.send(second, pair.now)
    pair.pump()
    [refused] = of_type(pair.terminal_events, RequestRefused)
    assert (refused.request, refused.reason) == (second, "busy")
    answer = received(pair.cashier_events)[-1]
    assert isinstance(answer, PaymentResponse)
    assert (answer.service_id, answer.error_condition) == (second.service_id, ErrorCondition.BUSY)
    assert pair.terminal.in_flight == first.service_id


def test_response_to_nothing_is_refused() -> None:
    pair = make_pair(config=LinkConfig(late_response_memory=0, dead_after=1000.0))
    query = TransactionStatusRequest(service_id=pair.cashier.new_service_id(), ecr_ref="L01-1")
    pair.cashier.send(query, pair.now)
    pair.pump()
    pair.advance(10.0)  # timed out and forgotten
    pair.terminal.send(
        TransactionStatusResponse(
            service_id=query.service_id,
            ecr_ref="L01-1",
            result=Result.FAILURE,
            error_condition=ErrorCondition.NOT_FOUND,
        ),
        pair.now,
    )
    pair.pump()
    [refused] = of_type(pair.cashier_events, FrameRefused)
    assert "answers no pending request" in str(refused.error)
    assert not of_type(pair.cashier_events, MessageReceived)
    assert not of_type(pair.cashier_events, LateResponse)


def test_answering_an_unknown_request_is_a_local_error() -> None:
    pair = make_pair()
    with pytest.raises(LocalProtocolError, match="no pending request"):
        pair.terminal.send(approve(payment(pair)), pair.now)


def test_answer_of_the_wrong_type_is_a_local_error() -> None:
    pair = make_pair()
    request = payment(pair)
    pair.cashier.send(request, pair.now)
    pair.pump()
    with pytest.raises(LocalProtocolError, match="does not answer"):
        pair.terminal.send(
            AbortResponse(service_id=request.service_id, result=Result.SUCCESS), pair.now
        )


def test_roles_are_enforced_locally() -> None:
    pair = make_pair()
    with pytest.raises(LocalProtocolError):
        pair.terminal.send(payment(pair), pair.now)
    with pytest.raises(LocalProtocolError):
        pair.cashier.send(EventNotification(event=NotificationKind.PAPER_OUT), pair.now)
    with pytest.raises(LocalProtocolError):  # progress only for the payment in flight
        pair.terminal.send(
            PaymentProgress(service_id="E1", stage=ProgressStage.PIN_ENTRY), pair.now
        )


def test_duplicate_service_id_is_a_local_error() -> None:
    pair = make_pair()
    query = TransactionStatusRequest(service_id="Q1", ecr_ref="L01-1")
    pair.cashier.send(query, pair.now)
    with pytest.raises(LocalProtocolError, match="already pending"):
        pair.cashier.send(query, pair.now)


def test_logout_returns_both_sides_to_connected() -> None:
    pair = make_pair()
    pair.cashier.logout(pair.now)
    assert pair.states() == (ConnectionState.LOGGING_OUT, ConnectionState.READY)
    pair.pump()
    assert of_type(pair.cashier_events, LoggedOut) and of_type(pair.terminal_events, LoggedOut)
    assert pair.states() == (ConnectionState.CONNECTED, ConnectionState.CONNECTED)
    with pytest.raises(LocalProtocolError):
        pair.cashier.send(payment(pair), pair.now)


def test_logout_is_refused_during_a_payment() -> None:
    pair = make_pair()
    pair.cashier.send(payment(pair), pair.now)
    with pytest.raises(Busy):
        pair.cashier.logout(pair.now)


def test_admin_request_waits_for_the_payment_to_finish() -> None:
    pair = make_pair()
    request = payment(pair)
    pair.cashier.send(request, pair.now)
    admin = next(s for s in SAMPLES if s.type == "admin_request")
    with pytest.raises(Busy):
        pair.cashier.send(admin, pair.now)
    pair.pump()
    pair.terminal.send(approve(request), pair.now)
    pair.pump()
    pair.cashier.send(admin, pair.now)
    pair.pump()
    assert received(pair.terminal_events)[-1] == admin


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dead_after": 1.0, "heartbeat_interval": 2.0},
        {"payment_timeout": 60.0, "payment_hard_limit": 30.0},
        {"request_timeout": 0.0},
        {"protocol_versions": ()},
    ],
)
def test_inconsistent_configs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LinkConfig(**kwargs)  # type: ignore[arg-type]
