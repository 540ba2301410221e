//! Options offered by an IHE `$find`, kept by id until they expire (table `proposal`).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

use crate::{Store, StoreError};

impl Store {
    /// Keeps `proposals` (id, the proposed Appointment) until `expires`, and forgets those that
    /// expired before `now`.
    pub async fn remember_proposals(
        &self,
        proposals: &[(String, Value)],
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let backend = self.db.get_database_backend();
        let (forget, keep) = match backend {
            DbBackend::Postgres => (
                "DELETE FROM proposal WHERE expires_ms < $1",
                "INSERT INTO proposal (id, content, expires_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET content = excluded.content, expires_ms = excluded.expires_ms",
            ),
            _ => (
                "DELETE FROM proposal WHERE expires_ms < ?",
                "INSERT INTO proposal (id, content, expires_ms) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET content = excluded.content, expires_ms = excluded.expires_ms",
            ),
        };
        let _turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        txn.execute_raw(Statement::from_sql_and_values(backend, forget, [now.timestamp_millis().into()])).await?;
        for (id, content) in proposals {
            let values = [id.as_str().into(), content.to_string().into(), expires.timestamp_millis().into()];
            txn.execute_raw(Statement::from_sql_and_values(backend, keep, values)).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The proposal `id` if it has not expired at `now`.
    pub async fn proposal(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Value>, StoreError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => "SELECT content FROM proposal WHERE id = $1 AND expires_ms >= $2",
            _ => "SELECT content FROM proposal WHERE id = ? AND expires_ms >= ?",
        };
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [id.into(), now.timestamp_millis().into()]))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get_by_index(0)?;
        Ok(serde_json::from_str(&text).ok())
    }
}
