"""Which group (分组) each unit is ranked in: ``group:`` on a unit in config.yaml (``contacts.units``), else
the 分组 column of the last ``contacts import``, else ``reports.default_group``. Aliases of a configured
unit share its group. The imported groups are kept in the ``settings`` table (key ``unit_groups``, a JSON
object unit → group), replaced with each import.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, delete, insert, select

from daemon.config import Config
from daemon.reports.ranking import RankingGroups
from daemon.storage.models import settings

SETTINGS_KEY = "unit_groups"


def save_imported_groups(conn: Connection, groups: dict[str, str]) -> None:
    """Replace the imported unit groups (inside the caller's transaction, with the contacts)."""
    conn.execute(delete(settings).where(settings.c.key == SETTINGS_KEY))
    if groups:
        conn.execute(insert(settings).values(key=SETTINGS_KEY, value=json.dumps(groups, ensure_ascii=False)))


def imported_groups(conn: Connection) -> dict[str, str]:
    raw = conn.execute(select(settings.c.value).where(settings.c.key == SETTINGS_KEY)).scalar()
    if not raw:
        return {}
    data = json.loads(raw)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def ranking_groups(config: Config, imported: dict[str, str]) -> RankingGroups:
    """The groups of the monthly ranking: config.yaml first, then the imported sheet."""
    of_unit = dict(imported)
    for unit in config.contacts.units:
        if unit.group:
            for name in (unit.name, *unit.aliases):
                of_unit[name] = unit.group
    return RankingGroups(
        of_unit=of_unit, default=config.reports.default_group, ranked=tuple(config.reports.ranked_groups)
    )
