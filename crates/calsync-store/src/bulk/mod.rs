//! The write paths of [`crate::Store::ingest`]: a feed's resources by the thousand.
//!
//! Each database has its own, because the general write path (sea-orm `ActiveModel`s, one
//! statement per version) spent more time building and binding values than writing them
//! (docs/benchmarks-log.md):
//! - [`sqlite`]: prepared rusqlite statements on one write connection, a row at a time (SQLite
//!   is in the process: a statement costs no round trip);
//! - [`postgres`]: a few statements per batch, each carrying every row as arrays (`UNNEST`),
//!   so a batch of thousands costs about ten round trips.
//!
//! A new resource arrives ready to write ([`crate::IngestRow`], made on the caller's thread):
//! the writer only binds it. Both paths decide alike what a stored one becomes ([`rewrite`]),
//! and both write a new resource's first version once, to `resource`; it moves to the history
//! when a newer version replaces it (`Store::vread` and `Store::history` find it in either
//! place).

pub(crate) mod postgres;
pub(crate) mod sqlite;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{Indexed, Indexer, SlotRange, StoreError, same_content, stamp};

/// An [`crate::Ingest`] made ready to store on the caller's thread by [`crate::Store::prepare_ingest`]: the
/// resource stamped as a first version, as its JSON text, with its Slot range and its search
/// values. A new resource is written as it is, so the work of a write is done off the single
/// writer; one already stored is parsed again from the text and compared.
#[derive(Debug, Clone)]
pub struct IngestRow {
    pub(crate) resource_type: String,
    pub(crate) id: String,
    pub(crate) digest: i64,
    pub(crate) text: String,
    pub(crate) last_updated: i64,
    pub(crate) range: SlotRange,
    pub(crate) index: Option<Indexed>,
    /// See [`crate::IngestMembers::synced_ms`].
    pub(crate) synced_ms: Option<i64>,
}

impl IngestRow {
    /// The id it is stored under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The JSON text it is stored as.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// See [`crate::IngestMembers::synced_ms`].
    pub fn synced_ms(&self) -> Option<i64> {
        self.synced_ms
    }
}

/// What an [`crate::Store::ingest`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestTally {
    /// New resources.
    pub created: u64,
    /// Resources written as a new version.
    pub changed: u64,
    /// Resources whose digest (or content) was the same as stored.
    pub unchanged: u64,
}

impl std::ops::AddAssign for IngestTally {
    fn add_assign(&mut self, o: Self) {
        self.created += o.created;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
    }
}

/// Carries what calsync itself recorded on a stored resource (holds and bookings of a Slot's
/// places) into the publisher's new version of it, before the two are compared.
pub type Carry = fn(stored: &Value, incoming: &mut Value);

/// A stored resource's next version, made from an incoming row.
pub(crate) struct Rewritten {
    pub(crate) version: i64,
    pub(crate) text: String,
    pub(crate) range: SlotRange,
    pub(crate) index: Option<Indexed>,
}

/// What `row` makes of the stored version (version, deleted, JSON text) at `now`: its next
/// version, or `None` when it is the stored one.
pub(crate) fn rewrite(
    row: &IngestRow,
    stored: (i64, bool, &str),
    carry: Carry,
    indexer: Option<Indexer>,
    now: DateTime<Utc>,
) -> Result<Option<Rewritten>, StoreError> {
    let mut content: Value = serde_json::from_str(&row.text).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let Some(version) = next_version(stored, &mut content, carry) else { return Ok(None) };
    stamp(&mut content, &row.id, version, now)?;
    let range = SlotRange::of(&row.resource_type, false, &content)?;
    let index = indexer.map(|indexer| (indexer.extract)(&row.resource_type, &content));
    let text = match row.synced_ms {
        Some(_) => crate::origin::text_with_meta_last(&content)?,
        None => serde_json::to_string(&content).map_err(|e| StoreError::Invalid(e.to_string()))?,
    };
    Ok(Some(Rewritten { version, text, range, index }))
}

/// The version an incoming resource is written as, given the stored one (version, deleted, JSON
/// text), after `carry` took over what calsync recorded on it; `None` when the incoming resource
/// is the stored one.
fn next_version((version, deleted, old): (i64, bool, &str), incoming: &mut Value, carry: Carry) -> Option<i64> {
    if deleted {
        return Some(version + 1);
    }
    let old: Value = serde_json::from_str(old).unwrap_or(Value::Null);
    carry(&old, incoming);
    (!same_content(&old, incoming)).then_some(version + 1)
}
