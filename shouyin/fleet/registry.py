"""The terminal registry: the store's payment terminals (电签POS) and how far each is trusted.

A :class:`Terminal` is registered by the admin (``shouyin fleet add``) with its 终端号 (8
characters), the lane it serves, a display name and, for a terminal on a serial cable, the link URL
(``serial:///dev/ttyUSB0?baud=115200``). A network terminal has no URL: it dials the cashier
system in over TLS.

Life cycle (one table, :data:`TRANSITIONS`; a missing entry is an :class:`InvalidTransition`)::

    REGISTERED --pair--> PAIRED --pair--> PAIRED     re-pairing: a new key and certificate
         |                  |
         +----revoke----> REVOKED --pair--> PAIRED   a revoked terminal may be paired afresh

Revoking a revoked terminal is not a transition: :func:`shouyin.fleet.pairing.revoke` then only
makes sure its certificate and key are gone.

The record holds no secret: the long-term key is encrypted in the key store directory
(:mod:`shouyin.fleet.keys`) and the certificate lives in the store's
:class:`~shouyin.link.keystore.KeyStore`; the record names them only by ``key_id`` and
certificate serial, both safe to show.

Services (plain functions over a :class:`TerminalUnitOfWork`) are at the end of the module.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self

from shouyin.domain.carddata import scrub
from shouyin.link.transport import AddressError, LinkAddress

if TYPE_CHECKING:
    from shouyin.store.audit_repo import AuditLog

__all__ = [
    "MAX_NAME_LENGTH",
    "TERMINAL_ID_LENGTH",
    "TRANSITIONS",
    "FleetError",
    "InvalidTerminal",
    "InvalidTransition",
    "Terminal",
    "TerminalAction",
    "TerminalExists",
    "TerminalRepository",
    "TerminalState",
    "TerminalUnitOfWork",
    "UnknownTerminal",
    "get_terminal",
    "list_terminals",
    "normalise_link_url",
    "register_terminal",
    "validate_lane_id",
    "validate_terminal_id",
]

TERMINAL_ID_LENGTH: Final = 8
"""A terminal id (终端号) is exactly this many ASCII letters and digits."""
MAX_NAME_LENGTH: Final = 100
"""Longest display name."""

_TERMINAL_ID: Final = re.compile(r"^[0-9A-Za-z]{8}$")
_LANE_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,32}$")  # also a valid link ``ecr_id``
_MAX_URL: Final = 255


# -- errors ----------------------------------------------------------------------------------------


class FleetError(Exception):
    """Root of the errors of :mod:`shouyin.fleet`."""


class InvalidTerminal(FleetError, ValueError):
    """A terminal field is not valid (the caller's input).

    Attributes:
        field: ``terminal_id``, ``lane_id``, ``display_name`` or ``link_url``.
        reason: what is wrong.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class TerminalExists(FleetError):
    """A terminal with this id is already registered.

    Attributes:
        terminal_id: the id.
    """

    def __init__(self, terminal_id: str) -> None:
        super().__init__(f"terminal {terminal_id} is already registered")
        self.terminal_id = terminal_id


class UnknownTerminal(FleetError):
    """No terminal with this id is registered.

    Attributes:
        terminal_id: the id.
    """

    def __init__(self, terminal_id: str) -> None:
        super().__init__(f"no terminal {terminal_id} is registered")
        self.terminal_id = terminal_id


class InvalidTransition(FleetError):
    """The action is not allowed in the terminal's state (see :data:`TRANSITIONS`)."""


# -- validation ------------------------------------------------------------------------------------


def validate_terminal_id(terminal_id: str) -> str:
    """Check a 终端号: exactly 8 ASCII letters or digits.

    Returns:
        The id, unchanged (ids are case sensitive, as on the acquirer's side).

    Raises:
        InvalidTerminal: anything else.
    """
    if not _TERMINAL_ID.fullmatch(terminal_id):
        raise InvalidTerminal("terminal_id", "must be exactly 8 ASCII letters or digits")
    return terminal_id


def validate_lane_id(lane_id: str) -> str:
    """Check a lane id (1-32 of ``A-Z a-z 0-9 . _ -``; it is also the link's ``ecr_id``).

    Raises:
        InvalidTerminal: anything else.
    """
    if not _LANE_ID.fullmatch(lane_id):
        raise InvalidTerminal("lane_id", "1-32 letters, digits, '.', '_' or '-'")
    return lane_id


def normalise_link_url(url: str | None) -> str | None:
    """Check a terminal's link URL and return its canonical form.

    Only ``serial://`` URLs are registered: a network terminal has none (it dials in over TLS).

    Args:
        url: ``serial:///dev/ttyUSB0?baud=115200``, ``serial://COM3``, or ``None``/empty.

    Returns:
        The canonical URL (the baud rate always spelt out), or ``None``.

    Raises:
        InvalidTerminal: not a valid serial URL.
    """
    if url is None or not url.strip():
        return None
    try:
        address = LinkAddress.parse(url)
    except AddressError as error:
        raise InvalidTerminal("link_url", str(error)) from None
    if not address.is_serial:
        raise InvalidTerminal(
            "link_url", "only serial:// URLs; a network terminal has none (it dials in)"
        )
    canonical = address.url()
    if len(canonical) > _MAX_URL:
        raise InvalidTerminal("link_url", f"longer than {_MAX_URL} characters")
    return canonical


def _display_name(name: str, terminal_id: str) -> str:
    text = " ".join(name.split())  # no control characters or line breaks in a table cell
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidTerminal("display_name", f"longer than {MAX_NAME_LENGTH} characters")
    return scrub(text) or terminal_id


# -- the aggregate ---------------------------------------------------------------------------------


class TerminalState(StrEnum):
    """How far a terminal is trusted."""

    REGISTERED = "registered"
    """Known, never paired: it cannot log in."""
    PAIRED = "paired"
    """Holds a long-term key (and, on the network, a TLS client certificate)."""
    REVOKED = "revoked"
    """Its certificate is revoked and its key deleted: it cannot log in until paired again."""


class TerminalAction(StrEnum):
    """What the admin does to a terminal."""

    PAIR = "pair"
    REVOKE = "revoke"


TRANSITIONS: Final[Mapping[TerminalState, Mapping[TerminalAction, TerminalState]]] = {
    TerminalState.REGISTERED: {
        TerminalAction.PAIR: TerminalState.PAIRED,
        TerminalAction.REVOKE: TerminalState.REVOKED,
    },
    TerminalState.PAIRED: {
        TerminalAction.PAIR: TerminalState.PAIRED,
        TerminalAction.REVOKE: TerminalState.REVOKED,
    },
    TerminalState.REVOKED: {
        TerminalAction.PAIR: TerminalState.PAIRED,
    },
}
"""Every allowed (state, action) and the state it leads to."""


@dataclass(frozen=True, slots=True)
class Terminal:
    """A registered payment terminal. Immutable: the methods return the changed copy.

    Attributes:
        terminal_id: the 终端号 (8 letters or digits).
        lane_id: the lane (收银台) it serves; also the cashier system's link identity.
        display_name: what the admin calls it (defaults to the id).
        link_url: canonical ``serial://`` URL, or ``None`` for a network terminal.
        state: see :class:`TerminalState`.
        registered_at: when it was added.
        paired_at: when it was last paired.
        key_id: the public id of its current long-term key (8 hex digits).
        certificate_serial: its current TLS client certificate's serial (hex), if any.
        certificate_expires_at: when that certificate expires.
        revoked_at: when it was last revoked.
        firmware_version: as reported at Login (filled in by the lane service, later).
        last_seen_at: last Login or heartbeat (filled in by the lane service, later).
    """

    terminal_id: str
    lane_id: str
    display_name: str
    link_url: str | None
    state: TerminalState
    registered_at: datetime
    paired_at: datetime | None = None
    key_id: str | None = None
    certificate_serial: str | None = None
    certificate_expires_at: datetime | None = None
    revoked_at: datetime | None = None
    firmware_version: str | None = None
    last_seen_at: datetime | None = None

    @classmethod
    def register(
        cls,
        terminal_id: str,
        lane_id: str,
        *,
        now: datetime,
        display_name: str = "",
        link_url: str | None = None,
    ) -> Terminal:
        """A newly registered terminal, with every field checked.

        Raises:
            InvalidTerminal: a field is not valid.
        """
        validate_terminal_id(terminal_id)
        return cls(
            terminal_id=terminal_id,
            lane_id=validate_lane_id(lane_id),
            display_name=_display_name(display_name, terminal_id),
            link_url=normalise_link_url(link_url),
            state=TerminalState.REGISTERED,
            registered_at=now,
        )

    @property
    def link_address(self) -> LinkAddress | None:
        """The parsed serial link URL, or ``None`` for a network terminal."""
        return LinkAddress.parse(self.link_url) if self.link_url else None

    @property
    def is_serial(self) -> bool:
        """Attached by a serial cable (else it dials in over the network)."""
        return self.link_url is not None

    def _after(self, action: TerminalAction) -> TerminalState:
        target = TRANSITIONS[self.state].get(action)
        if target is None:
            raise InvalidTransition(
                f"terminal {self.terminal_id}: cannot {action.value} when {self.state.value}"
            )
        return target

    def paired(
        self,
        *,
        at: datetime,
        key_id: str,
        certificate_serial: str | None,
        certificate_expires_at: datetime | None,
    ) -> Terminal:
        """The terminal after a successful (re-)pairing.

        Raises:
            InvalidTransition: never in practice (pairing is allowed in every state).
        """
        return dataclasses.replace(
            self,
            state=self._after(TerminalAction.PAIR),
            paired_at=at,
            key_id=key_id,
            certificate_serial=certificate_serial,
            certificate_expires_at=certificate_expires_at,
        )

    def revoked(self, *, at: datetime) -> Terminal:
        """The terminal after its certificate was revoked and its key deleted.

        Raises:
            InvalidTransition: it is already revoked.
        """
        return dataclasses.replace(
            self,
            state=self._after(TerminalAction.REVOKE),
            revoked_at=at,
            key_id=None,
        )

    def seen(self, *, at: datetime, firmware_version: str | None = None) -> Terminal:
        """The terminal after it logged in or answered a heartbeat at ``at``."""
        return dataclasses.replace(
            self,
            last_seen_at=at,
            firmware_version=firmware_version or self.firmware_version,
        )


# -- storage interface -----------------------------------------------------------------------------


class TerminalRepository(Protocol):
    """Storage of :class:`Terminal` records.

    The SQL one is :class:`shouyin.store.terminal_repo.SqlTerminalRepository`.
    """

    def get(self, terminal_id: str) -> Terminal | None:
        """The terminal with this id, or ``None``."""
        ...

    def add(self, terminal: Terminal) -> None:
        """Insert a new terminal.

        Raises:
            TerminalExists: the id is taken.
        """
        ...

    def save(self, terminal: Terminal) -> None:
        """Write back a changed terminal.

        Raises:
            UnknownTerminal: it was never added.
        """
        ...

    def list(self, lane_id: str | None = None) -> builtins.list[Terminal]:
        """Every terminal (of one lane, if given), by lane then terminal id."""
        ...


class TerminalUnitOfWork(Protocol):
    """One transaction over the terminal registry; rolled back unless :meth:`commit` is called."""

    @property
    def terminals(self) -> TerminalRepository:
        """The registry's repository, valid inside the ``with`` block."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit log, in the same transaction (issue 7: pairing and revocation are audited)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make the block's writes durable."""
        ...


# -- services --------------------------------------------------------------------------------------


def register_terminal(
    uow: TerminalUnitOfWork,
    terminal_id: str,
    *,
    lane_id: str,
    now: datetime,
    display_name: str = "",
    link_url: str | None = None,
) -> Terminal:
    """Register a terminal (``shouyin fleet add``).

    Args:
        uow: the registry's unit of work.
        terminal_id: the 终端号.
        lane_id: the lane it serves.
        now: the current time (aware).
        display_name: optional name (the id when empty).
        link_url: ``serial://...`` for a serial terminal, ``None`` for a network one.

    Returns:
        The new record.

    Raises:
        InvalidTerminal: a field is not valid.
        TerminalExists: the id is already registered.
    """
    terminal = Terminal.register(
        terminal_id, lane_id, now=now, display_name=display_name, link_url=link_url
    )
    with uow:
        uow.terminals.add(terminal)
        uow.commit()
    return terminal


def get_terminal(uow: TerminalUnitOfWork, terminal_id: str) -> Terminal:
    """The registered terminal with this id.

    Raises:
        InvalidTerminal: not a valid id.
        UnknownTerminal: not registered.
    """
    validate_terminal_id(terminal_id)
    with uow:
        terminal = uow.terminals.get(terminal_id)
    if terminal is None:
        raise UnknownTerminal(terminal_id)
    return terminal


def list_terminals(uow: TerminalUnitOfWork, lane_id: str | None = None) -> list[Terminal]:
    """Every registered terminal (of one lane, if given), by lane then terminal id."""
    with uow:
        return uow.terminals.list(lane_id)
