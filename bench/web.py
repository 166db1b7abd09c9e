"""The cashier page: scan-to-line in a real browser, and the API scan round trip alone.

The whole demo runs (:class:`~shouyin.demo_system.DemoSystem`: lane servers as their own
processes, simulated terminals, SQLite lane database); the cashier page is opened in headless
Chromium (Playwright, Debian's ``/usr/bin/chromium``) and signed in. Each scan types a barcode
into the focused barcode field and presses Enter, as a scanner does. In the page, a capturing
``keydown`` listener notes ``performance.now()`` at the Enter, and a ``MutationObserver`` on the
sale's lines notes when the new line is in the DOM; the figure is the difference, and "painted"
adds the wait for the next animation frame (the line on screen). Target: p50 and p99 under 50 ms.

For comparison, the same scans through the API alone (``POST /api/sales/{id}/scan`` over
loopback HTTP with a bearer token, one at a time; on lane L01, the browser on lane L02). Scans
use distinct products (each makes a new line, never a quantity bump), and a fresh sale is
started every :data:`LINES_PER_SALE` scans so that the basket stays a realistic size (the first
scan of each sale also creates the sale: two round trips, as at a real lane). The first
:data:`WARM_UP` scans are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Final

import httpx

from bench.common import Figure, percentile
from shouyin.demo_procs import free_port
from shouyin.demo_store import DEMO_USERS, reset_directory
from shouyin.demo_system import LANES, DemoPorts, DemoSystem
from shouyin.domain.demo_catalogue import demo_products
from shouyin.domain.users import Role

SECTION: Final = "web"
SCANS: Final = 200
WARM_UP: Final = 10
LINES_PER_SALE: Final = 20
TARGET_MS: Final = 50.0
CHROMIUM: Final = "/usr/bin/chromium"
MS: Final = 1000.0

logger = logging.getLogger(__name__)

# Installed in the page before each scan: resolves with (to DOM, to next frame) in ms.
_MEASURE_JS: Final = """
([field, lines, expected]) => new Promise((resolve, reject) => {
  const list = document.querySelector(lines);
  const input = document.querySelector(field);
  let t0 = null;
  const onKey = (e) => { if (e.key === 'Enter') t0 = performance.now(); };
  input.addEventListener('keydown', onKey, true);
  const done = () => {
    const dom = performance.now() - t0;
    observer.disconnect();
    input.removeEventListener('keydown', onKey, true);
    requestAnimationFrame(() => resolve([dom, performance.now() - t0]));
  };
  const observer = new MutationObserver(() => {
    if (t0 !== null && list.querySelectorAll('tr').length >= expected) done();
  });
  observer.observe(list, {childList: true, subtree: true});
  setTimeout(() => { observer.disconnect(); reject(new Error('no line within 10 s')); }, 10000);
})
"""


def _codes(count: int) -> list[str]:
    """``count`` distinct barcodes of piece goods from the demo catalogue."""
    codes = [p.barcodes[0] for p in demo_products(400) if p.barcodes and not p.weighed]
    if len(codes) < count:
        raise ValueError(f"the demo catalogue has only {len(codes)} piece goods")
    return codes[:count]


def _cashier() -> tuple[str, str]:
    user = next(u for u in DEMO_USERS if u.role is Role.CASHIER)
    return user.username, user.password


async def _api_scans(base_url: str, codes: list[str]) -> list[float]:
    """Seconds per ``POST .../scan`` round trip, one at a time, new sale every few lines."""
    username, password = _cashier()
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        login = await client.post("/api/session", json={"username": username, "password": password})
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"
        lane = (await client.get("/api/lane")).json()
        if lane["shift"] is None:
            (await client.post("/api/shift", json={"opening_float_fen": 50_000})).raise_for_status()
        sale_id = ""
        for index, code in enumerate(codes):
            if index % LINES_PER_SALE == 0:
                if sale_id:
                    (await client.post(f"/api/sales/{sale_id}/hold")).raise_for_status()
                sale_id = (await client.post("/api/sales")).json()["sale_id"]
            start = time.perf_counter()
            response = await client.post(f"/api/sales/{sale_id}/scan", json={"code": code})
            samples.append(time.perf_counter() - start)
            response.raise_for_status()
        await client.delete("/api/session")
    return samples


async def _browser_scans(base_url: str, codes: list[str]) -> list[tuple[float, float]]:
    """(to DOM, to next frame) in ms per scan typed into the cashier page."""
    from playwright.async_api import async_playwright

    username, password = _cashier()
    samples: list[tuple[float, float]] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = await browser.new_page(bypass_csp=True)
            await page.goto(f"{base_url}/")
            await page.get_by_test_id("login-username").fill(username)
            await page.get_by_test_id("login-password").fill(password)
            await page.get_by_test_id("login-submit").click()
            await _open_shift_if_asked(page)
            field = page.get_by_test_id("scan-input")
            await field.wait_for(state="visible", timeout=15_000)
            for index, code in enumerate(codes):
                if index % LINES_PER_SALE == 0 and index:
                    await page.keyboard.press("F4")  # hold: a fresh sale for the next lines
                    await page.locator("#lines-body tr").first.wait_for(
                        state="detached", timeout=10_000
                    )
                expected = index % LINES_PER_SALE + 1
                measuring = page.evaluate(_MEASURE_JS, ["#scan", "#lines-body", expected])
                task = asyncio.ensure_future(measuring)
                await field.fill(code)
                await field.press("Enter")
                dom, painted = await task
                samples.append((float(dom), float(painted)))
        finally:
            await browser.close()
    return samples


async def _open_shift_if_asked(page: Any) -> None:
    """Open the shift when the page asks for one (a fresh lane)."""
    shift = page.get_by_test_id("shift-float")
    scan = page.get_by_test_id("scan-input")
    await shift.or_(scan).first.wait_for(state="visible", timeout=15_000)
    if await shift.is_visible():
        await shift.fill("500")
        await page.get_by_test_id("shift-open").click()


def _figures(name: str, samples_ms: list[float], target: bool) -> list[Figure]:
    figures = []
    for pct in (50, 99):
        value = percentile(samples_ms, pct)
        figures.append(
            Figure(
                SECTION,
                f"{name} p{pct}",
                value,
                "ms",
                f"< {TARGET_MS:.0f}" if target else "",
                value < TARGET_MS if target else None,
            )
        )
    return figures


async def _run(workdir: Path, scans: int) -> list[Figure]:
    root = workdir / "demo"
    reset_directory(root)
    ports = DemoPorts(web=tuple(free_port() for _ in LANES), link=free_port())
    system = DemoSystem(root, ports)
    codes = _codes(WARM_UP + scans)
    try:
        await system.start()
        url = system.servers[0].url
        api = await _api_scans(url, codes)
        browser = await _browser_scans(system.servers[1].url, codes)
    finally:
        await system.stop()
    api_ms = [s * MS for s in api[WARM_UP:]]
    dom_ms = [d for d, _ in browser[WARM_UP:]]
    painted_ms = [p for _, p in browser[WARM_UP:]]
    return [
        *_figures("browser scan → line in DOM", dom_ms, target=True),
        *_figures("browser scan → line painted", painted_ms, target=True),
        *_figures("API scan round trip", api_ms, target=False),
        Figure(SECTION, "scans measured", float(len(dom_ms)), "scans"),
    ]


def run(workdir: Path, args: argparse.Namespace) -> list[Figure]:
    """Start the demo, time scans in the browser and through the API; the figures."""
    scans = int(getattr(args, "web_scans", SCANS))
    return asyncio.run(_run(workdir, scans))
