#!/usr/bin/env bash
# Real FHIR clients against the server: fhirpy (PyPI) and fhir-kit-client (npm), installed
# here into ~/.cache, never copied into the repository. Usage: tests/clients/run.sh CALSYNC_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${CALSYNC_CLIENTS_VENV:-$HOME/.cache/calsync-clients-venv}
npm_dir=${CALSYNC_NPM_DIR:-$HOME/.cache/calsync-npm}
if ! "$venv/bin/python" -c 'import fhirpy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
if [ ! -d "$npm_dir/node_modules/fhir-kit-client" ]; then
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" fhir-kit-client@1
fi
exec "$venv/bin/python" "$here/clients.py" "$1" "$npm_dir/node_modules"
