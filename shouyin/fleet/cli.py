"""``shouyin fleet ...``: register, list, pair and revoke payment terminals (a Typer sub-app).

:data:`fleet_app` is mounted by :mod:`shouyin.cli` as ``shouyin fleet``. The commands raise the
library's typed errors (:class:`~shouyin.fleet.registry.FleetError`,
:class:`~shouyin.link.errors.LinkError`); :func:`fleet_error_message` turns one into the admin's
message, for the one place in the CLI that maps errors to messages and exit codes (and for
:func:`main`, which runs this sub-app on its own: ``python -m shouyin.fleet.cli pair 10000001``).

``pair`` prints the pairing code to the admin on purpose (big, and in the QR code); it is never
logged.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from shouyin.config import Settings
from shouyin.fleet.keys import (
    PASSPHRASE_ENV,
    KeyRingError,
    PassphraseMismatch,
    UnsafeKeyFile,
    WrongPassphrase,
)
from shouyin.fleet.pairing import (
    DEFAULT_PAIRING_TIMEOUT,
    ListenFailed,
    PairingInvitation,
    PairingNotCompleted,
    PairingResult,
    PairingSession,
    StoreNotInitialised,
    WrongLane,
    revoke,
)
from shouyin.fleet.registry import (
    FleetError,
    InvalidTerminal,
    InvalidTransition,
    Terminal,
    TerminalExists,
    UnknownTerminal,
    list_terminals,
    register_terminal,
)
from shouyin.i18n import t
from shouyin.link.errors import LinkError
from shouyin.link.keystore import atomic_write
from shouyin.link.pairing import PAIRING_CODE_LIFETIME, PAIRING_MAX_FAILURES
from shouyin.link.pairing_qr import to_png_bytes, to_terminal_text
from shouyin.logs import configure_logging

if TYPE_CHECKING:
    from shouyin.store.terminal_repo import SqlTerminalUnitOfWork

__all__ = ["big_digits", "fleet_app", "fleet_error_message", "main"]

fleet_app = typer.Typer(
    help="Payment terminals (电签POS): register, pair, revoke", no_args_is_help=True
)

_console = Console()
_err_console = Console(stderr=True)

EXIT_USER_ERROR: Final = 1

# A 5-row block font for the pairing code: readable across a counter, copyable as text below.
_FONT: Final = {
    "0": ("###", "# #", "# #", "# #", "###"),
    "1": (" # ", "## ", " # ", " # ", "###"),
    "2": ("###", "  #", "###", "#  ", "###"),
    "3": ("###", "  #", "###", "  #", "###"),
    "4": ("# #", "# #", "###", "  #", "  #"),
    "5": ("###", "#  ", "###", "  #", "###"),
    "6": ("###", "#  ", "###", "# #", "###"),
    "7": ("###", "  #", "  #", "  #", "  #"),
    "8": ("###", "# #", "###", "# #", "###"),
    "9": ("###", "# #", "###", "  #", "###"),
}


def big_digits(digits: str) -> str:
    """Render digits in a 5-row block font (two cells per pixel), grouped by four.

    Args:
        digits: ASCII digits.

    Returns:
        Five lines, each ending with a newline.
    """
    rows = []
    for row in range(5):
        cells = []
        for index, digit in enumerate(digits):
            gap = "    " if index and index % 4 == 0 else "  " if index else ""
            glyph = _FONT[digit][row].replace("#", "██").replace(" ", "  ")
            cells.append(gap + glyph)
        rows.append("".join(cells).rstrip() + "\n")
    return "".join(rows)


def _grouped(digits: str) -> str:
    return f"{digits[:4]} {digits[4:]}"


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone():%Y-%m-%d %H:%M}" if moment else ""


@contextmanager
def _registry(settings: Settings) -> Iterator[SqlTerminalUnitOfWork]:
    from shouyin.store.terminal_repo import SqlTerminalUnitOfWork

    uow = SqlTerminalUnitOfWork.open(settings.resolved_database_url())
    try:
        yield uow
    finally:
        uow.dispose()


@fleet_app.callback()
def _group() -> None:
    """Payment terminals (电签POS): register, list, pair, revoke."""


@fleet_app.command("add")
def add(
    terminal_id: Annotated[str, typer.Argument(help="终端号: 8 letters or digits")],
    lane: Annotated[
        str | None, typer.Option("--lane", help="lane it serves (default: this lane)")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="display name (default: the id)")] = "",
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="serial:///dev/ttyUSB0?baud=115200 for a serial terminal; "
            "omit for a network terminal (it dials in over TLS)",
        ),
    ] = None,
) -> None:
    """Register a payment terminal (then pair it with 'pair')."""
    settings = Settings()
    with _registry(settings) as uow:
        terminal = register_terminal(
            uow,
            terminal_id,
            lane_id=lane or settings.lane_id,
            now=datetime.now(UTC),
            display_name=name,
            link_url=url,
        )
    _console.print(
        t(
            "fleet.added",
            terminal_id=terminal.terminal_id,
            name=terminal.display_name,
            lane=terminal.lane_id,
            link=terminal.link_url or t("fleet.link.network"),
        ),
        markup=False,
        highlight=False,
    )


_SERIAL_SHOWN: Final = 12  # hex digits of a certificate serial shown in the list


def _short_serial(serial: str | None) -> str:
    if not serial:
        return ""
    return serial if len(serial) <= _SERIAL_SHOWN else serial[:_SERIAL_SHOWN] + "…"


def _day(moment: datetime | None) -> str:
    return f"{moment.astimezone():%Y-%m-%d}" if moment else ""


@fleet_app.command("list")
def list_(
    lane: Annotated[str | None, typer.Option("--lane", help="only this lane")] = None,
) -> None:
    """List the registered terminals with their pairing state and certificate."""
    settings = Settings()
    with _registry(settings) as uow:
        terminals = list_terminals(uow, lane)
    if not terminals:
        _console.print(t("fleet.none"))
        return
    columns: dict[str, Callable[[Terminal], str]] = {
        "terminal": lambda x: x.terminal_id,
        "lane": lambda x: x.lane_id,
        "name": lambda x: x.display_name,
        "link": lambda x: x.link_url or t("fleet.link.network"),
        "state": lambda x: t(f"fleet.state.{x.state.value}"),
        "paired_at": lambda x: _when(x.paired_at),
        "key": lambda x: x.key_id or "",
        "certificate": lambda x: _short_serial(x.certificate_serial),
        "expires": lambda x: _day(x.certificate_expires_at),
        "firmware": lambda x: x.firmware_version or "",
        "last_seen": lambda x: _when(x.last_seen_at),
    }
    # Columns nobody has a value in yet (firmware, last seen: filled in by the lane service)
    # only cost width.
    shown = {
        name: cell
        for name, cell in columns.items()
        if name in ("terminal", "state") or any(cell(x) for x in terminals)
    }
    table = Table(title=t("fleet.list.title"))
    for name in shown:
        table.add_column(t(f"fleet.col.{name}"), no_wrap=name in ("terminal", "key", "paired_at"))
    for terminal in terminals:
        table.add_row(*(cell(terminal) for cell in shown.values()))
    _console.print(table)


def _show_invitation(invitation: PairingInvitation, qr_png: Path | None) -> None:
    terminal: Terminal = invitation.terminal
    digits = invitation.code.digits
    _console.print(
        t(
            "fleet.pair.title",
            terminal_id=terminal.terminal_id,
            name=terminal.display_name,
            lane=terminal.lane_id,
        ),
        markup=False,
        highlight=False,
    )
    _console.print()
    _console.print(big_digits(digits), style="bold", markup=False, highlight=False, end="")
    _console.print()
    _console.print(
        t(
            "fleet.pair.code",
            code=_grouped(digits),
            minutes=int(PAIRING_CODE_LIFETIME // 60),
            tries=PAIRING_MAX_FAILURES,
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    payload = invitation.payload
    if payload is None:
        _console.print(t("fleet.pair.serial", where=", ".join(invitation.where)), markup=False)
        if qr_png is not None:
            _console.print(t("fleet.pair.no_qr"))
        return
    _console.print(
        t("fleet.pair.network", address=payload.address, port=payload.port),
        markup=False,
        highlight=False,
    )
    _console.print(to_terminal_text(payload), markup=False, highlight=False, end="", soft_wrap=True)
    _console.print(
        t("fleet.pair.fingerprint", fingerprint=payload.fingerprint),
        highlight=False,
        soft_wrap=True,
    )
    if qr_png is not None:
        atomic_write(qr_png, to_png_bytes(payload))  # 0600: it holds the code
        _console.print(t("fleet.pair.qr_saved", path=qr_png), markup=False, highlight=False)


async def _pair(
    settings: Settings, terminal_id: str, timeout: float, qr_png: Path | None
) -> PairingResult:
    async with PairingSession(settings, terminal_id) as session:
        _show_invitation(session.invitation, qr_png)
        with _console.status(t("fleet.pair.waiting", terminal_id=terminal_id)):
            return await session.wait(timeout)


@fleet_app.command("pair")
def pair(
    terminal_id: Annotated[str, typer.Argument(help="终端号 of a registered terminal")],
    timeout: Annotated[
        float,
        typer.Option(
            min=1,
            max=DEFAULT_PAIRING_TIMEOUT,
            help="seconds to wait for the terminal (the code lives 600 s)",
        ),
    ] = DEFAULT_PAIRING_TIMEOUT,
    qr_png: Annotated[
        Path | None,
        typer.Option("--qr-png", dir_okay=False, help="also write the QR code to this PNG file"),
    ] = None,
) -> None:
    """Pair (or re-pair) a terminal: show a one-time code and QR code, wait for the terminal."""
    result = asyncio.run(_pair(Settings(), terminal_id, timeout, qr_png))
    terminal = result.terminal
    _console.print(
        "[green]✓[/] "
        + t(
            "fleet.pair.done",
            terminal_id=terminal.terminal_id,
            key_id=terminal.key_id,
            serial=terminal.certificate_serial or "-",
            expires=_when(terminal.certificate_expires_at) or "-",
        ),
        highlight=False,
    )
    if result.re_paired:
        _console.print(
            t(
                "fleet.pair.replaced",
                key_id=result.previous_key_id or "-",
                serial=result.previous_certificate_serial or "-",
            ),
            highlight=False,
        )


@fleet_app.command("revoke")
def revoke_(
    terminal_id: Annotated[str, typer.Argument(help="终端号")],
) -> None:
    """Revoke a terminal: its certificate is refused and its key deleted; pair it to restore."""
    result = revoke(Settings(), terminal_id)
    if result.already_revoked and not (result.certificate_revoked or result.key_deleted):
        _console.print(t("fleet.revoked.already", terminal_id=terminal_id), highlight=False)
        return
    certificate = t("fleet.revoked.done" if result.certificate_revoked else "fleet.revoked.none")
    key_state = t("fleet.revoked.deleted" if result.key_deleted else "fleet.revoked.none")
    _console.print(
        t("fleet.revoked", terminal_id=terminal_id, certificate=certificate, key_state=key_state),
        highlight=False,
    )


# -- errors ----------------------------------------------------------------------------------------


def fleet_error_message(error: BaseException) -> str | None:  # noqa: PLR0911, PLR0912
    """The admin's message for a fleet or link error (to wrap in ``t("error", ...)``).

    One case per error type, most specific first.

    Args:
        error: what a ``shouyin fleet`` command raised.

    Returns:
        The translated message, or ``None`` when ``error`` is neither a
        :class:`~shouyin.fleet.registry.FleetError` nor a :class:`~shouyin.link.errors.LinkError`.
    """
    match error:
        case PairingNotCompleted(terminal_id=terminal_id, reason=reason):
            return t(f"fleet.pair.failed.{reason.value}", terminal_id=terminal_id)
        case InvalidTerminal(field=field, reason=reason):
            return t("fleet.invalid", field=field, reason=reason)
        case TerminalExists(terminal_id=terminal_id):
            return t("fleet.exists", terminal_id=terminal_id)
        case UnknownTerminal(terminal_id=terminal_id):
            return t("fleet.unknown", terminal_id=terminal_id)
        case InvalidTransition():
            return t("fleet.invalid_transition", message=str(error))
        case WrongLane(terminal_id=terminal_id, lane_id=lane, here=here):
            return t("fleet.wrong_lane", terminal_id=terminal_id, lane=lane, here=here)
        case StoreNotInitialised(path=path):
            return t("fleet.no_ca", path=path)
        case ListenFailed(where=where, reason=reason):
            return t("fleet.listen_failed", where=where, reason=reason)
        case WrongPassphrase():
            return t("fleet.keys.wrong_passphrase", env=PASSPHRASE_ENV)
        case PassphraseMismatch():
            return t("fleet.keys.passphrase_mismatch", env=PASSPHRASE_ENV)
        case UnsafeKeyFile(path=path):
            return t("fleet.keys.unsafe", path=path)
        case KeyRingError():
            return t("fleet.keys.corrupt", message=str(error))
        case LinkError():
            return t("fleet.link_error", message=str(error))
        case FleetError():
            return str(error)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run :data:`fleet_app` on its own; typed errors become a message and exit status 1.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    configure_logging(
        logging.WARNING,
        fmt="%(message)s",
        handlers=[RichHandler(console=_err_console, show_path=False)],
    )
    try:
        fleet_app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        _err_console.print("已取消 / Aborted")
        return 130
    except (FleetError, LinkError) as error:
        message = t("error", message=fleet_error_message(error))
        _err_console.print(message, highlight=False, markup=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except typer.TyperException as error:  # usage errors (bad option, missing argument)
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            _err_console.print(error.format_message())
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
