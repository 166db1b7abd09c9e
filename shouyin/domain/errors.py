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
    """A scanned or entered code is not a valid barcode (bad length, characters or check digit)."""

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


class InvalidNomenclature(DomainError, ValueError):
    """A scale-barcode format or nomenclature spec is malformed or ambiguous (a config error)."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"invalid barcode nomenclature {spec!r}: {reason}")
        self.spec = spec
        self.reason = reason


class ScaleEncodingError(DomainError, ValueError):
    """A PLU, amount or weight does not fit the digits of a scale-barcode format."""


class InactiveProduct(DomainError):
    """The code matches a product that is no longer sold (kept only for history)."""

    def __init__(self, sku: str, name: str) -> None:
        super().__init__(f"product {sku} ({name}) is inactive and cannot be sold")
        self.sku = sku
        self.name = name


class PromotionError(DomainError, ValueError):
    """A promotion or manual discount is malformed (zero step, over 100% off, no reason, ...)."""


class DiscountError(DomainError, ValueError):
    """A manual discount asks for more than the amount it discounts."""


class UnknownLine(DomainError, LookupError):
    """A sale has no line (or tender) with the given number."""

    def __init__(self, what: str, number: int) -> None:
        super().__init__(f"no {what} number {number}")
        self.what = what
        self.number = number


class IllegalTransition(SaleStateError):
    """The sale's transition table has no entry for this command in the current state."""

    def __init__(self, state: str, command: str) -> None:
        super().__init__(f"cannot {command} a sale that is {state}")
        self.state = state
        self.command = command


class TendersOutstanding(SaleStateError):
    """A sale cannot be voided while approved card/QR tenders are live: void them first."""

    def __init__(self, ecr_refs: tuple[str, ...]) -> None:
        super().__init__(f"void the approved card/QR tenders first: {', '.join(ecr_refs)}")
        self.ecr_refs = ecr_refs


class CardDataError(DomainError, ValueError):
    """Card data breaks PCI rules (a full PAN, or a masked PAN that is not first 6 + last 4).

    The offending value is deliberately not part of the message: it may be a card number.
    """


class WeakPassword(AuthError, ValueError):
    """A new password or PIN does not satisfy the password rules for the user's role."""


class ReportError(DomainError):
    """A report cannot be built from the data given (e.g. a Z report with a shift still open)."""


class EmptySale(SaleStateError):
    """The operation needs at least one active line (hold, pay, complete)."""
