//! The connectors, wired from the configuration: the calendar connectors a sync uses (Google and
//! Microsoft when their OAuth clients are configured, ICS and CalDAV through the egress policy),
//! and the OAuth authorizers that connect Google and Microsoft calendars.

use calsync_connect::authorize::{Authorizer, Provider};
use calsync_connect::caldav::CalDav;
use calsync_connect::google::{GoogleCalendar, GoogleEndpoints};
use calsync_connect::ics::IcsFeed;
use calsync_connect::microsoft::{MicrosoftCalendar, MicrosoftEndpoints};
use calsync_connect::oauth::OAuthClient;
use calsync_connect::retry::Backoff;
use calsync_connect::secret::SecretKey;
use calsync_sync::connection::{Connectors, ProviderLimits, SyncSettings};
use calsync_usecase::Authorizers;
use chrono::TimeDelta;

use crate::{OAuthProvider, Settings};

/// Sync settings from the configuration: the secret key, and Google and Microsoft when their
/// OAuth clients are configured. `None` without a secret key (connections are then refused).
pub fn sync_settings(settings: &Settings) -> Result<Option<SyncSettings>, String> {
    let Some(key) = &settings.secret_key else { return Ok(None) };
    let key = SecretKey::from_base64(key).map_err(|e| format!("secret_key: {e}"))?;
    let timeout = std::time::Duration::from_secs(30);
    let url = |name: &str, text: &str| text.parse().map_err(|e| format!("{name}: {text:?} is not a URL: {e}"));
    let google = match &settings.google {
        Some(p) => Some(
            GoogleCalendar::new(
                GoogleEndpoints {
                    api: url("google.api_url", &p.api_url)?,
                    token: url("google.token_url", &p.token_url)?,
                },
                oauth_client(p),
                timeout,
            )
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let microsoft = match &settings.microsoft {
        Some(p) => Some(
            MicrosoftCalendar::new(
                MicrosoftEndpoints {
                    graph: url("microsoft.api_url", &p.api_url)?,
                    token: url("microsoft.token_url", &p.token_url)?,
                },
                oauth_client(p),
                timeout,
            )
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let egress = settings.egress.policy()?;
    let connectors = Connectors {
        ics: IcsFeed::new(timeout, egress.clone()).map_err(|e| e.to_string())?,
        caldav: CalDav::new(timeout, egress).map_err(|e| e.to_string())?,
        google,
        microsoft,
    };
    let sync = &settings.sync;
    Ok(Some(SyncSettings {
        key,
        connectors,
        horizon: TimeDelta::days(sync.horizon_days.max(1)),
        interval: TimeDelta::hours(sync.interval_hours.max(1)),
        backoff: Backoff::default(),
        limits: ProviderLimits::each(sync.limit_ics, sync.limit_caldav, sync.limit_google, sync.limit_microsoft),
    }))
}

/// Google's and Microsoft's OAuth clients from `[google]` and `[microsoft]`, and `public_url`.
pub fn authorizers(settings: &Settings) -> Result<Authorizers, String> {
    let build = |provider: Provider, p: &Option<OAuthProvider>| -> Result<Option<(Authorizer, String)>, String> {
        let Some(p) = p else { return Ok(None) };
        let authorizer = Authorizer::new(
            provider,
            &oauth_client(p),
            &p.authorize_url,
            &p.token_url,
            std::time::Duration::from_secs(30),
        )
        .map_err(|e| format!("[{}] {e}", provider.name()))?;
        let host = calsync_connect::address_host(&p.api_url)
            .ok_or_else(|| format!("[{}] api_url {:?} is not an http(s) address", provider.name(), p.api_url))?;
        Ok(Some((authorizer, host)))
    };
    Ok(Authorizers::new(
        build(Provider::Google, &settings.google)?,
        build(Provider::Microsoft, &settings.microsoft)?,
        settings.public_url.clone(),
    ))
}

/// calsync's client registration with a provider.
fn oauth_client(p: &OAuthProvider) -> OAuthClient {
    OAuthClient { id: p.client_id.clone(), secret: p.client_secret.clone() }
}
