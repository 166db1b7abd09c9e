"""signed update packages and staged rollouts (issue 7)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shouyin.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The rollouts and each terminal's progress in them."""
    op.create_table(
        "update_rollouts",
        sa.Column("rollout_id", sa.String(length=160), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=160), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("named", sa.Text(), nullable=False),
        sa.Column("created_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", name=op.f("pk_update_rollouts")),
    )
    with op.batch_alter_table("update_rollouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_update_rollouts_created_at"), ["created_at"], unique=False
        )
    op.create_table(
        "update_rollout_terminals",
        sa.Column("rollout_id", sa.String(length=160), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("firmware_version", sa.String(length=64), nullable=True),
        sa.Column("message", sa.String(length=200), nullable=True),
        sa.Column("updated_at", shouyin.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["update_rollouts.rollout_id"],
            name=op.f("fk_update_rollout_terminals_rollout_id_update_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "rollout_id", "terminal_id", name=op.f("pk_update_rollout_terminals")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("update_rollout_terminals")
    with op.batch_alter_table("update_rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_update_rollouts_created_at"))
    op.drop_table("update_rollouts")
