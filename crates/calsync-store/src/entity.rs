//! Tables, as sea-orm entities.

/// The current version of every resource: the full JSON plus what identifies and versions it;
/// on a live Slot's row also what range queries need (a deleted Slot has none, so the partial
/// range indexes hold live Slots only), and on an ingested resource's row where it came from.
pub mod resource {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "resource")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub resource_type: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub version_id: i64,
        /// UTC milliseconds.
        pub last_updated: i64,
        pub deleted: bool,
        #[sea_orm(column_type = "Text")]
        pub content: String,
        /// A live Slot's `Schedule/{id}` as referenced.
        pub schedule: Option<String>,
        /// A live Slot's start, UTC milliseconds.
        pub start_ms: Option<i64>,
        /// A live Slot's end, UTC milliseconds.
        pub end_ms: Option<i64>,
        /// A live Slot's status.
        pub status: Option<String>,
        /// The publisher an ingested resource came from (its id starts with `{publisher}.`).
        pub publisher: Option<String>,
        /// A digest of the source line this version was made from: the same digest on a later
        /// poll means unchanged.
        pub digest: Option<i64>,
        /// The last poll of `publisher` that listed it (a full data set removes the others).
        pub poll: Option<i64>,
        /// Set on an ingested Slot stored without its origin: its lastSourceSync, UTC
        /// milliseconds (`crate::origin`).
        pub synced_ms: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every version of every resource, deletions included, for vread and history.
pub mod resource_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "resource_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub resource_type: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version_id: i64,
        pub last_updated: i64,
        pub deleted: bool,
        #[sea_orm(column_type = "Text")]
        pub content: String,
        /// As [`super::resource::Model::synced_ms`] for this version.
        pub synced_ms: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How often each Schedule's Slots changed: bumped in the transaction of every Slot write, so
/// any process can tell whether what it remembers of a Schedule's Slots is still current.
pub mod slot_generation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slot_generation")]
    pub struct Model {
        /// `Schedule/{id}` as referenced.
        #[sea_orm(primary_key, auto_increment = false)]
        pub schedule: String,
        pub generation: i64,
        /// At least as long as the longest free Slot the Schedule has (it only grows).
        pub longest_free_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Token, reference and string values of resources, one row per value, for search.
pub mod search_index {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "search_index")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub row_id: i64,
        pub resource_type: String,
        pub id: String,
        pub param: String,
        /// Token system, "" when none.
        pub system: String,
        /// As searched (lower-case text, code, `Type/id`).
        pub value: String,
        /// As written.
        pub raw: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Date, dateTime and Period values of resources as ranges of UTC milliseconds, for search.
pub mod date_index {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "date_index")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub row_id: i64,
        pub resource_type: String,
        pub id: String,
        pub param: String,
        /// Inclusive start, UTC milliseconds.
        pub low_ms: i64,
        /// Exclusive end, UTC milliseconds.
        pub high_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Facts about the store itself (e.g. which index definitions its index was built with).
pub mod store_meta {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "store_meta")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        #[sea_orm(column_type = "Text")]
        pub value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Participants' calendar connections. Not a FHIR resource: it holds a sealed secret (the
/// caller seals it; the store never sees plaintext) and the sync status.
pub mod connection {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "connection")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `Patient/1` or `RelatedPerson/2`.
        pub participant: String,
        /// The derived Schedule its busy Slots go to (id).
        pub schedule: String,
        /// ics | caldav | google | microsoft.
        pub kind: String,
        /// Where it reads, for people (host only: no path, no token).
        pub host: String,
        /// Sealed credentials and address; none after consent is withdrawn.
        #[sea_orm(column_type = "Text", nullable)]
        pub secret: Option<String>,
        /// What the server said about the last version read (JSON), for conditional requests.
        #[sea_orm(column_type = "Text", nullable)]
        pub validator: Option<String>,
        /// new | syncing | ok | error | needs-reconnect | consent-withdrawn.
        pub state: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub reason: Option<String>,
        /// UTC milliseconds.
        pub last_success_ms: Option<i64>,
        /// UTC milliseconds.
        pub next_run_ms: Option<i64>,
        pub attempts: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// OAuth authorizations in flight (`/connect/{provider}/start` until its callback): the PKCE
/// verifier is sealed by the caller, and each row is taken once.
pub mod authorization {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "authorization")]
    pub struct Model {
        /// The OAuth `state` (random, single use).
        #[sea_orm(primary_key, auto_increment = false)]
        pub state: String,
        /// google | microsoft.
        pub provider: String,
        /// `Patient/1` or `RelatedPerson/2`.
        pub participant: String,
        /// The sealed PKCE code verifier.
        #[sea_orm(column_type = "Text")]
        pub verifier: String,
        /// UTC milliseconds after which the callback is refused.
        pub expires_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Publishers of SMART Scheduling Links feeds that calsync ingests: where their manifest is,
/// how they are read, and what the last poll found.
pub mod publisher {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "publisher")]
    pub struct Model {
        /// The namespace of everything ingested from it (`{id}.{their id}`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The manifest URL (ends in `$bulk-publish`; `file:` for a directory).
        #[sea_orm(column_type = "Text", unique)]
        pub manifest_url: String,
        /// How its feed is read (JSON, owned by the ingester).
        #[sea_orm(column_type = "Text")]
        pub options: String,
        /// new | polling | ok | partial | error.
        pub state: String,
        /// Why the last poll failed or was partial, for people.
        #[sea_orm(column_type = "Text", nullable)]
        pub reason: Option<String>,
        /// What the last poll found (JSON, owned by the ingester: counts, bad lines).
        #[sea_orm(column_type = "Text", nullable)]
        pub report: Option<String>,
        /// The manifest's `ETag`, for `If-None-Match`.
        #[sea_orm(column_type = "Text", nullable)]
        pub etag: Option<String>,
        /// The manifest's `Last-Modified`, for `If-Modified-Since`.
        #[sea_orm(column_type = "Text", nullable)]
        pub last_modified: Option<String>,
        /// The `transactionTime` of the last complete poll, sent as `_since` next time.
        #[sea_orm(column_type = "Text", nullable)]
        pub since: Option<String>,
        /// Polls so far (the number of the last one; ingested resources record the last poll
        /// that saw them).
        pub polls: i64,
        /// UTC milliseconds.
        pub last_poll_ms: Option<i64>,
        /// UTC milliseconds; none while paused.
        pub next_run_ms: Option<i64>,
        /// The calsync installation the manifest names (`urn:uuid:…`), when it is one.
        #[sea_orm(column_type = "Text", nullable)]
        pub instance: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
