"""The cashier page in real headless Chromium against a real server (uvicorn on loopback) with
the lane's peripherals: a serial scanner's code (a pty standing for the cable) is sold like a
keyboard-wedge scan; the virtual printer running out of paper puts up a warning that stays until
the paper is back; the no-sale key (Alt+O) asks for a supervisor and opens the drawer; the
terminal chip follows a serial terminal's link live (``terminal.state``), well before its 15 s
poll would. Skipped when Chromium is not installed."""

from __future__ import annotations

import asyncio
import os
import pty
import shutil
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from shouyin.config import Settings
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.fleet.pairing import PairingSession
from shouyin.fleet.registry import register_terminal
from shouyin.link.transport import LinkAddress, PtyCable, open_serial
from shouyin.store.engine import make_engine
from shouyin.store.migrate import upgrade
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory
from shouyin.web.app import create_app
from shouyin.web.devices import DevicesHook, hook_from_settings
from shouyin.web.runtime import LaneRuntime
from tests.fleet import init_store, make_settings
from tests.web import CASHIER, COLA, LANE, SUPERVISOR, make_runtime
from tests.web.test_integration_links import FAST, TID, poi

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")

WAIT_MS = 10_000


@dataclass
class Lane:
    url: str
    runtime: LaneRuntime
    hook: DevicesHook
    printer: VirtualPrinter
    scanner: int  # the pty master: what the scanner "sends"


def until(check: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds (bounded); return whether it does."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(check())


@pytest.fixture
def lane(tmp_path: Path, lane_url: str) -> Iterator[Lane]:
    master, slave = pty.openpty()
    for fd in (master, slave):
        tty.setraw(fd)
    with ThreadedPrinter(VirtualPrinter(None, png=False)) as printer:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=lane_url,
            lane_id=LANE,
            printer_url=f"tcp://127.0.0.1:{printer.port}",
            scanner_port=os.ttyname(slave),
        )
        runtime = make_runtime(lane_url, settings=settings)
        hook = hook_from_settings(settings, runtime.engine)
        assert hook is not None
        runtime.devices[LANE] = hook
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            assert until(lambda: server.started and runtime.scanner is not None)
            yield Lane(f"http://127.0.0.1:{port}", runtime, hook, printer, master)
        finally:
            server.should_exit = True
            thread.join(10)
            os.close(master)
            os.close(slave)


def test_scanner_printer_warning_and_no_sale_on_the_cashier_page(lane: Lane) -> None:
    errors: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(bypass_csp=True)
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(lane.url)
            page.fill("[data-testid=login-username]", CASHIER[0])
            page.fill("[data-testid=login-password]", CASHIER[1])
            page.keyboard.press("Enter")
            page.click("[data-testid=shift-open]")
            page.wait_for_selector("#sale-view:not([hidden])")
            assert until(lambda: lane.runtime.bus.subscribers >= 1)  # the page listens

            # A serial scanner's code is sold like a keyboard-wedge scan.
            os.write(lane.scanner, COLA.barcodes[0].encode() + b"\r")
            page.wait_for_selector("[data-testid=line-1]")
            assert COLA.name in page.inner_text("[data-testid=line-1]")

            # Paper out: a warning that stays until the paper is back.
            warning = page.locator("[data-testid=printer-warning]")
            assert warning.is_hidden()
            lane.printer.set_state(paper="out")
            lane.hook.refresh_printer_status()  # what the runtime does every 30 s
            warning.wait_for(state="visible")
            assert "缺纸" in warning.inner_text()
            page.keyboard.press("Escape")  # other messages come and go; this one stays
            assert warning.is_visible()
            lane.printer.set_state(paper="ok")
            lane.hook.refresh_printer_status()
            warning.wait_for(state="hidden")

            # No-sale: Alt+O asks for a supervisor; a wrong password opens nothing and the
            # cashier stays signed in; the right one opens the drawer.
            page.keyboard.press("Alt+O")
            page.wait_for_selector("[data-testid=approval-dialog][open]")
            page.fill("[data-testid=approval-username]", SUPERVISOR[0])
            page.fill("[data-testid=approval-password]", "not-the-password")
            page.fill("[data-testid=approval-reason]", "换零钱")
            page.keyboard.press("Enter")
            page.wait_for_function(
                "document.querySelector('[data-testid=message]').dataset.code"
                " === 'invalid_credentials'"
            )
            assert page.locator("#sale-view").is_visible()
            assert lane.printer.drawer_kicks == []
            page.keyboard.press("Alt+O")
            page.wait_for_selector("[data-testid=approval-dialog][open]")
            page.fill("[data-testid=approval-username]", SUPERVISOR[0])
            page.fill("[data-testid=approval-password]", SUPERVISOR[1])
            page.fill("[data-testid=approval-reason]", "换零钱")
            page.keyboard.press("Enter")
            page.wait_for_function(
                "document.querySelector('[data-testid=message]').textContent.includes('钱箱已打开')"
            )
            assert lane.printer.wait_for_kicks(1)
        finally:
            browser.close()
    assert errors == []


