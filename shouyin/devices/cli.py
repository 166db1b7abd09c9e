"""``shouyin printer``, ``shouyin display``, ``shouyin scanner`` and ``shouyin ports``.

Examples::

    shouyin printer sim --port 9100 --out /tmp/receipts          # a virtual network printer
    shouyin printer control --port 9101 paper=out                # make it run out of paper
    shouyin printer status --url tcp://127.0.0.1:9100
    shouyin printer test --url tcp://127.0.0.1:9100              # a test page (Chinese, QR)
    shouyin display sim                                          # a virtual 客显 on a pty
    shouyin scanner listen /dev/ttyUSB0 --suffix cr              # print scanned codes
    shouyin ports                                                # serial ports and models

Device errors become a message (Chinese by default) and exit code 1 here, so that the main CLI
needs no knowledge of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shouyin.devices.errors import DeviceError
from shouyin.devices.messages import t

__all__ = ["display_app", "mount", "printer_app", "scanner_app"]

printer_app = typer.Typer(
    help="Receipt printer: simulator, status, test page", no_args_is_help=True
)
display_app = typer.Typer(help="Customer display (客显): simulator", no_args_is_help=True)
scanner_app = typer.Typer(help="Serial barcode scanner", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _fail(error: DeviceError) -> typer.Exit:
    err_console.print(t("error", message=error.user_message()), soft_wrap=True)
    return typer.Exit(1)


@printer_app.command("sim")
def printer_sim(  # noqa: PLR0917 - one option per switch
    port: Annotated[int, typer.Option(help="TCP port (network printers use 9100)")] = 9100,
    control_port: Annotated[int, typer.Option(help="JSON control port (0: any)")] = 9101,
    out: Annotated[Path, typer.Option(help="directory for job .bin/.txt/.png")] = Path("receipts"),
    encoding: Annotated[str, typer.Option(help="gb18030, gbk or utf-8")] = "gb18030",
    columns: Annotated[int, typer.Option(help="32 (58 mm) or 48 (80 mm)")] = 32,
    paper: Annotated[str, typer.Option(help="ok, near_end or out")] = "ok",
    cover_open: Annotated[bool, typer.Option(help="start with the cover open")] = False,
    no_status: Annotated[bool, typer.Option(help="never answer status queries")] = False,
) -> None:
    """Run a virtual ESC/POS network printer on 127.0.0.1 (Ctrl-C to stop)."""
    from shouyin.devices.escpos_model import PrinterEncoding
    from shouyin.devices.printer_sim import PrintJob, VirtualPrinter

    def shown(job: PrintJob) -> None:
        console.print(
            t(
                "devices.sim.job",
                name=f"job-{job.number:04d}",
                lines=len(job.lines),
                size=len(job.raw),
            )
        )
        console.print(job.text, markup=False, highlight=False)

    printer = VirtualPrinter(
        out,
        encoding=PrinterEncoding(encoding),
        columns=columns,
        port=port,
        control_port=control_port,
        on_job=shown,
    )
    printer.set_state(paper=paper, cover_open=cover_open, answers_status=not no_status)

    async def serve() -> None:
        await printer.start()
        console.print(
            t(
                "devices.sim.listening",
                host=printer.host,
                port=printer.port,
                control=printer.control_port,
                out=out,
            )
        )
        try:
            await asyncio.Event().wait()
        finally:
            await printer.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@printer_app.command("control")
def printer_control(
    settings: Annotated[list[str], typer.Argument(help="paper=out, cover_open=true, ...")],
    port: Annotated[int, typer.Option(help="the simulator's control port")] = 9101,
) -> None:
    """Change a running virtual printer's condition (paper=ok|near_end|out, cover_open=...)."""
    changes: dict[str, object] = {}
    for item in settings:
        key, _, value = item.partition("=")
        changes[key] = {"true": True, "false": False}.get(value.lower(), value)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(json.dumps(changes).encode() + b"\n")
        reply = sock.makefile("rb").readline()
    console.print(reply.decode().strip(), markup=False, soft_wrap=True)
    if not json.loads(reply or b"{}").get("ok"):
        raise typer.Exit(1)


@printer_app.command("status")
def printer_status(
    url: Annotated[str, typer.Option(envvar="SHOUYIN_PRINTER_URL", help="printer URL")],
) -> None:
    """Ask the printer for its status (paper, cover, online)."""
    from shouyin.devices.lane import LaneDevices
    from shouyin.devices.printer import PrinterConfig

    try:
        status = LaneDevices(printer=PrinterConfig(url)).printer_status()
    except DeviceError as error:
        raise _fail(error) from error
    console.print(t("devices.printer.status", state=status.state.value))
    if not status.state.can_print:
        raise typer.Exit(1)


