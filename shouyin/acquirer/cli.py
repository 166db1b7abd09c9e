"""``shouyin acquirer ...``: run the acquirer host simulator (a Typer sub-app).

:data:`acquirer_app` is mounted by :mod:`shouyin.cli` as ``shouyin acquirer``; the same app runs
standalone as ``python -m shouyin.acquirer``. ``sim`` serves until interrupted (Ctrl-C or
SIGTERM) and prints one line when ready, with the ports actually bound (useful with
``--port 0``)::

    shouyin acquirer sim --port 9583 --state-dir /tmp/acq --control-port 9584 --delay-ms 200
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from shouyin.acquirer.faults import Faults
from shouyin.acquirer.host import Host, HostConfig
from shouyin.acquirer.ledger import Ledger
from shouyin.acquirer.mac import TEST_MASTER_KEY
from shouyin.acquirer.server import DEFAULT_PORT, AcquirerServer

__all__ = ["acquirer_app"]

acquirer_app = typer.Typer(
    help="Acquirer host simulator (ISO 8583 over TCP): the terminal's SIM-network bank",
    no_args_is_help=True,
)


@acquirer_app.callback()
def _group() -> None:
    """Acquirer host simulator (ISO 8583 over TCP)."""


def _master_key(text: str | None) -> bytes:
    if text is None:
        return TEST_MASTER_KEY
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise typer.BadParameter("hex digits expected", param_hint="--master-key") from None
    if len(key) not in (16, 24, 32):
        raise typer.BadParameter("16, 24 or 32 bytes (32, 48 or 64 hex digits)")
    return key


async def _serve(server: AcquirerServer) -> None:
    await server.start()
    typer.echo(
        f"shouyin acquirer sim listening on {server.bind} port={server.port}"
        f" control_port={server.control_port or 0}",
    )
    loop = asyncio.get_running_loop()
    serving = asyncio.ensure_future(server.serve_forever())
    with contextlib.suppress(NotImplementedError):  # no signal handlers on some platforms
        loop.add_signal_handler(signal.SIGTERM, serving.cancel)
    try:
        await serving
    except asyncio.CancelledError:
        pass
    finally:
        await server.close()


@acquirer_app.command()
def sim(
    *,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="terminal port (0: any free port)")] = DEFAULT_PORT,
    state_dir: Annotated[
        Path, typer.Option(help="where the ledger lives (created if missing)")
    ] = Path("acquirer-state"),
    control_port: Annotated[
        int | None, typer.Option(help="JSON control port for tests (0: any free port)")
    ] = None,
    delay_ms: Annotated[int, typer.Option(help="delay every answer (ms)")] = 0,
    drop_every: Annotated[int, typer.Option(help="lose every N-th message (0: never)")] = 0,
    no_answer_rate: Annotated[
        float, typer.Option(help="share of processed messages whose answer is lost (0..1)")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of --no-answer-rate")] = 0,
    userpaying_ms: Annotated[
        int, typer.Option(help="how long a USERPAYING QR customer takes (ms)")
    ] = 3000,
    slow_ms: Annotated[
        int | None, typer.Option(help="delay of the slow test card (default: 20 s)")
    ] = None,
    master_key: Annotated[
        str | None, typer.Option(help="host master key, hex (default: the public test key)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="level of the acquirer's logs")] = "INFO",
) -> None:
    """Run the acquirer host simulator until interrupted."""
    logging.getLogger("shouyin.acquirer").setLevel(log_level.upper())
    try:
        faults = Faults(drop_every, delay_ms, no_answer_rate, seed)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    config = HostConfig(
        master_key=_master_key(master_key),
        userpaying_s=userpaying_ms / 1000,
        slow_issuer_s=None if slow_ms is None else slow_ms / 1000,
    )
    ledger = Ledger.in_state_dir(state_dir)
    server = AcquirerServer(
        Host(ledger, config), bind=host, port=port, control_port=control_port, faults=faults
    )
    try:
        asyncio.run(_serve(server))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        typer.echo(f"cannot listen on {host}:{port}: {error.strerror or error}", err=True)
        raise typer.Exit(1) from None
    finally:
        ledger.close()
