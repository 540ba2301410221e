//! SMART Scheduling Links ingest: calsync as a client of other publishers.
//!
//! A publisher is registered by its `$bulk-publish` manifest URL ([`register`]). Each [`poll`]
//! reads the manifest (conditionally, with `_since` after a complete poll), then every file of
//! the types calsync keeps, line by line in constant memory, and stores what it read in
//! batches ([`calsync_store::Store::ingest`]):
//!
//! - every id goes into the publisher's namespace (`{publisher}.{id}`), so two publishers'
//!   `Location/1` never meet, and `meta.source` says where it came from;
//! - an unchanged line (same digest) keeps its resource, id and version as they are;
//! - after a full data set (no `_since`, or one the publisher ignored) what the publisher no
//!   longer has is deleted; an incremental poll only adds and changes;
//! - a bad line is counted and reported with its file and line on the publisher's status, and
//!   the rest is stored; a failed fetch stores what came before it and removes nothing.
//!
//! Manifests and files are fetched only from addresses the server's egress policy permits
//! ([`calsync_connect::egress`]): public ones unless configured otherwise. A manifest read over
//! HTTP lists files over HTTP; only a manifest on the disk (`calsync ingest DIR`) reads the disk.
//!
//! The publisher says how often it may be read (`Cache-Control: max-age`); calsync polls no
//! more often than that, and never more than once a minute.

use calsync_connect::egress::{Egress, EgressClient};

mod feed;
mod manifest;
mod poll;
mod zone;

pub use feed::{INGESTED_TYPES, LAST_SOURCE_SYNC, Namespace, Note, Options, Reader};
pub use manifest::{Manifest, Output, read as read_manifest};
pub use poll::{Event, LinksError, MIN_INTERVAL, PollLimits, Problem, Report, TypeCount, poll, poll_within, register};

/// The HTTP client publishers are read with (the worker's, the API's and the command's): it
/// reaches only what `egress` permits, for the manifest and every file it lists.
pub fn http_client(egress: Egress) -> Result<EgressClient, reqwest::Error> {
    EgressClient::new(reqwest::Client::builder().user_agent(concat!("calsync/", env!("CARGO_PKG_VERSION"))), egress)
}
