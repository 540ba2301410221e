//! Where an ingested Slot came from, kept once per publisher rather than in every row.
//!
//! An ingested resource names its origin in `meta`: `source` (the publisher's manifest, `#`, its
//! type and the publisher's id) and the lastSourceSync extension (the transaction time of the
//! poll that last changed it). In a Slot's row that was 185 of 436 bytes, the manifest's address
//! and the extension's URL the same in every row of a publisher. A Slot the feed reader took
//! whole (no `meta` of its own, an id not repaired) is stored without them, with the instant in
//! `synced_ms`; a first ingest into SQLite is then a tenth to a fifth faster (docs/benchmarks-log.md,
//! "The origin in every row").
//!
//! Invariants:
//! - `synced_ms` is set only on a Slot whose id is `{publisher}.{their id}`, and whose JSON has
//!   `meta` as its last member, holding none of `source` or `extension`; every other write sets
//!   it to NULL with whole content (a deletion keeps the row's).
//! - Every path that turns such a row into a resource adds the origin back with [`splice`]:
//!   read, vread, history, searches, the Slot pages, a transaction's reads, the published feed
//!   and `ingested_contents`. The result is the resource as it was stored before, but for the
//!   time's form (UTC, milliseconds).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::SecondsFormat;
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};

use crate::StoreError;
use crate::entity::publisher;

/// The URL of the meta extension naming the calsync installation where a resource entered the
/// network of publishers (`valueUri`: its [`crate::Store::instance`]): every resource calsync
/// publishes carries one, its own or the one it came with. It is also the key of the manifest's
/// `extension` naming the publishing installation.
pub const ORIGIN_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/origin";

/// The URL of the lastSourceSync meta extension.
pub const LAST_SOURCE_SYNC: &str = "http://hl7.org/fhir/StructureDefinition/lastSourceSync";

/// What `meta.source` of a publisher's resources names: the manifest's address without user
/// name, password, query or fragment. Credentials or keys in the address never go into what is
/// stored and published again. `None` for an address that is not a URL.
pub fn manifest_source(manifest: &str) -> Option<url::Url> {
    let mut manifest = url::Url::parse(manifest).ok()?;
    manifest.set_query(None);
    manifest.set_fragment(None);
    // Fails only for URLs that cannot have credentials, which then have none.
    let _ = manifest.set_username("");
    let _ = manifest.set_password(None);
    Some(manifest)
}

/// Publisher id → its Slots' `meta.source` up to their id ([`slot_source_base`]).
pub type Bases = HashMap<String, String>;

/// A publisher's Slots' `meta.source` up to their id (`…$bulk-publish#Slot/`), as the content of
/// a JSON string, for its manifest's address.
pub fn slot_source_base(manifest: &str) -> Option<String> {
    let base = serde_json::to_string(&format!("{}#Slot/", manifest_source(manifest)?)).ok()?;
    Some(base[1..base.len() - 1].to_string())
}

/// The [`Bases`] of the publishers seen so far. A publisher's id is made from a digest of its
/// manifest's address, and names no other address while it exists, so what is remembered stays
/// true; a publisher not yet remembered makes every one be read again. Only after a publisher is
/// removed could its id come back, for an address whose digest begins alike: the process that
/// removes it forgets it ([`Origins::forget`]).
#[derive(Debug, Default)]
pub(crate) struct Origins {
    bases: RwLock<Arc<Bases>>,
}

impl Origins {
    /// The bases, read again when one of the publishers of `ids` (rows stored without their
    /// origin) is not among them.
    pub(crate) async fn bases<'a>(
        &self,
        db: &impl ConnectionTrait,
        mut ids: impl Iterator<Item = &'a str>,
    ) -> Result<Arc<Bases>, StoreError> {
        let known = self.bases.read().map_err(|_| StoreError::Invalid("origin cache poisoned".into()))?.clone();
        if !ids.any(|id| publisher_and_theirs(id).is_some_and(|(p, _)| !known.contains_key(p))) {
            return Ok(known);
        }
        self.read_all(db).await
    }

    /// Forgets every base: the next read that needs one reads them again.
    pub(crate) fn forget(&self) {
        if let Ok(mut bases) = self.bases.write() {
            *bases = Arc::default();
        }
    }

    /// The bases of every publisher, read from the database.
    pub(crate) async fn read_all(&self, db: &impl ConnectionTrait) -> Result<Arc<Bases>, StoreError> {
        let rows: Vec<(String, String)> = publisher::Entity::find()
            .select_only()
            .columns([publisher::Column::Id, publisher::Column::ManifestUrl])
            .into_tuple()
            .all(db)
            .await?;
        let bases: Bases =
            rows.into_iter().filter_map(|(id, manifest)| Some((id, slot_source_base(&manifest)?))).collect();
        let bases = Arc::new(bases);
        *self.bases.write().map_err(|_| StoreError::Invalid("origin cache poisoned".into()))? = bases.clone();
        Ok(bases)
    }
}

