"""The simulator as its own process: ``python -m shouyin.terminal sim`` over a pty it creates and
over TCP, paired like a real terminal, driven through its control channel, killed by a power
cut and restarted on the same state directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shouyin.link import (
    Capabilities,
    EventNotification,
    LinkConfig,
    LongTermKey,
    MessageReceived,
    NotificationKind,
    PairingCode,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    Result,
    Role,
    TransactionState,
    TransactionStatusRequest,
    TransactionStatusResponse,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.link.backoff import Backoff
from shouyin.link.session import Connection
from shouyin.link.transport import LinkAddress, Transport, connect_tcp, open_serial
from shouyin.terminal.sim import POWER_LOSS_EXIT
from tests.helpers.process import JsonLinesProcess

WAIT = 15.0
ECR_CONFIG = LinkConfig(
    heartbeat_interval=0.5, dead_after=2.0, login_timeout=3.0, pairing_timeout=5.0
)


class SimProcess(JsonLinesProcess):
    """``python -m shouyin.terminal sim ...``, followed through its JSON lines."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        module = ["shouyin.terminal", "sim", *args, "--log-level", "INFO"]
        super().__init__("simulator", module, log, wait=WAIT, grace=5.0, tail_chars=3000)


async def control(address: str, command: dict[str, Any]) -> dict[str, Any]:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(json.dumps(command).encode() + b"\n")
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
        return answer
    finally:
        writer.close()


def ecr(address: LinkAddress, key: LongTermKey | None) -> LinkEndpoint:
    connection = Connection(
        Role.ECR,
        "lane-01",
        Capabilities(printer=True, display=True, max_frame_size=8192, firmware="shouyin 0.1.0"),
        config=ECR_CONFIG,
        framer_factory=address.framer_factory(),
        long_term_key=key,
    )

    async def dial() -> Transport:
        if address.is_serial:
            return await open_serial(address)
        return await connect_tcp(address)

    backoff = Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=0.5)
    return LinkEndpoint(connection, connector=dial, backoff=backoff)


async def pay(endpoint: LinkEndpoint, ecr_ref: str, amount: int = 1234) -> PaymentResponse:
    request = PaymentRequest(
        service_id=endpoint.new_service_id(),
        ecr_ref=ecr_ref,
        amount=amount,
        kind=PaymentKind.CARD,
    )
    response = await endpoint.request(request, timeout=WAIT)
    assert isinstance(response, PaymentResponse)
    return response


async def status(endpoint: LinkEndpoint, ecr_ref: str) -> TransactionState | None:
    request = TransactionStatusRequest(service_id=endpoint.new_service_id(), ecr_ref=ecr_ref)
    response = await endpoint.request(request, timeout=WAIT)
    assert isinstance(response, TransactionStatusResponse)
    return response.transaction.state if response.transaction else None


async def notification(endpoint: LinkEndpoint, kind: NotificationKind) -> EventNotification:
    async with asyncio.timeout(WAIT):
        while True:
            event = await endpoint.next_event()
            message = event.message if isinstance(event, MessageReceived) else None
            if isinstance(message, EventNotification) and message.event is kind:
                return message


