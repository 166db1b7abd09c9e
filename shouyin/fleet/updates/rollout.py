"""Staged rollouts: which terminals get a package, telling them over the link, and progress.

A rollout is for ``percent`` of the terminals and/or some named ones. Which terminals fall in a
percentage is decided by a stable hash of the version and terminal id (:func:`rollout_bucket`,
0-99): the same terminals every time, and raising the percentage of a rollout only adds
terminals, never swaps them. Different versions start with different terminals.

Each terminal's progress (:class:`Progress`): ``pending`` until it is told, ``downloading``
while it fetches, verifies and installs, then ``installed`` (the new version runs), ``current``
(it ran that version or a newer one already), ``failed`` (it refused or could not fetch the
package, or could not be reached: it still runs its old version) or ``rolled_back`` (installed,
failed its self-test, back on the previous slot). Failed terminals are tried again when the
rollout is run again; the others are left alone.

:func:`run_rollout` does the talking: one :class:`~shouyin.link.messages.AdminRequest`
(``firmware_update``) per terminal over whatever :class:`TerminalLinks` gives the endpoint
(the cashier system's :class:`~shouyin.link.server.LinkServer` does). Storage is a
:class:`RolloutStore` (:class:`~shouyin.fleet.updates.store.SqlRolloutStore`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from shouyin.fleet.updates.errors import UnknownRollout
from shouyin.fleet.updates.package import PackageKind, compare_versions
from shouyin.fleet.updates.repository import Package
from shouyin.link.aio import LinkEndpoint
from shouyin.link.errors import LinkError
from shouyin.link.messages import AdminRequest, AdminResponse
from shouyin.link.values import AdminAction, ErrorCondition, FirmwarePackage, Result

__all__ = [
    "DEFAULT_TERMINAL_TIMEOUT",
    "FINAL",
    "Progress",
    "Rollout",
    "RolloutStatus",
    "RolloutStore",
    "TerminalLinks",
    "TerminalProgress",
    "classify_answer",
    "new_rollout",
    "rollout_bucket",
    "rollout_id",
    "rollout_status",
    "run_rollout",
    "select_terminals",
]

logger = logging.getLogger(__name__)

DEFAULT_TERMINAL_TIMEOUT = 120.0
"""Seconds to wait for one terminal to connect and answer (download, install, self-test)."""


class Progress(StrEnum):
    """One terminal's progress in a rollout."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    INSTALLED = "installed"
    CURRENT = "current"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


FINAL = frozenset({Progress.INSTALLED, Progress.CURRENT, Progress.ROLLED_BACK})
"""Progress a rerun of the rollout leaves alone (failed terminals are tried again)."""


def rollout_bucket(terminal_id: str, version: str) -> int:
    """The terminal's place (0-99) in the rollout of ``version``: stable, evenly spread."""
    digest = hashlib.sha256(f"{version}\x00{terminal_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def select_terminals(
    terminal_ids: Iterable[str], version: str, *, percent: int = 0, named: Iterable[str] = ()
) -> list[str]:
    """The terminals a rollout is for: those named, and those whose bucket is below ``percent``.

    Raises:
        ValueError: ``percent`` outside 0-100.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be 0-100, not {percent}")
    wanted = set(named)
    return sorted(
        terminal
        for terminal in set(terminal_ids) | wanted
        if terminal in wanted or rollout_bucket(terminal, version) < percent
    )


def rollout_id(kind: PackageKind, model: str, version: str) -> str:
    """The id of the (one) rollout of a package."""
    return f"{kind.value}:{model}:{version}"


@dataclass(frozen=True, slots=True)
class Rollout:
    """What a rollout sends and to whom.

    Attributes:
        rollout_id: see :func:`rollout_id`.
        package: the package.
        url: the URL the terminals are given.
        percent: the share of terminals (0-100).
        named: terminals it is for in any case.
        created_at: when it was started.
    """

    rollout_id: str
    package: Package
    url: str
    percent: int
    named: tuple[str, ...]
    created_at: datetime

    def request(self, service_id: str) -> AdminRequest:
        """The request that tells a terminal to install the package."""
        package = self.package
        firmware = FirmwarePackage(
            version=package.version, sha256=package.sha256, size=package.length, url=self.url
        )
        return AdminRequest(
            service_id=service_id, action=AdminAction.FIRMWARE_UPDATE, firmware=firmware
        )


def new_rollout(
    package: Package,
    repository_url: str,
    *,
    percent: int = 0,
    named: Sequence[str] = (),
    now: datetime | None = None,
) -> Rollout:
    """A rollout of ``package`` from the repository at ``repository_url``."""
    return Rollout(
        rollout_id=rollout_id(package.kind, package.model, package.version),
        package=package,
        url=package.url(repository_url),
        percent=percent,
        named=tuple(sorted(set(named))),
        created_at=now or datetime.now(UTC),
    )


@dataclass(frozen=True, slots=True)
class TerminalProgress:
    """One terminal in a rollout.

    Attributes:
        terminal_id: the terminal.
        state: how far it got.
        firmware_version: what it reported running, last time it answered.
        message: the terminal's (or the link's) explanation of a failure.
        updated_at: when this changed.
    """

    terminal_id: str
    state: Progress
    firmware_version: str | None
    message: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """A rollout and its terminals' progress: what the admin page and ``update status`` show.

    Attributes:
        rollout: the rollout.
        terminals: each terminal's progress, by terminal id.
    """

    rollout: Rollout
    terminals: tuple[TerminalProgress, ...]

    @property
    def counts(self) -> dict[Progress, int]:
        """How many terminals are at each stage (every stage present, zero or not)."""
        found = Counter(progress.state for progress in self.terminals)
        return {state: found.get(state, 0) for state in Progress}

    @property
    def done(self) -> int:
        """Terminals that reached a final stage."""
        return sum(1 for progress in self.terminals if progress.state in FINAL)

    @property
    def complete(self) -> bool:
        """Whether every terminal reached a final stage."""
        return self.done == len(self.terminals)


class RolloutStore(Protocol):
    """Where rollouts and their progress are kept."""

    def save_rollout(self, rollout: Rollout, terminal_ids: Sequence[str]) -> None:
        """Create or widen ``rollout``; ``terminal_ids`` not in it yet are added as pending."""

    def set_progress(
        self,
        rollout_id: str,
        terminal_id: str,
        state: Progress,
        *,
        firmware_version: str | None = None,
        message: str | None = None,
        at: datetime,
    ) -> None:
        """Record one terminal's progress."""

    def status(self, rollout_id: str) -> RolloutStatus | None:
        """The rollout and its progress, if it exists."""


