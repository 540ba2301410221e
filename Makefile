# calsync: two commands on a fresh machine: `make run` and `make test`.

# Build output lives outside the clone so CI and later clones reuse it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/calsync-target
# sqlx query macros (job queue, later) must never try to reach DATABASE_URL while compiling.
export SQLX_OFFLINE := true

CARGO ?= cargo
CALSYNC := $(CARGO_TARGET_DIR)/debug/calsync
DEMO := tests/fixtures/demo
## The demo: clinics, practitioners, three weeks of Slots, a patient and two caregivers with
## consent to sync. Maria's calendar is an uploaded file; her daughter's is an (emulated)
## Outlook calendar and her son's an (emulated) Google calendar, which the worker syncs.
DEMO_SERVE := --load $(DEMO)/provider.ndjson --load $(DEMO)/directory.ndjson --load $(DEMO)/provider-later.ndjson \
  --load $(DEMO)/participants.ndjson --import-ics maria-calendar=$(DEMO)/maria.ics \
  --emulate-calendar microsoft:RelatedPerson/daughter=$(DEMO)/daughter.ics \
  --emulate-calendar google:RelatedPerson/son=$(DEMO)/son.ics \
  --clock-start 2026-12-01T12:00:00Z

.PHONY: run find-demo build test fuzz test-rust test-ical-corpus test-conformance test-clients test-demo test-postgres bench bench-core bench-search bench-find-mutual bench-nightly bench-publish bench-feed-reader bench-ingest nextest clean-target

## The whole system on the embedded SQLite database (calsync.db) with the demo clinics loaded.
run: build
	$(CALSYNC) serve $(DEMO_SERVE)

## From files alone: the week's mutual times for the demo patient and her two caregivers.
find-demo: build
	$(CALSYNC) find \
	  --slots $(DEMO)/provider.ndjson \
	  --participant maria=$(DEMO)/maria.ics \
	  --participant daughter=$(DEMO)/daughter.ics --zone daughter=America/Los_Angeles \
	  --participant son=$(DEMO)/son.ics --optional son \
	  --from 2026-12-07 --to 2026-12-11 --duration 30m \
	  --tz America/New_York --now 2026-12-01T12:00:00Z --limit 5

build:
	$(CARGO) build --workspace

## The whole suite: unit, property and black-box tests, the iCalendar corpus comparison, and
## FHIR conformance of what the server returns.
test: test-rust test-ical-corpus test-conformance test-clients test-demo

test-rust: nextest
	$(CARGO) nextest run --workspace --no-fail-fast

## The fuzz targets (tests/fuzz: every parser of outside input, from the seed corpus) and the
## iCalendar engine's property test for far longer than `make test` runs them, and 20,000 random
## requests against the real server. Seeds of failures land in tests/fuzz/regressions/.
FUZZ_CASES ?= 200000
fuzz: nextest
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) nextest run --no-fail-fast -p calsync-system --test fuzz
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) nextest run --no-fail-fast -p calsync-ical --test robustness
	CALSYNC_RANDOM_REQUESTS=20000 $(CARGO) nextest run --no-fail-fast -p calsync-system --test api random_requests --no-capture

## Compare the iCalendar engine with recurring-ical-events (installed from PyPI into a venv).
test-ical-corpus: build
	tests/ical-corpus/run.sh $(CALSYNC) $(CARGO_TARGET_DIR)/ical-corpus-report.json

## The store and HTTP API tests again on PostgreSQL (each test creates and drops its own database).
CALSYNC_TEST_POSTGRES_URL ?= postgres://root@127.0.0.1:5432/test
test-postgres: nextest
	CALSYNC_TEST_POSTGRES_URL=$(CALSYNC_TEST_POSTGRES_URL) $(CARGO) nextest run --workspace --no-fail-fast -E 'package(calsync-store) | package(calsync-system) | package(calsync-sync) | package(calsync-worker) | package(calsync-links)'

## The README's demo story against `make run`'s data: find, hold, book, iCalendar, cancel.
test-demo: build
	python3 tests/demo/story.py $(CALSYNC) $(DEMO_SERVE)

## Validate the server's answers with fhir.resources (PyPI) and the R4 JSON schema (npm).
test-conformance: build
	tests/conformance/run.sh $(CALSYNC)

## fhirpy (PyPI) and fhir-kit-client (npm) page through Slot searches; counts must match the data.
test-clients: build
	tests/clients/run.sh $(CALSYNC)

## Criterion benchmarks and the load tests (release build); figures and goals in docs/benchmarks.md.
bench: bench-core bench-search bench-find-mutual bench-nightly bench-publish bench-feed-reader bench-ingest

bench-core:
	$(CARGO) bench --workspace --bench mutual_search

## 1,000,000 Slots over 2,000 Schedules on SQLite, Slot searches from wrk (installed if missing).
bench-search:
	$(CARGO) build --release -p calsync
	tests/load/run.sh $(CARGO_TARGET_DIR)/release/calsync slot-search

## $find-mutual over 14 days at one clinic with three busy participants, on the same data.
bench-find-mutual:
	$(CARGO) build --release -p calsync
	tests/load/run.sh $(CARGO_TARGET_DIR)/release/calsync find-mutual

nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest

clean-target:
	rm -rf $(CARGO_TARGET_DIR)

## The nightly run for 10,000 participants (Google, Microsoft and ICS, emulated on loopback)
## through the real queue and worker, into a fresh SQLite file (release build).
bench-nightly:
	$(CARGO) bench -p calsync-worker --bench nightly

## The same million Slots published as a SMART Scheduling Links feed, read by one client.
bench-publish:
	$(CARGO) build --release -p calsync
	tests/load/run.sh $(CARGO_TARGET_DIR)/release/calsync publish

## The reading half of an ingest: Slot lines parsed, checked and made ready to store, per second.
bench-feed-reader:
	$(CARGO) bench -p calsync-links --bench feed_reader

## Ingest of a generated SMART Scheduling Links feed (250,000 and 1,000,000 Slots over 5,000
## Locations, served on loopback) into SQLite, then PostgreSQL; Slots/s and peak memory.
bench-ingest:
	$(CARGO) build --release -p calsync
	tests/load/ingest.sh $(CARGO_TARGET_DIR)/release/calsync sqlite 250000 1000000
	tests/load/ingest.sh $(CARGO_TARGET_DIR)/release/calsync postgres 250000 1000000