def test_pty_terminal_pairs_pays_loses_power_and_recovers(tmp_path: Path) -> None:
    state = tmp_path / "terminal"
    common = ["--state-dir", str(state), "--control", "tcp://127.0.0.1:0", "--dead-after", "2"]

    async def scenario() -> None:
        code = PairingCode.generate(time.monotonic())
        first = [*common, "--serial", "pty", "--pair", code.digits]
        async with SimProcess(first, tmp_path / "1.log") as sim:
            path = (await sim.expect("serial"))["ecr_path"]
            address = (await sim.expect("control"))["address"]
            cashier = ecr(LinkAddress.parse(f"serial://{path}?baud=115200"), None)
            cashier.allow_pairing(code)
            await cashier.start()
            await sim.expect("paired", timeout=30)
            await cashier.wait_ready(WAIT)
            key = cashier.connection.long_term_key
            approved = await pay(cashier, "R1")
            assert approved.result is Result.SUCCESS
            assert approved.acquirer is not None
            assert approved.acquirer.masked_pan == "622848*********0018"
            answer = await control(address, {"cmd": "set_status", "paper": "low"})
            assert answer == {"ok": True, "events": ["paper_low"]}
            await notification(cashier, NotificationKind.PAPER_LOW)
            plan = {"power_loss_at": "after_acquirer_approval"}
            assert (await control(address, {"cmd": "faults", "plan": plan}))["ok"]
            with contextlib.suppress(Exception):
                await pay(cashier, "R2")
            assert sim.process is not None
            assert await asyncio.wait_for(sim.process.wait(), WAIT) == POWER_LOSS_EXIT
            await cashier.close()

        async with SimProcess([*common, "--serial", "pty"], tmp_path / "2.log") as sim:
            recovered = await sim.expect("recovered")
            assert recovered["closed"] == 1
            path = (await sim.expect("serial"))["ecr_path"]
            cashier = ecr(LinkAddress.parse(f"serial://{path}?baud=115200"), key)
            await cashier.start()
            await cashier.wait_ready(WAIT)
            assert await status(cashier, "R1") is TransactionState.APPROVED
            unknown = await status(cashier, "R2")
            assert unknown in (TransactionState.REVERSED, TransactionState.FAILED)
            again = await pay(cashier, "R1")
            assert again.result is Result.SUCCESS
            assert again.acquirer == approved.acquirer
            await cashier.close()

    asyncio.run(scenario())


def test_tcp_listening_terminal_pairs_and_serves_payments(tmp_path: Path) -> None:
    async def scenario() -> None:
        code = PairingCode.generate(time.monotonic())
        args = [
            "--state-dir",
            str(tmp_path / "t"),
            "--listen",
            "tcp://127.0.0.1:0",
            "--pair",
            code.digits,
            "--control",
            "off",
            "--card",
            "pin",
        ]
        async with SimProcess(args, tmp_path / "sim.log") as sim:
            port = (await sim.expect("listening"))["port"]
            cashier = ecr(LinkAddress.parse(f"tcp://127.0.0.1:{port}"), None)
            cashier.allow_pairing(code)
            await cashier.start()
            await sim.expect("paired")
            await cashier.wait_ready(WAIT)
            response = await pay(cashier, "T1", 5000)
            assert response.result is Result.SUCCESS
            await cashier.close()

    asyncio.run(scenario())


def test_tls_terminal_pairs_by_qr_code_and_comes_back_with_its_certificate(
    tmp_path: Path,
) -> None:
    from shouyin.link.pairing_qr import PairingPayload, encode_payload
    from shouyin.link.server import LinkServer
    from tests.link.aio_helpers import ecr_capabilities, make_trust

    async def scenario() -> None:
        trust = make_trust(tmp_path / "ecr")
        server = LinkServer(
            ecr_id="lane-01",
            capabilities=ecr_capabilities(),
            firewall=trust.firewall,
            listen=["tls://127.0.0.1:0"],
            keys=trust.keys.get,
            keystore=trust.keystore,
            config=ECR_CONFIG,
            on_paired=trust.remember,
        )
        async with server:
            code = PairingCode.generate(time.monotonic())
            server.allow_pairing(code, trust.issuer())
            port = server.addresses[0].port
            payload = PairingPayload(
                address="127.0.0.1",
                port=port,
                code=code.digits,
                fingerprint=trust.keystore.ca_fingerprint(),
            )
            common = ["--state-dir", str(tmp_path / "t"), "--control", "off", "--dead-after", "2"]
            qr = ["--pair-qr", encode_payload(payload)]
            async with SimProcess([*common, *qr], tmp_path / "1.log") as sim:
                await sim.expect("paired")
                server.allow_pairing(None)
                cashier = await server.wait_ready("T0001", WAIT)
                info = cashier.transport_info
                assert info is not None and info.tls_version == "TLSv1.3"
                first = await pay(cashier, "S1", 777)
                assert first.result is Result.SUCCESS
            again = ["--connect", f"tls://127.0.0.1:{port}"]
            async with SimProcess([*common, *again], tmp_path / "2.log") as sim:
                await sim.expect("logged_in")
                await cashier.wait_ready(WAIT)
                repeat = await pay(cashier, "S1", 777)
                assert repeat.result is Result.SUCCESS
                assert repeat.acquirer == first.acquirer

    asyncio.run(scenario())
