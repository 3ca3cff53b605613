"""Big report jobs run in a child process, so that their memory goes back to the system when they end.

A month-end round over a million open cases reads and writes a million rows. Streaming keeps its peak
bounded (docs/reports.md, Performance), but CPython keeps the arenas it touched: in the daemon the job's
peak would stay the daemon's size until it restarts (329 MB after one carry-over before streaming). The
service therefore runs such a job (:attr:`daemon.reports.jobs.ReportJob.command`) as the one-shot command
an operator would type, ``hotline-sla [--config FILE] <command> --now <instant> --json``, and reads the
summaries from its JSON output. Time is still an argument: the child decides at the service's ``now``.

A child that fails (an exit code other than 0, output that is not the expected JSON, no end within the
allowance or before the service stops: then it is interrupted, and killed if it does not end) raises
:class:`ReportProcessError`; the service's job wrapper logs and counts it exactly like a failure
in-process, and the next trigger runs it again (the ``runs`` row was never written). Each line the child
wrote to stderr (its log lines, a traceback) is logged by the service as a ``report_process_output``
event, so the journal stays one JSON object per line, masked and redacted like every other event.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

log = structlog.get_logger("hotline_sla.reports")

#: how often the parent looks at the stop flag while a child runs (seconds)
POLL_SECONDS = 0.5
#: how long an interrupted child may take to clean up before it is killed (seconds)
INTERRUPT_GRACE_SECONDS = 5.0


class ReportProcessError(RuntimeError):
    """A report job's child process failed; the message names the command and says why."""


def report_command(command: str, config_path: str | None, now: datetime) -> list[str]:
    """The child's argument vector: this interpreter, the package's CLI, the config the service uses."""
    config = ["--config", config_path] if config_path else []
    return [sys.executable, "-m", "daemon", *config, command, "--now", now.isoformat(), "--json"]


def run_report_process(
    command: str, config_path: str | None, now: datetime, *, should_stop: Callable[[], bool],
    timeout: float, monotonic: Callable[[], float],
) -> list[dict[str, Any]]:
    """Run ``hotline-sla <command> --now <now> --json`` and return its ``queued`` summaries. Stops the child
    (and raises) when ``should_stop()`` turns true or ``timeout`` seconds pass."""
    argv = report_command(command, config_path, now)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    deadline = monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=POLL_SECONDS)  # retried: no output is lost (subprocess docs)
            break
        except subprocess.TimeoutExpired:
            if should_stop() or monotonic() >= deadline:
                out, err = _interrupt(proc)
                _pass_on(command, err)
                why = "the service is stopping" if should_stop() else f"it ran longer than {timeout:.0f} s"
                raise ReportProcessError(f"`{command}` child process killed: {why}") from None
    _pass_on(command, err)
    if proc.returncode != 0:
        last = next((line for line in reversed(err.splitlines()) if line.strip()), "no error output")
        raise ReportProcessError(f"`{command}` child process exited with {proc.returncode}: {last.strip()}")
    try:
        queued = json.loads(out)["queued"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportProcessError(f"`{command}` child process printed no JSON summary ({exc}): {out[:200]!r}") from None
    if not isinstance(queued, list):
        raise ReportProcessError(f"`{command}` child process: 'queued' is not a list: {queued!r}"[:300])
    return queued


def _interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop the child: SIGINT first (KeyboardInterrupt: its half-written files' temporary copies are removed
    on the way out), SIGKILL if it has not ended within :data:`INTERRUPT_GRACE_SECONDS`."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=INTERRUPT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _pass_on(command: str, err: str | None) -> None:
    for line in (err or "").splitlines():
        if line.strip():
            log.info("report_process_output", command=command, line=line)