# -- the terminal chip follows the link ---------------------------------------------------------
async def serial_terminal(
    settings: Settings,
    engine: Engine,
    paths: Future[str],
    leave: threading.Event,
    release: threading.Event,
) -> None:
    """A terminal on a pty cable: registered and paired over the cable, then connected (its
    link's real POI endpoint) until ``leave`` is set; the cable stays until ``release``.
    ``paths`` gets the lane's end of the cable."""
    async with PtyCable() as cable:
        registry = SqlTerminalUnitOfWork(make_session_factory(engine))
        register_terminal(
            registry,
            TID,
            lane_id=LANE,
            now=datetime.now(UTC),
            link_url=f"serial://{cable.paths[0]}?baud=115200",
        )
        address = LinkAddress.parse(f"serial://{cable.paths[1]}?baud=115200")
        async with PairingSession(settings, TID, config=FAST) as session:
            waiting = asyncio.create_task(session.wait(10))
            pairing = poi(address)
            pairing.attach(await open_serial(address))
            paired = await pairing.pair(session.invitation.code.digits, timeout=10)
            await waiting
            await pairing.close()
        terminal = poi(address, paired.key)
        terminal.attach(await open_serial(address))
        paths.set_result(cable.paths[0])
        try:
            for _ in range(3000):  # bounded: at most a minute
                if leave.is_set():
                    break
                await asyncio.sleep(0.02)
        finally:
            await terminal.close()
        for _ in range(3000):  # keep the cable until the test is done with the lane
            if release.is_set():
                break
            await asyncio.sleep(0.02)


def test_the_terminal_chip_follows_the_link_without_waiting_for_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    settings = make_settings(tmp_path)
    init_store(settings)
    url = settings.resolved_database_url()
    engine = make_engine(url)
    upgrade(engine)
    paths: Future[str] = Future()
    leave, release = threading.Event(), threading.Event()
    terminal = serial_terminal(settings, engine, paths, leave, release)
    terminal_thread = threading.Thread(target=asyncio.run, args=(terminal,), daemon=True)
    terminal_thread.start()
    paths.result(timeout=20)
    runtime = make_runtime(url, settings=settings, terminals=None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    server_thread = threading.Thread(target=server.run, daemon=True)
    server_thread.start()
    errors: list[str] = []
    try:
        assert until(lambda: server.started)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(bypass_csp=True)
                page.set_default_timeout(WAIT_MS)
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"http://127.0.0.1:{port}")
                page.fill("[data-testid=login-username]", CASHIER[0])
                page.fill("[data-testid=login-password]", CASHIER[1])
                page.keyboard.press("Enter")
                page.click("[data-testid=shift-open]")
                page.wait_for_selector("#sale-view:not([hidden])")
                page.wait_for_selector("[data-testid=terminal-status][data-state=ready]")
                assert until(lambda: runtime.bus.subscribers >= 1)
                started = time.monotonic()
                leave.set()  # the terminal goes away
                page.wait_for_selector("[data-testid=terminal-status][data-state=offline]")
                assert time.monotonic() - started < 15  # the event, not the 15 s poll
            finally:
                browser.close()
    finally:
        leave.set()
        release.set()
        server.should_exit = True
        server_thread.join(10)
        terminal_thread.join(10)
        engine.dispose()
    assert errors == []
