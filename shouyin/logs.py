"""Logging set-up shared by every shouyin program: the card-data scrubber on every record.

:class:`PanScrubber` rewrites a record before it reaches a handler: track-2 strings and
Luhn-valid card numbers become their masked form (first 6 + last 4). Put it on handlers (a
handler filter sees the records of every logger below it) with :func:`install_scrubber`; the
acquirer also puts it on its own loggers, so the scrubbing holds even under a foreign handler.
"""

from __future__ import annotations

import logging

from shouyin.domain.carddata import scrub

__all__ = ["PanScrubber", "configure_logging", "install_scrubber"]


class PanScrubber(logging.Filter):
    """A logging filter that masks card numbers and track 2 in a record (never drops it).

    The message is formatted with its arguments, scrubbed, and stored back with no arguments;
    an exception's text and the stack text are scrubbed too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; always keep it."""
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def install_scrubber(logger: logging.Logger | None = None) -> None:
    """Attach a :class:`PanScrubber` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, PanScrubber) for f in handler.filters):
            handler.addFilter(PanScrubber())


def configure_logging(
    level: int | str = logging.WARNING,
    *,
    fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s",
    handlers: list[logging.Handler] | None = None,
) -> None:
    """Set up logging for a shouyin program: one place for every entry point.

    Replaces any earlier configuration (a sub-command's ``--log-level`` must win over the root
    command's default) and puts the card-data scrubber on every handler.

    Args:
        level: a level number or name (``"info"`` works too).
        fmt: the record format.
        handlers: the handlers (default: one stream handler on standard error).
    """
    if isinstance(level, str):
        level = level.upper()
    logging.basicConfig(level=level, format=fmt, handlers=handlers, force=True)
    install_scrubber()
