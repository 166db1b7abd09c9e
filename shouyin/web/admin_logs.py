"""The server's recent log lines, kept in memory for the admin's log page.

:class:`LogRing` is a logging handler holding the last :data:`DEFAULT_CAPACITY` records as
:class:`LogLine` values (a bounded deque: memory stays flat however long the server runs). It
carries its own :class:`~shouyin.logs.PanScrubber`, so a line is card-scrubbed before it is kept
even when the program's logging was set up without one; the admin page never sees a full card
number. Lines are numbered, so that the page can ask for "what came after line n" only.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shouyin.logs import PanScrubber

__all__ = ["DEFAULT_CAPACITY", "LogLine", "LogRing", "install_log_ring"]

DEFAULT_CAPACITY: Final = 2000
"""Lines kept by default (a few hundred kilobytes at most)."""
_MAX_MESSAGE: Final = 2000  # characters of one message kept (a traceback is cut here)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log record as the admin sees it.

    Attributes:
        seq: increasing number of the line (from 1).
        at: when it was logged (UTC).
        level: ``DEBUG`` ... ``CRITICAL``.
        logger: the logger's name.
        message: the scrubbed message, with the exception text if any.
    """

    seq: int
    at: datetime
    level: str
    logger: str
    message: str


class LogRing(logging.Handler):
    """A bounded, thread-safe, card-scrubbed in-memory log (see the module docstring).

    Args:
        capacity: lines kept; older ones are dropped.
        level: the least severe level kept.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, level: int = logging.INFO) -> None:
        super().__init__(level)
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.addFilter(PanScrubber())
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._numbers = itertools.count(1)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep ``record`` (already scrubbed by the handler's filter)."""
        try:
            message = record.getMessage()
            if record.exc_text:
                message = f"{message}\n{record.exc_text}"
            at = datetime.fromtimestamp(record.created, UTC)
            with self._guard:
                self._lines.append(
                    LogLine(
                        next(self._numbers),
                        at,
                        record.levelname,
                        record.name,
                        message[:_MAX_MESSAGE],
                    )
                )
        except Exception:  # a log handler must never raise into the code that logged
            self.handleError(record)

    def lines(
        self,
        *,
        after: int = 0,
        min_level: int = logging.NOTSET,
        logger_prefix: str = "",
        contains: str = "",
        limit: int = 200,
    ) -> list[LogLine]:
        """The newest matching lines, oldest first.

        Args:
            after: only lines numbered above this.
            min_level: only this level or more severe.
            logger_prefix: only loggers whose name starts with this.
            contains: only messages containing this text (case-insensitive).
            limit: at most this many (the newest).
        """
        needle = contains.casefold()
        with self._guard:
            snapshot = list(self._lines)
        found = [
            line
            for line in snapshot
            if line.seq > after
            and logging.getLevelName(line.level) >= min_level
            and line.logger.startswith(logger_prefix)
            and (not needle or needle in line.message.casefold())
        ]
        return found[-limit:] if limit > 0 else []


_install_guard = threading.Lock()


def install_log_ring(
    logger: logging.Logger | None = None, capacity: int = DEFAULT_CAPACITY
) -> LogRing:
    """The :class:`LogRing` on ``logger`` (default: the root logger), added once.

    Calling it again returns the handler already installed, so that several apps in one process
    (tests) share one ring instead of stacking handlers.
    """
    target = logger or logging.getLogger()
    with _install_guard:
        for handler in target.handlers:
            if isinstance(handler, LogRing):
                return handler
        ring = LogRing(capacity)
        target.addHandler(ring)
        return ring
