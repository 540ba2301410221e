//! Registering a publisher and polling it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Read as _;
use std::time::Duration;

use calsync_connect::egress::{EgressClient, Refused};
use calsync_store::{IngestBatching, IngestRow, IngestTally, Publisher, Store, StoreError};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::feed::{Bad, INGESTED_TYPES, Namespace, Note, Options, Reader};
use crate::manifest::{self, Output};

/// Problems a report lists in full (all are counted).
const LISTED_PROBLEMS: usize = 200;

/// Repairs a report lists as examples (all are counted).
const LISTED_REPAIRS: usize = 20;

/// The shortest time between two polls of a publisher (the specification: no file more than
/// once a minute).
pub const MIN_INTERVAL: TimeDelta = TimeDelta::minutes(1);

/// Between polls when the publisher does not say (`Cache-Control`).
const DEFAULT_INTERVAL: TimeDelta = TimeDelta::minutes(5);

/// The longest time between two polls, whatever `Cache-Control` says. A publisher is polled no
/// more often than its `max-age` allows (the specification), up to this: a `max-age` too large
/// for a date must not make the next poll's date overflow.
const MAX_INTERVAL: TimeDelta = TimeDelta::days(365);

/// After a failed poll.
const RETRY_INTERVAL: TimeDelta = TimeDelta::minutes(5);

/// How long the publisher may take to answer, or to send the next part of a file (a whole file
/// may take as long as it takes: it is read only as fast as it is stored).
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A manifest longer than this is refused (the poll fails), not read into memory: a manifest
/// lists files, and a few hundred outputs take kilobytes.
const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// What one poll may take, whatever the publisher sends: bytes over all its files, and time.
/// A poll over either stops as a failed fetch does: what was read is kept, nothing is removed,
/// and the next poll asks for the same changes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollLimits {
    /// Bytes of the manifest and its files together.
    pub bytes: u64,
    /// From the request for the manifest to the last line stored.
    pub time: Duration,
}

impl Default for PollLimits {
    /// 2 GiB (a state-wide feed of three million Slots takes about one) and 30 minutes.
    fn default() -> Self {
        PollLimits { bytes: 2 * 1024 * 1024 * 1024, time: Duration::from_secs(30 * 60) }
    }
}

/// A line of an NDJSON file longer than this is a bad line, skipped without being held in
/// memory: one Location, Schedule or Slot takes a few kilobytes.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Why a publisher could not be registered or polled (what a publisher's feed does wrong is
/// not an error here: it is on the publisher's report).
#[derive(Debug, thiserror::Error)]
pub enum LinksError {
    /// The request to register is not usable.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a poll reports as it goes (for a progress bar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The manifest was read: this many files to read.
    Manifest { files: usize },
    /// A file starts (its length when the server said).
    File { resource_type: String, url: String, length: Option<u64> },
    /// More of the current file was read.
    Read { bytes: u64, lines: u64 },
}

/// A line that was bad, or repaired, or a problem with the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file's URL (the manifest's for manifest problems).
    pub file: String,
    /// 1-based; 0 for the file as a whole.
    pub line: u64,
    /// `bad` (not stored), `manifest`, `fetch`; for a repair, its kind (`id`, `whole-day`,
    /// `local-time`, `no-offset`, `capacity`).
    pub kind: String,
    /// What was wrong.
    pub message: String,
}

/// Lines and stored resources of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCount {
    /// Lines read.
    pub lines: u64,
    /// Lines that could not be used.
    pub bad: u64,
    /// New resources.
    pub created: u64,
    /// Resources that changed.
    pub changed: u64,
    /// Resources as they were.
    pub unchanged: u64,
    /// Resources whose line was bad this time, kept at their last good version.
    #[serde(default)]
    pub kept: u64,
    /// Lines of availability this installation holds another way, not stored a second time:
    /// their origin is this installation (another published again what it ingested from here)
    /// or another publisher it reads (reached again through this one).
    #[serde(default)]
    pub already: u64,
}

