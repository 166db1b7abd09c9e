"""The terminal against the real acquirer simulator (ISO 8583 over TCP, in-process server):
``ClientAcquirer`` adapts ``AcquirerClient`` to the terminal's acquirer port."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shouyin.acquirer.codes import Wallet as HostWallet
from shouyin.acquirer.host import Host, HostConfig
from shouyin.acquirer.ledger import Ledger
from shouyin.acquirer.server import AcquirerServer
from shouyin.acquirer.testcards import QrBehaviour, qr_code
from shouyin.link import (
    ErrorCondition,
    PaymentKind,
    PaymentRequest,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    Result,
    ReversalReason,
    ReversalRequest,
    TransactionState,
)
from shouyin.terminal.cards import PinBehaviour, ReaderRule
from shouyin.terminal.host_client import ClientAcquirer, make_client
from shouyin.terminal.ports import SystemClock
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.state import TerminalState
from tests.terminal import Harness

CONFIG = TerminalConfig(
    acquirer_timeout=5.0, qr_poll_interval=0.3, qr_poll_limit=6.0, qr_revoke_min_age=0.5
)


def card(h: Harness, ecr_ref: str, amount: int) -> PaymentRequest:
    return PaymentRequest(service_id=h.sid(), ecr_ref=ecr_ref, amount=amount, kind=PaymentKind.CARD)


def test_terminal_flows_against_the_acquirer_simulator(tmp_path: Path) -> None:
    async def main() -> None:
        ledger = Ledger(tmp_path / "acquirer.db")
        host = Host(ledger, HostConfig(userpaying_s=0.5, slow_issuer_s=0.1))
        async with AcquirerServer(host, port=0) as server:
            state = TerminalState(tmp_path / "terminal", CONFIG)
            clock = SystemClock()
            client = make_client("127.0.0.1", server.port, state, clock, timeout=5.0)
            port = ClientAcquirer(client, state)
            state.close()
            rules = (
                ReaderRule(card="decline", ecr_ref="D.*"),
                ReaderRule(card="pin", ecr_ref="P.*"),
                ReaderRule(card="pin", ecr_ref="W.*", pin=PinBehaviour.WRONG),
            )
            harness = Harness(tmp_path, rules=rules, config=CONFIG, port=port, clock=clock)
            async with harness as h:
                port.state = h.app.state
                approved = await h.ask(card(h, "A1", 1000), within=20)
                assert approved.result is Result.SUCCESS, approved
                declined = await h.ask(card(h, "D1", 1000), within=20)
                assert declined.error_condition is ErrorCondition.DECLINED
                assert (await h.ask(card(h, "P1", 2000), within=20)).result is Result.SUCCESS
                wrong = await h.ask(card(h, "W1", 2000), within=20)
                assert wrong.error_condition is ErrorCondition.WRONG_PIN
                code = qr_code(HostWallet.WECHAT, QrBehaviour.USERPAYING_SUCCESS)
                qr = await h.ask(
                    PaymentRequest(
                        service_id=h.sid(),
                        ecr_ref="Q1",
                        amount=880,
                        kind=PaymentKind.QR_CODE,
                        auth_code=code,
                    ),
                    within=20,
                )
                assert qr.result is Result.SUCCESS, qr
                void = ReversalRequest(service_id=h.sid(), ecr_ref="P1", reason=ReversalReason.VOID)
                assert (await h.ask(void, within=20)).result is Result.SUCCESS
                refund = RefundRequest(
                    service_id=h.sid(), ecr_ref="F1", amount=400, original_ecr_ref="A1"
                )
                assert (await h.ask(refund, within=20)).result is Result.SUCCESS
                settled = await h.ask(ReconciliationRequest(service_id=h.sid()), within=20)
                assert isinstance(settled, ReconciliationResponse)
                assert settled.result is Result.SUCCESS, settled  # host totals agree: 00
                entry = h.app.state.get("P1")
                assert entry is not None and entry.state is TransactionState.VOIDED
            await port.close()
        ledger.close()

    asyncio.run(asyncio.wait_for(main(), 60))
