"""Pairing terminals from the admin page: :class:`PairingDesk`.

The page asks for a pairing; the desk opens a :class:`~shouyin.fleet.pairing.PairingSession`
(the very one behind ``shouyin fleet pair``: same checks, same one-time code, same storing of the
key and certificate) and waits for the terminal in a background task, so the request returns at
once with the code and the QR payload while the admin walks to the terminal. The page then polls
:meth:`PairingDesk.status` (or listens for the ``admin.pairing`` event) until the terminal is
paired, or the pairing failed and why.

Where the terminal connects:

* when the running server already listens for terminals (a lane with a paired network terminal:
  ``TerminalLinks.server``), the pairing is opened *on that server* with
  :meth:`~shouyin.link.server.LinkServer.allow_pairing`: the link port cannot be bound twice,
  and the terminals already paired stay connected while another is paired;
* otherwise the session's own pairing server binds the link port for the pairing's duration,
  exactly as ``shouyin fleet pair`` does (a serial terminal: its port is opened).

A serial terminal that the running server already dials cannot be paired from the page while
its port is held: :class:`~shouyin.fleet.pairing.ListenFailed` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from shouyin.config import Settings
from shouyin.fleet.keys import TerminalKeyRing
from shouyin.fleet.pairing import PairingNotCompleted, PairingResult, PairingSession
from shouyin.fleet.registry import FleetError, TerminalUnitOfWork, validate_terminal_id
from shouyin.link.config import LinkConfig
from shouyin.link.pairing import PAIRING_CODE_LIFETIME, CertificateIssuer, PairingCode
from shouyin.link.pairing_qr import PairingPayload
from shouyin.link.server import LinkServer

__all__ = ["PairingBusy", "PairingDesk", "PairingPhase", "PairingTicket"]

logger = logging.getLogger(__name__)

_FINISHED_KEPT: Final = 50  # finished tickets remembered for the page (oldest dropped)


class PairingBusy(FleetError):
    """Another terminal's pairing is still waiting: one pairing at a time (the link port, or
    the running server's pairing door, serves one code).

    Attributes:
        terminal_id: the terminal whose pairing is waiting.
    """

    def __init__(self, terminal_id: str) -> None:
        super().__init__(f"terminal {terminal_id} is being paired; finish or cancel that first")
        self.terminal_id = terminal_id


class PairingPhase(StrEnum):
    """Where one pairing from the page is."""

    WAITING = "waiting"
    PAIRED = "paired"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PairingTicket:
    """One pairing as the page sees it.

    Attributes:
        terminal_id: the terminal being paired.
        phase: see :class:`PairingPhase`.
        code: the one-time code (only while waiting: it is a secret for its ten minutes).
        payload: the QR code's content (network terminals; only while waiting).
        where: the addresses the terminal may connect to (or the serial port).
        expires_at: when the code dies (UTC).
        reason: why it failed (a :class:`~shouyin.fleet.pairing.PairingFailure` value or an
            error's text), when it failed.
        re_paired: the terminal was paired before (its old key and certificate are replaced).
    """

    terminal_id: str
    phase: PairingPhase
    code: str | None
    payload: PairingPayload | None
    where: tuple[str, ...]
    expires_at: datetime
    reason: str | None = None
    re_paired: bool = False


class _SharedServerPairing(PairingSession):
    """A :class:`PairingSession` that pairs on the running :class:`LinkServer` instead of
    binding the link port itself (see the module docstring).

    The session listens for the server's pairings (:meth:`LinkServer.add_paired_listener`) for
    its own lifetime and stops on close.
    """

    def __init__(
        self,
        server: LinkServer,
        settings: Settings,
        terminal_id: str,
        *,
        registry: TerminalUnitOfWork,
        keyring: TerminalKeyRing,
        config: LinkConfig,
        wall_clock: Callable[[], datetime],
    ) -> None:
        super().__init__(
            settings,
            terminal_id,
            registry=registry,
            keyring=keyring,
            config=config,
            wall_clock=wall_clock,
        )
        self._shared = server
        self._unhook: Callable[[], None] | None = None

    async def _open_network(self, code: PairingCode, issuer: CertificateIssuer) -> tuple[str, ...]:
        server = self._shared
        self._unhook = server.add_paired_listener(self._on_paired)
        server.allow_pairing(code, issuer)
        return tuple(str(a) for a in server.addresses)

    async def close(self) -> None:
        if self._unhook is not None:
            unhook, self._unhook = self._unhook, None
            self._shared.allow_pairing(None)
            unhook()
        await super().close()


class PairingDesk:
    """The admin page's pairings: at most one open pairing per terminal.

    Args:
        settings: the installation's settings (lane id, link port, key store).
        registry: makes a terminal registry unit of work (the runtime's database).
        keyring: makes the key ring the keys go into.
        server: returns the running link server, if any.
        on_change: called with each ticket when its phase changes (e.g. to publish an event).
        config: link timeouts for the pairing.
        clock: aware UTC time.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Callable[[], TerminalUnitOfWork],
        keyring: Callable[[], TerminalKeyRing],
        server: Callable[[], LinkServer | None] = lambda: None,
        on_change: Callable[[PairingTicket], None] | None = None,
        config: LinkConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._keyring = keyring
        self._server = server
        self._on_change = on_change
        self.config = config or LinkConfig()
        self._clock = clock
        self._tickets: dict[str, PairingTicket] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def status(self, terminal_id: str) -> PairingTicket | None:
        """The terminal's current or last pairing from the page, if any."""
        return self._tickets.get(terminal_id)

    async def open(self, terminal_id: str, timeout: float = PAIRING_CODE_LIFETIME) -> PairingTicket:
        """Open a pairing (replacing any still waiting for this terminal) and return its ticket.

        Raises:
            PairingBusy: another terminal's pairing is waiting.
            InvalidTerminal, UnknownTerminal, WrongLane, StoreNotInitialised, KeyRingError,
            ListenFailed: as :class:`~shouyin.fleet.pairing.PairingSession` does on entering.
        """
        terminal_id = validate_terminal_id(terminal_id)
        for other in self._tasks:
            if other != terminal_id:
                raise PairingBusy(other)
        await self.cancel(terminal_id)
        server = self._server()
        registry, keyring = self._registry(), self._keyring()
        session: PairingSession
        if server is not None:
            session = _SharedServerPairing(
                server,
                self.settings,
                terminal_id,
                registry=registry,
                keyring=keyring,
                config=self.config,
                wall_clock=self._clock,
            )
        else:
            session = PairingSession(
                self.settings,
                terminal_id,
                registry=registry,
                keyring=keyring,
                config=self.config,
                wall_clock=self._clock,
            )
        await session.__aenter__()
        invitation = session.invitation
        lifetime = max(0.0, invitation.code.expires_at - asyncio.get_running_loop().time())
        ticket = PairingTicket(
            terminal_id=terminal_id,
            phase=PairingPhase.WAITING,
            code=invitation.code.digits,
            payload=invitation.payload,
            where=invitation.where,
            expires_at=self._clock() + timedelta(seconds=lifetime),
        )
        self._set(ticket)
        self._tasks[terminal_id] = asyncio.create_task(
            self._wait(session, ticket, min(timeout, lifetime) or 0.001),
            name=f"pairing {terminal_id}",
        )
        logger.info("pairing of terminal %s opened from the admin page", terminal_id)
        return ticket

    async def _wait(self, session: PairingSession, ticket: PairingTicket, timeout: float) -> None:
        try:
            result: PairingResult = await session.wait(timeout)
        except PairingNotCompleted as error:
            self._set(self._finish(ticket, PairingPhase.FAILED, reason=error.reason.value))
        except asyncio.CancelledError:
            self._set(self._finish(ticket, PairingPhase.CANCELLED))
            raise
        except Exception as error:  # the key ring or the registry failed: tell the page
            logger.exception("pairing of terminal %s failed", ticket.terminal_id)
            self._set(self._finish(ticket, PairingPhase.FAILED, reason=type(error).__name__))
        else:
            finished = self._finish(ticket, PairingPhase.PAIRED, re_paired=result.re_paired)
            self._set(finished)
        finally:
            await session.close()
            self._tasks.pop(ticket.terminal_id, None)

    @staticmethod
    def _finish(
        ticket: PairingTicket,
        phase: PairingPhase,
        *,
        reason: str | None = None,
        re_paired: bool = False,
    ) -> PairingTicket:
        """The ticket once finished: the code and QR payload are forgotten."""
        return PairingTicket(
            terminal_id=ticket.terminal_id,
            phase=phase,
            code=None,
            payload=None,
            where=ticket.where,
            expires_at=ticket.expires_at,
            reason=reason,
            re_paired=re_paired,
        )

    def _set(self, ticket: PairingTicket) -> None:
        self._tickets[ticket.terminal_id] = ticket
        if len(self._tickets) > _FINISHED_KEPT:
            for terminal_id in list(self._tickets):
                if self._tickets[terminal_id].phase is not PairingPhase.WAITING:
                    del self._tickets[terminal_id]
                    break
        if self._on_change is not None:
            try:
                self._on_change(ticket)
            except Exception:  # a listener's failure must not break the pairing
                logger.exception("pairing listener failed")

    async def wait_finished(self, terminal_id: str, timeout: float) -> PairingTicket | None:
        """Wait (bounded) until the terminal's pairing is no longer waiting; its ticket."""
        task = self._tasks.get(terminal_id)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
        return self._tickets.get(terminal_id)

    async def cancel(self, terminal_id: str) -> None:
        """Close the terminal's waiting pairing, if any (its code dies with it)."""
        task = self._tasks.pop(terminal_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Close every waiting pairing (server shutdown)."""
        for terminal_id in list(self._tasks):
            await self.cancel(terminal_id)
