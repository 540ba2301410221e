"""The floor of an ingest into SQLite: the Slots of a database `tests/load/ingest.sh` filled
(their rows already made), written again into a fresh file with the same schema for `resource`
(its table and indexes), 8 KB pages and 25,000 rows per transaction as calsync writes them, with
no lookups, no JSON and no parsing. Name indexes after the file to leave them out (a variant of
the schema, docs/benchmarks-log.md); `--rows N` writes N rows per transaction instead;
`--no-origin` writes each row's JSON without `meta.source` and the lastSourceSync extension (what
a row would hold if the origin were stored once per publisher and poll: docs/benchmarks-log.md, "The
origin in every row"); `--no-meta` writes it without `meta` (`versionId`, `lastUpdated`);
`--checkpoint-pages N` checkpoints every N WAL pages, as calsync's ingest connection does (20,000),
and once more at the end, inside the measured time (docs/benchmarks-log.md, "The goals, measured at
`031fa39`").

Usage: python3 tests/load/ingest_floor.py ~/.cache/calsync-bench/ingest-1000000.db [--rows N] [--no-origin] [--no-meta] [--checkpoint-pages N] [index ...]
"""
import os
import re
import sqlite3
import sys
import tempfile
import time

COLUMNS = (
    "resource_type, id, version_id, last_updated, deleted, content, "
    "schedule, start_ms, end_ms, status, publisher, digest, poll"
)

arguments = sys.argv[2:]
per_transaction = 25000
if "--rows" in arguments:
    at = arguments.index("--rows")
    per_transaction = int(arguments[at + 1])
    del arguments[at : at + 2]
no_origin = "--no-origin" in arguments
if no_origin:
    arguments.remove("--no-origin")
no_meta = "--no-meta" in arguments
if no_meta:
    arguments.remove("--no-meta")
checkpoint_pages = None
if "--checkpoint-pages" in arguments:
    at = arguments.index("--checkpoint-pages")
    checkpoint_pages = int(arguments[at + 1])
    del arguments[at : at + 2]
left_out = set(arguments)
source = sqlite3.connect(sys.argv[1])
rows = source.execute(f"SELECT {COLUMNS} FROM resource WHERE resource_type = 'Slot'").fetchall()
if no_origin:
    origin = re.compile(r'"source":"[^"]*","extension":\[\{"url":"http://hl7.org/fhir/StructureDefinition/lastSourceSync",[^\]]*\],')
    rows = [row[:5] + (origin.sub("", row[5], count=1),) + row[6:] for row in rows]
if no_meta:
    meta = re.compile(r',"meta":\{"versionId":"[^"]*","lastUpdated":"[^"]*"\}')
    rows = [row[:5] + (meta.sub("", row[5], count=1),) + row[6:] for row in rows]
schema = [
    sql
    for (name, sql) in source.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name = 'resource'")
    if name not in left_out
]
with tempfile.TemporaryDirectory() as work:
    db = sqlite3.connect(os.path.join(work, "floor.db"), isolation_level=None)
    db.execute("PRAGMA page_size=8192")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-65536")
    if checkpoint_pages:
        db.execute(f"PRAGMA wal_autocheckpoint={checkpoint_pages}")
    for sql in schema:
        db.execute(sql)
    started = time.monotonic()
    for i in range(0, len(rows), per_transaction):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(f"INSERT INTO resource ({COLUMNS}) VALUES ({', '.join('?' * 13)})", rows[i : i + per_transaction])
        db.execute("COMMIT")
    if checkpoint_pages:
        # calsync's next write (another connection's, with the default) copies what is left.
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    seconds = time.monotonic() - started
print(
    f"{len(rows)} Slots written into resource in {seconds:.2f} s, {per_transaction} a transaction"
    f"{', without ' + ', '.join(sorted(left_out)) if left_out else ''}"
    f"{', JSON without the origin' if no_origin else ''}{', JSON without meta' if no_meta else ''} ({sum(len(row[5]) for row in rows) / len(rows):.0f} bytes a Slot)"
    f": {len(rows) / seconds:,.0f} Slots/s"
)
