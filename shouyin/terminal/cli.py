"""``shouyin terminal sim``: run the terminal simulator as its own process (a Typer sub-app).

:data:`terminal_app` is mounted by :mod:`shouyin.cli` as ``shouyin terminal``; ``python -m
shouyin.terminal`` runs the same commands. What happens is reported as JSON lines on stdout
(``{"event": "serial", "ecr_path": "/dev/pts/7"}``, ``{"event": "logged_in", ...}``) for test
harnesses to follow; logs go to stderr. With ``--interactive`` the terminal's screen is drawn on
stdout instead and a person presents the cards (:mod:`~shouyin.terminal.console`). Errors are
turned into a message and an exit code here and only here.

Examples::

    shouyin terminal sim --state-dir /tmp/t1 --serial pty --pair 12345678
    shouyin terminal sim --state-dir /tmp/t1 --listen tcp://127.0.0.1:0
    shouyin terminal sim --state-dir /tmp/t1 --serial pty --interactive
    shouyin terminal sim --state-dir /tmp/t1 --pair-qr 'shouyin-pair:v1?a=10.0.0.5&p=8583&c=...'
    shouyin terminal sim --state-dir /tmp/t1 --connect tls://10.0.0.5:8583 \\
        --acquirer tcp://127.0.0.1:9583 --control tcp://127.0.0.1:0 --card pin
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from shouyin.link.errors import LinkError
from shouyin.link.pairing_qr import PairingPayloadError
from shouyin.logs import configure_logging
from shouyin.terminal.cards import rule_from_dict
from shouyin.terminal.errors import TerminalError
from shouyin.terminal.faults import AcquirerFault, FaultPlan, Step
from shouyin.terminal.records import TerminalConfig
from shouyin.terminal.sim import SimOptions, TerminalSim

__all__ = ["emit_json", "terminal_app"]

terminal_app = typer.Typer(help="Terminal simulator (电签POS)", no_args_is_help=True)


@terminal_app.callback()
def _group() -> None:
    """Terminal simulator (电签POS)."""


def emit_json(event: str, **fields: Any) -> None:
    """One JSON line on stdout for the harness (deliberately stdout, not a log)."""
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def _numbers(text: str | None) -> frozenset[int]:
    if not text:
        return frozenset()
    return frozenset(int(part) for part in text.split(",") if part.strip())


def _delays(text: str | None) -> dict[int, float]:
    delays: dict[int, float] = {}
    for part in (text or "").split(","):
        if part.strip():
            number, _, seconds = part.partition(":")
            delays[int(number)] = float(seconds or "5")
    return delays


@terminal_app.command()
def sim(  # noqa: PLR0917 - one option per switch
    state_dir: Annotated[Path, typer.Option(help="the terminal's state directory")],
    serial: Annotated[
        str | None, typer.Option(help="'pty' (create a null-modem pair) or a serial device")
    ] = None,
    baud: Annotated[int, typer.Option(help="serial speed")] = 115_200,
    listen: Annotated[
        str | None, typer.Option(help="tcp://host:port to wait for the cashier system on")
    ] = None,
    connect: Annotated[
        str | None, typer.Option(help="tcp:// or tls:// address of the cashier system")
    ] = None,
    server_name: Annotated[str | None, typer.Option(help="name in its certificate")] = None,
    pair: Annotated[str | None, typer.Option(help="pair first with this 8-digit code")] = None,
    pair_qr: Annotated[str | None, typer.Option(help="pair with a pairing QR code's text")] = None,
    acquirer: Annotated[
        str, typer.Option(help="'memory' or tcp://host:port of `shouyin acquirer sim`")
    ] = "memory",
    control: Annotated[
        str, typer.Option(help="'unix' (socket in the state dir), tcp://127.0.0.1:PORT or 'off'")
    ] = "unix",
    terminal_id: Annotated[str, typer.Option(help="identity on the link (new state only)")] = (
        "T0001"
    ),
    merchant_name: Annotated[str | None, typer.Option(help="on slips (new state only)")] = None,
    acquirer_timeout: Annotated[float, typer.Option(help="seconds per acquirer answer")] = 30.0,
    card: Annotated[str, typer.Option(help="test card presented by default")] = "approve",
    rules: Annotated[
        Path | None, typer.Option(help="JSON list of reader rules", exists=True, dir_okay=False)
    ] = None,
    drop: Annotated[str | None, typer.Option(help="drop these writes: 3,7")] = None,
    delay: Annotated[str | None, typer.Option(help="delay writes: 3:5.0,7:2")] = None,
    corrupt: Annotated[str | None, typer.Option(help="flip a byte in these writes")] = None,
    disconnect: Annotated[str | None, typer.Option(help="cut these writes mid-frame")] = None,
    power_loss_at: Annotated[Step | None, typer.Option(help="lose power at this step")] = None,
    acquirer_fault: Annotated[AcquirerFault, typer.Option(help="acquirer link fault")] = (
        AcquirerFault.NONE
    ),
    dead_after: Annotated[float, typer.Option(help="link dead after this much silence")] = 6.0,
    update_root: Annotated[
        Path | None,
        typer.Option(help="pin this TUF root.json for updates (provisioning)", dir_okay=False),
    ] = None,
    log_level: Annotated[str, typer.Option(help="stderr log level")] = "WARNING",
    interactive: Annotated[
        bool, typer.Option(help="show the screen; a person presents the cards (stdin)")
    ] = False,
) -> None:
    """Run a simulated payment terminal (电签POS) until SIGTERM/SIGINT or the `stop` command."""
    # Replaces the root command's default so that --log-level wins; scrubs card data.
    configure_logging(log_level, fmt="%(name)s %(levelname)s %(message)s")
    try:
        config = TerminalConfig(
            terminal_id=terminal_id,
            **({"merchant_name": merchant_name} if merchant_name else {}),
        )
        plan = FaultPlan(
            drop=_numbers(drop),
            delay=_delays(delay),
            corrupt=_numbers(corrupt),
            disconnect=_numbers(disconnect),
            power_loss_at=power_loss_at,
            acquirer=acquirer_fault,
        )
        loaded = json.loads(rules.read_text()) if rules is not None else []
        reader_rules = tuple(rule_from_dict(rule) for rule in loaded)
        options = SimOptions(
            state_dir=state_dir,
            serial=serial,
            baud=baud,
            listen=listen,
            connect=connect,
            server_name=server_name,
            pair_code=pair,
            pair_qr=pair_qr,
            acquirer=acquirer,
            control=None if control == "off" else control,
            config=config,
            rules=reader_rules,
            default_card=card,
            faults=plan,
            dead_after=dead_after,
            acquirer_timeout=acquirer_timeout,
            update_root=update_root,
        )
        asyncio.run(_run(options, interactive=interactive))
    except (ValueError, ValidationError, PairingPayloadError) as error:
        emit_json("error", message=str(error)[:500])
        raise typer.Exit(2) from None
    except (LinkError, TerminalError, OSError) as error:
        emit_json("error", message=str(error)[:500])
        raise typer.Exit(1) from None


async def _run(options: SimOptions, *, interactive: bool = False) -> None:
    if interactive:  # the screen replaces the JSON lines on stdout
        from rich.console import Console

        from shouyin.terminal.console import StdinLines, TerminalConsole

        console = TerminalConsole(Console(), StdinLines())
        simulator = TerminalSim(options, console.event, reader=console, watch=console.watch)
    else:
        simulator = TerminalSim(options, emit_json)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, simulator.stop)
    await simulator.run()
