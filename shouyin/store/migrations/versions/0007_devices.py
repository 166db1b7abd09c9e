"""lane peripherals: printers, drawer, customer display (issue 8)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: this revision is reserved for its track and filled in by it."""


def downgrade() -> None:
    """Nothing yet."""
