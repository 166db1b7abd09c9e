"""Test mode in the simulator as its own process: reported in the status and the heartbeat, and
gone after a power cut in the middle of a test transaction (the real journal never saw it)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from shouyin.link import PairingCode, Result, TransactionState
from shouyin.link.aio import LinkEndpoint
from shouyin.link.messages import AdminRequest, AdminResponse, HeartbeatRequest, HeartbeatResponse
from shouyin.link.transport import LinkAddress
from shouyin.link.values import AdminAction
from shouyin.terminal.sim import POWER_LOSS_EXIT
from tests.terminal.test_sim_process import WAIT, SimProcess, control, ecr, pay, status


async def heartbeat_test_mode(cashier: LinkEndpoint, wanted: bool | None) -> None:
    """Poll explicit heartbeats (bounded) until their health reports ``wanted`` (the simulator
    refreshes the health its link reports once a second)."""
    seen: list[bool | None] = []
    for _ in range(40):
        answer = await cashier.request(
            HeartbeatRequest(service_id=cashier.new_service_id()), timeout=WAIT
        )
        assert isinstance(answer, HeartbeatResponse) and answer.health is not None
        seen.append(answer.health.test_mode)
        if answer.health.test_mode is wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"heartbeat test_mode never became {wanted}: {seen[-3:]}")


def test_a_power_cut_during_a_test_sale_comes_back_in_normal_mode(tmp_path: Path) -> None:
    state = tmp_path / "terminal"

    async def scenario() -> None:
        code = PairingCode.generate(time.monotonic())
        args = ["--state-dir", str(state), "--listen", "tcp://127.0.0.1:0"]
        args += ["--control", "tcp://127.0.0.1:0", "--dead-after", "2"]
        async with SimProcess([*args, "--pair", code.digits], tmp_path / "1.log") as sim:
            port = (await sim.expect("listening"))["port"]
            address = (await sim.expect("control"))["address"]
            cashier = ecr(LinkAddress.parse(f"tcp://127.0.0.1:{port}"), None)
            cashier.allow_pairing(code)
            await cashier.start()
            await sim.expect("paired", timeout=30)
            await cashier.wait_ready(WAIT)
            key = cashier.connection.long_term_key
            assert (await pay(cashier, "REAL-1")).result is Result.SUCCESS

            request = AdminRequest(
                service_id=cashier.new_service_id(), action=AdminAction.TEST_MODE_START
            )
            answer = await cashier.request(request, timeout=WAIT)
            assert isinstance(answer, AdminResponse) and answer.test_mode is True
            assert (await control(address, {"cmd": "status"}))["status"]["test_mode"] is True
            await heartbeat_test_mode(cashier, True)
            test = await pay(cashier, "DIAG-1", 1)
            assert test.result is Result.SUCCESS and test.test is True

            plan = {"power_loss_at": "after_acquirer_approval"}
            assert (await control(address, {"cmd": "faults", "plan": plan}))["ok"]
            with contextlib.suppress(Exception):  # the power goes before the answer
                await pay(cashier, "DIAG-2", 1)
            assert sim.process is not None
            assert await asyncio.wait_for(sim.process.wait(), WAIT) == POWER_LOSS_EXIT
            await cashier.close()

        async with SimProcess(args, tmp_path / "2.log") as sim:
            # Nothing to recover ("recovered" is emitted only when something was closed): the
            # interrupted test sale was never in the real journal.
            assert (await sim.expect("started"))["batch"] == "000001"
            port = (await sim.expect("listening"))["port"]
            address = (await sim.expect("control"))["address"]
            cashier = ecr(LinkAddress.parse(f"tcp://127.0.0.1:{port}"), key)
            await cashier.start()
            await cashier.wait_ready(WAIT)
            assert (await control(address, {"cmd": "status"}))["status"]["test_mode"] is False
            await heartbeat_test_mode(cashier, None)
            journal = await control(address, {"cmd": "journal"})
            assert [e["ecr_ref"] for e in journal["entries"]] == ["REAL-1"]
            assert (await control(address, {"cmd": "reversals"}))["reversals"] == []
            assert await status(cashier, "DIAG-2") is None  # only ever in the test journal
            real = await pay(cashier, "REAL-2")
            assert real.result is Result.SUCCESS and real.test is None
            assert await status(cashier, "REAL-2") is TransactionState.APPROVED
            await cashier.close()

    asyncio.run(scenario())