/// What the last poll of a publisher found (the publisher's `report`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The manifest's `transactionTime`.
    pub transaction_time: Option<String>,
    /// The `_since` sent, if any.
    pub since: Option<String>,
    /// The publisher answered with its whole data set (what it no longer has was removed).
    pub full: bool,
    /// The manifest had not changed (304).
    pub not_modified: bool,
    /// Per resource type.
    pub types: BTreeMap<String, TypeCount>,
    /// Output types not ingested, with how many files.
    pub skipped_types: BTreeMap<String, u64>,
    /// Resources deleted because the full data set no longer had them.
    pub removed: u64,
    /// Lines not stored.
    pub bad_lines: u64,
    /// Lines stored after a repair, per kind of repair.
    pub repairs: BTreeMap<String, u64>,
    /// Slots with `Z` times starting between midnight and 5 am at their Location: perhaps local
    /// times marked `Z` (the publisher option `localTimes`).
    pub suspect_local_times: u64,
    /// The first problems (bad lines, the manifest, fetches), with file and line.
    pub problems: Vec<Problem>,
    /// Problems in all (more than are listed when many).
    pub problem_count: u64,
    /// The first repairs, with file and line (all are counted in `repairs`).
    pub repaired: Vec<Problem>,
    /// Bytes read: the manifest and every file.
    #[serde(default)]
    pub bytes: u64,
}

impl Report {
    fn problem(&mut self, file: &str, line: u64, kind: &str, message: String) {
        self.problem_count += 1;
        if self.problems.len() < LISTED_PROBLEMS {
            self.problems.push(Problem { file: file.to_string(), line, kind: kind.to_string(), message });
        }
    }

    fn repair(&mut self, file: &str, line: u64, kind: &str, message: String) {
        *self.repairs.entry(kind.to_string()).or_default() += 1;
        if self.repaired.len() < LISTED_REPAIRS {
            self.repaired.push(Problem { file: file.to_string(), line, kind: kind.to_string(), message });
        }
    }
}

/// Registers the publisher whose manifest is at `manifest` (a URL, or a directory holding a
/// `$bulk-publish` file), due at once; registering the same manifest again updates its options.
pub async fn register(
    store: &Store,
    manifest: &str,
    options: Options,
    now: DateTime<Utc>,
) -> Result<Publisher, LinksError> {
    let url = manifest_url(manifest)?;
    options.default_zone().map_err(LinksError::Invalid)?;
    let options_text = serde_json::to_string(&options).unwrap_or_default();
    let known = store.publishers().await?;
    if let Some(mut p) = known.iter().find(|p| p.manifest_url == url.as_str()).cloned() {
        p.options = options_text;
        p.next_run_ms = Some(now.timestamp_millis());
        store.save_publisher(&p).await?;
        return Ok(p);
    }
    let digest = Sha256::digest(url.as_str().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let id = (6..hex.len())
        .map(|n| format!("ssl-{}", &hex[..n]))
        .find(|id| !known.iter().any(|p| &p.id == id))
        .unwrap_or_else(|| format!("ssl-{hex}"));
    let p = Publisher {
        id,
        manifest_url: url.to_string(),
        options: options_text,
        state: "new".into(),
        reason: None,
        report: None,
        etag: None,
        last_modified: None,
        since: None,
        polls: 0,
        last_poll_ms: None,
        next_run_ms: Some(now.timestamp_millis()),
        instance: None,
    };
    store.save_publisher(&p).await?;
    Ok(p)
}

/// The manifest URL of `manifest`: http(s) as given; a local directory or file as a `file:` URL.
fn manifest_url(manifest: &str) -> Result<Url, LinksError> {
    if manifest.starts_with("http://") || manifest.starts_with("https://") {
        let url = Url::parse(manifest).map_err(|e| LinksError::Invalid(format!("{manifest:?} is not a URL: {e}")))?;
        if !url.path().ends_with("$bulk-publish") {
            return Err(LinksError::Invalid(format!("a manifest URL ends in $bulk-publish: {manifest}")));
        }
        // Publishers' feeds are public (the specification), and the address is stored and shown
        // as given: a password in it would be a secret kept in the clear.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(LinksError::Invalid(
                "a manifest URL with a user name or password is not taken: feeds are public".into(),
            ));
        }
        return Ok(url);
    }
    let path = std::path::Path::new(manifest.strip_prefix("file://").unwrap_or(manifest));
    let path = if path.is_dir() { path.join("$bulk-publish") } else { path.to_path_buf() };
    let path = path.canonicalize().map_err(|e| LinksError::Invalid(format!("{}: {e}", path.display())))?;
    Url::from_file_path(&path).map_err(|()| LinksError::Invalid(format!("{} is not a usable path", path.display())))
}

