#!/usr/bin/env bash
# Installs the reference expander (recurring-ical-events, pinned) into a virtualenv
# outside the clone and compares calsync's expansion with it on its test corpus.
# Usage: tests/ical-corpus/run.sh CALSYNC_BINARY [REPORT_FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${CALSYNC_VENV:-$HOME/.cache/calsync-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import recurring_ical_events' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
exec "$venv/bin/python" "$here/compare.py" "$1" ${2:+--report "$2"}
