"""signed update packages and staged rollouts (issue 7)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: this revision is reserved for its track and filled in by it."""


def downgrade() -> None:
    """Nothing yet."""