/// A file being read: over HTTP or from the disk.
enum Body {
    Http(Box<reqwest::Response>),
    File(std::fs::File),
}

impl Body {
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self {
            Body::Http(r) => match tokio::time::timeout(STALL_TIMEOUT, r.chunk()).await {
                Ok(chunk) => chunk.map(|c| c.map(|b| b.to_vec())).map_err(|e| e.to_string()),
                Err(_) => Err(format!("nothing arrived for {} s", STALL_TIMEOUT.as_secs())),
            },
            Body::File(f) => {
                let mut buf = vec![0; 256 * 1024];
                let n = f.read(&mut buf).map_err(|e| e.to_string())?;
                buf.truncate(n);
                Ok((n > 0).then_some(buf))
            }
        }
    }

    /// The whole body as text, at most `limit` bytes.
    async fn text(mut self, limit: usize) -> Result<String, String> {
        let mut all = Vec::new();
        while let Some(c) = self.chunk().await? {
            if all.len() + c.len() > limit {
                return Err(format!("longer than {limit} bytes: not read"));
            }
            all.extend(c);
        }
        String::from_utf8(all).map_err(|_| "not UTF-8".into())
    }
}

/// The time until the next poll: `max-age` seconds, within a minute and a year; five minutes
/// when the publisher does not say.
fn interval(max_age: Option<u64>) -> TimeDelta {
    let most = MAX_INTERVAL.num_seconds().unsigned_abs();
    max_age.map_or(DEFAULT_INTERVAL, |s| TimeDelta::seconds(s.min(most) as i64)).max(MIN_INTERVAL)
}

/// A fetched manifest or file, or "not modified" (with the answer's `max-age`: a 304 carries the
/// `Cache-Control` a 200 would have, RFC 9110).
enum Fetched {
    NotModified { max_age: Option<u64> },
    Body { body: Body, length: Option<u64>, etag: Option<String>, last_modified: Option<String>, max_age: Option<u64> },
}

async fn fetch(
    http: &EgressClient,
    url: &Url,
    validators: Option<(&Option<String>, &Option<String>)>,
) -> Result<Fetched, String> {
    if url.scheme() == "file" {
        let path = url.to_file_path().map_err(|()| format!("{url} is not a local path"))?;
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let length = file.metadata().ok().map(|m| m.len());
        return Ok(Fetched::Body { body: Body::File(file), length, etag: None, last_modified: None, max_age: None });
    }
    let mut request = http.get(url.clone()).map_err(|refused| format!("{url}: {refused}"))?;
    if let Some((etag, modified)) = validators {
        if let Some(e) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, e);
        }
        if let Some(m) = modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, m);
        }
    }
    let response = tokio::time::timeout(STALL_TIMEOUT, request.send())
        .await
        .map_err(|_| format!("{url}: no answer in {} s", STALL_TIMEOUT.as_secs()))?
        .map_err(|e| match Refused::in_chain(&e) {
            Some(refused) => format!("{url}: {refused}"),
            None => format!("{url}: {e}"),
        })?;
    let header = |name| {
        response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(String::from)
    };
    // Seconds too many to count are as many as can be (RFC 9111, delta-seconds).
    let seconds = |n: &str| {
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse::<u64>().unwrap_or(u64::MAX))
    };
    let max_age = header(reqwest::header::CACHE_CONTROL)
        .and_then(|c| c.split(',').find_map(|d| d.trim().strip_prefix("max-age=").and_then(|n| seconds(n.trim()))));
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified { max_age });
    }
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let length = response.content_length();
    Ok(Fetched::Body { body: Body::Http(Box::new(response)), length, etag, last_modified, max_age })
}

/// Where to read an output of a manifest: as listed, except that a manifest on the disk has its
/// files beside it (examples list the URLs they were first published at). A manifest read over
/// HTTP names files over HTTP only: never a path on this server's disk.
fn output_url(manifest: &Url, output: &Output) -> Result<Url, String> {
    if manifest.scheme() != "file" {
        return match output.url.scheme() {
            "http" | "https" => Ok(output.url.clone()),
            _ => Err(format!("{}: a manifest read over HTTP lists http(s) files only", output.url)),
        };
    }
    let name = output.url.path_segments().and_then(|mut s| s.next_back()).unwrap_or_default();
    Ok(manifest.join(name).unwrap_or_else(|_| output.url.clone()))
}

