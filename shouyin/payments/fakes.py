"""In-memory twins for payment tests: a unit of work with the journal, and a scriptable terminal.

:class:`FakePaymentUnitOfWork` is :class:`~shouyin.store.fakes.FakeUnitOfWork` plus ``payments``,
committed and rolled back together with the sales, exactly as the SQL one does.
:class:`~shouyin.payments.fake_terminal.FakeTerminal` (re-exported here) is the terminal's twin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from types import TracebackType
from typing import Self

from shouyin.domain.catalogue import Catalogue
from shouyin.payments.fake_terminal import FakeBehaviour, FakeTerminal, FakeTransaction
from shouyin.payments.journal import (
    OPEN_STATES,
    RETRY_STATES,
    PaymentIntent,
    format_ecr_ref,
)
from shouyin.store.fakes import FakeUnitOfWork
from shouyin.store.repositories import Conflict

__all__ = [
    "FakeBehaviour",
    "FakePaymentIntentRepository",
    "FakePaymentUnitOfWork",
    "FakeTerminal",
    "FakeTransaction",
]


class FakePaymentIntentRepository:
    """In-memory :class:`~shouyin.payments.journal.PaymentIntentRepository`."""

    def __init__(self, uow: FakePaymentUnitOfWork) -> None:
        self._uow = uow

    def add(self, intent: PaymentIntent) -> None:
        """Insert; Conflict if the ``ecr_ref`` is taken."""
        if intent.ecr_ref in self._uow.intents:
            raise Conflict(f"payment intent {intent.ecr_ref} already exists")
        self._uow.intents[intent.ecr_ref] = replace(intent, details=dict(intent.details))

    def save(self, intent: PaymentIntent) -> None:
        """Update; LookupError if never added."""
        if intent.ecr_ref not in self._uow.intents:
            raise LookupError(f"no payment intent {intent.ecr_ref} to save")
        self._uow.intents[intent.ecr_ref] = replace(intent, details=dict(intent.details))

    def get(self, ecr_ref: str) -> PaymentIntent | None:
        """The intent, or None."""
        return self._uow.intents.get(ecr_ref)

    def for_sale(self, sale_id: str) -> list[PaymentIntent]:
        """A sale's intents, oldest first."""
        return self._sorted(i for i in self._uow.intents.values() if i.sale_id == sale_id)

    def unsettled(self, lane_id: str) -> list[PaymentIntent]:
        """The lane's open and retry-state intents, oldest first."""
        states = OPEN_STATES | RETRY_STATES
        return self._sorted(
            i for i in self._uow.intents.values() if i.lane_id == lane_id and i.state in states
        )

    def next_ecr_ref(self, lane_id: str, day: date) -> str:
        """One more than the highest counter of the lane's ecr_refs of ``day``."""
        prefix = format_ecr_ref(lane_id, day, 0)[:-6]
        numbers = [int(r[len(prefix) :]) for r in self._uow.intents if r.startswith(prefix)]
        return format_ecr_ref(lane_id, day, max(numbers, default=0) + 1)

    @staticmethod
    def _sorted(intents: Iterable[PaymentIntent]) -> list[PaymentIntent]:
        return sorted(intents, key=lambda i: (i.created_at, i.ecr_ref))


class FakePaymentUnitOfWork(FakeUnitOfWork):
    """:class:`~shouyin.store.fakes.FakeUnitOfWork` with the payment journal, committed with it.

    Args:
        catalogue: the catalogue exposed as ``products``.
    """

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        super().__init__(catalogue)
        self._committed_intents: dict[str, PaymentIntent] = {}
        self._work_intents: dict[str, PaymentIntent] | None = None
        self.payments = FakePaymentIntentRepository(self)

    @property
    def intents(self) -> dict[str, PaymentIntent]:
        """What the journal sees: the block's working copy, or the committed intents outside."""
        return self._work_intents if self._work_intents is not None else self._committed_intents

    def __enter__(self) -> Self:
        super().__enter__()
        self._work_intents = dict(self._committed_intents)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        self._work_intents = None

    def commit(self) -> None:
        """Keep everything written in this block, journal included."""
        super().commit()
        assert self._work_intents is not None  # super() raised outside a block
        self._committed_intents = self._work_intents
        self._work_intents = dict(self._committed_intents)

    def rollback(self) -> None:
        """Drop everything written since the last commit, journal included."""
        super().rollback()
        self._work_intents = dict(self._committed_intents)
