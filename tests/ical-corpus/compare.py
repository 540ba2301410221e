"""Compare calsync's iCalendar expansion with recurring-ical-events on its own test corpus.

Usage: python compare.py CALSYNC_BINARY [--report FILE]

For every calendar under recurring_ical_events/test/calendars, both engines expand
VEVENT occurrences over WINDOW; occurrences are compared as multisets of UTC
(start, end) pairs, with dates and floating times read in UTC. Calendars listed in
known-differences.json must disagree for the reason given there; every other
calendar must agree (or both engines must refuse it). Exit status 1 otherwise.
"""

import datetime as dt
import importlib.metadata
import json
import pathlib
import subprocess
import sys

import icalendar
import recurring_ical_events

WINDOW = (dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
HERE = pathlib.Path(__file__).parent


def utc(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def reference(path):
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    out = []
    for ev in recurring_ical_events.of(cal, components=["VEVENT"]).between(*WINDOW):
        start = ev.start
        end = ev.end
        out.append((stamp(utc(start)), stamp(utc(end))))
    return sorted(out)


def ours(binary, path):
    proc = subprocess.run(
        [binary, "busy", str(path), "--from", stamp(WINDOW[0]), "--to", stamp(WINDOW[1]), "--tz", "UTC", "--all"],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    out = []
    for line in proc.stdout.splitlines():
        o = json.loads(line)
        out.append((o["start"].replace("+00:00", "Z"), o["end"].replace("+00:00", "Z")))
    return sorted(out)


def main():
    binary = sys.argv[1]
    report_path = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else None
    known = json.loads((HERE / "known-differences.json").read_text())
    corpus = pathlib.Path(recurring_ical_events.__file__).parent / "test" / "calendars"
    files = sorted(corpus.glob("*.ics"))
    results = {}
    for path in files:
        name = path.name
        try:
            ref = reference(path)
            ref_error = None
        except Exception as e:  # the reference refuses the calendar
            ref, ref_error = None, f"{type(e).__name__}: {e}"
        try:
            got = ours(binary, path)
            our_error = None
        except Exception as e:
            got, our_error = None, str(e)
        if ref_error and our_error:
            verdict = "both-refuse"
        elif ref_error or our_error:
            verdict = "one-refuses"
        elif ref == got:
            verdict = "agree"
        else:
            verdict = "disagree"
        entry = {"verdict": verdict}
        if verdict == "disagree":
            missing = sorted(set(ref) - set(got))
            extra = sorted(set(got) - set(ref))
            entry.update(reference=len(ref), calsync=len(got), missing=missing[:5], extra=extra[:5])
        if verdict == "one-refuses":
            entry.update(reference_error=ref_error, calsync_error=our_error)
        results[name] = entry

    failures = []
    for name, entry in results.items():
        ok = entry["verdict"] in ("agree", "both-refuse")
        if name in known:
            if ok:
                failures.append(f"{name}: listed in known-differences.json but now {entry['verdict']}: remove it")
        elif not ok:
            failures.append(f"{name}: {json.dumps(entry)}")
    for name in known:
        if name not in results:
            failures.append(f"{name}: listed in known-differences.json but not in the corpus")

    counts = {}
    for entry in results.values():
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    summary = {
        "reference": f"recurring-ical-events {importlib.metadata.version('recurring-ical-events')}",
        "window": [stamp(WINDOW[0]), stamp(WINDOW[1])],
        "calendars": len(results),
        "verdicts": counts,
        "explained": sorted(known),
    }
    if report_path:
        pathlib.Path(report_path).write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    print(json.dumps(summary))
    for f in failures:
        print("FAIL", f)
    agreed = counts.get("agree", 0) + counts.get("both-refuse", 0)
    explained = len([n for n in known if n in results and results[n]["verdict"] not in ("agree", "both-refuse")])
    print(f"{agreed + explained} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
