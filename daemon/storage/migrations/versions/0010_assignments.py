"""assignments: each earlier assignment of a case to a unit (退件 → 重新派单 under the same 工单编号)

The current assignment is the case row; when an import sees a case's unit change, the one it ends (unit,
dispatch, deadline, return window and request, feedback, outcome) becomes a row here, so that each unit is
ranked on its own part and ``cases explain`` lists them. Indexed by case (explain) and by dispatch (the
month's ranking).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.storage.models import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("unit", sa.String(200), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("return_due_at", UTCDateTime(), nullable=True),
        sa.Column("return_requested_at", UTCDateTime(), nullable=True),
        sa.Column("fed_back_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_assignments_case_id_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_assignments_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_table("assignments")
