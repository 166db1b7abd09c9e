"""``make demo``: the whole system on one machine, with simulated hardware.

Creates a fresh demo store in ``demo-data/`` (catalogue, staff accounts with printed demo
passwords, store CA), starts the acquirer simulator, a virtual receipt printer per lane and two
simulated payment terminals as their own processes (one on a pty serial cable, one over TLS to
the link port), pairs the terminals with one-time codes as an admin would, starts a server per
lane (``shouyin serve``: lane L01 with the TLS terminal, lane L02 with the serial one), prints
the URLs, the accounts and what to try, and runs until Ctrl-C (or SIGTERM), which stops every
child in order and exits with status 0. See :mod:`shouyin.demo_system` for the order.

Every child's output goes to ``demo-data/logs/<name>.log``. If a child dies, the demo says which
and where its log is, stops the others and exits with status 1.

``--check`` (or ``SHOUYIN_DEMO_NONINTERACTIVE=1``) starts everything, pays by card through the
API on each lane end to end (:mod:`shouyin.demo_check`), prints the result and stops: what
``tests/e2e/test_demo.py`` runs. Once everything is up, ``demo-data/demo.json`` says where
everything is (URLs, control channels, child process ids: for tests and scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

import shouyin.demo_messages  # noqa: F401 - registers the demo's messages (once)
from shouyin.demo_check import CheckFailed, verify
from shouyin.demo_procs import ChildDied, Supervisor, free_port
from shouyin.demo_store import CARD_AMOUNTS, DEMO_PROMOTIONS, DEMO_USERS, reset_directory
from shouyin.demo_system import LANES, DemoPorts, DemoSystem
from shouyin.i18n import t
from shouyin.logs import configure_logging

__all__ = ["DEMO_PROMOTIONS", "DemoOptions", "main", "run", "until_stopped"]

logger = logging.getLogger(__name__)

DEMO_DIR: Final = Path("demo-data")
NONINTERACTIVE_ENV: Final = "SHOUYIN_DEMO_NONINTERACTIVE"
EXIT_FAILED: Final = 1
PID_FILE: Final = "demo.pid"
_WATCH: Final = 0.25  # seconds between looks at the children while the demo runs


class DemoOptions(argparse.Namespace):
    """The demo's command line (see :func:`parse_args`)."""

    directory: Path = DEMO_DIR
    web_port: int = 0
    link_port: int = 0
    check: bool = False
    language: str = ""


def parse_args(argv: list[str] | None = None) -> DemoOptions:
    """Parse the command line; ``SHOUYIN_DEMO_NONINTERACTIVE=1`` means ``--check``."""
    parser = argparse.ArgumentParser(prog="python -m shouyin.demo", description=__doc__)
    parser.add_argument("--dir", dest="directory", type=Path, default=DEMO_DIR)
    parser.add_argument(
        "--web-port", type=int, default=8080, help="first lane's web port (next lanes: +1...)"
    )
    parser.add_argument("--link-port", type=int, default=8583, help="0: any free port")
    parser.add_argument("--check", action="store_true", help="verify, print the result, stop")
    parser.add_argument("--language", choices=("zh", "en"), default=None)
    options = parser.parse_args(argv, namespace=DemoOptions())
    options.check = options.check or os.environ.get(NONINTERACTIVE_ENV) == "1"
    if not options.language:
        options.language = "en" if os.environ.get("SHOUYIN_LANGUAGE", "")[:2] == "en" else "zh"
    return options


def _port(wanted: int) -> int:
    """``wanted`` if it is free on 127.0.0.1, else any free port (0: any)."""
    if wanted:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", wanted))
                return wanted
            except OSError:
                pass
    return free_port()


# -- what the person at the keyboard sees ---------------------------------------------------------


def print_banner(console: Console, system: DemoSystem, lang: str) -> None:
    """The URLs, the accounts, the terminals and what to try."""
    from shouyin.acquirer.codes import Wallet
    from shouyin.acquirer.testcards import QrBehaviour, qr_code

    console.rule(t("demo.ready", lang))
    for server in system.servers:
        console.print(t("demo.url.lane", lang, lane=server.lane_id, url=f"{server.url}/"))
    console.print(t("demo.url.admin", lang, url=f"{system.web_url}/admin"))
    accounts = Table(
        t("demo.col.user", lang), t("demo.col.role", lang), t("demo.col.password", lang)
    )
    for user in DEMO_USERS:
        accounts.add_row(f"{user.username} ({user.display_name})", user.role.value, user.password)
    console.print(accounts)
    terminals = Table(
        t("demo.col.terminal", lang),
        t("demo.col.lane", lang),
        t("demo.col.link", lang),
        t("demo.col.log", lang),
    )
    for running in system.terminals:
        terminals.add_row(
            f"{running.spec.terminal_id} {running.spec.name}",
            running.spec.lane_id,
            running.spec.transport,
            str(running.child.log),
        )
    console.print(terminals)
    summary = system.summary
    samples = "  ".join(summary.samples) if summary else ""
    amounts = {name: f"{fen / 100:.2f}" for name, fen in CARD_AMOUNTS.items()}
    console.print(
        t(
            "demo.try",
            lang,
            samples=samples,
            decline=amounts["decline"],
            insufficient=amounts["insufficient"],
            wrong_pin=amounts["wrong_pin"],
            no_answer=amounts["no_answer"],
            wechat=qr_code(Wallet.WECHAT),
            alipay_wait=qr_code(Wallet.ALIPAY, QrBehaviour.USERPAYING_SUCCESS),
            poor=qr_code(Wallet.WECHAT, QrBehaviour.INSUFFICIENT_BALANCE),
            supervisor=DEMO_USERS[1].username,
            supervisor_password=DEMO_USERS[1].password,
        ),
        highlight=False,
    )
    if system.printers:
        console.print(t("demo.receipts", lang, path=system.root / "receipts"), highlight=False)
    console.print(t("demo.logs", lang, path=system.root / "logs"), highlight=False)
    console.rule(t("demo.stop_hint", lang))


