"""What happens after a payment: reversal (冲正) and QR revoke, status query (查询), and
settlement (结算) of a batch (sans-I/O; called by :class:`shouyin.acquirer.host.Host`).

Reversal (0400), keyed like the original by terminal + batch + trace:

* the original approved (or still waiting, for a QR order) -> ``reversed`` (QR: REVOKED);
  a reversed void gives its sale back its ``approved`` status; a reversed refund no longer
  counts against the sale;
* the original declined -> unchanged; the original unknown -> remembered as a reversal, so that
  the original is refused if it arrives later;
* answered ``00`` in all those cases, and again ``00`` for a repeated reversal (idempotent);
  ``13`` when the amount is not the original's, ``12`` when the original's batch is settled.

Query (0600): ``00`` with the original's status, response code and wallet state (a waiting QR
order resolves first if its time has come), or ``25`` when unknown.

Settlement (0500): waiting QR orders of the batch are resolved or closed, the host's totals are
computed and compared with the terminal's: ``00`` balanced, ``95`` not; either way the batch is
closed (its approved transactions become ``settled``) and a repeated 0500 gets the same answer.
"""

from __future__ import annotations

from datetime import datetime

from shouyin.acquirer.codes import ResponseCode, TotalsKind, TxnKind, TxnStatus, WalletStatus
from shouyin.acquirer.financial import Financial, answer_header
from shouyin.acquirer.ledger import Ledger, SettlementRecord, Txn
from shouyin.acquirer.messages import (
    BatchTotals,
    KindTotals,
    QueryRequest,
    QueryResponse,
    ReversalRequest,
    ReversalResponse,
    SettlementRequest,
    SettlementResponse,
)
from shouyin.acquirer.pan import get_logger

__all__ = ["Aftercare", "host_totals"]

logger = get_logger(__name__)

_RC = ResponseCode


def host_totals(rows: list[Txn]) -> BatchTotals:
    """The batch totals of ledger rows: approved (or settled) sales and refunds per kind.

    Args:
        rows: the rows of one batch.

    Returns:
        The totals.
    """
    sums = {kind: [0, 0, 0, 0] for kind in TotalsKind}
    for row in rows:
        if row.status not in (TxnStatus.APPROVED, TxnStatus.SETTLED):
            continue
        slot = sums[TotalsKind.of(row.wallet)]
        if row.kind in (TxnKind.SALE, TxnKind.QR):
            slot[0] += 1
            slot[1] += row.amount
        elif row.kind is TxnKind.REFUND:
            slot[2] += 1
            slot[3] += row.amount
    return BatchTotals(
        by_kind={
            kind: KindTotals(
                sale_count=values[0],
                sale_amount=values[1],
                refund_count=values[2],
                refund_amount=values[3],
            )
            for kind, values in sums.items()
        }
    )


