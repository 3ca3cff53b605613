"""case_mutes: a case's warnings and breaches paused until an instant, with the reason and who paused them

One row per muted case (暂停提醒). A table of its own rather than columns on ``cases``: an import rewrites a
case's columns, and must never touch a mute. The index serves "which cases are muted at now" (few rows:
the tick asks once per batch, the digest and the desk once a page). Each mute and unmute is also a row of
case_history (field ``mute``).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.storage.models import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mutes",
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False,
                  autoincrement=False),
        sa.Column("muted_until", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("muted_by", sa.String(100), nullable=False),
        sa.Column("muted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_mutes_case_id_cases"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_mutes")),
    )
    with op.batch_alter_table("mutes", schema=None) as batch_op:
        batch_op.create_index("ix_mutes_muted_until", ["muted_until"], unique=False)


def downgrade() -> None:
    op.drop_table("mutes")
