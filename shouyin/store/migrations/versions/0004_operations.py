"""audit log, terminal health and alerts, diagnostics reports (issue 7)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: this revision is reserved for its track and filled in by it."""


def downgrade() -> None:
    """Nothing yet."""
