"""Typed errors of the retail domain.

Every error the domain raises derives from :class:`DomainError`, so callers (CLI, web) can turn any
of them into a user message in exactly one place. Errors carry the offending value as context.
"""

from __future__ import annotations


class DomainError(Exception):
    """Root of every error raised by :mod:`shouyin.domain`."""


class InvalidAmount(DomainError, ValueError):
    """An amount of money is malformed, negative where it must not be, or not in whole fen."""


class InvalidBarcode(DomainError, ValueError):
    """A scanned or entered code is not a valid barcode (wrong length, characters or check digit)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"invalid barcode {code!r}: {reason}")
        self.code = code
        self.reason = reason


class UnknownProduct(DomainError, LookupError):
    """A valid code matches no product in the catalogue."""

    def __init__(self, code: str) -> None:
        super().__init__(f"no product for code {code!r}")
        self.code = code


class InvalidProduct(DomainError, ValueError):
    """A product record breaks a catalogue rule (bad price, duplicate barcode, ...)."""


class SaleStateError(DomainError):
    """An operation is not allowed in the sale's current state (e.g. adding a line once paid)."""


class TenderError(DomainError, ValueError):
    """A tender is not acceptable (over the amount due for a card, zero amount, ...)."""


class ReturnError(DomainError, ValueError):
    """A return asks for more than was sold, or refers to a sale that cannot be returned."""


class ShiftError(DomainError):
    """A shift operation is not allowed (selling with no open shift, closing twice, ...)."""


class AuthError(DomainError):
    """Root of authentication and authorisation failures."""


class InvalidCredentials(AuthError):
    """Wrong user name or password. Deliberately does not say which."""


class AccountLocked(AuthError):
    """Too many failed logins: the account is locked until a time or an admin unlock."""


class PermissionDenied(AuthError):
    """The user's role does not allow the action (e.g. a cashier approving a void)."""
