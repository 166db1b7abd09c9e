"""web sessions and promotions admin (issue 6)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: this revision is reserved for its track and filled in by it."""


def downgrade() -> None:
    """Nothing yet."""