/// Polls publisher `id` once at `now` and records the outcome on it (state, report, next due
/// time), within the default [`PollLimits`]. Problems with the feed are on the returned
/// publisher, not an error.
pub async fn poll(
    store: &Store,
    http: &EgressClient,
    id: &str,
    now: DateTime<Utc>,
    progress: &(dyn Fn(Event) + Send + Sync),
) -> Result<Publisher, LinksError> {
    poll_within(store, http, id, now, progress, PollLimits::default()).await
}

/// [`poll`] within `limits`.
pub async fn poll_within(
    store: &Store,
    http: &EgressClient,
    id: &str,
    now: DateTime<Utc>,
    progress: &(dyn Fn(Event) + Send + Sync),
    limits: PollLimits,
) -> Result<Publisher, LinksError> {
    let clock = PollClock::starting_at(now);
    let mut p = store.publisher(id).await?;
    let options: Options = serde_json::from_str(&p.options).unwrap_or_default();
    let manifest_url = Url::parse(&p.manifest_url).map_err(|e| LinksError::Invalid(e.to_string()))?;
    let mut request = manifest_url.clone();
    let since = p.since.clone().filter(|_| p.state == "ok" || p.state == "partial");
    if let Some(s) = &since
        && manifest_url.scheme() != "file"
    {
        request.query_pairs_mut().append_pair("_since", s);
    }
    p.polls += 1;
    p.last_poll_ms = Some(now.timestamp_millis());
    store.forget_seen(&p.id).await?;
    let mut report = Report { since: since.clone(), ..Report::default() };
    let manifest_file = manifest_url.to_string();

    let failed = |mut p: Publisher, mut report: Report, reason: String| {
        report.problem(&manifest_file, 0, "fetch", reason.clone());
        p.state = "error".into();
        p.reason = Some(reason);
        p.report = serde_json::to_string(&report).ok();
        p.next_run_ms = Some((now + RETRY_INTERVAL).timestamp_millis());
        p
    };

    let (body, etag, last_modified, max_age) = match fetch(http, &request, Some((&p.etag, &p.last_modified))).await {
        Err(e) => {
            let p = failed(p, report, e);
            store.save_publisher(&p).await?;
            return Ok(p);
        }
        Ok(Fetched::NotModified { max_age }) => {
            report.not_modified = true;
            report.transaction_time = p.since.clone();
            p.report = serde_json::to_string(&report).ok();
            p.next_run_ms = Some((now + interval(max_age)).timestamp_millis());
            if p.state == "new" {
                p.state = "ok".into();
            }
            store.save_publisher(&p).await?;
            return Ok(p);
        }
        Ok(Fetched::Body { body, etag, last_modified, max_age, .. }) => (body, etag, last_modified, max_age),
    };
    let interval = interval(max_age);
    let text = match body.text(MAX_MANIFEST_BYTES).await {
        Ok(t) => {
            report.bytes += t.len() as u64;
            t
        }
        Err(e) => {
            let p = failed(p, report, format!("the manifest: {e}"));
            store.save_publisher(&p).await?;
            return Ok(p);
        }
    };
    let mut manifest_problems = Vec::new();
    let manifest = match manifest::read(&text, &manifest_url, &mut manifest_problems) {
        Ok(m) => m,
        Err(e) => {
            let p = failed(p, report, e);
            store.save_publisher(&p).await?;
            return Ok(p);
        }
    };
    for m in manifest_problems {
        report.problem(&manifest_file, 0, "manifest", m);
    }
    if manifest.instance.as_deref() == Some(store.instance()) {
        let p = failed(p, report, "this manifest is this server's own feed: its availability is here already".into());
        store.save_publisher(&p).await?;
        return Ok(p);
    }
    p.instance = manifest.instance.clone();
    let transaction_time =
        manifest.transaction_time.clone().unwrap_or_else(|| now.to_rfc3339_opts(SecondsFormat::Millis, true));
    report.transaction_time = Some(transaction_time.clone());
    // Incremental only when asked and answered so: a publisher that ignores `_since` sends all.
    report.full = !(since.is_some() && manifest.request.as_deref().is_some_and(|r| r.contains("_since=")));

    // The origins of availability this installation holds another way: itself, and every other
    // publisher it reads (its installation, or its manifest for one that is not a calsync).
    let mut held: HashSet<String> = HashSet::from([store.instance().to_string()]);
    for other in store.publishers().await?.into_iter().filter(|q| q.id != p.id) {
        held.extend(other.instance);
        held.extend(calsync_store::origin::manifest_source(&other.manifest_url).map(String::from));
    }
    let namespace = Namespace(p.id.clone());
    let mut reader = Reader::new(namespace, options, manifest_url.clone(), transaction_time.clone());
    if !report.full {
        for t in ["Location", "Schedule"] {
            for (id, content) in store.ingested_contents(&p.id, t).await? {
                reader.learn(t, &id, &content);
            }
        }
    }
    let mut outputs: Vec<&Output> = Vec::new();
    for t in INGESTED_TYPES {
        outputs.extend(manifest.outputs.iter().filter(|o| o.resource_type == t));
    }
    for o in manifest.outputs.iter().filter(|o| !INGESTED_TYPES.contains(&o.resource_type.as_str())) {
        *report.skipped_types.entry(o.resource_type.clone()).or_default() += 1;
    }
    progress(Event::Manifest { files: outputs.len() });

    let mut fetch_error = None;
    for output in outputs {
        let url = match output_url(&manifest_url, output) {
            Ok(url) => url,
            Err(e) => {
                report.problem(output.url.as_str(), 0, "fetch", e.clone());
                fetch_error = Some(e);
                break;
            }
        };
        let file = FileRead { url: &url, resource_type: &output.resource_type, limits, clock, held: &held };
        if let Err(e) = read_file(store, http, &p, file, &mut reader, &mut report, progress).await {
            match e {
                FileError::Store(e) => return Err(e.into()),
                FileError::Fetch(e) => {
                    report.problem(url.as_str(), 0, "fetch", e.clone());
                    fetch_error = Some(e);
                    break;
                }
            }
        }
    }
    report.suspect_local_times = reader.suspect_local;
    if let Some(e) = fetch_error {
        // What was read is kept; nothing is removed, and `_since` stays where it was.
        let mut p = failed(p, report, e);
        p.etag = None;
        p.last_modified = None;
        store.save_publisher(&p).await?;
        return Ok(p);
    }
    if report.full {
        report.removed = store.ingest_sweep(&p.id, &crate::INGESTED_TYPES, p.polls, clock.now()).await?;
    }
    p.state = if report.bad_lines > 0 { "partial" } else { "ok" }.into();
    p.reason = (report.bad_lines > 0).then(|| format!("{} bad lines were not stored", report.bad_lines));
    p.since = Some(transaction_time);
    p.etag = etag;
    p.last_modified = last_modified;
    p.report = serde_json::to_string(&report).ok();
    p.next_run_ms = Some((now + interval).timestamp_millis());
    store.save_publisher(&p).await?;
    tracing::info!(publisher = %p.id, state = %p.state, full = report.full, removed = report.removed, bad = report.bad_lines, "publisher polled");
    Ok(p)
}

