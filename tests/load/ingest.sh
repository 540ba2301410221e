#!/usr/bin/env bash
# Ingest benchmark (issue 6): a generated SMART Scheduling Links feed of N Slots over 5,000
# Locations, served over loopback by a static web server, ingested by `calsync ingest` into a
# fresh database; then again with --full (the whole feed read again: every line unchanged). Prints seconds, Slots per
# second and the peak memory of calsync, for each feed size (memory must not grow with N).
# Usage: tests/load/ingest.sh [calsync-release-binary] [sqlite|postgres] [N ...]
# WRITE_PROBE=1: on SQLite, how long another process's writes wait for the lock during the first
# ingest (tests/load/ingest_write_wait.py).
# Feeds are kept in ~/.cache/calsync-bench between runs.
set -euo pipefail
calsync="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/calsync-target}/release/calsync}"
backend="${2:-sqlite}"
shift 2 || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(250000 1000000)
work="$HOME/.cache/calsync-bench"
port="${PORT:-18094}"
postgres="${CALSYNC_BENCH_POSTGRES_URL:-postgres://root@127.0.0.1:5432}"
# calsync connects through the local socket by default: sqlx 0.9 leaves Nagle's algorithm on
# for TCP, and a batch's statements then wait on delayed ACKs (docs/benchmarks-log.md).
pg_suffix="${CALSYNC_BENCH_POSTGRES_SUFFIX-?host=/var/run/postgresql}"
mkdir -p "$work"
for n in "${sizes[@]}"; do
  feed="$work/feed-$n"
  if [ ! -s "$feed/\$bulk-publish" ]; then
    "$calsync" generate --out "$feed" --locations 5000 --slots "$n" --manifest >/dev/null
  fi
  (cd "$feed" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/\$bulk-publish" >/dev/null && break; sleep 0.1; done
  case "$backend" in
    sqlite)
      db="$work/ingest-$n.db"; rm -f "$db" "$db-wal" "$db-shm"
      url="sqlite://$db?mode=rwc" ;;
    postgres)
      name="calsync_bench_ingest"
      psql "$postgres/test" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
      url="$postgres/$name$pg_suffix" ;;
    *) echo "backend: sqlite or postgres"; exit 2 ;;
  esac
  bytes=$(du -cb "$feed"/*.ndjson | tail -1 | cut -f1)
  for run in first again; do
    probe=""
    if [ "$backend" = sqlite ] && [ "$run" = first ] && [ "${WRITE_PROBE:-}" = 1 ]; then
      python3 "$(dirname "$0")/ingest_write_wait.py" "$db" 3 > "$work/write-wait.log" 2>&1 &
      probe=$!
    fi
    start=$(date +%s.%N)
    # The feed is served on loopback, which the egress policy reaches only when told to.
    CALSYNC_EGRESS__PRIVATE_NETWORKS=true /usr/bin/time -f "%M" -o "$work/ingest.rss" "$calsync" ingest "http://127.0.0.1:$port/\$bulk-publish" \
      --database "$url" --problems 3 --full > "$work/ingest-$run.log" 2>&1 </dev/null || { cat "$work/ingest-$run.log"; exit 1; }
    end=$(date +%s.%N)
    python3 - "$n" "$run" "$start" "$end" "$bytes" "$(cat "$work/ingest.rss")" "$backend" <<'PY'
import sys
n, run, start, end, size, rss, backend = sys.argv[1:]
secs = float(end) - float(start)
print(f"{backend} {int(n):>8} Slots ({int(size)/1e6:.0f} MB) {run:<5}: {secs:6.1f} s  {int(n)/secs:9,.0f} Slots/s  peak RSS {int(rss)/1024:.0f} MB")
PY
    grep -E "Slot:|removed" "$work/ingest-$run.log" | sed 's/^/    /'
    if [ -n "$probe" ]; then wait "$probe" || true; sed 's/^/    /' "$work/write-wait.log"; fi
  done
  kill $server 2>/dev/null || true
  wait $server 2>/dev/null || true
done
