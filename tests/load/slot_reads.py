"""Slot searches across all Schedules, read straight from a database `tests/load/ingest.sh` filled:
pages in `(start, id)` order, a count, and the free Slots of a window, each the best of five,
with SQLite's plan. `--start-only` runs them on a copy whose `slot_start_id (start_ms, id)` is
replaced by an index on `(start_ms)` alone, the variant of docs/benchmarks-log.md ("Checkpoints every
20,000 pages on SQLite"). The times are those of the 1M feed of `calsync generate`.

Usage: python3 tests/load/slot_reads.py ~/.cache/calsync-bench/ingest-1000000.db [--start-only]
"""
import os
import shutil
import sqlite3
import sys
import tempfile
import time

HOUR = 3_600_000
DAY = 24 * HOUR
COLUMNS = "id, start_ms, version_id, last_updated, content"


def queries(first):
    """The searches, from the feed's first start (its first day, 14:00 UTC)."""
    day = first + DAY
    return {
        "a page in an hour": (
            f"SELECT {COLUMNS} FROM resource WHERE start_ms >= ? AND start_ms < ? ORDER BY start_ms, id LIMIT 51",
            (day, day + HOUR),
        ),
        "a page of a day's free": (
            f"SELECT {COLUMNS} FROM resource WHERE status = 'free' AND start_ms >= ? AND start_ms < ? "
            "ORDER BY start_ms, id LIMIT 51",
            (day - 14 * HOUR, day + 10 * HOUR),
        ),
        "the page after a cursor": (
            f"SELECT {COLUMNS} FROM resource WHERE start_ms >= ? AND start_ms < ? AND (start_ms, id) > (?, ?) "
            "ORDER BY start_ms, id LIMIT 51",
            (day, day + DAY, day + 2 * HOUR, "m"),
        ),
        "a page from a start on": (
            f"SELECT {COLUMNS} FROM resource WHERE start_ms >= ? ORDER BY start_ms, id LIMIT 51",
            (first + 3 * DAY,),
        ),
        "a day's free, counted": (
            "SELECT count(id) FROM resource WHERE status = 'free' AND start_ms >= ? AND start_ms < ?",
            (day - 14 * HOUR, day + 10 * HOUR),
        ),
        "the free of nine hours": (
            "SELECT id, schedule, start_ms, end_ms, status FROM resource WHERE status = 'free' "
            "AND start_ms >= ? AND start_ms < ? AND end_ms > ? ORDER BY start_ms, id",
            (day - HOUR, day + 8 * HOUR, day),
        ),
    }


def run(path):
    db = sqlite3.connect(path)
    (first,) = db.execute("SELECT min(start_ms) FROM resource WHERE start_ms IS NOT NULL").fetchone()
    for name, (sql, args) in queries(first).items():
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            rows = db.execute(sql, args).fetchall()
            best = min(best, time.perf_counter() - started)
        plan = " / ".join(step[3] for step in db.execute("EXPLAIN QUERY PLAN " + sql, args))
        print(f"{name:24} {best * 1000:7.1f} ms  {len(rows):6} rows  {plan}")


path = sys.argv[1]
if "--start-only" in sys.argv[2:]:
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as work:
        copy = os.path.join(work, "start-only.db")
        source = sqlite3.connect(path)
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        source.close()
        shutil.copyfile(path, copy)
        db = sqlite3.connect(copy)
        db.execute("DROP INDEX slot_start_id")
        db.execute("CREATE INDEX slot_start ON resource (start_ms) WHERE start_ms IS NOT NULL")
        db.commit()
        db.close()
        run(copy)
else:
    run(path)
