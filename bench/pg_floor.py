"""What the tick bench measures beside the tick: the raw COPY floor of the rows a tick wrote (PostgreSQL), the
PostgreSQL server's CPU for a piece of work, and the size of the alerts' details (bench/tick_bench.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def server_cpu(store: Any, before: dict[int, float] | None = None) -> Any:
    """PostgreSQL on this machine: CPU seconds of the server processes serving the store's database, per pid
    (``before`` given: the CPU they spent since, summed). None elsewhere or when /proc does not show them."""
    if store.dialect != "postgresql":
        return None
    from sqlalchemy import text

    with store.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        now = {}
        tick = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            now[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    if before is None:
        return now
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())


def copy_floor(store: Any, *, keyed: bool = False) -> tuple[float, float | None]:
    """Seconds to COPY the tick's alert and outbox rows into empty tables LIKE the real ones INCLUDING ALL
    (``keyed``: with the real tables' foreign keys too: each alert's case, each outbox row's alert), and the
    CPU seconds that took (this process and the server's)."""
    tables = ("alerts", "outbox")
    prefix = "floor_keyed" if keyed else "floor"
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        data = {}
        with raw.cursor() as cur:
            for t in reversed(tables):
                cur.execute(f"DROP TABLE IF EXISTS {prefix}_{t}")
            for t in tables:
                buf = bytearray()
                with cur.copy(f"COPY {t} TO STDOUT (FORMAT BINARY)") as copy:
                    for chunk in copy:
                        buf += chunk
                data[t] = bytes(buf)
                cur.execute(f"CREATE TABLE {prefix}_{t} (LIKE {t} INCLUDING ALL)")
            if keyed:
                cur.execute(f"ALTER TABLE {prefix}_alerts ADD FOREIGN KEY (case_id) REFERENCES cases (id)")
                cur.execute(f"ALTER TABLE {prefix}_outbox ADD FOREIGN KEY (alert_id) REFERENCES {prefix}_alerts (id)")
        raw.commit()
        server = server_cpu(store)
        wall, cpu = time.perf_counter(), time.process_time()
        with raw.cursor() as cur:
            for t in tables:
                with cur.copy(f"COPY {prefix}_{t} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(data[t])
        raw.commit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        spent = server_cpu(store, server)
        return wall, (None if spent is None else cpu + spent)


def alert_bytes(store: Any) -> float:
    """Mean stored length of an alert's detail (its JSON text), in characters."""
    from sqlalchemy import Text, func, select

    from daemon.storage.models import alerts

    with store.engine.connect() as conn:
        mean = conn.execute(select(func.avg(func.length(alerts.c.detail.cast(Text))))).scalar()
    return float(mean or 0)
