"""The simulator over real loopback sockets: concurrent terminals, timeouts and reversal, faults
set through the control channel, reconnection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from shouyin.acquirer import (
    AcquirerClient,
    AcquirerControl,
    AcquirerServer,
    AcquirerTimeout,
    AcquirerUnreachable,
    BatchTotals,
    Faults,
    HostConfig,
    KindTotals,
    QrBehaviour,
    TotalsKind,
    Wallet,
    card_by_name,
    derive_tmk,
    qr_code,
)
from shouyin.acquirer.framing import encode_frame

from . import MID, make_server, run_async

APPROVE = card_by_name("approve")


def client(
    server: AcquirerServer, terminal_id: str = "T0000001", timeout: float = 2.0
) -> AcquirerClient:
    return AcquirerClient(
        "127.0.0.1", server.port, terminal_id, MID, derive_tmk(terminal_id), timeout=timeout
    )


def control(server: AcquirerServer) -> AcquirerControl:
    assert server.control_port is not None
    return AcquirerControl("127.0.0.1", server.control_port)


def test_two_terminals_pay_at_the_same_time_and_a_slow_issuer_blocks_nobody() -> None:
    async def scenario() -> None:
        async with make_server(config=HostConfig(slow_issuer_s=0.6)) as server:
            one, two = client(server, "T0000001"), client(server, "T0000002")
            await asyncio.gather(one.sign_in(trace=1, batch=1), two.sign_in(trace=1, batch=1))
            slow = asyncio.create_task(
                one.sale(trace=2, batch=1, amount=100, pan=card_by_name("slow").pan)
            )
            started = time.monotonic()
            fast = await asyncio.gather(
                *(
                    two.sale(trace=10 + n, batch=1, amount=100 + n, pan=APPROVE.pan)
                    for n in range(5)
                )
            )
            assert all(answer.approved for answer in fast)
            assert not slow.done()  # the slow issuer held up nobody else
            assert (await slow).approved
            assert time.monotonic() - started >= 0.55
            entries = server.host.ledger.export()
            assert {entry.terminal_id for entry in entries} == {"T0000001", "T0000002"}
            assert len(entries) == 6
            await one.close()
            await two.close()

    run_async(scenario)


def test_no_answer_times_out_and_the_reversal_cancels_the_sale() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            terminal = client(server, timeout=0.3)
            await terminal.sign_in(trace=1, batch=1)
            with pytest.raises(AcquirerTimeout) as caught:
                await terminal.sale(
                    trace=2, batch=1, amount=4200, pan=card_by_name("no_answer").pan
                )
            assert caught.value.trace == 2
            reversal = await terminal.reverse(
                trace=2, batch=1, amount=4200, processing_code="000000"
            )
            assert reversal.approved
            statuses = [(entry.kind, entry.status) for entry in server.host.ledger.export()]
            assert statuses == [("sale", "reversed"), ("reversal", "approved")]
            await terminal.close()

    run_async(scenario)


def test_a_lost_answer_is_recovered_by_sending_the_same_request_again() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            terminal = client(server, timeout=0.3)
            admin = control(server)
            await terminal.sign_in(trace=1, batch=1)
            await admin.call("faults", no_answer_rate=1.0)
            with pytest.raises(AcquirerTimeout):
                await terminal.sale(trace=2, batch=1, amount=900, pan=APPROVE.pan)
            assert server.host.ledger.export()[0].status == "approved"  # charged, never heard
            await admin.call("faults", no_answer_rate=0.0)
            again = await terminal.sale(trace=2, batch=1, amount=900, pan=APPROVE.pan)
            assert again.approved
            assert len(server.host.ledger.export()) == 1  # no second charge
            await terminal.close()
            await admin.close()

    run_async(scenario)


def test_drop_every_loses_the_nth_message_before_the_host() -> None:
    async def scenario() -> None:
        async with make_server(faults=Faults(drop_every=3)) as server:
            terminal = client(server, timeout=0.3)
            await terminal.sign_in(trace=1, batch=1)
            assert (await terminal.echo(trace=2, batch=1)).approved
            with pytest.raises(AcquirerTimeout):
                await terminal.sale(trace=3, batch=1, amount=100, pan=APPROVE.pan)
            assert server.host.ledger.export() == []  # lost before the host: nothing happened
            assert (await terminal.sale(trace=3, batch=1, amount=100, pan=APPROVE.pan)).approved
            await terminal.close()

    run_async(scenario)


def test_delay_ms_delays_every_answer() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            admin = control(server)
            answer = await admin.call("faults", delay_ms=250)
            assert answer["faults"]["delay_ms"] == 250
            terminal = client(server)
            started = time.monotonic()
            await terminal.sign_in(trace=1, batch=1)
            assert time.monotonic() - started >= 0.24
            await terminal.close()
            await admin.close()

    run_async(scenario)


def test_the_client_reconnects_after_the_network_drops() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            terminal = client(server)
            admin = control(server)
            await terminal.sign_in(trace=1, batch=1)
            closed = await admin.call("disconnect")
            assert closed["closed"] == 1
            await asyncio.sleep(0.05)
            assert not terminal.connected
            assert (await terminal.echo(trace=2, batch=1)).approved
            assert terminal.reconnects == 1
            await terminal.close()
            await admin.close()

    run_async(scenario)


def test_a_qr_order_is_polled_to_success_over_the_network() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            admin = control(server)
            await admin.call("config", userpaying_ms=200)
            terminal = client(server)
            await terminal.sign_in(trace=1, batch=1)
            code = qr_code(Wallet.WECHAT, QrBehaviour.USERPAYING_SUCCESS)
            first = await terminal.qr_sale(trace=2, batch=1, amount=1500, auth_code=code)
            assert first.pending
            for _ in range(20):
                state = await terminal.query(trace=2, batch=1)
                if state.status != "pending":
                    break
                await asyncio.sleep(0.05)
            assert (state.status, state.wallet_status) == ("approved", "SUCCESS")
            totals = BatchTotals(
                by_kind={TotalsKind.WECHAT: KindTotals(sale_count=1, sale_amount=1500)}
            )
            settled = await terminal.settle(trace=3, batch=1, totals=totals)
            assert settled.approved
            exported = await admin.call("export", terminal_id="T0000001")
            assert [entry["status"] for entry in exported["entries"]] == ["settled"]
            await terminal.close()
            await admin.close()

    run_async(scenario)


def test_a_broken_frame_closes_only_that_connection() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\xff\xff" + b"junk")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 1.0) == b""
            writer.close()
            terminal = client(server)
            assert (await terminal.sign_in(trace=1, batch=1)).approved
            await terminal.close()

    run_async(scenario)


def test_garbage_inside_a_good_frame_gets_no_answer_and_the_link_lives_on() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            terminal = client(server)
            await terminal.sign_in(trace=1, batch=1)
            assert terminal._writer is not None
            terminal._writer.write(encode_frame(b"not iso 8583"))
            assert (await terminal.echo(trace=2, batch=1)).approved
            await terminal.close()

    run_async(scenario)


def test_an_unreachable_acquirer_is_reported_as_nothing_sent() -> None:
    async def scenario() -> None:
        server = make_server()
        await server.start()
        port = server.port
        await server.close()
        terminal = AcquirerClient("127.0.0.1", port, "T0000001", MID, derive_tmk("T0000001"))
        with pytest.raises(AcquirerUnreachable):
            await terminal.sign_in(trace=1, batch=1)

    run_async(scenario)


def test_control_refuses_unknown_commands() -> None:
    async def scenario() -> None:
        async with make_server() as server:
            admin = control(server)
            with pytest.raises(Exception, match="unknown op"):
                await admin.call("explode")
            assert (await admin.call("status"))["connections"] == 0
            await admin.close()

    run_async(scenario)


def test_the_ledger_file_is_in_the_state_directory(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with make_server(state=tmp_path) as server:
            terminal = client(server)
            await terminal.sign_in(trace=1, batch=1)
            await terminal.sale(trace=2, batch=1, amount=100, pan=APPROVE.pan)
            await terminal.close()

    run_async(scenario)
    assert (tmp_path / "ledger.sqlite3").stat().st_size > 0
