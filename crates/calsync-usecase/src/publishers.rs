//! SMART Scheduling Links publishers whose availability calsync ingests: register one by its
//! manifest URL, read its status (with the report of its last poll), poll it now, or remove it
//! with everything ingested from it. The worker polls each as often as the publisher allows (see
//! `calsync-links`).

use calsync_links::{Event, Options};
use calsync_store::Publisher;

use crate::access::Interaction;
use crate::{Caller, Context, Outcome, UseCaseError, UseCases};

impl UseCases {
    /// Registers the publisher whose `$bulk-publish` manifest is at `manifest` (http or https);
    /// it is polled at once by the worker.
    pub async fn register_publisher(&self, cx: &Context, manifest: &str, options: Options) -> Outcome<Publisher> {
        self.permit_system(cx, "Slot", Interaction::Create)?;
        // A path on this server's disk is for the command line only.
        if !(manifest.starts_with("http://") || manifest.starts_with("https://")) {
            return Err(UseCaseError::Invalid("manifest must be an http(s) URL".into()));
        }
        let url =
            url::Url::parse(manifest).map_err(|e| UseCaseError::Invalid(format!("{manifest:?} is not a URL: {e}")))?;
        self.egress.admit(&url).map_err(|refused| UseCaseError::element("manifest", refused.to_string()))?;
        let p = calsync_links::register(&self.store, manifest, options, cx.now).await?;
        tracing::info!(publisher = %p.id, "publisher registered");
        Ok(p)
    }

    /// The command line's ingest: registers the publisher at `source` (a manifest URL, or a
    /// directory of this machine holding a `$bulk-publish` file and its files) or finds it
    /// registered, and polls it now, telling `progress` how it goes. `full` reads everything
    /// again (no conditional request, no `_since`).
    pub async fn ingest_now(
        &self,
        cx: &Context,
        source: &str,
        options: Options,
        full: bool,
        progress: &(dyn Fn(Event) + Send + Sync),
    ) -> Outcome<Publisher> {
        // A path on this machine's disk is for the operator alone.
        if cx.caller != Caller::Operator {
            return Err(UseCaseError::Invalid("ingesting now is for the command line".into()));
        }
        let mut publisher = calsync_links::register(&self.store, source, options, cx.now).await?;
        if full {
            publisher.etag = None;
            publisher.last_modified = None;
            publisher.since = None;
            self.store.save_publisher(&publisher).await?;
        }
        Ok(calsync_links::poll(&self.store, &self.http, &publisher.id, cx.now, progress).await?)
    }

    /// Every publisher.
    pub async fn publishers(&self, cx: &Context) -> Outcome<Vec<Publisher>> {
        self.permit_system(cx, "Slot", Interaction::Read)?;
        Ok(self.store.publishers().await?)
    }

    /// One publisher.
    pub async fn publisher(&self, cx: &Context, id: &str) -> Outcome<Publisher> {
        self.permit_system(cx, "Slot", Interaction::Read)?;
        // Only a FHIR-style id can name one (PostgreSQL refuses a NUL in any text).
        if !calsync_store::is_valid_id(id) {
            return Err(UseCaseError::NotFound(format!("publisher {id:?} is not known")));
        }
        crate::error::known(self.store.publisher(id).await, || format!("publisher {id}"))
    }

    /// Polls a publisher now, in this process, unless a poll of it started less than the minimum
    /// interval ago (`publishers.min_poll_seconds`, a minute by default, as the specification
    /// asks of clients): asking again cannot make calsync hammer a publisher.
    pub async fn poll_publisher_now(&self, cx: &Context, id: &str) -> Outcome<Publisher> {
        self.permit_system(cx, "Slot", Interaction::Create)?;
        let id = self.publisher(cx, id).await?.id;
        if let Err(last) = self.store.claim_publisher_poll(&id, cx.now, self.min_poll).await? {
            let wait = (last + self.min_poll - cx.now).max(chrono::TimeDelta::seconds(1));
            return Err(UseCaseError::TooSoon {
                message: format!(
                    "publisher {id} was polled at {}: it is polled at most once every {} s; ask again in {} s",
                    last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    self.min_poll.num_seconds(),
                    wait.num_seconds().max(1)
                ),
                retry_after: wait.to_std().unwrap_or_default(),
            });
        }
        Ok(calsync_links::poll(&self.store, &self.http, &id, cx.now, &|_| {}).await?)
    }

    /// Removes a publisher and everything ingested from it; how many resources went.
    pub async fn remove_publisher(&self, cx: &Context, id: &str) -> Outcome<u64> {
        self.permit_system(cx, "Slot", Interaction::Delete)?;
        let p = self.publisher(cx, id).await?;
        let removed = self.store.delete_publisher(&p.id, &calsync_links::INGESTED_TYPES, cx.now).await?;
        tracing::info!(publisher = %p.id, removed, "publisher removed");
        Ok(removed)
    }
}
