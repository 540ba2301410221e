"""How long another process's write waits for SQLite's write lock while an ingest runs: one small
write (`BEGIN IMMEDIATE`, an insert into a table of its own, `COMMIT`) every 50 ms for SECONDS,
from when DB exists; prints the waits' percentiles. `tests/load/ingest.sh` runs it beside the first
ingest into SQLite when WRITE_PROBE=1 (docs/benchmarks-log.md, "Batches of 25,000 rows on SQLite").

Usage: python3 tests/load/ingest_write_wait.py DB SECONDS
"""
import os
import sqlite3
import sys
import time

path, seconds = sys.argv[1], float(sys.argv[2])
while not os.path.exists(path):
    time.sleep(0.01)
# Past the migrations and the Locations and Schedules, into the Slots.
time.sleep(0.5)
db = sqlite3.connect(path, isolation_level=None, timeout=30)
# As calsync's own connections write: WAL without a sync at each commit.
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS write_wait_probe (k INTEGER PRIMARY KEY, at INTEGER)")
waits = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    started = time.monotonic()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT OR REPLACE INTO write_wait_probe VALUES (1, ?)", (int(started * 1000),))
    db.execute("COMMIT")
    waits.append(time.monotonic() - started)
    time.sleep(0.05)
waits.sort()


def at(q):
    return waits[min(len(waits) - 1, int(q * len(waits)))] * 1000


print(f"another writer: {len(waits)} writes, waited p50 {at(0.5):.0f} ms, p90 {at(0.9):.0f} ms, max {waits[-1] * 1000:.0f} ms")
