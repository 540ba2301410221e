"""Reads a SMART Scheduling Links feed the way a client does: the manifest, then every file it
lists, one after the other, each streamed to the end. Prints what it read and how fast."""
import json
import sys
import time
import urllib.request

base = sys.argv[1]
started = time.monotonic()
with urllib.request.urlopen(f"{base}/$bulk-publish") as r:
    manifest = json.load(r)
counts, total = {}, 0
for output in manifest["output"]:
    with urllib.request.urlopen(output["url"]) as r:
        assert r.headers["Content-Type"] == "application/fhir+ndjson", r.headers["Content-Type"]
        tail = b""
        while chunk := r.read(1 << 20):
            total += len(chunk)
            counts[output["type"]] = counts.get(output["type"], 0) + chunk.count(b"\n")
            tail = chunk[-1:]
        assert tail in (b"", b"\n")
seconds = time.monotonic() - started
print(f"published {counts} in {len(manifest['output'])} files: {total / 1e6:.1f} MB in {seconds:.2f} s "
      f"= {total / 1e6 / seconds:.0f} MB/s")
