"""cases: the first contact (先行联系时间), whether the export observes it, and the sign and contact windows' ends

``contacted_at``: the unit's first contact with the citizen in this cycle; ``contact_tracked``: the source maps
a 先行联系时间 column at all (without it a rule's ``contact_within`` cannot be observed and alerts nothing);
``sign_due_at`` / ``contact_due_at``: derived and stored like ``due_at`` (the rule's ``sign_within`` /
``contact_within`` counted from ``received_at``), so the tick reads them with the case (issue 12 item 4).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.storage.models import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("contacted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("contact_tracked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("sign_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("contact_due_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("contact_due_at")
        batch.drop_column("sign_due_at")
        batch.drop_column("contact_tracked")
        batch.drop_column("contacted_at")
