//! Participants' calendar connections: which calendar, its sealed credentials, its state and
//! when it is due.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity;
use crate::{Store, StoreError, millis};

/// Connection states that wait for the participant: no worker syncs them by itself.
const PARTICIPANT_STATES: [&str; 2] = ["needs-reconnect", "consent-withdrawn"];

/// Connections per state, and how many synced since an instant (see [`Store::connection_tally`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionTally {
    /// State → number of connections.
    pub states: std::collections::BTreeMap<String, u64>,
    /// Connections whose last successful sync is at or after the instant asked about.
    pub synced_since: u64,
    /// Connections still due at that instant (a finished sync, good or failed, moves its
    /// connection's due time past it).
    pub due: u64,
}

/// A participant's calendar connection as stored.
pub type CalendarConnection = entity::connection::Model;

impl Store {
    /// Writes a connection (new or changed) as it is.
    pub async fn save_calendar_connection(&self, c: &CalendarConnection) -> Result<(), StoreError> {
        use sea_orm::IntoActiveModel;
        let _turn = self.write_turn().await;
        let active = c.clone().into_active_model();
        entity::connection::Entity::insert(active)
            .on_conflict(
                OnConflict::column(entity::connection::Column::Id)
                    .update_columns([
                        entity::connection::Column::Participant,
                        entity::connection::Column::Schedule,
                        entity::connection::Column::Kind,
                        entity::connection::Column::Host,
                        entity::connection::Column::Secret,
                        entity::connection::Column::Validator,
                        entity::connection::Column::State,
                        entity::connection::Column::Reason,
                        entity::connection::Column::LastSuccessMs,
                        entity::connection::Column::NextRunMs,
                        entity::connection::Column::Attempts,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// A connection by id.
    pub async fn calendar_connection(&self, id: &str) -> Result<CalendarConnection, StoreError> {
        entity::connection::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound("Connection".into(), id.into()))
    }

    /// Forgets a connection (its busy Slots are the caller's to remove first).
    pub async fn delete_calendar_connection(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        entity::connection::Entity::delete_by_id(id.to_string()).exec(&self.db).await?;
        Ok(())
    }

    /// Connections a worker should sync at `now`: due (`next_run` passed) and in a state that
    /// syncs by itself (not waiting for the participant to reconnect, not withdrawn). Each with
    /// its due time (the job's idempotency key), earliest first, at most `limit`.
    pub async fn connections_due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<(String, i64)>, StoreError> {
        use entity::connection::Column;
        Ok(entity::connection::Entity::find()
            .select_only()
            .columns([Column::Id, Column::NextRunMs])
            .filter(Column::NextRunMs.lte(millis(now)))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .order_by_asc(Column::NextRunMs)
            .order_by_asc(Column::Id)
            .limit(limit)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }

    /// Marks a connection as being synced now (`syncing`), unless it waits for its participant.
    pub async fn mark_connection_syncing(&self, id: &str) -> Result<(), StoreError> {
        use entity::connection::Column;
        let _turn = self.write_turn().await;
        entity::connection::Entity::update_many()
            .col_expr(Column::State, Expr::value("syncing"))
            .filter(Column::Id.eq(id))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Makes every connection that syncs by itself due at `now` (the nightly run, or "sync all
    /// now"); returns how many.
    pub async fn make_connections_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        use entity::connection::Column;
        let _turn = self.write_turn().await;
        let done = entity::connection::Entity::update_many()
            .col_expr(Column::NextRunMs, Expr::value(millis(now)))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }

    /// How many connections there are per state, how many synced successfully at or after
    /// `since`, and how many are still due at `since` (progress of a run that started then).
    pub async fn connection_tally(&self, since: DateTime<Utc>) -> Result<ConnectionTally, StoreError> {
        use entity::connection::Column;
        let states: Vec<(String, i64)> = entity::connection::Entity::find()
            .select_only()
            .column(Column::State)
            .column_as(Column::Id.count(), "n")
            .group_by(Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        let synced_since =
            entity::connection::Entity::find().filter(Column::LastSuccessMs.gte(millis(since))).count(&self.db).await?;
        let due = entity::connection::Entity::find()
            .filter(Column::NextRunMs.lte(millis(since)))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .count(&self.db)
            .await?;
        Ok(ConnectionTally { states: states.into_iter().map(|(s, n)| (s, n as u64)).collect(), synced_since, due })
    }

    /// A participant's connections, by id.
    pub async fn calendar_connections_of(&self, participant: &str) -> Result<Vec<CalendarConnection>, StoreError> {
        Ok(entity::connection::Entity::find()
            .filter(entity::connection::Column::Participant.eq(participant))
            .order_by_asc(entity::connection::Column::Id)
            .all(&self.db)
            .await?)
    }
}
