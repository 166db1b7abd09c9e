"""``shouyin update``: the store's signed update repository and staged rollouts (a Typer sub-app).

Examples::

    shouyin update init --root-key /media/usb/shouyin-root.pem --encrypt-root
    shouyin update publish sim-1.1.0.bin --version SIM-1.1.0
    shouyin update serve --port 8584
    shouyin update rollout --version SIM-1.1.0 --terminal 10000001
    shouyin update rollout --version SIM-1.1.0 --percent 100 --repository-url http://10.0.0.5:8584
    shouyin update status

The repository is ``<data dir>/updates``; terminals are provisioned with its
``repository/metadata/root.json`` (``shouyin terminal sim --update-root``). Errors are typed
(:class:`~shouyin.fleet.updates.errors.UpdateError`); :func:`shouyin.cli.main` shows them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as Bar
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from shouyin.config import Settings
from shouyin.fleet.updates.errors import UnknownRollout, UpdateError
from shouyin.fleet.updates.package import DEFAULT_MODEL, PackageKind
from shouyin.fleet.updates.repository import UpdateRepository
from shouyin.fleet.updates.rollout import (
    DEFAULT_TERMINAL_TIMEOUT,
    RolloutStatus,
    TerminalProgress,
    new_rollout,
    rollout_id,
    rollout_status,
    run_rollout,
    select_terminals,
)
from shouyin.fleet.updates.rollout import (
    Progress as RolloutProgress,
)
from shouyin.fleet.updates.serve import RepositoryServer
from shouyin.i18n import t

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["ROOT_PASSPHRASE_ENV", "update_app", "updates_dir"]

logger = logging.getLogger(__name__)

update_app = typer.Typer(help="Signed updates (tuf) and staged rollouts", no_args_is_help=True)

ROOT_PASSPHRASE_ENV = "SHOUYIN_ROOT_KEY_PASSPHRASE"  # noqa: S105 - a variable name
"""Where scripts put the root key's passphrase (otherwise it is asked for)."""
DEFAULT_PORT = 8584
_console = Console()


def updates_dir(settings: Settings) -> Path:
    """The store's update repository directory."""
    return settings.data_dir / "updates"


def _root_passphrase(*, confirm: bool) -> bytes:
    value = os.environ.get(ROOT_PASSPHRASE_ENV) or typer.prompt(
        t("update.cli.passphrase"), hide_input=True, confirmation_prompt=confirm
    )
    return str(value).encode()


def _engine(settings: Settings) -> Engine:
    from shouyin.store.engine import make_engine
    from shouyin.store.migrate import upgrade

    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return engine


@update_app.callback()
def _group() -> None:
    """Signed updates (tuf) and staged rollouts."""


@update_app.command("init")
def init(
    root_key: Annotated[
        Path | None, typer.Option(help="keep the root key here (offline), not in the data dir")
    ] = None,
    encrypt_root: Annotated[
        bool, typer.Option(help=f"encrypt the root key with a passphrase (${ROOT_PASSPHRASE_ENV})")
    ] = False,
) -> None:
    """Create the store's TUF repository and its keys (root, targets, snapshot, timestamp)."""
    settings = Settings()
    passphrase = _root_passphrase(confirm=True) if encrypt_root else None
    directory = updates_dir(settings)
    repository = UpdateRepository.create(directory, root_key=root_key, passphrase=passphrase)
    shown = root_key or repository.keys_dir / "root.pem"
    _console.print(t("update.cli.initialised", path=repository.metadata_dir, root_key=shown))


@update_app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="the package file")],
    version: Annotated[str, typer.Option(help="its version, newer than the last one")],
    kind: Annotated[PackageKind, typer.Option(help="firmware or software")] = (
        PackageKind.FIRMWARE
    ),
    model: Annotated[str, typer.Option(help="the terminal model it is for")] = DEFAULT_MODEL,
) -> None:
    """Add a package to the repository and re-sign targets, snapshot and timestamp."""
    settings = Settings()
    repository = UpdateRepository.load(updates_dir(settings))
    package = repository.publish(file, version, kind=kind, model=model)
    from shouyin.fleet.updates.store import audit_published
    from shouyin.store.uow import make_session_factory

    try:
        with make_session_factory(_engine(settings)).begin() as session:
            audit_published(session, package, actor="admin", at=datetime.now(UTC))
    except SQLAlchemyError as error:  # published all the same: say so, do not hide it
        logger.warning("update.published not audited: %s", error)
        _console.print(t("update.cli.audit_failed", reason=type(error).__name__))
    _console.print(
        t("update.cli.published", target=package.target, size=package.length, digest=package.sha256)
    )


@update_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = DEFAULT_PORT,
) -> None:
    """Serve the repository to terminals over HTTP (static files) until Ctrl+C."""
    settings = Settings()
    repository = UpdateRepository.load(updates_dir(settings))
    repository.refresh_metadata()  # before listening: never serve expired metadata
    from shouyin.fleet.pairing import ListenFailed

    try:
        server = RepositoryServer(repository.served_dir, host, port)
    except OSError as error:  # port taken, address not here
        raise ListenFailed(f"http://{host}:{port}", error.strerror or str(error)) from error
    _console.print(t("update.cli.serving", url=server.url))
    try:
        server.start()
        while True:  # keep every online role fresh while serving, published to or not
            time.sleep(600.0)
            try:
                repository.refresh_metadata()
            except (OSError, UpdateError) as error:  # keep serving; terminals will say why
                logger.error("update metadata not refreshed: %s", error)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _show(status: RolloutStatus) -> None:
    rollout = status.rollout
    table = Table(title=f"{rollout.rollout_id}  ({rollout.percent}% + {len(rollout.named)})")
    for column in t("update.cli.columns").split("|"):
        table.add_column(column)
    for progress in status.terminals:
        table.add_row(
            progress.terminal_id,
            t(f"update.progress.{progress.state.value}"),
            progress.firmware_version or "",
            progress.message or "",
            progress.updated_at.astimezone().strftime("%m-%d %H:%M:%S"),
        )
    _console.print(table)


