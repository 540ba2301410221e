//! The use cases of calsync: what the HTTP API, the CLI, the web page and the assistant all call.
//!
//! Each use case is a method of [`UseCases`] in a module of its own. It takes the [`Context`] of
//! the call (who asks, and the instant on the system's one clock) and typed input, and returns a
//! typed result or a [`UseCaseError`]. Nothing here knows HTTP: a caller parses its own request
//! and renders the result (the FHIR facade through `calsync-fhir`, the page through its
//! templates). Authorization belongs here too: every use case receives the caller, so a policy
//! is checked in one place per use case, whoever calls.
//!
//! | Module | Use cases |
//! |---|---|
//! | [`find`] | `$find` and `$find-mutual`: times that work for the provider and everyone |
//! | [`hold`], [`book`], [`cancel`] | holding, booking and cancelling an offered time |
//! | [`invitation`] | an appointment as an iCalendar invitation |
//! | [`import_calendar`] | a participant's uploaded calendar into their busy Slots |
//! | [`connections`], [`connect`] | calendar connections, and the OAuth flow that makes them |
//! | [`publishers`] | SMART Scheduling Links publishers calsync ingests |
//! | [`publish`] | calsync's own availability as a SMART Scheduling Links feed |
//! | [`booking_link`] | booking through a publisher's portal, and its return |
//! | [`resources`], [`search`] | read, write and search FHIR resources |

use calsync_connect::egress::{Egress, EgressClient};
use calsync_store::Store;
use calsync_sync::connection::SyncSettings;
use chrono::TimeDelta;

pub mod access;
pub mod audit;
pub mod book;
pub mod booking_link;
pub mod cancel;
pub mod compartment;
pub mod connect;
pub mod connections;
mod context;
mod error;
pub mod find;
pub mod hold;
pub mod import_calendar;
pub mod invitation;
mod offer;
mod participants;
mod policy;
pub mod publish;
pub mod publishers;
mod reference;
pub mod resources;
pub mod search;

pub use connect::Authorizers;
pub use context::{Caller, Clock, Context};
pub use error::UseCaseError;
pub use policy::DIRECTORY;
pub use reference::typed_reference;

/// How a publisher's feed is read (its zone, whether its times are local), what an ingest
/// reports as it goes, and its report.
pub use calsync_links::{Event as IngestEvent, Options as PublisherOptions, Report as IngestReport};
/// What the use cases hand back of the store: a stored resource version, a calendar connection
/// (never its credentials' plain text), a publisher and its last report.
pub use calsync_store::{CalendarConnection, Publisher, StoredResource};

/// The result of a use case.
pub type Outcome<T> = Result<T, UseCaseError>;

/// The background work a use case may ask for, through the job queue (the worker's): the narrow
/// interface the use cases see of it.
pub trait JobQueue: Send + Sync {
    /// Makes every calendar connection that syncs by itself due at `now` and queues it; how many
    /// were queued.
    fn sync_all<'a>(
        &'a self,
        store: &'a Store,
        now: chrono::DateTime<chrono::Utc>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>>;
}

/// What the use cases work with, wired once by the composition root (`calsync-system`) and
/// shared by every caller. Cheap to clone.
#[derive(Clone)]
pub struct UseCases {
    store: Store,
    clock: Clock,
    hold: TimeDelta,
    sync: Option<SyncSettings>,
    jobs: Option<std::sync::Arc<dyn JobQueue>>,
    egress: Egress,
    http: EgressClient,
    authorizers: Authorizers,
    min_poll: TimeDelta,
    /// No authorization: every caller may do everything (`[auth] mode = "none"`).
    open: bool,
    places: std::sync::Arc<publish::PublishedPlaces>,
    audit: audit::Audit,
    compartments: compartment::Remembered,
}

impl std::fmt::Debug for UseCases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseCases").field("hold", &self.hold).finish_non_exhaustive()
    }
}

/// What [`UseCases`] are made of (see `calsync-system`, which builds it from the configuration).
pub struct Parts {
    /// The store, indexed with the FHIR search definitions.
    pub store: Store,
    /// The system's one clock.
    pub clock: Clock,
    /// How long `$hold` keeps a Slot.
    pub hold: TimeDelta,
    /// Calendar syncs: none without a secret key to seal credentials with.
    pub sync: Option<SyncSettings>,
    /// The job queue (present whenever `sync` is).
    pub jobs: Option<std::sync::Arc<dyn JobQueue>>,
    /// What addresses given from outside may reach.
    pub egress: Egress,
    /// The HTTP client publishers are polled with (keeps to `egress`).
    pub http: EgressClient,
    /// Google's and Microsoft's OAuth clients, and this server's public address.
    pub authorizers: Authorizers,
    /// The shortest time between two polls of a publisher asked for by hand.
    pub min_poll: TimeDelta,
    /// No authorization: every caller, with a token or not, may do everything (a development
    /// setting; production refuses to start with it unless told so explicitly).
    pub open: bool,
}

impl UseCases {
    /// The use cases over `parts`.
    pub fn new(parts: Parts) -> Self {
        let Parts { store, clock, hold, sync, jobs, egress, http, authorizers, min_poll, open } = parts;
        let audit = audit::Audit::start(store.clone());
        UseCases {
            store,
            clock,
            hold,
            sync,
            jobs,
            egress,
            http,
            authorizers,
            min_poll,
            open,
            audit,
            compartments: Default::default(),
            places: Default::default(),
        }
    }

    /// The system's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// True when the deployment runs without authorization (`[auth] mode = "none"`).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The store (for the composition root's loading and background tasks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A context for `caller` at the clock's current instant, addressed at `base`.
    pub fn context(&self, caller: Caller, base: impl Into<String>) -> Context {
        Context { caller, now: self.clock.now(), base: base.into(), request: uuid::Uuid::new_v4().to_string() }
    }

    /// The sync settings, or why calendar connections are off here.
    fn sync_settings(&self) -> Outcome<&SyncSettings> {
        self.sync.as_ref().ok_or_else(|| {
            UseCaseError::Unavailable("calendar connections need a secret_key in the server's configuration".into())
        })
    }
}
