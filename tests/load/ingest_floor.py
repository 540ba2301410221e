"""The floor of an ingest into SQLite: the Slots of a database `tests/load/ingest.sh` filled
(its rows already made), written again into a fresh file with the same schema for `resource`,
`slot` and `ingested`, 2,000 per transaction, with no lookups, no JSON and no parsing.

Usage: python3 tests/load/ingest_floor.py ~/.cache/calsync-bench/ingest-250000.db
"""
import os
import sqlite3
import sys
import tempfile
import time

source = sqlite3.connect(sys.argv[1])
rows = source.execute(
    "SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content, "
    "s.schedule, s.start_ms, s.end_ms, s.status "
    "FROM resource r JOIN slot s ON s.id = r.id WHERE r.resource_type = 'Slot'"
).fetchall()
schema = [
    sql
    for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN ('resource', 'slot', 'ingested')"
    )
]
with tempfile.TemporaryDirectory() as work:
    db = sqlite3.connect(os.path.join(work, "floor.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-65536")
    for sql in schema:
        db.execute(sql)
    started = time.monotonic()
    for i in range(0, len(rows), 2000):
        chunk = rows[i : i + 2000]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content) VALUES (?,?,?,?,?,?)",
            [r[:6] for r in chunk],
        )
        db.executemany(
            "INSERT INTO slot (id, schedule, start_ms, end_ms, status) VALUES (?,?,?,?,?)",
            [(r[1],) + r[6:] for r in chunk],
        )
        db.executemany(
            "INSERT INTO ingested (resource_type, id, publisher, digest, poll) VALUES (?,?,?,?,?)",
            [(r[0], r[1], "ssl-floor", 0, 1) for r in chunk],
        )
        db.execute("COMMIT")
    seconds = time.monotonic() - started
print(f"{len(rows)} Slots written into resource, slot and ingested in {seconds:.2f} s: {len(rows) / seconds:,.0f} Slots/s")
