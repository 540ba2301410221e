//! OAuth authorizations in flight: a participant sent to Google or Microsoft to consent, until
//! the callback takes the authorization once (or it expires).

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entity;
use crate::{Store, StoreError, millis};

/// An OAuth authorization in flight.
pub type PendingAuthorization = entity::authorization::Model;

impl Store {
    /// Remembers an authorization in flight; expired ones are forgotten on the way.
    pub async fn save_pending_authorization(
        &self,
        a: &PendingAuthorization,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use sea_orm::IntoActiveModel;
        let _turn = self.write_turn().await;
        entity::authorization::Entity::delete_many()
            .filter(entity::authorization::Column::ExpiresMs.lt(millis(now)))
            .exec(&self.db)
            .await?;
        entity::authorization::Entity::insert(a.clone().into_active_model()).exec_without_returning(&self.db).await?;
        Ok(())
    }

    /// Takes the authorization with this `state`: at most once, and none once expired.
    pub async fn take_pending_authorization(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let _turn = self.write_turn().await;
        let found = entity::authorization::Entity::find_by_id(state.to_string()).one(&self.db).await?;
        let Some(found) = found else { return Ok(None) };
        let taken = entity::authorization::Entity::delete_by_id(state.to_string()).exec(&self.db).await?;
        Ok((taken.rows_affected == 1 && found.expires_ms >= millis(now)).then_some(found))
    }
}
