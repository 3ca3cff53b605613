"""Benchmark: messages per second of ``hotline-sla dispatch`` against a fake SMS gateway on 127.0.0.1.

The gateway (a generic ``sms_http`` channel) answers every request after ``latency`` seconds. For each
latency (0 and 150 ms by default) and each number of dispatcher processes (1 and 4), a fresh SQLite store
holds ``--messages`` queued alerts, one per recipient, spread over ``--channels`` channels with no rate
limit; the processes run ``hotline-sla dispatch --json`` side by side until each exits. Printed per run:
messages/s, its ratio to the sequential limit 1/latency (one send at a time), wall and CPU seconds (the
children's user+system, from wait4) and CPU ms per message, what each process sent, and how many rows
were left claimable (must be 0: no process exits with rows pending).

    python bench/dispatch_bench.py [--messages 2000] [--latencies 0,0.15] [--procs 1,4] [--channels 4]

Targets (issue 15): one dispatcher ≥ 20x the sequential limit at 150 ms; four dispatchers all take work
and leave nothing claimable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.core.timeutil import iso_local, parse_time
from daemon.pipeline.queue import claimable_count, enqueue
from daemon.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = parse_time("2026-11-20 09:00")


class Gateway(ThreadingHTTPServer):
    """An SMS gateway that answers ``{"code": "0"}`` after ``latency`` seconds, on its own thread per request."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed
    # ACK, which added ~40 ms to every "0 ms" answer in the first runs
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        server: Any = self.server
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if server.latency:
            time.sleep(server.latency)  # the provider's answer time, which is what is measured against
        with server.lock:
            server.count += 1
        body = b'{"code": "0", "msgid": "m"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def alert_payload(number: str) -> dict[str, Any]:
    """The payload the tick writes for a warning (see daemon/pipeline/tick.py)."""
    due = "2026-11-21T00:00:00+08:00"
    return {
        "kind": "warning", "level": 1, "fire_at": "2026-11-20T09:00:00+08:00", "overdue_working_days": 0,
        "case": {"number": number, "summary": "反映小区供暖不达标", "unit": "兴隆台区住建局", "district": "兴隆台区",
                 "source": "city", "category": "complaint", "rule_id": "municipal_complaint",
                 "rule_name": "市级投诉类", "limit": "5个工作日", "received_at": "2026-11-14T10:30:00+08:00",
                 "due_at": due, "case_due_at": due, "provisional": False, "return_requested_at": None},
        "note": None, "urgent": False,
    }


def prepare(workdir: Path, port: int, messages: int, channels: int) -> tuple[Path, str]:
    db = workdir / "dispatch.sqlite3"
    url = f"sqlite:///{db}"
    names = [f"sms{i}" for i in range(channels)]
    config = {
        "database": {"url": url},
        "channels": {name: {"type": "sms_http", "url": f"http://127.0.0.1:{port}/send", "timeout": 30,
                            "body": {"mobile": "{{ mobile }}", "text": "{{ text }}"},
                            "success_field": "code", "success_value": "0", "rate_limit_per_minute": 0}
                     for name in names},
        "default_channels": names[:1],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    store = Store(url)
    store.upgrade()
    with store.engine.begin() as conn:
        for i in range(messages):
            number = f"B{i:06}"
            enqueue(conn, kind="warning", channel=names[i % channels], now=NOW, payload=alert_payload(number),
                    recipient={"name": f"承办{i}", "role": "handler", "unit": "兴隆台区住建局",
                               "mobile": f"139{i:08}", "wecom_userid": None, "email": None},
                    dedupe_key=f"bench:{number}")
    store.close()
    return path, url


def run(latency: float, procs: int, messages: int, channels: int) -> dict[str, Any]:
    gateway = Gateway(latency)
    serving = threading.Thread(target=gateway.serve_forever, daemon=True)
    serving.start()
    try:
        with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
            config, url = prepare(Path(tmp), gateway.server_address[1], messages, channels)
            env = {**os.environ, "HOTLINE_SLA_CONFIG": str(config)}
            cmd = [sys.executable, "-m", "daemon", "dispatch", "--now", iso_local(NOW), "--json"]
            started = time.perf_counter()
            children = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp)
                        for _ in range(procs)]
            cpu = 0.0
            sent: list[int] = []
            for child in children:
                out = child.stdout.read() if child.stdout else ""
                _pid, _status, usage = os.wait4(child.pid, 0)
                child.returncode = 0
                cpu += usage.ru_utime + usage.ru_stime
                sent.append(int(json.loads(out or "{}").get("sent", -1)))
            wall = time.perf_counter() - started
            store = Store(url)
            left = claimable_count(store, NOW, cap=messages)
            store.close()
    finally:
        gateway.shutdown()
        gateway.server_close()
    rate = sum(max(s, 0) for s in sent) / wall
    return {"latency_ms": round(latency * 1000), "procs": procs, "messages": messages, "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "cpu_ms_per_msg": round(cpu * 1000 / max(messages, 1), 2),
            "msg_per_s": round(rate, 1), "x_sequential": round(rate * latency, 1) if latency else None,
            "sent_per_proc": sent, "provider_requests": gateway.count, "left_claimable": left}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latencies", default="0,0.15", help="seconds, comma-separated")
    parser.add_argument("--procs", default="1,4", help="dispatcher processes, comma-separated")
    parser.add_argument("--channels", type=int, default=4)
    args = parser.parse_args()
    print(f"dispatch bench: {args.messages} messages over {args.channels} sms_http channels, SQLite, "
          f"dispatch.concurrency 32, 8 per channel (defaults)")
    for latency in (float(x) for x in args.latencies.split(",")):
        limit = f"{1 / latency:.2f} msg/s" if latency else "unbounded"
        print(f"\nprovider latency {latency * 1000:.0f} ms (sequential limit {limit})")
        for procs in (int(x) for x in args.procs.split(",")):
            r = run(latency, procs, args.messages, args.channels)
            ratio = f"{r['x_sequential']}x sequential" if latency else "-"
            print(f"  {procs} proc: {r['msg_per_s']:8.1f} msg/s ({ratio}), wall {r['wall_s']} s, CPU {r['cpu_s']} s "
                  f"({r['cpu_ms_per_msg']} ms/msg), sent per process {r['sent_per_proc']}, "
                  f"provider requests {r['provider_requests']}, left claimable {r['left_claimable']}")
            print("  " + json.dumps(r))


if __name__ == "__main__":
    main()
