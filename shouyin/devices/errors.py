"""Errors of the lane's devices: one root, and a kind the cashier's message is chosen by."""

from __future__ import annotations

from enum import StrEnum

from shouyin.devices.messages import t

__all__ = ["DeviceError", "DisplayError", "PrinterError", "PrinterErrorKind", "ScannerError"]


class DeviceError(Exception):
    """Root of the errors of :mod:`shouyin.devices`; ``user_message()`` is for the cashier."""

    def user_message(self, lang: str | None = None) -> str:
        """The message to show (Chinese by default)."""
        return str(self)


class PrinterErrorKind(StrEnum):
    """Why a print or a drawer kick did not happen."""

    CONFIG = "config"  # the printer setting is wrong
    NOT_CONFIGURED = "not_configured"
    OFFLINE = "offline"  # cannot connect, or the connection broke
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"


class PrinterError(DeviceError):
    """The receipt printer failed; :attr:`kind` says why, :attr:`detail` gives the technical cause.

    Args:
        kind: why.
        detail: the underlying error (for the log; may be shown to an admin).
    """

    def __init__(self, kind: PrinterErrorKind, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        self.drawer_opened = False  # the receipt failed, but the drawer was opened (cash sale)
        super().__init__(f"{self.user_message('en')}" + (f" ({detail})" if detail else ""))

    def user_message(self, lang: str | None = None) -> str:
        """The cashier's message for this kind of failure."""
        return t(f"devices.printer.{self.kind.value}", lang)


class DisplayError(DeviceError):
    """The customer display could not be opened or written."""

    def user_message(self, lang: str | None = None) -> str:
        """The cashier's message."""
        return t("devices.display.failed", lang, detail=str(self))


class ScannerError(DeviceError):
    """The serial scanner could not be opened or read."""

    def user_message(self, lang: str | None = None) -> str:
        """The cashier's message."""
        return t("devices.scanner.failed", lang, detail=str(self))
