#!/usr/bin/env python3
"""The `make run` demo story, end to end, as README.md tells it.

Starts `calsync serve` with the demo data (the Makefile's DEMO_SERVE arguments) on a free port
and a fresh SQLite file, then: $find-mutual for Maria, her daughter and (optionally) her son;
$hold the first option; $book it; the confirmation as iCalendar; the time is gone from the next
$find-mutual; $cancel frees it again. Every request carries a bearer token of the development
issuer (`calsync token`): Maria's for her story, each caregiver's for their own calendar.
Standard library only.
Usage: tests/demo/story.py CALSYNC_BINARY [demo serve arguments...]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PEOPLE = "participant=Patient/maria&participant=RelatedPerson/daughter&optional-participant=RelatedPerson/son"
FIND = "/Appointment/$find-mutual?start=2026-12-07&end=2026-12-11&duration=30&" + PEOPLE + "&timezone=America/New_York&_count=3"


# Tokens by person, from `calsync token` (filled in by main).
TOKENS = {}


def token(binary, who):
    """A development token acting as `who`, as README.md gets one."""
    out = subprocess.run([binary, "token", "--as", who], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def request(base, path, body=None, headers=None, method=None, who="Patient/maria"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data is not None else "GET"))
    req.add_header("Content-Type", "application/fhir+json")
    if who is not None:
        req.add_header("Authorization", "Bearer " + TOKENS[who])
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def options(base):
    status, _, text = request(base, FIND)
    assert status == 200, (status, text)
    bundle = json.loads(text)
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def main():
    binary, serve_args = sys.argv[1], sys.argv[2:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite://{tmp}/demo.db?mode=rwc"
        env = dict(os.environ, CALSYNC_LOG="warn")
        server = subprocess.Popen([binary, "serve", "--bind", f"127.0.0.1:{port}", "--database", db, *serve_args],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            printed = []
            for line in server.stdout:
                printed.append(line)
                if "calsync FHIR server on" in line:
                    break
            else:
                raise SystemExit("the server did not start:\n" + "".join(printed))
            assert sum("imported" in l for l in printed) == 1, printed
            assert sum("emulated" in l and "connected" in l for l in printed) == 2, printed
            for who in ["Patient/maria", "RelatedPerson/daughter", "RelatedPerson/son", "Practitioner/okafor"]:
                TOKENS[who] = token(binary, who)
            signed_in_only(base)
            synced(base)
            story(base)
        finally:
            server.terminate()
            server.wait(10)
    print("demo story: ok")


def signed_in_only(base):
    """Nothing without a token; nobody else's calendar with one."""
    status, headers, _ = request(base, FIND, who=None)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer"), (status, headers)
    status, _, _ = request(base, "/metadata", who=None)
    assert status == 200, status
    status, _, text = request(base, "/connections?participant=RelatedPerson/daughter", who="RelatedPerson/son")
    assert status == 403, (status, text)
    status, _, text = request(base, FIND, who="Practitioner/okafor")
    assert status == 403, (status, text)
    print("tokens: anonymous 401, another person's calendar 403")


def synced(base):
    """The worker syncs the caregivers' emulated Outlook and Google calendars on its own."""
    for who, kind in [("RelatedPerson/daughter", "microsoft"), ("RelatedPerson/son", "google")]:
        for _ in range(300):
            _, _, text = request(base, f"/connections?participant={who}", who=who)
            connections = json.loads(text)["connections"]
            assert [c["kind"] for c in connections] == [kind], connections
            if connections[0]["state"] == "ok":
                break
            assert connections[0]["state"] in ("new", "syncing"), connections
            time.sleep(0.1)
        else:
            raise SystemExit(f"{who}'s {kind} calendar did not sync within 30 s: {connections}")
    print("worker: both caregivers' calendars synced")


def story(base):
    found = options(base)
    assert found, "the demo week has a mutual time"
    first = found[0]
    actors = [p["actor"]["reference"] for p in first["participant"]]
    for who in ["Patient/maria", "RelatedPerson/daughter", "RelatedPerson/son"]:
        assert who in actors, actors
    slot = first["slot"][0]["reference"]
    print(f"option 1: {first['start']} {slot}")

    status, headers, text = request(base, "/Appointment/$hold",
                                    {"resourceType": "Parameters", "parameter": [{"name": "appointment", "resource": first}]})
    assert status == 201 and "expires" in headers, (status, text)
    held = json.loads(text)
    assert held["status"] == "pending"
    ident = held["id"]
    assert slot not in [a["slot"][0]["reference"] for a in options(base)], "a held Slot is not offered"

    ref = {"resourceType": "Parameters",
           "parameter": [{"name": "appointment-reference", "valueReference": {"reference": f"Appointment/{ident}"}}]}
    status, _, text = request(base, "/Appointment/$book", ref, {"Idempotency-Key": "demo-1"})
    assert status == 200 and json.loads(text)["status"] == "booked", (status, text)

    status, headers, ics = request(base, f"/Appointment/{ident}", headers={"Accept": "text/calendar"})
    assert status == 200 and headers["content-type"].startswith("text/calendar"), (status, headers)
    assert "STATUS:CONFIRMED" in ics and "LOCATION:" in ics and "maria" not in ics.lower(), ics

    assert slot not in [a["slot"][0]["reference"] for a in options(base)], "a booked Slot is not offered"

    status, _, text = request(base, f"/Appointment/{ident}/$cancel", method="POST")
    assert status == 200 and json.loads(text)["status"] == "cancelled", (status, text)
    assert slot in [a["slot"][0]["reference"] for a in options(base)], "a cancelled booking frees its Slot"


if __name__ == "__main__":
    main()
