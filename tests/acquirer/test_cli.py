"""``python -m shouyin.acquirer sim`` as a real process: it serves, takes faults from its flags,
stops on SIGTERM and keeps its ledger."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from shouyin.acquirer import AcquirerClient, AcquirerControl, Ledger, card_by_name, derive_tmk
from shouyin.acquirer.cli import acquirer_app

from . import MID, TID, run_async


def test_sim_serves_as_a_process_and_keeps_its_ledger(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "shouyin.acquirer", "sim", "--port", "0", "--control-port", "0",
            "--state-dir", str(tmp_path), "--delay-ms", "10", "--userpaying-ms", "100",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        found = re.search(r"port=(\d+) control_port=(\d+)", ready)
        assert found, ready
        port, control_port = int(found.group(1)), int(found.group(2))

        async def scenario() -> None:
            terminal = AcquirerClient("127.0.0.1", port, TID, MID, derive_tmk(TID), timeout=3)
            await terminal.sign_in(trace=1, batch=1)
            answer = await terminal.sale(
                trace=2, batch=1, amount=1234, pan=card_by_name("approve").pan
            )
            assert answer.approved
            await terminal.close()
            admin = AcquirerControl("127.0.0.1", control_port)
            status = await admin.call("status")
            assert status["faults"]["delay_ms"] == 10
            assert status["config"]["userpaying_ms"] == 100
            await admin.close()

        run_async(scenario)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors
    assert card_by_name("approve").pan not in errors
    ledger = Ledger.in_state_dir(tmp_path)
    [entry] = ledger.export()
    assert (entry.amount, entry.status, entry.masked_pan) == (
        1234,
        "approved",
        "622848*********0018",
    )
    ledger.close()


def test_sim_refuses_bad_fault_values() -> None:
    result = CliRunner().invoke(acquirer_app, ["sim", "--no-answer-rate", "2"])
    assert result.exit_code != 0
    assert "no_answer_rate" in result.output


def test_sim_refuses_a_bad_master_key() -> None:
    result = CliRunner().invoke(acquirer_app, ["sim", "--master-key", "abc"])
    assert result.exit_code != 0
