"""The payment journal in SQL, and the lane unit of work that holds it with the sales.

:class:`SqlPaymentUnitOfWork` is :class:`~shouyin.store.uow.SqlUnitOfWork` plus ``payments``, a
:class:`SqlPaymentIntentRepository` on the *same* session: an intent's approval and the sale's
tender commit in one transaction, which the exactly-once argument of
:mod:`shouyin.payments.orchestrator` rests on. On a lane the commit is durable (SQLite WAL with
``synchronous=FULL``, :mod:`shouyin.store.engine`).

Statements are Core SQL on the session's connection, like the other hot-path repositories.
``unsettled`` filters on the exact state list of the partial index ``ix_payment_intents_unsettled``
so both SQLite and PostgreSQL read only the few intents recovery has to look at.
"""

from __future__ import annotations

import builtins
import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shouyin.domain.money import Money
from shouyin.domain.sale_lines import TenderKind
from shouyin.link.values import Wallet
from shouyin.payments.journal import IntentKind, IntentState, PaymentIntent, format_ecr_ref
from shouyin.store.catalogue_repo import SqlCatalogue
from shouyin.store.repositories import Conflict
from shouyin.store.tables import UNSETTLED_INTENT, PaymentIntentRow, table
from shouyin.store.uow import SqlUnitOfWork

__all__ = ["SqlPaymentIntentRepository", "SqlPaymentUnitOfWork"]

_P = table(PaymentIntentRow)
_UNSETTLED = text(UNSETTLED_INTENT)
_COUNTER_END = ":"  # sorts right after "9": the upper bound of a day's ecr_refs

# The statements of every payment, built once so that SQLAlchemy computes their cache keys once.
_GET = select(_P).where(_P.c.ecr_ref == bindparam("ecr_ref"))
_FOR_SALE = (
    select(_P).where(_P.c.sale_id == bindparam("sale_id")).order_by(_P.c.created_at, _P.c.ecr_ref)
)
_SAVE = update(_P).where(_P.c.ecr_ref == bindparam("key_ecr_ref"))
_HIGHEST = select(func.max(_P.c.ecr_ref)).where(
    _P.c.ecr_ref >= bindparam("low"), _P.c.ecr_ref < bindparam("high")
)


def _values(intent: PaymentIntent) -> dict[str, Any]:
    return {
        "ecr_ref": intent.ecr_ref,
        "kind": intent.kind.value,
        "sale_id": intent.sale_id,
        "lane_id": intent.lane_id,
        "tender_kind": intent.tender_kind.value,
        "amount": intent.amount.fen,
        "state": intent.state.value,
        "created_at": intent.created_at,
        "updated_at": intent.updated_at,
        "operator_id": intent.operator_id,
        "wallet": intent.wallet.value if intent.wallet is not None else None,
        "code_tail": intent.code_tail,
        "original_ecr_ref": intent.original_ecr_ref,
        "attempts": intent.attempts,
        "sent_at": intent.sent_at,
        "resolved_at": intent.resolved_at,
        "tender_no": intent.tender_no,
        "rrn": intent.rrn,
        "trace": intent.trace,
        "batch": intent.batch,
        "approval_code": intent.approval_code,
        "masked_pan": intent.masked_pan,
        "error_condition": intent.error_condition,
        "message": intent.message,
        "details": json.dumps(dict(intent.details), ensure_ascii=False, sort_keys=True),
    }


def _intent_from(row: RowMapping) -> PaymentIntent:
    return PaymentIntent(
        ecr_ref=row["ecr_ref"],
        kind=IntentKind(row["kind"]),
        sale_id=row["sale_id"],
        lane_id=row["lane_id"],
        tender_kind=TenderKind(row["tender_kind"]),
        amount=Money(row["amount"]),
        state=IntentState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        operator_id=row["operator_id"],
        wallet=Wallet(row["wallet"]) if row["wallet"] is not None else None,
        code_tail=row["code_tail"],
        original_ecr_ref=row["original_ecr_ref"],
        attempts=row["attempts"],
        sent_at=row["sent_at"],
        resolved_at=row["resolved_at"],
        tender_no=row["tender_no"],
        rrn=row["rrn"],
        trace=row["trace"],
        batch=row["batch"],
        approval_code=row["approval_code"],
        masked_pan=row["masked_pan"],
        error_condition=row["error_condition"],
        message=row["message"],
        details=json.loads(row["details"]),
    )


