#!/usr/bin/env bash
# Load tests on 1,000,000 provider Slots over 2,000 Schedules on SQLite, from wrk on loopback.
#   slot-search (issue 3):  GET /Slot?schedule=..&start=ge..&start=lt..&status=free&_count=50
#   find-mutual (issue 4):  GET /Appointment/$find-mutual over 14 days at one clinic with three
#                           participants, each with 2,000 busy Slots over 90 days
#   publish (issue 6):      GET /$bulk-publish and every NDJSON file it lists, one after the
#                           other; prints bytes, seconds and MB/s
# Usage: tests/load/run.sh [calsync-release-binary] [slot-search|find-mutual]
# Generated data and the loaded database are kept in ~/.cache/calsync-bench between runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
calsync="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}/release/calsync}"
scenario="${2:-slot-search}"
case "$scenario" in
  slot-search) script="$here/slot_search.lua" ;;
  find-mutual) script="$here/find_mutual.lua" ;;
  publish) script="" ;;
  *) echo "unknown scenario $scenario (slot-search, find-mutual or publish)"; exit 2 ;;
esac
work="$HOME/.cache/calsync-bench"
duration="${DURATION:-20s}"
connections="${CONNECTIONS:-16}"
port="${PORT:-18093}"
mkdir -p "$work"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"
  ${SUDO:-$( [ "$(id -u)" = 0 ] || echo sudo )} apt-get install -y wrk >/dev/null
fi

if [ ! -s "$work/gen/Participant.ndjson" ]; then
  "$calsync" generate --out "$work/gen" --locations 2000 --slots 1000000 --participants 3 --busy 2000 --busy-days 90
fi
db="$work/slots-1m.db"
load=()
if [ ! -s "$db" ]; then
  load=(--load "$work/gen/Location.ndjson" --load "$work/gen/Schedule.ndjson" --load "$work/gen/Slot.ndjson")
fi
# Unchanged resources keep their version, so loading the participants again is cheap.
load+=(--load "$work/gen/Participant.ndjson")
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
# Requests carry a token of the development issuer: the Slot search a system's, $find-mutual
# Maria's stand-in p-0's (whose caregivers p-1, p-2 are), so that her compartment is checked.
# WHO=system (or another person) overrides. A build from before tokens has no `token` command
# and needs none.
who=system
[ "$scenario" = find-mutual ] && who=Patient/p-0
who="${WHO:-$who}"
token=$("$calsync" token --as "$who" 2>/dev/null || true)
auth=()
[ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
if [ "$scenario" = publish ]; then
  python3 "$here/publish.py" "$base"
  exit 0
fi
if [ "$scenario" = slot-search ]; then
  curl -sf "${auth[@]}" "$base/Slot?schedule=sched-7&start=ge2027-01-11&start=lt2027-01-18&status=free&_count=50" \
    | python3 -c 'import json,sys; b=json.load(sys.stdin); assert b["total"] > 0, b; print("sample search: total", b["total"])'
else
  people="participant=Patient/p-0&participant=RelatedPerson/p-1&participant=RelatedPerson/p-2"
  curl -sf "${auth[@]}" "$base/Appointment/\$find-mutual?start=2027-01-11&end=2027-01-24&duration=30&$people&location-reference=Location/loc-7" \
    | python3 -c 'import json,sys; b=json.load(sys.stdin); print("sample $find-mutual: options", sum(e["search"]["mode"] == "match" for e in b.get("entry", [])))'
fi
echo "wrk -t2 -c$connections -d$duration --latency -s $script $base"
wrk -t2 -c"$connections" -d"$duration" --latency "${auth[@]}" -s "$script" "$base" | tee "$work/wrk.txt"
grep -q "non2xx=0" "$work/wrk.txt" || { echo "some requests failed"; exit 1; }
