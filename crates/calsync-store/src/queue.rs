//! The job queue's share of the database: the queue (apalis) keeps its own tables next to the
//! store's and runs on the same database, through [`Store::queue_database`]; the worker asks
//! which idempotency keys it queued already.

use sea_orm::DbErr;

use crate::{Backend, Store, StoreError};

/// Where the job queue's tables are: the store's own database.
#[derive(Debug, Clone)]
pub enum QueueDatabase {
    /// SQLite: the options the store's connections were opened with (the queue opens its own,
    /// which wait longer for the write lock).
    Sqlite(Box<sea_orm::sqlx::sqlite::SqliteConnectOptions>),
    /// PostgreSQL: the store's pool.
    Postgres(sea_orm::sqlx::PgPool),
}

impl Store {
    /// The database the job queue shares with the store.
    pub fn queue_database(&self) -> QueueDatabase {
        match self.backend() {
            Backend::Sqlite => {
                QueueDatabase::Sqlite(Box::new((*self.db.get_sqlite_connection_pool().connect_options()).clone()))
            }
            Backend::Postgres => QueueDatabase::Postgres(self.db.get_postgres_connection_pool().clone()),
        }
    }

    /// Which of `keys` are the idempotency keys of jobs of `queue` in apalis' table on PostgreSQL
    /// (`apalis.jobs`, unique on job type and key), whatever their state. apalis-postgres inserts
    /// a batch of jobs without `ON CONFLICT`, so one key already there fails the whole batch: the
    /// worker leaves these out first. On SQLite apalis skips them itself: always empty.
    pub async fn queued_job_keys(
        &self,
        queue: &str,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        if self.backend() != Backend::Postgres || keys.is_empty() {
            return Ok(Default::default());
        }
        let found: Vec<String> = sea_orm::sqlx::query_scalar(
            "SELECT idempotency_key FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = ANY($2)",
        )
        .bind(queue)
        .bind(keys)
        .fetch_all(self.db.get_postgres_connection_pool())
        .await
        .map_err(|e| StoreError::from(DbErr::Custom(format!("queued jobs: {e}"))))?;
        Ok(found.into_iter().collect())
    }
}
