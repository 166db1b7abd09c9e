"""``shouyin link ...``: command-line tools for the terminal link (a Typer sub-app).

:data:`link_app` is mounted by :mod:`shouyin.cli` as ``shouyin link``. Output goes to the console
on purpose (Rich); the decoding itself is in :mod:`shouyin.link.trace`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shouyin.link.framing import STREAM_MAX_BODY
from shouyin.link.trace import (
    Capture,
    CaptureError,
    TraceFraming,
    decode,
    detect_framing,
    parse_hex,
    read_capture,
    render,
)

__all__ = ["link_app"]

link_app = typer.Typer(help="Terminal link: debugging tools", no_args_is_help=True)

_console = Console()


@link_app.callback()
def _group() -> None:
    """Terminal link: debugging tools."""


def _captures(data: str | None, file: Path | None) -> list[Capture]:
    if (data is None) == (file is None):
        raise typer.BadParameter(
            "give either hex DATA (or '-' for stdin) or --file", param_hint="DATA"
        )
    try:
        if file is not None:
            return read_capture(file.read_bytes())
        text = sys.stdin.read() if data == "-" else str(data)
        return [Capture("", parse_hex(text))]
    except CaptureError as error:
        raise typer.BadParameter(str(error), param_hint="--file" if file else "DATA") from None


@link_app.command()
def trace(
    data: Annotated[
        str | None, typer.Argument(help="captured bytes as hex (spaces, colons allowed); - = stdin")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="raw bytes, hex text or a pcap/pcapng capture (TCP payloads)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    framing: Annotated[
        TraceFraming, typer.Option(help="serial (STX..CRC, ACK/NAK) or stream (LEN|BODY)")
    ] = TraceFraming.AUTO,
    max_body: Annotated[int, typer.Option(help="a larger LEN counts as broken framing")] = (
        STREAM_MAX_BODY
    ),
) -> None:
    """Decode a captured link byte stream into frames and envelope/message headers.

    Never shows key material or card numbers: sealed bodies show only their header, plain ones
    only their type, ids and result, and Luhn-valid digit runs are masked.
    """
    for capture in _captures(data, file):
        chosen = framing if framing is not TraceFraming.AUTO else detect_framing(capture.data)
        records = decode(capture.data, chosen, flow=capture.flow, max_body=max_body)
        frames = sum(1 for r in records if r.kind == "frame")
        bad = sum(1 for r in records if r.kind == "bad")
        noise = sum(r.size for r in records if r.kind == "noise")
        title = f"{capture.flow or 'link trace'} ({chosen.value} framing)"
        _console.print(render(records, title=title))
        _console.print(
            f"{len(capture.data)} bytes: {frames} frames, {bad} broken, {noise} noise bytes"
        )