class SqlPaymentIntentRepository:
    """:class:`~shouyin.payments.journal.PaymentIntentRepository` on a SQLAlchemy session.

    Args:
        session: the unit of work's session; this repository never commits.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def _rows(self, query: Any) -> builtins.list[PaymentIntent]:
        return [_intent_from(row) for row in self._session.connection().execute(query).mappings()]

    def add(self, intent: PaymentIntent) -> None:
        """Insert a new intent.

        Raises:
            Conflict: if its ``ecr_ref`` is taken.
        """
        try:
            self._session.connection().execute(_P.insert(), _values(intent))
        except IntegrityError as error:
            raise Conflict(f"payment intent {intent.ecr_ref} already exists") from error

    def save(self, intent: PaymentIntent) -> None:
        """Write back a changed intent.

        Raises:
            LookupError: if it was never added.
        """
        values = _values(intent)
        values["key_ecr_ref"] = values.pop("ecr_ref")
        result = self._session.connection().execute(_SAVE, values)
        if result.rowcount != 1:
            raise LookupError(f"no payment intent {intent.ecr_ref} to save")

    def get(self, ecr_ref: str) -> PaymentIntent | None:
        """The intent with this ``ecr_ref``, or None."""
        row = self._session.connection().execute(_GET, {"ecr_ref": ecr_ref}).mappings().first()
        return None if row is None else _intent_from(row)

    def for_sale(self, sale_id: str) -> builtins.list[PaymentIntent]:
        """Every intent of a sale, oldest first."""
        rows = self._session.connection().execute(_FOR_SALE, {"sale_id": sale_id}).mappings()
        return [_intent_from(row) for row in rows]

    def unsettled(self, lane_id: str) -> builtins.list[PaymentIntent]:
        """The lane's open and retry-state intents, oldest first."""
        query = select(_P).where(_P.c.lane_id == lane_id, _UNSETTLED)
        return self._rows(query.order_by(_P.c.created_at, _P.c.ecr_ref))

    def journal(
        self,
        lane_id: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch: str | None = None,
    ) -> builtins.list[PaymentIntent]:
        """Every intent (read only, for settlement and reconciliation), by ``ecr_ref``.

        Args:
            lane_id: only this lane's.
            since: only those created at or after this time.
            until: only those created before this time.
            batch: only those the acquirer put in this batch.
        """
        query = select(_P)
        if lane_id is not None:
            query = query.where(_P.c.lane_id == lane_id)
        if since is not None:
            query = query.where(_P.c.created_at >= since)
        if until is not None:
            query = query.where(_P.c.created_at < until)
        if batch is not None:
            query = query.where(_P.c.batch == batch)
        return self._rows(query.order_by(_P.c.ecr_ref))

    def next_ecr_ref(self, lane_id: str, day: date) -> str:
        """One more than the highest counter of the lane's ecr_refs of ``day``."""
        prefix = format_ecr_ref(lane_id, day, 0)[:-6]
        bounds = {"low": prefix, "high": prefix + _COUNTER_END}
        highest = self._session.connection().execute(_HIGHEST, bounds).scalar()
        number = int(highest[len(prefix) :]) if highest and highest[len(prefix) :].isdigit() else 0
        return format_ecr_ref(lane_id, day, number + 1)


class SqlPaymentUnitOfWork(SqlUnitOfWork):
    """:class:`~shouyin.store.uow.SqlUnitOfWork` with the payment journal on the same session.

    Args:
        session_factory: from :func:`shouyin.store.uow.make_session_factory`.
        catalogue: as :class:`~shouyin.store.uow.SqlUnitOfWork`.
    """

    payments: SqlPaymentIntentRepository

    def __init__(
        self, session_factory: sessionmaker[Session], catalogue: SqlCatalogue | None = None
    ) -> None:
        super().__init__(session_factory, catalogue)
        # Stateless over the session, which the parent keeps for the unit of work's lifetime.
        self.payments = SqlPaymentIntentRepository(self._session)
