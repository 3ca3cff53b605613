"""cases: accepted_at (受理), the platform's deadline (办理时限, 是否超期), ours beside it, deadline_source, suspension

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.storage.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("accepted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("platform_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("platform_overdue", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("computed_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("deadline_source", sa.String(16), nullable=False, server_default="computed"))
        batch.add_column(sa.Column("suspended_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("resumed_at", UTCDateTime(), nullable=True))
    op.create_index("ix_cases_platform_due_at", "cases", ["platform_due_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_platform_due_at", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for name in ("resumed_at", "suspended_at", "deadline_source", "computed_due_at", "platform_overdue", "platform_due_at", "accepted_at"):
            batch.drop_column(name)