/// A poll's clock: the instant it started at on its caller's clock, advanced by the time elapsed
/// since, so that each chunk's lines are stamped as of their arrival.
#[derive(Debug, Clone, Copy)]
struct PollClock {
    start: DateTime<Utc>,
    started: std::time::Instant,
}

impl PollClock {
    fn starting_at(start: DateTime<Utc>) -> Self {
        PollClock { start, started: std::time::Instant::now() }
    }

    fn now(&self) -> DateTime<Utc> {
        self.start + TimeDelta::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

enum FileError {
    Fetch(String),
    Store(StoreError),
}

/// One file of a poll: where, of what type, what the poll may still take, and the origins of
/// availability held another way.
struct FileRead<'a> {
    url: &'a Url,
    resource_type: &'a str,
    limits: PollLimits,
    clock: PollClock,
    held: &'a HashSet<String>,
}

/// Reads one file line by line and stores its resources in batches.
async fn read_file(
    store: &Store,
    http: &EgressClient,
    p: &Publisher,
    FileRead { url, resource_type, limits, clock, held }: FileRead<'_>,
    reader: &mut Reader,
    report: &mut Report,
    progress: &(dyn Fn(Event) + Send + Sync),
) -> Result<(), FileError> {
    let Fetched::Body { mut body, length, .. } = fetch(http, url, None).await.map_err(FileError::Fetch)? else {
        return Ok(());
    };
    progress(Event::File { resource_type: resource_type.to_string(), url: url.to_string(), length });
    let file = url.as_str();
    let mut count = report.types.remove(resource_type).unwrap_or_default();
    let mut pending: Vec<u8> = Vec::new();
    let mut in_flight = InFlight::new(store, clock);
    let mut batch: Vec<IngestRow> = Vec::with_capacity(in_flight.batching.rows);
    // Ids of bad lines: what was stored from an earlier, good version of each is kept.
    let mut kept: Vec<String> = Vec::new();
    let mut line_no = 0u64;
    // Inside a line longer than MAX_LINE_BYTES: what arrives is dropped up to its end.
    let mut overlong = false;
    let too_long = |count: &mut TypeCount, report: &mut Report, line: u64| {
        count.lines += 1;
        count.bad += 1;
        report.bad_lines += 1;
        report.problem(file, line, "bad", format!("longer than {MAX_LINE_BYTES} bytes: not read"));
    };
    // A line naming an origin is availability another calsync published again: read whole.
    let named_origin = memchr::memmem::Finder::new(calsync_store::origin::ORIGIN_EXTENSION.as_bytes());
    let mut done = false;
    while !done {
        let chunk = body.chunk().await.map_err(|e| FileError::Fetch(format!("{url}: {e}")))?;
        let bytes = chunk.as_ref().map_or(0, |c| c.len() as u64);
        report.bytes += bytes;
        if report.bytes > limits.bytes {
            return Err(FileError::Fetch(format!(
                "{url}: the feed is larger than {} bytes, the limit of one poll: stopped there",
                limits.bytes
            )));
        }
        if clock.started.elapsed() > limits.time {
            return Err(FileError::Fetch(format!(
                "{url}: the poll took longer than {} s, the limit of one poll: stopped there",
                limits.time.as_secs()
            )));
        }
        match chunk {
            Some(c) if overlong => {
                if let Some(end) = memchr::memchr(b'\n', &c) {
                    overlong = false;
                    pending.extend_from_slice(&c[end + 1..]);
                }
            }
            Some(c) => pending.extend_from_slice(&c),
            None => {
                done = true;
                if !pending.is_empty() {
                    pending.push(b'\n');
                }
            }
        }
        // The lines of a chunk are written as of its arrival.
        let now = clock.now();
        let mut start = 0;
        let lines_before = line_no;
        while let Some(end) = memchr::memchr(b'\n', &pending[start..]).map(|i| start + i) {
            line_no += 1;
            let raw = &pending[start..end];
            start = end + 1;
            if raw.len() > MAX_LINE_BYTES {
                // Whole in one chunk, yet as bad as one cut off below.
                too_long(&mut count, report, line_no);
                continue;
            }
            let Ok(text) = std::str::from_utf8(raw) else {
                count.bad += 1;
                report.bad_lines += 1;
                report.problem(file, line_no, "bad", "not UTF-8".into());
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            count.lines += 1;
            // Availability held another way, published again by another installation: not a
            // second copy.
            if named_origin.find(raw).is_some() && origin_of(text).is_some_and(|o| held.contains(&o)) {
                count.already += 1;
                continue;
            }
            // The row is made here, while the batch before it is written.
            match reader.row(store, resource_type, text, now) {
                Ok((row, notes)) => {
                    for Note::Repaired(kind, message) in notes {
                        report.repair(file, line_no, kind, message);
                    }
                    batch.push(row);
                }
                Err(Bad { why, id }) => {
                    count.bad += 1;
                    report.bad_lines += 1;
                    report.problem(file, line_no, "bad", why);
                    kept.extend(id);
                }
            }
            if batch.len() >= in_flight.batching.rows {
                in_flight.send(store, p, &mut batch, &mut count).await.map_err(FileError::Store)?;
            }
            if kept.len() >= in_flight.batching.rows {
                count.kept += store
                    .ingest_keep(&p.id, p.polls, resource_type, &std::mem::take(&mut kept))
                    .await
                    .map_err(FileError::Store)?;
            }
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE_BYTES {
            line_no += 1;
            too_long(&mut count, report, line_no);
            pending.clear();
            overlong = true;
        }
        progress(Event::Read { bytes, lines: line_no - lines_before });
    }
    in_flight.send(store, p, &mut batch, &mut count).await.map_err(FileError::Store)?;
    in_flight.settle_all(&mut count).await.map_err(FileError::Store)?;
    if !kept.is_empty() {
        count.kept += store.ingest_keep(&p.id, p.polls, resource_type, &kept).await.map_err(FileError::Store)?;
    }
    report.types.insert(resource_type.to_string(), count);
    Ok(())
}

/// The origin a resource's JSON names in its meta extension, if any.
fn origin_of(text: &str) -> Option<String> {
    let resource: serde_json::Value = serde_json::from_str(text).ok()?;
    let extensions = resource["meta"]["extension"].as_array()?;
    let origin = extensions.iter().find(|e| e["url"] == calsync_store::origin::ORIGIN_EXTENSION)?;
    origin["valueUri"].as_str().map(String::from)
}

/// The batches being written while the next one is read (reading and writing overlap: one
/// core parses while the database writes), as many at once as the store takes
/// ([`Store::ingest_batching`]).
struct InFlight {
    batching: IngestBatching,
    clock: PollClock,
    /// Each batch's task, with the hashes of its ids: a batch that shares one with a batch under
    /// way waits for it, so the later line of a repeated id is the one stored.
    tasks: VecDeque<(BatchTask, HashSet<u64>)>,
}

/// A batch being written.
type BatchTask = tokio::task::JoinHandle<Result<IngestTally, StoreError>>;

impl InFlight {
    fn new(store: &Store, clock: PollClock) -> Self {
        let batching = store.ingest_batching();
        InFlight { batching, clock, tasks: VecDeque::with_capacity(batching.concurrent) }
    }

    /// Waits for the oldest batch under way and counts what it did. When it failed, the others
    /// are waited for too before the error is returned: nothing of this poll is still being
    /// written once it has failed.
    async fn settle_one(&mut self, count: &mut TypeCount) -> Result<(), StoreError> {
        if let Some((task, _)) = self.tasks.pop_front() {
            let done = task.await.map_err(|e| StoreError::Invalid(format!("the ingest task failed: {e}")));
            let IngestTally { created, changed, unchanged } = match done.and_then(|r| r) {
                Ok(tally) => tally,
                Err(e) => {
                    for (rest, _) in self.tasks.drain(..) {
                        let _ = rest.await;
                    }
                    return Err(e);
                }
            };
            count.created += created;
            count.changed += changed;
            count.unchanged += unchanged;
        }
        Ok(())
    }

    /// Waits for every batch under way.
    async fn settle_all(&mut self, count: &mut TypeCount) -> Result<(), StoreError> {
        while !self.tasks.is_empty() {
            self.settle_one(count).await?;
        }
        Ok(())
    }

    /// Sends a full batch to the store once there is room for it.
    async fn send(
        &mut self,
        store: &Store,
        p: &Publisher,
        batch: &mut Vec<IngestRow>,
        count: &mut TypeCount,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // One batch at a time: the one before is done before this one goes, whatever its ids.
        let ids: HashSet<u64> = match self.batching.concurrent {
            1 => HashSet::new(),
            _ => batch.iter().map(|row| id_hash(row.id())).collect(),
        };
        if self.tasks.iter().any(|(_, other)| !other.is_disjoint(&ids)) {
            self.settle_all(count).await?;
        }
        while self.tasks.len() >= self.batching.concurrent {
            self.settle_one(count).await?;
        }
        let items = std::mem::replace(batch, Vec::with_capacity(self.batching.rows));
        let (store, id, poll, now) = (store.clone(), p.id.clone(), p.polls, self.clock.now());
        let task =
            tokio::spawn(async move { store.ingest(&id, poll, items, calsync_fhir::booking::carry_takers, now).await });
        self.tasks.push_back((task, ids));
        Ok(())
    }
}

/// A hash of a stored id (two ids with one hash only make a batch wait).
fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

#[cfg(test)]
mod tests;
