//! The job queue as the use cases see it ([`calsync_usecase::JobQueue`]): the worker's queue in
//! the application's database.

use std::future::Future;
use std::pin::Pin;

use calsync_store::Store;
use chrono::{DateTime, Utc};

/// The worker's queue, shared by the requests of one process (pushing takes it in turn).
pub(crate) struct SharedQueue(pub(crate) tokio::sync::Mutex<calsync_worker::Queue>);

impl calsync_usecase::JobQueue for SharedQueue {
    fn sync_all<'a>(
        &'a self,
        store: &'a Store,
        now: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>> {
        Box::pin(async move { self.0.lock().await.sync_all(store, now).await.map_err(|e| e.to_string()) })
    }
}
