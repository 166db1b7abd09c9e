"""The terminal as the orchestrator sees it: a small port, and the channel that uses it.

:class:`TerminalPort` is the part of :class:`shouyin.link.aio.LinkEndpoint` the orchestrator
needs (a real endpoint satisfies it as it is); :class:`shouyin.payments.fakes.FakeTerminal` is
its in-memory twin. :class:`Channel` wraps a port with what every exchange needs:

* one financial request (Payment, Refund, Reversal) at a time, in this process, so that the
  background reversal retries never collide with a payment (the link would refuse with ``Busy``);
* the outcome of an exchange as a value, never an exception: an answer; or no answer, with
  whether the request provably never left (``LocalProtocolError``: not logged in, ``Busy``,
  which are raised before a byte is written) or might have (timeout, lost link);
* the kill point between "sent" and "answered", so a crash test can stop the process while the
  request is on the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from shouyin.link.aio import LinkLost, ProgressCallback
from shouyin.link.errors import LinkError, LinkTimeout, LocalProtocolError
from shouyin.link.messages import PaymentProgress, Request, Response
from shouyin.payments.killpoints import Checkpoint, KillPoint, no_checkpoint

__all__ = ["Channel", "Exchange", "TerminalPort"]

logger = logging.getLogger(__name__)


class TerminalPort(Protocol):
    """What the orchestrator needs from a terminal link (``LinkEndpoint`` satisfies it)."""

    def new_service_id(self) -> str:
        """A fresh ``service_id`` for a request."""
        ...

    async def wait_ready(self, timeout: float | None = None) -> object:
        """Wait until logged in.

        Raises:
            TimeoutError: not logged in within ``timeout`` seconds.
        """
        ...

    async def request(
        self,
        request: Request,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send ``request`` and await its response.

        Raises:
            LocalProtocolError: not sent (not logged in, ``Busy``...).
            LinkTimeout: no answer in time; LinkLost: the link went down first.
            TimeoutError: ``timeout`` passed.
        """
        ...


@dataclass(frozen=True, slots=True)
class Exchange:
    """The outcome of one request.

    Attributes:
        response: the answer, or ``None``.
        sent: ``False`` only when the request provably never left this process.
        condition: why there is no answer: ``not_sent``, ``timeout``, ``link_lost``,
            ``no_answer``.
        detail: the error's text, for the log.
    """

    response: Response | None
    sent: bool = True
    condition: str | None = None
    detail: str = ""


class Channel:
    """A :class:`TerminalPort` with the financial lock, kill points and no exceptions.

    Args:
        port: the terminal.
        checkpoint: the kill-point hook.
        query_timeout: bound in seconds on non-financial requests (the link has its own too).
    """

    def __init__(
        self,
        port: TerminalPort,
        checkpoint: Checkpoint = no_checkpoint,
        *,
        query_timeout: float | None = None,
    ) -> None:
        self.port = port
        self.checkpoint = checkpoint
        self.query_timeout = query_timeout
        self._financial = asyncio.Lock()

    def new_service_id(self) -> str:
        """A fresh ``service_id``."""
        return self.port.new_service_id()

    @contextlib.asynccontextmanager
    async def financial(self) -> AsyncIterator[None]:
        """Hold the terminal for a financial exchange (or several, e.g. a void and its retry)."""
        async with self._financial:
            yield

    @property
    def busy(self) -> bool:
        """Whether a financial exchange is under way in this process."""
        return self._financial.locked()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait (bounded) for the terminal link; ``False`` if it did not come up."""
        try:
            await self.port.wait_ready(timeout)
        except (TimeoutError, LinkError):
            return False
        return True

    async def exchange(
        self,
        request: Request,
        *,
        kill_point: KillPoint | None = None,
        after_send: Callable[[], None] | None = None,
        on_progress: Callable[[PaymentProgress], None] | None = None,
        timeout: float | None = None,
    ) -> Exchange:
        """Send ``request``, wait for its answer, and report what happened as a value.

        Financial requests must be sent inside :meth:`financial`.

        Args:
            request: the request (with a fresh ``service_id``).
            kill_point: passed to the checkpoint hook once the request had its chance to leave.
            after_send: then called (unless the request provably did not leave) while the
                answer is awaited: the orchestrator writes the ``sent`` state there.
            on_progress: receives the terminal's progress messages.
            timeout: extra bound in seconds.

        Returns:
            The answer, or why there is none.

        Raises:
            Exception: whatever ``after_send`` or the checkpoint hook raise (the request is then
                abandoned, as it would be if the process died there).
        """
        task = asyncio.ensure_future(
            self.port.request(request, on_progress=_guarded(on_progress), timeout=timeout)
        )
        try:
            await asyncio.sleep(0)  # one step: LinkEndpoint.request writes before its first await
            if kill_point is not None:
                self.checkpoint(kill_point)
            if after_send is not None and not _refused_locally(task):
                after_send()
            response = await task
        except LocalProtocolError as error:
            logger.warning("%s %s not sent: %s", request.type, request.service_id, error)
            return Exchange(None, sent=False, condition="not_sent", detail=str(error))
        except LinkLost as error:
            return Exchange(None, condition="link_lost", detail=str(error))
        except (LinkTimeout, TimeoutError) as error:
            return Exchange(None, condition="timeout", detail=str(error) or "timed out")
        except LinkError as error:
            return Exchange(None, condition="no_answer", detail=str(error))
        finally:
            if not task.done():  # the hook "killed" us: the request dies with the process
                task.cancel()
        return Exchange(response)


def _refused_locally(task: asyncio.Future[Response]) -> bool:
    """Whether the request already failed without leaving (not logged in, busy...)."""
    if not task.done() or task.cancelled():
        return False
    return isinstance(task.exception(), LocalProtocolError)


def _guarded(
    callback: Callable[[PaymentProgress], None] | None,
) -> ProgressCallback | None:
    """A progress callback whose failures are logged, never raised into the link."""
    if callback is None:
        return None

    def call(progress: PaymentProgress) -> None:
        try:
            callback(progress)
        except Exception:
            logger.exception("progress listener failed")

    return call
