"""cash tender ids (the page's id of each cash tender: a repeated request takes cash once), and
an index of the unfinished sales of a shift

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shouyin.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


_UNFINISHED = "state IN ('open', 'tendering', 'paid')"


def upgrade() -> None:
    """Create ``cash_tender_ids`` and ``ix_sales_unfinished``."""
    op.create_table(
        "cash_tender_ids",
        sa.Column("tender_id", sa.String(length=64), nullable=False),
        sa.Column("sale_id", sa.String(length=64), nullable=False),
        sa.Column("tender_no", sa.Integer(), nullable=False),
        sa.Column("created_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["sales.sale_id"],
            name=op.f("fk_cash_tender_ids_sale_id_sales"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tender_id", name=op.f("pk_cash_tender_ids")),
    )
    with op.batch_alter_table("cash_tender_ids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cash_tender_ids_sale_id"), ["sale_id"], unique=False)
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sales_unfinished",
            ["shift_id"],
            unique=False,
            sqlite_where=sa.text(_UNFINISHED),
            postgresql_where=sa.text(_UNFINISHED),
        )


def downgrade() -> None:
    """Drop ``ix_sales_unfinished`` and ``cash_tender_ids``."""
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_sales_unfinished",
            sqlite_where=sa.text(_UNFINISHED),
            postgresql_where=sa.text(_UNFINISHED),
        )
    with op.batch_alter_table("cash_tender_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cash_tender_ids_sale_id"))
    op.drop_table("cash_tender_ids")
