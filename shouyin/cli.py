"""The ``shouyin`` command line (Typer + Rich).

Library code raises typed errors; :func:`main` is the one place that turns them into a message
and an exit code. Long work shows a Rich progress bar.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from shouyin.config import Settings
from shouyin.domain.errors import DomainError
from shouyin.i18n import t
from shouyin.logs import configure_logging

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shouyin.domain.audit import AuditEvent
    from shouyin.domain.promotions import Promotion
    from shouyin.domain.reports import Report
    from shouyin.lane.services import Context
    from shouyin.store.uow import SqlUnitOfWork

app = typer.Typer(
    help="shouyin 收银: supermarket checkout and payment terminals", no_args_is_help=True
)
catalog_app = typer.Typer(help="Catalogue: import and demo data", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts", no_args_is_help=True)
report_app = typer.Typer(help="X and Z reports", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(users_app, name="users")
app.add_typer(report_app, name="report")


def _mount_subcommands() -> None:
    from shouyin.acquirer.cli import acquirer_app
    from shouyin.fleet.cli import fleet_app
    from shouyin.link.cli import link_app
    from shouyin.payments.cli import payments_app, reconcile_command
    from shouyin.terminal.cli import terminal_app

    app.add_typer(link_app, name="link", help="Terminal link: decode captures for debugging")
    app.add_typer(acquirer_app, name="acquirer", help="Acquirer host simulator (ISO 8583)")
    app.add_typer(terminal_app, name="terminal", help="Payment terminal simulator (电签POS)")
    app.add_typer(fleet_app, name="fleet", help="Terminals: register, pair, revoke (终端管理)")
    app.add_typer(payments_app, name="payments", help="Payments: reconciliation (对账)")
    # `shouyin reconcile` is the day-end command admins look for; same as `payments reconcile`.
    app.command("reconcile", help="对账: lane journal vs terminal batch vs acquirer ledger")(
        reconcile_command
    )
    # Operations (issue 7): diag, audit, health, update — each track mounts its own app below.
    app.add_typer(__import__("shouyin.fleet.updates.cli", fromlist=["x"]).update_app, name="update")
    __import__("shouyin.fleet.ops_cli", fromlist=["mount"]).mount(app)  # audit, health, diag
    # Web (issue 6): serve.
    from shouyin.web.cli import serve

    app.command("serve", help="收银网页服务 / run the web server (cashier and admin pages)")(serve)
    # Devices (issue 8): printer, display, scanner, ports.
    __import__("shouyin.devices.cli", fromlist=["mount"]).mount(app)


_mount_subcommands()

console = Console()
err_console = Console(stderr=True)

EXIT_USER_ERROR = 1


def _settings() -> Settings:
    return Settings()


def _engine(settings: Settings) -> Engine:
    from shouyin.store.engine import make_engine
    from shouyin.store.migrate import upgrade

    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return engine


def _uow(engine: Engine) -> SqlUnitOfWork:
    from shouyin.store.audit_repo import CheckpointStore
    from shouyin.store.uow import SqlUnitOfWork, make_session_factory

    uow = SqlUnitOfWork(make_session_factory(engine))
    uow.checkpoints = CheckpointStore(_settings().keys_dir)  # the audit log's signed head
    return uow


def _context(settings: Settings) -> Context:
    from shouyin.domain.barcodes import Nomenclature
    from shouyin.lane.services import Context

    nomenclature = (
        Nomenclature.from_spec(settings.scale_nomenclature)
        if settings.scale_nomenclature
        else Nomenclature.default()
    )
    return Context(lane_id=settings.lane_id, nomenclature=nomenclature)


@app.command()
def init(
    admin: Annotated[str, typer.Option(help="admin user name")] = "admin",
    password: Annotated[
        str,
        typer.Option(
            prompt="管理员密码 / admin password",
            hide_input=True,
            confirmation_prompt=True,
            envvar="SHOUYIN_ADMIN_PASSWORD",
            help="admin password (at least 8 characters); prompted when not given",
        ),
    ] = "",
) -> None:
    """Create the database, the store CA and server certificate, and the first admin account."""
    from datetime import UTC, datetime

    from shouyin.domain.users import PasswordHasher, Role
    from shouyin.lane.services import UserExists, create_user
    from shouyin.link.keystore import KeyStore

    settings = _settings()
    engine = _engine(settings)
    console.print(t("db.ready", url=engine.url.render_as_string(hide_password=True)))
    keys = KeyStore(settings.keys_dir).init(
        settings.store_name, settings.server_names, datetime.now(UTC)
    )
    console.print(t("init.ca", fingerprint=keys.ca_fingerprint, path=settings.keys_dir))
    try:
        create_user(
            _uow(engine),
            PasswordHasher(),
            _context(settings),
            username=admin,
            display_name="系统管理员",
            role=Role.ADMIN,
            password=password,
        )
        console.print(t("init.admin_created", username=admin))
    except UserExists:
        console.print(t("init.admin_exists", username=admin))


@app.command()
def firewall(
    output_format: Annotated[
        str, typer.Option("--format", help="nftables or iptables")
    ] = "nftables",
) -> None:
    """Print host firewall rules matching the configured link/web ports and allowed networks."""
    from shouyin.link.firewall import render_iptables, render_nftables

    policy = _settings().firewall_policy()
    if output_format == "nftables":
        text = render_nftables(policy)
    elif output_format == "iptables":
        text = render_iptables(policy)
    else:
        raise typer.BadParameter("format must be nftables or iptables")
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="cashier, supervisor or admin")] = "cashier",
    name: Annotated[str, typer.Option(help="display name (on receipts)")] = "",
    password: Annotated[
        str,
        typer.Option(
            prompt="密码 / password",
            hide_input=True,
            confirmation_prompt=True,
            envvar="SHOUYIN_USER_PASSWORD",
            help="password, or a 6-digit PIN for cashiers; prompted when not given",
        ),
    ] = "",
) -> None:
    """Add a cashier, supervisor or admin account."""
    from shouyin.domain.users import PasswordHasher, Role
    from shouyin.lane.services import create_user

    try:
        role_value = Role(role.lower())
    except ValueError:
        raise typer.BadParameter(
            f"role must be one of {', '.join(r.value for r in Role)}"
        ) from None
    settings = _settings()
    create_user(
        _uow(_engine(settings)),
        PasswordHasher(),
        _context(settings),
        username=username,
        display_name=name or username,
        role=role_value,
        password=password,
    )
    console.print(t("users.added", username=username, role=role_value.value))


@users_app.command("list")
def users_list() -> None:
    """List accounts with their role and lock state."""
    from rich.table import Table

    settings = _settings()
    table = Table("user", "name", "role", "active", "failed logins", "locked until")
    with _uow(_engine(settings)) as uow:
        for user in uow.users.list():
            locked = f"{user.locked_until:%Y-%m-%d %H:%M}" if user.locked_until else ""
            table.add_row(
                user.username,
                user.display_name,
                user.role.value,
                "yes" if user.active else "no",
                str(user.failed_logins),
                locked,
            )
    console.print(table)


def _unlock_event(settings: Settings, username: str) -> AuditEvent:
    from datetime import UTC, datetime

    from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome

    success, where = AuditOutcome.SUCCESS, f"lane:{settings.lane_id}"
    now = datetime.now(UTC)
    return AuditEvent(AuditAction.USER_UNLOCKED, success, "admin", where, f"user:{username}", now)


@users_app.command("unlock")
def users_unlock(username: Annotated[str, typer.Argument(help="login name")]) -> None:
    """Clear a locked account's failed-login counter (admin action)."""
    settings = _settings()
    with _uow(_engine(settings)) as uow:
        user = uow.users.get_by_username(username)
        if user is None:
            err_console.print(t("users.not_found", username=username))
            raise typer.Exit(EXIT_USER_ERROR)
        user.failed_logins = 0
        user.locked_until = None
        uow.users.save(user)
        uow.audit.append(_unlock_event(settings, username))  # issue 7: audited admin action
        uow.commit()
    console.print(t("users.unlocked", username=username))


