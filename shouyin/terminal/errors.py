"""Errors of the terminal simulator; :class:`TerminalError` is the root of them all."""

from __future__ import annotations

__all__ = [
    "AcquirerFailure",
    "AcquirerNoAnswer",
    "AcquirerUnavailable",
    "PowerLoss",
    "StateError",
    "TerminalError",
]


class TerminalError(Exception):
    """Root of every error raised by :mod:`shouyin.terminal`."""


class AcquirerFailure(TerminalError):
    """A request to the acquirer brought no answer.

    Attributes:
        operation: which request (``sale``, ``reverse``...).
        reason: why.
    """

    def __init__(self, operation: str, reason: str = "no answer") -> None:
        super().__init__(f"acquirer {operation}: {reason}")
        self.operation = operation
        self.reason = reason


class AcquirerNoAnswer(AcquirerFailure):
    """The request was (or may have been) sent and no answer came: its outcome is unknown, so a
    financial request must be reversed."""


class AcquirerUnavailable(AcquirerFailure):
    """The acquirer could not be reached and nothing was sent: nothing happened."""


class PowerLoss(TerminalError):
    """A fault switch cut the power at a named step; the process wrapper exits at once.

    Attributes:
        step: the step at which the power went.
    """

    def __init__(self, step: str) -> None:
        super().__init__(f"power lost at {step}")
        self.step = step


class StateError(TerminalError):
    """The state directory cannot be used (wrong schema, locked, unwritable)."""
