"""cases: the earlier completed suspensions (挂起 … 解挂) of the current cycle

An export carries one 挂起时间/解挂时间 pair per row, the latest. A case suspended twice was exported first with
the first pair and later with the second, and the second import replaced the first: the deadline moved by the
second suspension only, and the unit got a false breach. ``earlier_suspensions`` keeps the pairs an import
replaced (``core.lifecycle.remembered_suspensions``) as a JSON list of [start, end] local ISO instants, so the
deadline moves by each (``Rule.suspensions_due``) and a calendar change recomputes them. NULL: none. Stored
cases start with none: the suspensions replaced before this revision are not known.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not a batch: SQLite adds (and from 3.35 drops) a column in place, where a batch would copy and
# drop ``cases``, and dropping it with foreign keys on cascades to every alert, history and outbox row.
def upgrade() -> None:
    op.add_column("cases", sa.Column("earlier_suspensions", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    op.drop_column("cases", "earlier_suspensions")