@catalog_app.command("demo")
def catalog_demo(
    count: Annotated[int, typer.Option(help="number of demo products")] = 400,
) -> None:
    """Load a realistic demo catalogue of Chinese supermarket goods (valid barcodes)."""
    from shouyin.domain.demo_catalogue import demo_products
    from shouyin.store.catalog_import import write_products

    engine = _engine(_settings())
    products = demo_products(count)
    with engine.begin() as connection:
        write_products(connection, products)
    console.print(t("demo.catalogue_loaded", count=len(products)))


@report_app.command("x")
def report_x() -> None:
    """Print the X report (mid-shift totals) of today's business day."""
    from shouyin.lane.services import build_x_report

    settings = _settings()
    engine = _engine(settings)
    _print_report(build_x_report(_uow(engine), _context(settings)), settings, engine)


@report_app.command("z")
def report_z() -> None:
    """Close the business day: build, number, store and print the Z report."""
    from shouyin.lane.services import close_day

    settings = _settings()
    engine = _engine(settings)
    _print_report(close_day(_uow(engine), _context(settings)), settings, engine)


@app.command()
def sell(
    username: Annotated[str, typer.Option(prompt="收银员 / cashier")],
    password: Annotated[str, typer.Option(prompt="密码 / password", hide_input=True)],
) -> None:
    """Open the interactive lane console: scan, take cash, hold/recall, X report, close shift."""
    run_console(_settings(), username, password)


