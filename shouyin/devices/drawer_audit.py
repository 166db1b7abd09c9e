"""Drawer openings into the audit log (issue 7's hash-chained log): the ``audit`` callback of
:class:`~shouyin.devices.lane.LaneDevices`.

:func:`drawer_audit_event` is the pure mapping (``drawer.open`` for a cash sale or refund,
``drawer.no_sale`` for a supervised no-sale; failure when the kick did not reach the printer);
:func:`sql_drawer_audit` appends each one in its own transaction::

    devices = LaneDevices.from_settings(settings, audit=sql_drawer_audit(engine, settings.lane_id,
                                                                         CheckpointStore(keys)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shouyin.devices.lane import DrawerAudit, DrawerOpened, DrawerReason
from shouyin.domain.audit import AuditAction, AuditEvent, AuditOutcome

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shouyin.store.audit_repo import CheckpointStore

__all__ = ["drawer_audit_event", "sql_drawer_audit"]


def drawer_audit_event(record: DrawerOpened, lane_id: str) -> AuditEvent:
    """The audit event of a drawer opening (who, what, when, outcome, from where, on what)."""
    no_sale = record.reason is DrawerReason.NO_SALE
    return AuditEvent(
        AuditAction.DRAWER_NO_SALE if no_sale else AuditAction.DRAWER_OPEN,
        AuditOutcome.SUCCESS if record.success else AuditOutcome.FAILURE,
        record.user_id or "unknown",
        f"lane:{lane_id}",
        f"receipt:{record.receipt_no}" if record.receipt_no else f"drawer:{lane_id}",
        record.at,
        {
            "reason": record.reason.value,
            "approved_by": record.approved_by,
            "error": record.detail or None,
        },
    )


def sql_drawer_audit(
    engine: Engine, lane_id: str, checkpoints: CheckpointStore | None = None
) -> DrawerAudit:
    """An ``audit`` callback appending each drawer opening to the database's audit log."""
    from shouyin.store.audit_repo import append_audit

    def record(opened: DrawerOpened) -> None:
        append_audit(engine, drawer_audit_event(opened, lane_id), checkpoints)

    return record