class Aftercare:
    """Reversal, query and settlement rules.

    Args:
        ledger: the ledger (the caller holds its transaction open).
        financial: the money rules (resolves waiting QR orders).
    """

    def __init__(self, ledger: Ledger, financial: Financial) -> None:
        self.ledger = ledger
        self.financial = financial

    def reverse(self, request: ReversalRequest, now: datetime) -> ReversalResponse:
        """Reverse (or revoke) the transaction named by the request.

        Args:
            request: the 0400.
            now: the current time.

        Returns:
            The 0410.
        """
        key = (request.terminal_id, request.batch, request.trace)

        def answer(code: str, status: WalletStatus | None = None) -> ReversalResponse:
            return ReversalResponse(
                **answer_header(request, now, code),
                processing_code=request.processing_code,
                amount=request.amount,
                wallet_status=status,
            )

        done = self.ledger.find_reversal(*key)
        if done is not None:
            logger.info("repeated reversal of trace %06d acknowledged", request.trace)
            return answer(_RC.APPROVED, done.wallet_status)
        original = self.ledger.find(*key)
        before = original.status.value if original is not None else "never seen"
        if original is not None:
            if original.status is TxnStatus.SETTLED:
                logger.warning("reversal of settled trace %06d refused", request.trace)
                return answer(_RC.INVALID_TRANSACTION)
            if original.amount != request.amount:
                logger.warning("reversal of trace %06d for another amount", request.trace)
                return answer(_RC.INVALID_AMOUNT)
            original = self._undo(self.financial.resolve(original, now), now)
        stamp = now.isoformat()
        self.ledger.insert(
            Txn(
                terminal_id=request.terminal_id,
                merchant_id=request.merchant_id,
                batch=request.batch,
                trace=request.trace,
                kind=TxnKind.REVERSAL,
                processing_code=request.processing_code,
                amount=request.amount,
                response_code=_RC.APPROVED,
                status=TxnStatus.APPROVED,
                fingerprint="",
                local_time=request.local_date + request.local_time,
                created_at=stamp,
                updated_at=stamp,
                masked_pan=original.masked_pan if original else None,
                wallet=original.wallet if original else None,
                wallet_status=original.wallet_status if original else None,
                original_id=original.id if original else None,
            )
        )
        logger.info(
            "reversal of terminal %s batch %06d trace %06d (was %s) acknowledged",
            request.terminal_id,
            request.batch,
            request.trace,
            before,
        )
        return answer(_RC.APPROVED, original.wallet_status if original else None)

    def _undo(self, original: Txn, now: datetime) -> Txn:
        if original.status not in (TxnStatus.APPROVED, TxnStatus.PENDING):
            return original
        revoked = WalletStatus.REVOKED if original.kind is TxnKind.QR else original.wallet_status
        undone = self.ledger.update(original, now, status=TxnStatus.REVERSED, wallet_status=revoked)
        parent = self.ledger.get(original.original_id) if original.original_id else None
        if parent is not None and original.kind is TxnKind.VOID:
            self.ledger.update(
                parent,
                now,
                status=TxnStatus.APPROVED,
                wallet_status=WalletStatus.SUCCESS if parent.wallet else None,
            )
        elif parent is not None and parent.wallet and not self.ledger.refunded(parent.id):
            self.ledger.update(parent, now, wallet_status=WalletStatus.SUCCESS)
        return undone

    def query(self, request: QueryRequest, now: datetime) -> QueryResponse:
        """Report the state of the transaction named by the request.

        Args:
            request: the 0600.
            now: the current time.

        Returns:
            The 0610.
        """
        row = self.ledger.find(request.terminal_id, request.batch, request.trace)
        if row is None:
            return QueryResponse(**answer_header(request, now, _RC.NOT_FOUND))
        row = self.financial.resolve(row, now)
        return QueryResponse(
            **answer_header(request, now, _RC.APPROVED),
            processing_code=row.processing_code,
            amount=row.amount,
            rrn=row.rrn,
            auth_code=row.auth_code,
            status=row.status,
            original_response_code=row.response_code,
            kind=row.kind,
            wallet=row.wallet,
            wallet_status=row.wallet_status,
            wallet_order_id=row.wallet_order_id,
            masked_pan=row.masked_pan,
        )

    def settle(self, request: SettlementRequest, now: datetime) -> SettlementResponse:
        """Close the batch and compare totals.

        Args:
            request: the 0500.
            now: the current time.

        Returns:
            The 0510 with the host's totals.
        """
        done = self.ledger.settlement(request.terminal_id, request.batch)
        if done is not None:
            logger.info("repeated settlement of batch %06d: same answer", request.batch)
            return SettlementResponse(
                **answer_header(request, now, done.response_code),
                totals=BatchTotals.decode(done.host_totals),
            )
        rows = [
            self.financial.resolve(row, now, closing=True)
            for row in self.ledger.in_batch(request.terminal_id, request.batch)
        ]
        totals = host_totals(rows)
        balanced = totals == request.totals
        code = _RC.APPROVED if balanced else _RC.RECONCILE_ERROR
        for row in rows:
            if row.status is TxnStatus.APPROVED and row.kind is not TxnKind.REVERSAL:
                self.ledger.update(row, now, status=TxnStatus.SETTLED)
        self.ledger.record_settlement(
            SettlementRecord(
                terminal_id=request.terminal_id,
                batch=request.batch,
                merchant_id=request.merchant_id,
                trace=request.trace,
                terminal_totals=request.totals.encode(),
                host_totals=totals.encode(),
                response_code=code,
                settled_at=now.isoformat(),
            )
        )
        if balanced:
            logger.info("batch %06d of %s settled, balanced", request.batch, request.terminal_id)
        else:
            logger.warning(
                "batch %06d of %s settled NOT balanced: terminal %d/%d fen, host %d/%d fen"
                " (sales/refunds)",
                request.batch,
                request.terminal_id,
                request.totals.sale_amount,
                request.totals.refund_amount,
                totals.sale_amount,
                totals.refund_amount,
            )
        return SettlementResponse(**answer_header(request, now, code), totals=totals)