def run_console(
    settings: Settings, username: str, password: str, promotions: tuple[Promotion, ...] = ()
) -> None:
    """Log in, make sure a shift is open, then read commands from standard input."""
    from shouyin.devices.receipt import ReceiptHeader
    from shouyin.domain.money import Money
    from shouyin.domain.users import PasswordHasher
    from shouyin.lane import services
    from shouyin.lane.console import LaneConsole

    engine = _engine(settings)
    ctx = replace(_context(settings), promotions=promotions)
    cashier = services.login(_uow(engine), PasswordHasher(), ctx, username, password)
    with _uow(engine) as uow:
        has_shift = uow.shifts.open_for_lane(ctx.lane_id) is not None
    if not has_shift:
        opening = typer.prompt("开班备用金 / opening float (yuan)", default="500.00")
        services.open_shift(_uow(engine), ctx, cashier, Money.parse(opening))

    def lines() -> Iterator[str]:
        while True:
            try:
                yield console.input("[bold cyan]扫码> [/]")
            except EOFError:
                return

    LaneConsole(
        lambda: _uow(engine), ctx, cashier, ReceiptHeader(settings.store_name), console
    ).run(lines())


def _print_report(report: Report, settings: Settings, engine: Engine) -> None:
    from shouyin.devices.report_layout import render_report

    with _uow(engine) as uow:
        names = {u.user_id: u.display_name for u in uow.users.list()}
    lines = render_report(report, settings.store_name, cashier_names=names)
    console.print("\n".join(lines), markup=False, highlight=False)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    # The scrubber goes on the handler: no card number reaches a log, whichever module logs it.
    configure_logging(
        logging.DEBUG if verbose else logging.WARNING,
        fmt="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row", exists=False)],
    show_errors: Annotated[int, typer.Option(help="how many rejected rows to list")] = 50,
) -> None:
    """Import products from CSV; bad rows are reported with line numbers, good rows kept."""
    from shouyin.store.catalog_import import count_data_lines, import_catalogue

    settings = _settings()
    engine = _engine(settings)
    total = count_data_lines(file) if file.exists() else 0
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(t("import.progress"), total=total or None)
        report = import_catalogue(
            engine, file, on_progress=lambda rows: progress.update(task, completed=rows)
        )
    for error in report.errors[:show_errors]:
        err_console.print(t("import.row_error", line=error.line, message=error.message))
    if report.rejected > show_errors:
        err_console.print(t("import.more_errors", count=report.rejected - show_errors))
    console.print(t("import.summary", imported=report.imported, rejected=report.rejected))
    if report.imported == 0 and report.rejected:
        raise typer.Exit(EXIT_USER_ERROR)


def _library_error_message(error: Exception) -> str | None:
    """The user's message for a typed error of the link, fleet or acquirer; None for a bug."""
    from shouyin.acquirer.errors import AcquirerError
    from shouyin.fleet.cli import fleet_error_message

    message = fleet_error_message(error)  # fleet and link errors, most specific first
    if message is None and isinstance(error, AcquirerError):
        message = str(error)
    return message


def main() -> None:
    """Entry point: run the app, turning typed errors into a message and an exit code."""
    try:
        # Without standalone mode, click returns a command's exit code instead of exiting.
        code = app(standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        err_console.print("已取消 / Aborted")
        sys.exit(130)
    except typer.TyperException as error:  # usage errors (bad option, missing argument)
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(error.format_message())
        sys.exit(error.exit_code)
    except DomainError as error:
        err_console.print(t("error", message=error))
        sys.exit(EXIT_USER_ERROR)
    except Exception as error:
        message = _library_error_message(error)
        if message is None:
            raise
        err_console.print(t("error", message=message), soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