@printer_app.command("test")
def printer_test(
    url: Annotated[str, typer.Option(envvar="SHOUYIN_PRINTER_URL", help="printer URL")],
    encoding: Annotated[str, typer.Option(help="gb18030, gbk or utf-8")] = "gb18030",
    columns: Annotated[int, typer.Option(help="32 (58 mm) or 48 (80 mm)")] = 32,
) -> None:
    """Print a test page: Chinese text, column ruler, styles, a QR code, a cut."""
    from shouyin.devices.escpos_model import (
        Align,
        Block,
        Cut,
        Feed,
        PrinterEncoding,
        QrCode,
        Style,
        TextLine,
        encode,
    )
    from shouyin.devices.printer import PrinterConfig, PrinterLink

    ruler = "".join(str(i % 10) for i in range(1, columns + 1))
    blocks: list[Block] = [
        TextLine("打印测试 TEST", Style(bold=True, height=2), Align.CENTER),
        TextLine(ruler),
        TextLine("中文宽度两列：" + "汉" * ((columns - 14) // 2)),
        TextLine("金额 ￥12.30"),
        QrCode("https://github.com/shouyin"),
        Feed(4),
        Cut(),
    ]
    try:
        config = PrinterConfig(url, PrinterEncoding(encoding), columns)
        with PrinterLink(config) as link:
            state = link.status().state
            size = link.send(encode(blocks, config.encoding))
    except DeviceError as error:
        raise _fail(error) from error
    console.print(t("devices.printer.test_sent", size=size, state=state.value))


@display_app.command("sim")
def display_sim(
    encoding: Annotated[str, typer.Option(help="gb18030 or ascii")] = "gb18030",
    protocol: Annotated[str, typer.Option(help="vfd (2x20 text) or led (8 digits)")] = "vfd",
    seconds: Annotated[float, typer.Option(help="stop after this long (0: until Ctrl-C)")] = 0,
) -> None:
    """Run a virtual customer display on a pty; print each screen it shows."""
    import time

    from shouyin.devices.display_sim import VirtualDisplay

    if protocol not in ("vfd", "led"):
        raise typer.BadParameter("protocol must be vfd or led")
    with VirtualDisplay(encoding, protocol) as display:
        console.print(t("devices.display.listening", path=display.path))
        deadline = time.monotonic() + seconds if seconds else None
        shown = display.screen
        try:
            while deadline is None or time.monotonic() < deadline:
                display.pump(0.2)
                if display.screen != shown:
                    shown = display.screen
                    console.print(
                        f"┌{'─' * 20}┐\n│{shown[0]}\n│{shown[1]}\n└{'─' * 20}┘", markup=False
                    )
        except KeyboardInterrupt:
            pass


@scanner_app.command("listen")
def scanner_listen(
    port: Annotated[str, typer.Argument(help="serial port, e.g. /dev/ttyUSB0")],
    baud: Annotated[int, typer.Option(help="baud rate")] = 9600,
    suffix: Annotated[str, typer.Option(help="cr, lf, crlf, tab or etx")] = "cr",
    count: Annotated[int, typer.Option(help="stop after this many codes (0: never)")] = 0,
) -> None:
    """Print each code a serial scanner sends."""
    from shouyin.devices.scanner import open_scanner

    async def run() -> None:
        seen = 0
        async for code in open_scanner(port, baud=baud, suffix=suffix):
            console.print(code, markup=False)
            seen += 1
            if count and seen >= count:
                return

    try:
        asyncio.run(run())
    except DeviceError as error:
        raise _fail(error) from error
    except KeyboardInterrupt:
        pass


def ports() -> None:
    """List serial and USB-serial ports with USB vendor:product ids and known models."""
    from shouyin.devices.ports import list_ports

    found = list_ports()
    if not found:
        console.print(t("devices.ports.none"))
        return
    table = Table(title=t("devices.ports.title"))
    for column in ("port", "VID:PID", "description", "model"):
        table.add_column(column)
    for port in found:
        table.add_row(
            port.device, port.usb_id, port.description, port.model or t("devices.ports.unknown")
        )
    console.print(table)


def mount(app: typer.Typer) -> None:
    """Add the device commands to the main ``shouyin`` app."""
    app.add_typer(printer_app, name="printer", help="Receipt printer (小票打印机)")
    app.add_typer(display_app, name="display", help="Customer display (客显)")
    app.add_typer(scanner_app, name="scanner", help="Serial barcode scanner (扫码枪)")
    app.command("ports", help="Serial/USB-serial ports and known devices (硬件发现)")(ports)
