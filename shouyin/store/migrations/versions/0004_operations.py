"""audit log, terminal health and alerts, diagnostics reports (issue 7)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shouyin.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_GENESIS = "0" * 64
_ACTIVE = "cleared_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    head = op.create_table(
        "audit_head",
        sa.Column("head_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("head_id", name=op.f("pk_audit_head")),
    )
    # The one head row exists from the start, so that appending only ever locks and updates it.
    op.bulk_insert(head, [{"head_id": 1, "seq": 0, "entry_hash": _GENESIS}])

    op.create_table(
        "terminal_health",
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("last_heartbeat_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("terminal_id", name=op.f("pk_terminal_health")),
    )
    op.create_table(
        "health_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_samples")),
    )
    with op.batch_alter_table("health_samples", schema=None) as batch_op:
        batch_op.create_index("ix_health_samples_terminal_at", ["terminal_id", "at"], unique=False)

    op.create_table(
        "terminal_alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("raised_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("cleared_at", shouyin.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_alerts")),
    )
    with op.batch_alter_table("terminal_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_terminal_alerts_terminal_raised", ["terminal_id", "raised_at"], unique=False
        )
        batch_op.create_index(
            "uq_terminal_alerts_active",
            ["terminal_id", "kind"],
            unique=True,
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )


def downgrade() -> None:
    with op.batch_alter_table("terminal_alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_terminal_alerts_active",
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
        batch_op.drop_index("ix_terminal_alerts_terminal_raised")
    op.drop_table("terminal_alerts")
    with op.batch_alter_table("health_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_health_samples_terminal_at")
    op.drop_table("health_samples")
    op.drop_table("terminal_health")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))
    op.drop_table("audit_log")
