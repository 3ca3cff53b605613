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
$HSLA db upgrade
$HSLA contacts import samples/contacts.csv   # handlers and leaders of the sample units (fake numbers)
$HSLA sync --now "$NOW" || true          # exit 1: the sample has 3 deliberately bad rows, reported by row
$HSLA tick --now "$NOW"                  # the warnings and breaches due at NOW; a second tick adds nothing
$HSLA cases list --overdue --now "$NOW"
$HSLA outbox list --limit 20             # what the dispatcher will send (mobiles masked)
$HSLA dispatch --now "$NOW"              # the console channel prints each warning; a second dispatch sends nothing
mkdir -p var/reports                     # the supervisors' daily overdue digest (每日超期通报) as a page and a workbook
$HSLA digest --now "$NOW" --format html --output var/reports/digest-demo.html
$HSLA digest --now "$NOW" --format xlsx --output var/reports/digest-demo.xlsx
echo "digest: open var/reports/digest-demo.html in a browser, var/reports/digest-demo.xlsx in a spreadsheet"

