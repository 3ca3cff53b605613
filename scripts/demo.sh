#!/usr/bin/env bash
# Set up and run the daemon's main job once on the embedded default: SQLite in ./var, the sample cases in
# samples/, alerts printed by the console notifier (config.yaml).
# Usage: ./scripts/demo.sh [--now TIME]   (default --now "2026-11-20 09:00", the instant the sample is made for)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e .
NOW="2026-11-20 09:00"
if [ "${1:-}" = "--now" ] && [ -n "${2:-}" ]; then NOW="$2"; fi
HSLA=.venv/bin/hotline-sla
$HSLA config check
$HSLA rules test
$HSLA deadline --rule municipal_complaint --received "2024-09-27 16:30"
$HSLA deadline --rule municipal_complaint --received "2026-12-28 10:00"
