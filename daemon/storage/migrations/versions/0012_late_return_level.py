"""alerts: a late return's level names its return window (its end in minutes since 1970 UTC)

A late-return notice is now decided once per return window whatever the deadline version (engine.ONCE_KINDS),
so a recompute that moves the resolution deadline does not notify it again. Its level was 0; the tick now
keys it by ``engine.window_level(return window end)``. Stored late returns get that level here, so the first
tick after the upgrade sees them as already decided and sends nothing twice.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.storage.models import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_alerts = sa.table(
    "alerts", sa.column("id", sa.BigInteger), sa.column("kind", sa.String), sa.column("level", sa.Integer),
    sa.column("due_at", UTCDateTime()),
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_alerts.c.id, _alerts.c.due_at).where(_alerts.c.kind == "late_return", _alerts.c.level == 0)
    ).all()
    for start in range(0, len(rows), 1000):
        conn.execute(
            sa.update(_alerts).where(_alerts.c.id == sa.bindparam("alert_id")).values(level=sa.bindparam("new_level")),
            [{"alert_id": r.id, "new_level": int(r.due_at.timestamp()) // 60} for r in rows[start:start + 1000]],
        )


def downgrade() -> None:
    op.execute(sa.update(_alerts).where(_alerts.c.kind == "late_return").values(level=0))
