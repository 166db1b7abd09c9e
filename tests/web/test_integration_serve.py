"""``shouyin serve`` wiring and the serial scanner, over a real HTTP server: a code read from a
serial scanner (a pty standing for its cable) reaches the lane's cashier page through the event
stream as ``scanner.code``; ``serve`` sets up card-scrubbed info logging with the admin page's
log ring, the drawer's audit log and the demo promotions without importing the demo."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import socket
import subprocess
import sys
import tty
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from shouyin.config import Settings
from shouyin.web.app import create_app
from tests.web import CASHIER, LANE, make_runtime

WAIT = 10.0
COLA = "6901234567892"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def next_event(lines: Any, kind: str) -> dict[str, Any]:
    """Read SSE lines until an event of ``kind``; return its data (the caller bounds time)."""
    current = None
    async for line in lines:
        if line.startswith("event: "):
            current = line.removeprefix("event: ")
        elif line.startswith("data: ") and current == kind:
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError(f"the stream ended before a {kind} event")


def test_a_serial_scanners_code_reaches_the_cashier_page_as_a_scan_event(lane_url: str) -> None:
    master, slave = pty.openpty()
    for fd in (master, slave):
        tty.setraw(fd)
    settings = Settings(database_url=lane_url, lane_id=LANE, scanner_port=os.ttyname(slave))
    runtime = make_runtime(lane_url, settings=settings)
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)

    async def scenario() -> dict[str, Any]:
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(1000):  # bounded: until the server listens and the port is open
                if server.started and runtime.scanner is not None:
                    break
                await asyncio.sleep(0.01)
            assert server.started and runtime.scanner is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                signed = await client.post(
                    "/api/session", json={"username": CASHIER[0], "password": CASHIER[1]}
                )
                assert signed.status_code == 200, signed.text
                async with client.stream("GET", "/api/events", params={"lifetime": 20}) as sse:
                    lines = sse.aiter_lines()
                    await next_event(lines, "hello")  # subscribed: what follows reaches us
                    os.write(master, COLA.encode() + b"\r")
                    return await next_event(lines, "scanner.code")
        finally:
            server.should_exit = True
            await serving

    try:
        data = asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        os.close(master)
        os.close(slave)
    assert data == {"code": COLA}
    assert runtime.scanner is None  # closed with the server


SERVE = """
import json, logging, logging.config, sys
import uvicorn
from shouyin.logs import PanScrubber
from shouyin.web.admin_logs import LogRing

facts = {}

def run(app, **options):
    logging.config.dictConfig(options["log_config"])  # as uvicorn does
    access = logging.getLogger("uvicorn.access")  # a request line, as uvicorn logs it
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", "/api/lane", "1.1", 200)
    runtime = app.state.runtime
    hook = runtime.devices.get("L01")
    root = logging.getLogger()
    logging.getLogger("shouyin.check").info("card 4111111111111111 seen")
    logging.getLogger("shouyin.check").warning("card 5555555555554444 refused")
    rings = [h for h in root.handlers if isinstance(h, LogRing)]
    facts.update(
        level=logging.getLevelName(root.level),
        rings=len(rings),
        ring_lines=[line.message for line in rings[0].lines(logger_prefix="shouyin.check")],
        scrubbed=all(any(isinstance(f, PanScrubber) for f in h.filters) for h in root.handlers),
        drawer_audited=hook is not None and hook.devices.audit is not None,
        promotions=len(runtime.promotions),
        demo_imported="shouyin.demo" in sys.modules,
    )

uvicorn.run = run
from shouyin.web.cli import serve
serve(host="127.0.0.1", port=1, demo_promotions=True, log_level=sys.argv[1])
print(json.dumps(facts))
"""


def test_serve_logs_info_scrubbed_into_the_admin_ring_and_audits_the_drawer(
    tmp_path: Path,
) -> None:
    """The admin page's ring keeps info lines even when the console shows warnings only (as
    ``make demo`` runs it); both are card-scrubbed; uvicorn's request lines survive the
    scrubber."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOUYIN_")},
        "SHOUYIN_DATA_DIR": str(tmp_path),
        "SHOUYIN_LANE_ID": "L01",
        "SHOUYIN_PRINTER_URL": "tcp://127.0.0.1:9",  # never dialled: uvicorn.run is replaced
        "SHOUYIN_LANGUAGE": "en",
    }
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "warning"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["level"] == "INFO" and facts["rings"] == 1 and facts["scrubbed"]
    assert facts["ring_lines"] == ["card 411111******1111 seen", "card 555555******4444 refused"]
    assert "5555555555554444" not in done.stderr and "555555******4444" in done.stderr
    assert "411111" not in done.stderr  # the info line stays off the console
    assert "Logging error" not in done.stderr + done.stdout
    assert '127.0.0.1:50000 - "GET /api/lane HTTP/1.1" 200' in done.stdout
    assert facts["drawer_audited"] is True
    assert facts["promotions"] > 0 and facts["demo_imported"] is False
