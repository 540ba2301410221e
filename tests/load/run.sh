#!/usr/bin/env bash
# Load test of the FHIR Slot search (issue 3): 1,000,000 Slots over 2,000 Schedules on SQLite,
#   GET /Slot?schedule=..&start=ge..&start=lt..&status=free&_count=50
# from wrk on loopback. Usage: tests/load/run.sh [calsync-release-binary]
# Generated data and the loaded database are kept in ~/.cache/calsync-bench between runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
calsync="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}/release/calsync}"
work="$HOME/.cache/calsync-bench"
duration="${DURATION:-20s}"
connections="${CONNECTIONS:-16}"
port="${PORT:-18093}"
mkdir -p "$work"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"
  ${SUDO:-$( [ "$(id -u)" = 0 ] || echo sudo )} apt-get install -y wrk >/dev/null
fi

if [ ! -s "$work/gen/Slot.ndjson" ]; then
  "$calsync" generate --out "$work/gen" --locations 2000 --slots 1000000
fi
db="$work/slots-1m.db"
load=()
if [ ! -s "$db" ]; then
  load=(--load "$work/gen/Location.ndjson" --load "$work/gen/Schedule.ndjson" --load "$work/gen/Slot.ndjson")
fi
CALSYNC_LOG=warn "$calsync" serve --bind "127.0.0.1:$port" --database "sqlite://$db?mode=rwc" "${load[@]}" \
  > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "calsync FHIR server on" "$work/serve.log" && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 1
done
grep "^loaded" "$work/serve.log" || true
base="http://127.0.0.1:$port"
curl -sf "$base/Slot?schedule=sched-7&start=ge2027-01-11&start=lt2027-01-18&status=free&_count=50" \
  | python3 -c 'import json,sys; b=json.load(sys.stdin); assert b["total"] > 0, b; print("sample search: total", b["total"])'
echo "wrk -t2 -c$connections -d$duration --latency -s tests/load/slot_search.lua $base"
wrk -t2 -c"$connections" -d"$duration" --latency -s "$here/slot_search.lua" "$base" | tee "$work/wrk.txt"
grep -q "non2xx=0" "$work/wrk.txt" || { echo "some requests failed"; exit 1; }
