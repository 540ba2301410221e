"""Real FHIR clients against `calsync serve`: fhirpy (Python) and fhir-kit-client (npm) search
Slots with date prefixes and page through every result; the counts must equal what was stored,
computed here from the demo NDJSON files. Prints 'N passed, M failed'."""

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys

from fhirpy import SyncFHIRClient

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import demo_server as server  # noqa: E402
from demo_server import DEMO, demo_server, report  # noqa: E402
FILES = [DEMO / "provider.ndjson", DEMO / "directory.ndjson", DEMO / "provider-later.ndjson"]
WINDOWS = [("2026-12-07", "2026-12-12"), ("2026-12-14T14:00:00Z", "2026-12-21"), ("2026", "2027")]


def stored_between(lo, hi):
    """Slots stored with lo <= start < hi (ge lo & lt hi: lo's range start, hi's range start)."""
    def range_start(v):
        if len(v) == 4:
            return dt.datetime(int(v), 1, 1, tzinfo=dt.timezone.utc)
        if len(v) == 10:
            return dt.datetime.fromisoformat(v).replace(tzinfo=dt.timezone.utc)
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    a, b = range_start(lo), range_start(hi)
    n = 0
    for f in FILES:
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r["resourceType"] == "Slot" and a <= dt.datetime.fromisoformat(r["start"].replace("Z", "+00:00")) < b:
                n += 1
    return n


def main():
    binary, node_modules = sys.argv[1], sys.argv[2]
    passed, failed = 0, []
    with demo_server(binary, FILES) as base:
        client = SyncFHIRClient(base, authorization=f"Bearer {server.TOKEN}")
        for lo, hi in WINDOWS:
            expected = stored_between(lo, hi)
            found = client.resources("Slot").search(start__ge=lo, start__lt=hi).limit(7).fetch_all()
            ids = {s.id for s in found}
            if len(found) == expected == len(ids) and expected > 0:
                passed += 1
            else:
                failed.append(f"fhirpy {lo}..{hi}: {len(found)} fetched ({len(ids)} distinct), {expected} stored")
            out = subprocess.run(["node", str(pathlib.Path(__file__).with_name("fhir_kit_client.js")), base, lo, hi, "9",
                                  server.TOKEN],
                                 capture_output=True, text=True, env={**os.environ, "NODE_PATH": node_modules})
            if out.returncode != 0:
                failed.append(f"fhir-kit-client {lo}..{hi}: {out.stderr.strip()[:300]}")
                continue
            got = json.loads(out.stdout)
            if got["slots"] == got["distinct"] == expected and got["pages"] == -(-expected // 9):
                passed += 1
            else:
                failed.append(f"fhir-kit-client {lo}..{hi}: {got}, {expected} stored")
    report(passed, failed)


if __name__ == "__main__":
    main()