class TerminalLinks(Protocol):
    """The links to the terminals (a :class:`~shouyin.link.server.LinkServer`)."""

    async def wait_ready(self, terminal_id: str, timeout: float) -> LinkEndpoint:
        """The terminal's endpoint once it is logged in."""


def classify_answer(response: AdminResponse, version: str) -> tuple[Progress, str | None]:
    """What a terminal's answer to the update request means: ``(progress, message)``.

    ``installed`` when it runs ``version`` now; ``current`` when it runs that version or a
    newer one of the same line anyway (it refused a downgrade); ``rolled_back`` when it answered
    ``incompatible`` (the new slot failed its self-test); ``failed`` otherwise (it still runs
    its old version).
    """
    running = response.firmware_version
    if response.result is Result.SUCCESS and running == version:
        return Progress.INSTALLED, None
    if _runs_at_least(running, version):
        return Progress.CURRENT, None  # it refused a version it already runs (or a newer one)
    if response.error_condition is ErrorCondition.INCOMPATIBLE:
        return Progress.ROLLED_BACK, response.message
    return Progress.FAILED, response.message or (
        response.error_condition.value if response.error_condition else "unexpected answer"
    )


ProgressListener = Callable[[TerminalProgress], None]


def _runs_at_least(running: str | None, version: str) -> bool:
    """Whether a terminal running ``running`` has ``version`` or newer (of the same line)."""
    if running is None:
        return False
    order = compare_versions(running, version)
    return order is not None and order >= 0


async def _update_one(
    rollout: Rollout, terminal_id: str, links: TerminalLinks, timeout: float
) -> tuple[Progress, str | None, str | None]:
    """Tell one terminal; ``(progress, firmware it runs, message)``."""
    version = rollout.package.version
    try:
        endpoint = await links.wait_ready(terminal_id, timeout)
        peer = endpoint.peer
        running = peer.capabilities.firmware if peer is not None else None
        if _runs_at_least(running, version):
            return Progress.CURRENT, running, None
        answer = await endpoint.request(rollout.request(endpoint.new_service_id()), timeout=timeout)
    except TimeoutError:
        return Progress.FAILED, None, "no answer (not connected?)"
    except LinkError as error:
        return Progress.FAILED, None, str(error)[:200]
    if not isinstance(answer, AdminResponse):
        return Progress.FAILED, None, f"unexpected {answer.type}"
    state, message = classify_answer(answer, version)
    return state, answer.firmware_version, message


async def run_rollout(
    rollout: Rollout,
    store: RolloutStore,
    links: TerminalLinks,
    *,
    timeout: float = DEFAULT_TERMINAL_TIMEOUT,
    on_progress: ProgressListener | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RolloutStatus:
    """Tell every terminal of ``rollout`` that is not done yet to install the package, one at a
    time, recording each one's progress; return the progress afterwards.

    Args:
        rollout: the rollout (saved with :meth:`RolloutStore.save_rollout` first).
        store: where progress is recorded.
        links: gives each terminal's link endpoint.
        timeout: seconds per terminal, to connect and to answer.
        on_progress: called at every change (the CLI's progress bar).
        now: the clock for the records.

    Raises:
        UnknownRollout: the store does not have the rollout (not saved, or removed meanwhile).
    """
    status = rollout_status(store, rollout)
    for progress in status.terminals:
        if progress.state in FINAL:
            continue
        terminal_id = progress.terminal_id
        store.set_progress(rollout.rollout_id, terminal_id, Progress.DOWNLOADING, at=now())
        if on_progress is not None:
            on_progress(TerminalProgress(terminal_id, Progress.DOWNLOADING, None, None, now()))
        state, running, message = await _update_one(rollout, terminal_id, links, timeout)
        at = now()
        store.set_progress(
            rollout.rollout_id,
            terminal_id,
            state,
            firmware_version=running,
            message=message,
            at=at,
        )
        logger.info("rollout %s: %s %s (%s)", rollout.rollout_id, terminal_id, state, message)
        if on_progress is not None:
            on_progress(TerminalProgress(terminal_id, state, running, message, at))
    return rollout_status(store, rollout)


def rollout_status(store: RolloutStore, rollout: Rollout) -> RolloutStatus:
    """The stored progress of ``rollout``.

    Raises:
        UnknownRollout: the store does not have it (:meth:`RolloutStore.save_rollout` first).
    """
    status = store.status(rollout.rollout_id)
    if status is None:
        raise UnknownRollout(rollout.package.version)
    return status
