"""The admin page in real headless Chromium against a real server (uvicorn on loopback): sign
in, pair a terminal from the pairing dialog (the terminal side pairs over real TLS with the code
the dialog shows), read the sales-by-hour chart drawn from known sales, switch to English, and
move between sections with the keyboard. Skipped when Chromium is not installed."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import insert

from shouyin.config import Settings
from shouyin.lane.services import STORE_TZ
from shouyin.link.keystore import KeyStore
from shouyin.link.pairing_qr import PairingPayload
from shouyin.store.tables import SaleRow, table
from shouyin.web.app import create_app
from shouyin.web.runtime import LaneRuntime
from tests.fleet import TERMINAL_ID, init_store, make_settings

from .test_admin_pairing import terminal_pairs
from .test_admin_support import HASHER, PASSWORDS, create_staff

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")

WAIT_MS = 10_000
CODE_JS = "document.querySelector('[data-testid=pairing-code]')"
QR_JS = "document.querySelector('[data-testid=pairing-qr]')"


@dataclass
class Server:
    url: str
    runtime: LaneRuntime
    settings: Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = make_settings(tmp_path)
    init_store(settings)
    create_staff(settings)
    runtime = LaneRuntime(settings, hasher=HASHER, terminals={})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not app_server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app_server.started, "the web server did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", runtime, settings)
    finally:
        app_server.should_exit = True
        thread.join(10)


def add_completed_sale(runtime: LaneRuntime, number: int, completed: datetime, fen: int) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            insert(table(SaleRow)).values(
                sale_id=f"page{number}",
                receipt_no=f"L01-9{number:05d}",
                lane_id="L01",
                shift_id="x",
                cashier_id="x",
                opened_at=completed - timedelta(minutes=2),
                state="completed",
                promotions="[]",
                total_due=fen,
                completed_at=completed,
            )
        )


def test_admin_page_pairs_a_terminal_and_draws_sales_by_hour(
    server: Server, tmp_path: Path
) -> None:
    today = datetime.now(UTC).astimezone(STORE_TZ).date()
    nine = datetime(today.year, today.month, today.day, 9, 30, tzinfo=STORE_TZ)
    add_completed_sale(server.runtime, 1, nine, 1250)
    add_completed_sale(server.runtime, 2, nine + timedelta(hours=5), 5000)
    errors: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(bypass_csp=True)
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.url}/admin")
            page.fill("[data-testid=login-username]", "boss")
            page.fill("[data-testid=login-password]", PASSWORDS["boss"])
            page.keyboard.press("Enter")
            page.wait_for_selector("[data-testid=section-fleet]:not([hidden])")

            # Register and pair a terminal from the page.
            page.fill("#terminal-form [name=terminal_id]", TERMINAL_ID)
            page.fill("#terminal-form [name=lane_id]", "L01")
            page.keyboard.press("Enter")
            page.click(f"[data-testid=pair-{TERMINAL_ID}]")
            code = page.locator("[data-testid=pairing-code]")
            page.wait_for_function(
                "document.querySelector('[data-testid=pairing-code]').textContent.length === 8"
            )
            page.wait_for_function(
                "document.querySelector('[data-testid=pairing-qr]').naturalWidth > 0"
            )
            payload = PairingPayload(
                address="127.0.0.1",
                port=server.settings.link_port,
                code=code.text_content() or "",
                fingerprint=KeyStore(server.settings.keys_dir).ca_fingerprint(),
            )
            # Playwright's sync API owns this thread's event loop: the terminal runs in another.
            with ThreadPoolExecutor(1) as pool:
                pool.submit(
                    asyncio.run, terminal_pairs(payload.to_text(), tmp_path / "poi", TERMINAL_ID)
                ).result(timeout=WAIT_MS / 1000)
            page.wait_for_selector("[data-testid=pairing-status].ok")
            assert page.text_content("[data-testid=pairing-status]") == "配对成功"
            page.screenshot(path=str(tmp_path / "admin-pairing.png"))
            page.keyboard.press("Escape")
            page.wait_for_selector("[data-testid=terminals-table] .pill.paired")

            # Sales by hour: Alt+6, two bars, amounts from integer fen.
            page.keyboard.press("Alt+6")
            page.wait_for_selector("[data-testid=hourly-svg]")
            bars = page.eval_on_selector_all(
                "[data-testid=hourly-svg] rect.bar",
                "rects => rects.map(r => [Number(r.dataset.hour), Number(r.dataset.fen),"
                " Number(r.getAttribute('height')), r.querySelector('title').textContent])",
            )
            assert len(bars) == 24
            drawn = {hour: (fen, title) for hour, fen, height, title in bars if height > 0}
            assert set(drawn) == {9, 14}
            assert drawn[9][0] == 1250 and "￥12.50" in drawn[9][1]
            assert drawn[14][0] == 5000 and "￥50.00" in drawn[14][1]
            assert "￥62.50" in (page.text_content("[data-testid=hourly-summary]") or "")

            # English, and keyboard navigation between sections.
            page.click("[data-testid=admin-lang]")
            assert page.text_content("[role=tab][data-section=hourly]") == "Sales by hour"
            page.keyboard.press("Alt+8")
            page.wait_for_selector("[data-testid=section-logs]:not([hidden])")
            page.screenshot(path=str(tmp_path / "admin-logs.png"))
        finally:
            browser.close()
    assert errors == []
