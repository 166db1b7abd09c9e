"""``make demo`` works: ``python -m shouyin.demo`` as a real process, non-interactively.

The check run starts everything the demo starts (acquirer simulator, a TLS terminal and a pty
serial terminal as their own processes, paired with one-time codes, two lane servers, virtual
printers), pays by card through the API on both lanes, verifies the terminals' own journals,
and stops: exit status 0, no child left running, no full card number anywhere in the demo's
files. A second demo on the same directory is refused while the first runs; Ctrl-C stops the
first cleanly; a child that dies is named with its log.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shouyin.acquirer.testcards import TEST_CARDS
from shouyin.demo import until_stopped
from shouyin.demo_procs import Supervisor

from .browser_helpers import DemoRun, alive

pytestmark = pytest.mark.slow

CHECK_LIMIT = 110.0
"""Seconds the whole check run may take (about 20 on a busy 2-core machine)."""


def finish(run: DemoRun, timeout: float) -> int:
    """Wait for the demo to exit by itself (bounded); its status."""
    assert run.process is not None
    try:
        return run.process.wait(timeout)
    except Exception:
        run.kill()
        raise


def test_check_mode_pays_by_card_on_both_lanes_then_stops_everything(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    run = DemoRun(directory, "--language", "en", env={"SHOUYIN_DEMO_NONINTERACTIVE": "1"})
    run.start()
    status = finish(run, CHECK_LIMIT)
    output = run.text()
    state = run.wait_ready(1)  # written before the check ran
    assert status == 0, output
    assert re.search(r"✓ L01 · 10000001 \(tls\): .* · 622848\*+0018 · rrn \d{12}", output), output
    assert re.search(r"✓ L02 · 10000002 \(serial\): .* · 622848\*+0018", output), output
    assert "Check passed" in output
    assert output.count("job-0001.txt") == 2  # each lane's virtual printer printed its receipt
    assert "Everything stopped." in output
    assert set(state["children"]) >= {
        "acquirer",
        "terminal-10000001",
        "terminal-10000002",
        "server-L01",
        "server-L02",
    }
    assert run.leftovers() == {}
    for name in ("admin", "zhang", "li"):  # the accounts are printed with their passwords
        assert name in output and state["users"][name]["password"] in output
    # The card-data canary's case for the demo: after card payments on both lanes, no
    # database, log, terminal journal or receipt holds a full test card number.
    pans = [card.pan.encode() for card in TEST_CARDS]
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)
    for path in [*files, run.output]:
        data = path.read_bytes()
        for pan in pans:
            assert pan not in data, f"a full card number in {path}"


def test_a_second_demo_on_the_directory_is_refused_and_ctrl_c_stops_the_first(
    tmp_path: Path,
) -> None:
    """Ctrl-C comes while the first demo is starting or just started (the second demo's own
    start-up takes a few seconds): either way every child stops and the status is 0."""
    directory = tmp_path / "demo"
    run = DemoRun(directory).start()
    assert run.process is not None
    acquirer_log = directory / "logs" / "acquirer.log"
    deadline = time.monotonic() + 30
    while not (acquirer_log.exists() and acquirer_log.stat().st_size):
        assert run.process.poll() is None, run.text()
        assert time.monotonic() < deadline, run.text()
        time.sleep(0.05)
    # A second demo on the same directory refuses to empty it under the running one.
    second = subprocess.run(
        [sys.executable, "-m", "shouyin.demo", "--dir", str(directory), "--language", "en"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1, second.stdout + second.stderr
    assert "A demo is already running" in second.stdout
    assert run.process.poll() is None, run.text()
    status = run.interrupt()
    assert status == 0, run.text()
    assert "Everything stopped" in run.text() or "已全部停止" in run.text()
    # No child of the demo is left: none is a process whose parent is gone.
    assert not [p for p in _demo_children(directory) if alive(p)]


def _demo_children(directory: Path) -> list[int]:
    """Process ids of live processes running with the demo directory on their command line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(directory).encode() in cmdline and b"shouyin.cli" in cmdline:
            found.append(int(proc.name))
    return found


def test_a_child_that_dies_is_named_with_its_log(tmp_path: Path) -> None:
    async def scenario() -> None:
        children = Supervisor(tmp_path, {})
        acquirer = children.start(
            "acquirer", "acquirer", "sim", "--port", "0", "--state-dir", str(tmp_path / "a")
        )
        await acquirer.expect(re.compile(r"port=\d+"), 30)
        stop = asyncio.Event()
        watching = asyncio.create_task(until_stopped(children, stop))
        await asyncio.sleep(0.3)
        assert not watching.done()  # nothing died, nobody pressed Ctrl-C
        acquirer.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        died = await asyncio.wait_for(watching, 10)
        assert died is not None
        assert died.name == "acquirer"
        assert died.status == -signal.SIGKILL
        assert died.log == tmp_path / "acquirer.log"
        assert "acquirer sim listening" in died.log.read_text()
        assert await children.stop_all() == [("acquirer", -signal.SIGKILL)]

    asyncio.run(asyncio.wait_for(scenario(), 60))
