"""payment journal: one row per payment or refund attempt through the terminal

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shouyin.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UNSETTLED = "state IN ('pending', 'sent', 'unknown', 'reversing', 'voiding')"


def upgrade() -> None:
    op.create_table(
        "payment_intents",
        sa.Column("ecr_ref", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sale_id", sa.String(length=64), nullable=False),
        sa.Column("lane_id", sa.String(length=32), nullable=False),
        sa.Column("tender_kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=True),
        sa.Column("wallet", sa.String(length=16), nullable=True),
        sa.Column("code_tail", sa.String(length=4), nullable=True),
        sa.Column("original_ecr_ref", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", shouyin.store.types.UTCDateTime(), nullable=True),
        sa.Column("resolved_at", shouyin.store.types.UTCDateTime(), nullable=True),
        sa.Column("tender_no", sa.Integer(), nullable=True),
        sa.Column("rrn", sa.String(length=64), nullable=True),
        sa.Column("trace", sa.String(length=64), nullable=True),
        sa.Column("batch", sa.String(length=64), nullable=True),
        sa.Column("approval_code", sa.String(length=64), nullable=True),
        sa.Column("masked_pan", sa.String(length=32), nullable=True),
        sa.Column("error_condition", sa.String(length=32), nullable=True),
        sa.Column("message", sa.String(length=200), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("ecr_ref", name=op.f("pk_payment_intents")),
    )
    with op.batch_alter_table("payment_intents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_intents_sale_id"), ["sale_id"], unique=False)
        batch_op.create_index(
            "ix_payment_intents_unsettled",
            ["lane_id", "created_at"],
            unique=False,
            sqlite_where=sa.text(_UNSETTLED),
            postgresql_where=sa.text(_UNSETTLED),
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_intents", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_payment_intents_unsettled",
            sqlite_where=sa.text(_UNSETTLED),
            postgresql_where=sa.text(_UNSETTLED),
        )
        batch_op.drop_index(batch_op.f("ix_payment_intents_sale_id"))

    op.drop_table("payment_intents")