def write_state(system: DemoSystem) -> Path:
    """``demo.json`` in the demo directory: where everything is (tests, scripts)."""
    state = {
        "web_url": system.web_url,
        "link_port": system.ports.link,
        "lanes": {
            server.lane_id: {
                "url": server.url,
                "terminal": next(
                    r.spec.terminal_id for r in system.terminals if r.spec.lane_id == server.lane_id
                ),
                "log": str(server.child.log),
            }
            for server in system.servers
        },
        "terminals": {
            r.spec.terminal_id: {
                "transport": r.spec.transport,
                "lane": r.spec.lane_id,
                "control": r.control,
                "state_dir": str(r.state_dir),
                "log": str(r.child.log),
            }
            for r in system.terminals
        },
        "acquirer_control_port": system.acquirer_control,
        "printers": {
            lane: {"control_port": port, "receipts": str(system.receipts_dir(lane))}
            for lane, port in system.printers.items()
        },
        "users": {u.username: {"role": u.role.value, "password": u.password} for u in DEMO_USERS},
        "samples": list(system.summary.samples) if system.summary else [],
        "pid": os.getpid(),
        "children": {c.name: c.pid for c in system.supervisor.children},
    }
    path = system.root / "demo.json"
    path.write_text(json.dumps(state, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


# -- running ---------------------------------------------------------------------------------------


def _running_demo(root: Path) -> int | None:
    """The process id of a demo still running in ``root`` (from its ``demo.pid``), if any."""
    try:
        pid = int((root / PID_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, someone else's
        return pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    with contextlib.suppress(OSError):  # a recycled process id is not a demo
        if b"shouyin.demo" not in cmdline.read_bytes():
            return None
    return pid


async def until_stopped(children: Supervisor, stop: asyncio.Event) -> ChildDied | None:
    """Wait for Ctrl-C/SIGTERM (``stop``) or a child's death, whichever comes first.

    Returns:
        The death, or ``None`` when ``stop`` was set.
    """
    while not stop.is_set():
        dead = children.dead()
        if dead is not None:
            return ChildDied(dead.name, dead.status() or 0, dead.log)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _WATCH)
    return None


async def run(options: DemoOptions, console: Console) -> int:
    """Build, start, show (or check), and stop the demo; the exit status."""
    lang = options.language
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    root = options.directory.resolve()
    running = _running_demo(root)
    if running is not None:  # emptying its directory would pull everything from under it
        console.print(t("demo.already_running", lang, pid=running, path=root), highlight=False)
        return EXIT_FAILED
    reset_directory(root)
    (root / PID_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")
    web = tuple(_port(options.web_port + i if options.web_port else 0) for i in range(len(LANES)))
    ports = DemoPorts(web=web, link=_port(options.link_port))
    system = DemoSystem(root, ports, language=lang)
    status = 0
    try:
        console.print(t("demo.starting", lang, path=root), highlight=False)
        starting = asyncio.create_task(system.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # Ctrl-C while starting
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            return 0
        stopped.cancel()
        starting.result()
        write_state(system)
        print_banner(console, system, lang)
        if options.check:
            lines = await verify(system)
            for line in lines:
                console.print(line, highlight=False)
            console.print(t("demo.check_ok", lang), highlight=False)
            return 0
        died = await until_stopped(system.supervisor, stop)
        if died is not None:
            console.print(t("demo.child_died", lang, name=died.name, log=died.log), highlight=False)
            status = EXIT_FAILED
    except ChildDied as died:
        console.print(t("demo.child_died", lang, name=died.name, log=died.log), highlight=False)
        status = EXIT_FAILED
    except (CheckFailed, TimeoutError, OSError) as error:
        console.print(t("demo.failed", lang, error=error, path=root / "logs"), highlight=False)
        status = EXIT_FAILED
    finally:
        console.print(t("demo.stopping", lang), highlight=False)
        for name, code in await system.stop():
            logger.info("%s stopped (status %s)", name, code)
        console.print(t("demo.stopped", lang), highlight=False)
    return status


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m shouyin.demo`` (``make demo``)."""
    options = parse_args(argv)
    configure_logging(logging.WARNING, fmt="%(name)s %(levelname)s %(message)s")
    # Pairing ends with the demo restarting the TLS terminal on purpose: its "link dead"
    # warning in the demo's own process would only alarm the person watching.
    logging.getLogger("shouyin.link.session").setLevel(logging.ERROR)
    console = Console()
    sys.exit(asyncio.run(run(options, console)))


if __name__ == "__main__":
    main()
