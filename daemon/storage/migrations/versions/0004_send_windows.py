"""send_windows: each channel's recent sends, so a vendor's rate limit holds across processes and restarts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import daemon.storage.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_windows",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("sent", sa.Text(), nullable=False),
        sa.Column("updated_at", daemon.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_send_windows")),
    )


def downgrade() -> None:
    op.drop_table("send_windows")
