//! The write paths of [`crate::Store::ingest`]: a feed's resources by the thousand.
//!
//! Each database has its own, because the general write path (sea-orm `ActiveModel`s, one
//! statement per version) spent more time building and binding values than writing them
//! (docs/benchmarks.md):
//! - [`sqlite`]: prepared rusqlite statements on one write connection, a row at a time (SQLite
//!   is in the process: a statement costs no round trip);
//! - [`postgres`]: a few statements per batch, each carrying every row as arrays (`UNNEST`),
//!   so a batch of thousands costs about ten round trips.
//!
//! Both decide alike what a resource becomes ([`next_version`]), and both write a new
//! resource's first version once, to `resource`; it moves to the history when a newer version
//! replaces it (`Store::vread` and `Store::history` find it in either place).

pub(crate) mod postgres;
pub(crate) mod sqlite;

use serde_json::Value;

use crate::ingest::Carry;
use crate::same_content;

/// The version an incoming resource is written as, given the stored one (version, deleted, JSON
/// text), after `carry` took over what calsync recorded on it; `None` when the incoming resource
/// is the stored one.
pub(crate) fn next_version(stored: Option<(i64, bool, &str)>, incoming: &mut Value, carry: Carry) -> Option<i64> {
    let Some((version, deleted, old)) = stored else { return Some(1) };
    if deleted {
        return Some(version + 1);
    }
    let old: Value = serde_json::from_str(old).unwrap_or(Value::Null);
    carry(&old, incoming);
    (!same_content(&old, incoming)).then_some(version + 1)
}