async def _rollout(
    settings: Settings, status: RolloutStatus, timeout: float, progress: Bar
) -> RolloutStatus:
    from shouyin.fleet.keys import TerminalKeyRing, passphrase_from_env
    from shouyin.fleet.pairing import build_link_server
    from shouyin.fleet.updates.store import SqlRolloutStore
    from shouyin.link.keystore import KeyStore

    task = progress.add_task(
        t("update.cli.rollout", version=status.rollout.package.version),
        total=len(status.terminals),
        completed=status.done,
    )

    def advance(update: TerminalProgress) -> None:
        progress.update(task, description=f"{update.terminal_id}: {update.state.value}")
        if update.state is not RolloutProgress.DOWNLOADING:
            progress.advance(task)

    ring = TerminalKeyRing(settings.keys_dir, passphrase=passphrase_from_env())
    server = build_link_server(settings, keys=ring.get, keystore=KeyStore(settings.keys_dir))
    async with server:
        return await run_rollout(
            status.rollout,
            SqlRolloutStore(_engine(settings)),
            server,
            timeout=timeout,
            on_progress=advance,
        )


@update_app.command("rollout")
def rollout(  # noqa: PLR0917 - one per option
    version: Annotated[str, typer.Option(help="the published version to roll out")],
    percent: Annotated[int, typer.Option(min=0, max=100, help="share of terminals")] = 0,
    terminal: Annotated[list[str] | None, typer.Option(help="a terminal (repeatable)")] = None,
    kind: Annotated[PackageKind, typer.Option(help="firmware or software")] = (
        PackageKind.FIRMWARE
    ),
    model: Annotated[str, typer.Option(help="terminal model")] = DEFAULT_MODEL,
    repository_url: Annotated[
        str, typer.Option(help="where terminals reach the repository")
    ] = f"http://127.0.0.1:{DEFAULT_PORT}",
    timeout: Annotated[float, typer.Option(help="seconds per terminal")] = (
        DEFAULT_TERMINAL_TIMEOUT
    ),
) -> None:
    """Tell a share of the paired terminals (or named ones) to install a package."""
    from shouyin.fleet.registry import TerminalState, list_terminals
    from shouyin.fleet.updates.store import SqlRolloutStore
    from shouyin.store.terminal_repo import SqlTerminalUnitOfWork

    settings = Settings()
    repository = UpdateRepository.load(updates_dir(settings))
    package = repository.find(version, model, kind)
    if package is None:
        raise UnknownRollout(version)
    # Terminals refuse expired metadata: make sure every role outlives the rollout.
    repository.refresh_metadata()
    uow = SqlTerminalUnitOfWork.open(settings.resolved_database_url())
    try:
        paired = [x.terminal_id for x in list_terminals(uow) if x.state is TerminalState.PAIRED]
    finally:
        uow.dispose()
    chosen = select_terminals(paired, version, percent=percent, named=terminal or ())
    plan = new_rollout(package, repository_url, percent=percent, named=terminal or ())
    store = SqlRolloutStore(_engine(settings))
    store.save_rollout(plan, chosen)
    status = rollout_status(store, plan)
    if not status.complete:  # only then is the link server needed
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Bar(*columns, console=_console) as bar:
            status = asyncio.run(_rollout(settings, status, timeout, bar))
    _show(status)
    _summary(status)


def _summary(status: RolloutStatus) -> None:
    counts = status.counts
    failed = counts[RolloutProgress.FAILED] + counts[RolloutProgress.ROLLED_BACK]
    _console.print(
        t(
            "update.cli.rollout_done",
            version=status.rollout.package.version,
            current=counts[RolloutProgress.INSTALLED] + counts[RolloutProgress.CURRENT],
            failed=failed,
            waiting=counts[RolloutProgress.PENDING] + counts[RolloutProgress.DOWNLOADING],
        )
    )


@update_app.command("status")
def status_(
    version: Annotated[str | None, typer.Option(help="this version's rollout")] = None,
    kind: Annotated[PackageKind, typer.Option(help="firmware or software")] = (
        PackageKind.FIRMWARE
    ),
    model: Annotated[str, typer.Option(help="terminal model")] = DEFAULT_MODEL,
) -> None:
    """Show a rollout's progress per terminal (the newest one by default)."""
    from shouyin.fleet.updates.store import SqlRolloutStore

    store = SqlRolloutStore(_engine(Settings()))
    found = store.status(rollout_id(kind, model, version)) if version else store.latest()
    if found is None:
        if version:
            raise UnknownRollout(version)
        _console.print(t("update.cli.no_rollouts"))
        return
    _show(found)
    _summary(found)


@update_app.command("renew-root")
def renew_root(
    root_key: Annotated[Path, typer.Option(help="the (offline) root key file")],
    encrypted: Annotated[bool, typer.Option(help="the key file is passphrase-encrypted")] = False,
) -> None:
    """Re-sign the root metadata (new version and expiry) with the offline root key."""
    repository = UpdateRepository.load(updates_dir(Settings()))
    passphrase = _root_passphrase(confirm=False) if encrypted else None
    version = repository.renew_root(root_key, passphrase)
    _console.print(t("update.cli.root_renewed", version=version))
