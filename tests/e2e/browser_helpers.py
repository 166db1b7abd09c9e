"""Helpers of the demo and browser tests: ``python -m shouyin.demo`` as a real process, the
simulated terminals' control channel, headless Chromium, screenshots.

:class:`DemoRun` starts the whole demo (acquirer, two terminals, two lane servers) exactly as
``make demo`` does, in a temporary directory with free ports, waits until it wrote
``demo.json``, and stops it with SIGINT (what Ctrl-C sends). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = [
    "CHROMIUM",
    "SCREENSHOTS",
    "DemoRun",
    "alive",
    "chromium_or_skip",
    "terminal_control",
]

CHROMIUM: Final = Path(os.environ.get("SHOUYIN_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
READY_TIMEOUT: Final = 75.0
"""Seconds the demo may take to start everything (about 15 on a busy 2-core machine)."""
STOP_TIMEOUT: Final = 40.0
_POLL: Final = 0.1


def chromium_or_skip() -> Path:
    """Debian's Chromium for Playwright, or skip the module with the reason."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM} (apt install chromium; .ci/run does)",
            allow_module_level=True,
        )
    return CHROMIUM


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (and is not a zombie of ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().split(") ", 1)[1][:1] != "Z"
    return True


class DemoRun:
    """``python -m shouyin.demo`` in its own process, its output in ``<directory>.out``.

    Args:
        directory: the demo directory (created by the demo).
        args: extra command-line arguments.
        env: extra environment variables (the caller's ``SHOUYIN_*`` are not passed on).
    """

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.extra_env = dict(env or {})
        self.output = directory.with_suffix(".out")
        self.args = ["--dir", str(directory), "--web-port", "0", "--link-port", "0", *args]
        self.process: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}

    def start(self) -> DemoRun:
        """Start the demo (stdin is not a terminal, exactly as under ``make`` in CI)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUYIN_")}
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shouyin.demo", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**env, **self.extra_env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
            )
        return self

    def text(self) -> str:
        """Everything the demo printed so far."""
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Wait until the demo wrote ``demo.json``; its content.

        Raises:
            AssertionError: the demo exited first, or took longer than ``timeout``.
        """
        assert self.process is not None, "start() first"
        path = self.directory / "demo.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited ({self.process.returncode}):\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the demo was not ready in {timeout} s:\n{self.text()}")
            time.sleep(_POLL)
        self.state = json.loads(path.read_text(encoding="utf-8"))
        return self.state

    def interrupt(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGINT (Ctrl-C) and wait for the exit status; kills it if it hangs."""
        assert self.process is not None, "start() first"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the demo did not stop within {timeout} s:\n{self.text()}"
            ) from None

    def kill(self) -> None:
        """Last resort (a failed test): kill the demo and every child it reported, by pid."""
        pids = [*self.state.get("children", {}).values()]
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    def leftovers(self) -> dict[str, int]:
        """The demo's children (from ``demo.json``) still running."""
        return {n: p for n, p in self.state.get("children", {}).items() if alive(int(p))}


def terminal_control(address: str, command: dict[str, Any], timeout: float = 10.0) -> Any:
    """One command on a simulated terminal's control channel (``tcp://127.0.0.1:PORT``).

    Raises:
        AssertionError: the terminal refused the command.
    """
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(json.dumps(command).encode() + b"\n")
        reply = connection.makefile("rb").readline()
    answer = json.loads(reply)
    assert answer.get("ok"), answer
    return answer