/// The publisher and the publisher's own id of an ingested resource's id (`{publisher}.{their id}`).
fn publisher_and_theirs(id: &str) -> Option<(&str, &str)> {
    id.split_once('.')
}

/// The JSON text of the Slot `id` as served: `text` itself, or, for a row stored without its
/// origin (`synced_ms` set), the text with `meta.source` and the lastSourceSync extension added at
/// the end of its `meta`, which is its last member. A row whose publisher is unknown (removed
/// while its Slots were read) is served as stored.
pub fn splice<'a>(text: &'a str, id: &str, synced_ms: Option<i64>, bases: &Bases) -> Cow<'a, str> {
    let Some(ms) = synced_ms else { return Cow::Borrowed(text) };
    let Some((base, theirs)) = publisher_and_theirs(id).and_then(|(p, theirs)| Some((bases.get(p)?, theirs))) else {
        return Cow::Borrowed(text);
    };
    let Some(body) = text.strip_suffix("}}") else { return Cow::Borrowed(text) };
    let time = crate::from_millis(ms).to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = String::with_capacity(text.len() + base.len() + theirs.len() + LAST_SOURCE_SYNC.len() + 80);
    out.push_str(body);
    out.push_str(r#","source":""#);
    out.push_str(base);
    out.push_str(theirs);
    out.push_str(r#"","extension":[{"url":""#);
    out.push_str(LAST_SOURCE_SYNC);
    out.push_str(r#"","valueDateTime":""#);
    out.push_str(&time);
    out.push_str(r#""}]}}"#);
    Cow::Owned(out)
}

/// [`splice`] for a text the caller owns: the same `String` when nothing is added.
pub(crate) fn spliced(text: String, id: &str, synced_ms: Option<i64>, bases: &Bases) -> String {
    if synced_ms.is_none() {
        return text;
    }
    splice(&text, id, synced_ms, bases).into_owned()
}

/// `content` as JSON text with `meta` as its last member, as a row stored without its origin
/// must be ([`splice`] adds to the end of it).
pub(crate) fn text_with_meta_last(content: &serde_json::Value) -> Result<String, StoreError> {
    let invalid = |e: serde_json::Error| StoreError::Invalid(e.to_string());
    let serde_json::Value::Object(map) = content else {
        return Err(StoreError::Invalid("a resource must be a JSON object".into()));
    };
    let mut text = String::from("{");
    for (name, value) in map.iter().filter(|(name, _)| *name != "meta").chain(map.get_key_value("meta")) {
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(name).map_err(invalid)?);
        text.push(':');
        text.push_str(&serde_json::to_string(value).map_err(invalid)?);
    }
    text.push('}');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn bases() -> Bases {
        let base = slot_source_base("https://u:p@pub.example/ssl/$bulk-publish?key=k#x").unwrap();
        [("ssl-abc".to_string(), base)].into()
    }

    #[test]
    fn a_slot_stored_without_its_origin_is_read_with_it() {
        let stored = json!({"resourceType": "Slot", "id": "ssl-abc.s-1", "status": "free",
            "meta": {"versionId": "2", "lastUpdated": "2026-11-25T08:00:00.000Z"}});
        let text = text_with_meta_last(&stored).unwrap();
        // `meta` is the last member, whatever order serde_json keeps the others in.
        assert!(text.ends_with(&format!(r#","meta":{}}}"#, stored["meta"])), "{text}");
        let read: Value =
            serde_json::from_str(&splice(&text, "ssl-abc.s-1", Some(1_798_934_400_000), &bases())).unwrap();
        assert_eq!(read["meta"]["source"], "https://pub.example/ssl/$bulk-publish#Slot/s-1");
        assert_eq!(
            read["meta"]["extension"],
            json!([{"url": LAST_SOURCE_SYNC, "valueDateTime": "2027-01-03T00:00:00.000Z"}])
        );
        assert_eq!(read["meta"]["versionId"], "2");
        assert_eq!(read["status"], "free");
    }

    #[test]
    fn whole_rows_and_rows_of_unknown_publishers_are_read_as_stored() {
        let text = r#"{"resourceType":"Slot","id":"ssl-abc.s-1","meta":{"versionId":"1"}}"#;
        assert!(matches!(splice(text, "ssl-abc.s-1", None, &bases()), Cow::Borrowed(_)));
        assert!(matches!(splice(text, "ssl-zzz.s-1", Some(0), &bases()), Cow::Borrowed(_)));
        assert!(matches!(splice(text, "s-1", Some(0), &bases()), Cow::Borrowed(_)));
    }
}
