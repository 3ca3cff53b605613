#!/usr/bin/env bash
# Set up and run every check: lint, types, the systemd unit checks, and the test suite.
# Usage: ./scripts/test.sh [pytest args]
# PostgreSQL (127.0.0.1:5432, db test) and MariaDB (127.0.0.1:3306, root, db test) are used when reachable;
# without them their tests skip with a reason (with CI=true they must be there: .ci/run starts them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy (strict)"
.venv/bin/mypy
echo "== systemd unit checks"
bash .ci/systemd-checks.sh
echo "== pytest (every test: -m \"\" lifts setup.cfg's inner-loop -m \"not slow\"; a -m of yours comes later and wins)"
.venv/bin/python -m pytest -q -m "" "$@"
