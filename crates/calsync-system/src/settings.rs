//! Layered configuration: built-in defaults, then `config/base.toml`, then
//! `config/{CALSYNC_ENV}.toml` (`local` unless set, e.g. `production`), then
//! `CALSYNC_*` environment variables (`CALSYNC_BIND`, `CALSYNC_DATABASE_URL`; a key in a
//! table with a double underscore: `CALSYNC_SYNC__CONCURRENCY`, `CALSYNC_GOOGLE__CLIENT_SECRET`).
//! Command-line flags override all of them.

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File};

/// The `secret_key` of `config/local.toml`: public, so production refuses it.
pub const DEVELOPMENT_SECRET_KEY: &str = "ZGV2ZWxvcG1lbnQtb25seS1jYWxzeW5jLWtleS0zMmI=";

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind, e.g. `127.0.0.1:8080` (`127.0.0.1:0` for any free port).
    pub bind: String,
    /// Database URL: `sqlite://calsync.db?mode=rwc` or `postgres://...`.
    pub database_url: String,
    /// How long `$hold` keeps a Slot, in seconds (default 600).
    pub hold_seconds: u32,
    /// Start the server's clock at this instant instead of now (the demo's fixed week).
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// The key that seals calendar connections' credentials (32 bytes, base64); without it the
    /// connections API answers 503.
    pub secret_key: Option<String>,
    /// The server's address as browsers reach it (`https://calsync.example.org`), for OAuth
    /// redirect URIs; the request's own address when unset.
    pub public_url: Option<String>,
    /// Calendar syncs and the worker.
    pub sync: SyncConfig,
    /// Google Calendar's OAuth client and endpoints (none: Google is not offered).
    pub google: Option<OAuthProvider>,
    /// Microsoft Graph's OAuth client and endpoints (none: Outlook is not offered).
    pub microsoft: Option<OAuthProvider>,
    /// What addresses given from outside (calendars, publishers) may reach.
    pub egress: EgressConfig,
    /// Publishers calsync ingests.
    pub publishers: PublishersConfig,
    /// Who may call the API: bearer tokens of an issuer.
    pub auth: AuthConfig,
    /// Proxies (IP addresses) whose `Forwarded` and `X-Forwarded-*` headers name the scheme and
    /// host clients used; from any other peer they are ignored (`public_url` is simpler).
    pub trusted_proxies: Vec<String>,
    /// The environment whose layer was read (`CALSYNC_ENV`: `local`, `production`…).
    pub environment: String,
}

/// How callers are authenticated (`[auth]` in the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// `none`: no authorization at all (every caller may do everything); `development`: this
    /// server issues its own tokens (a developer's machine); `issuer`: tokens of `issuer`, whose
    /// keys are at `jwks_url`. Unset: `issuer` when an issuer is configured, else `development`
    /// (which production refuses).
    pub mode: Option<AuthMode>,
    /// The `iss` accepted (mode `issuer`).
    pub issuer: Option<String>,
    /// The `aud` required (default: `public_url`).
    pub audience: Option<String>,
    /// Where the issuer's signing keys are read (mode `issuer`).
    pub jwks_url: Option<String>,
    /// The issuer's authorization endpoint, published in the SMART configuration.
    pub authorize_url: Option<String>,
    /// The issuer's token endpoint, published in the SMART configuration.
    pub token_url: Option<String>,
}

impl AuthConfig {
    /// The mode in force: the one set, else `issuer` when an issuer is configured, else
    /// `development`.
    pub fn mode(&self) -> AuthMode {
        self.mode.unwrap_or(if self.issuer.is_some() { AuthMode::Issuer } else { AuthMode::Development })
    }
}

/// See [`AuthConfig::mode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authorization.
    None,
    /// This server issues its own tokens.
    #[default]
    Development,
    /// Tokens of a configured issuer.
    Issuer,
}

/// Publishers calsync ingests (`[publishers]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct PublishersConfig {
    /// The shortest time between two polls of a publisher asked for by hand (`$poll`), in
    /// seconds: the specification asks clients not to fetch a file more than once a minute.
    pub min_poll_seconds: u32,
}

impl Default for PublishersConfig {
    fn default() -> Self {
        PublishersConfig { min_poll_seconds: 60 }
    }
}

/// What addresses given from outside may reach (`[egress]` in the configuration): patients' ICS
/// and CalDAV calendars, publishers' manifests and files. Public addresses only unless set
/// otherwise; see [`calsync_connect::egress`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct EgressConfig {
    /// Every address, loopback and private networks included (a developer's machine).
    pub private_networks: bool,
    /// Networks (`10.20.0.0/16`) or addresses (`192.168.1.7`) reached although not public: a
    /// hospital's own CalDAV server or publisher.
    pub allow: Vec<String>,
}

impl EgressConfig {
    /// The policy these settings describe.
    pub fn policy(&self) -> Result<calsync_connect::egress::Egress, String> {
        calsync_connect::egress::Egress::new(self.private_networks, &self.allow)
    }
}

/// Calendar syncs and the worker (`[sync]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct SyncConfig {
    /// `calsync serve` runs the worker in its own process (the embedded default); production
    /// runs `calsync worker` in its own container and sets this to false.
    pub worker: bool,
    /// Syncs at once per worker process.
    pub concurrency: usize,
    /// Syncs at once per provider and process.
    pub limit_ics: usize,
    /// CalDAV servers are often small ones.
    pub limit_caldav: usize,
    /// Google allows about 600 requests a minute per user.
    pub limit_google: usize,
    /// Graph throttles at 4 concurrent requests per mailbox.
    pub limit_microsoft: usize,
    /// How often due connections are queued, in seconds.
    pub sweep_seconds: u64,
    /// How often a worker reports it is alive, in seconds (three missed: its jobs move on).
    pub heartbeat_seconds: u64,
    /// When every connection syncs: cron `sec min hour day-of-month month day-of-week`.
    pub nightly: String,
    /// The IANA zone the nightly schedule is read in.
    pub nightly_zone: String,
    /// How far ahead busy time is read, in days.
    pub horizon_days: i64,
    /// The next regular sync after a good one, in hours.
    pub interval_hours: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            worker: true,
            concurrency: 16,
            limit_ics: 8,
            limit_caldav: 4,
            limit_google: 8,
            limit_microsoft: 4,
            sweep_seconds: 60,
            heartbeat_seconds: 30,
            nightly: "0 0 2 * * *".into(),
            nightly_zone: "UTC".into(),
            horizon_days: 90,
            interval_hours: 24,
        }
    }
}

/// An OAuth provider's client registration and endpoints (`[google]`, `[microsoft]`).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct OAuthProvider {
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (from the environment: `CALSYNC_GOOGLE__CLIENT_SECRET`).
    pub client_secret: String,
    /// Where the participant's browser is sent to consent.
    pub authorize_url: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_url: String,
    /// The calendar API's base (`https://www.googleapis.com/`, `https://graph.microsoft.com/`).
    pub api_url: String,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("client_id", &self.client_id)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings for `bind` and `database_url`, defaults otherwise.
    pub fn new(bind: impl Into<String>, database_url: impl Into<String>) -> Self {
        Settings {
            bind: bind.into(),
            database_url: database_url.into(),
            hold_seconds: 600,
            clock_start: None,
            secret_key: None,
            public_url: None,
            sync: SyncConfig::default(),
            google: None,
            microsoft: None,
            egress: EgressConfig::default(),
            publishers: PublishersConfig::default(),
            auth: AuthConfig::default(),
            environment: "local".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Settings {
    /// Loads the layers from `dir` for environment `env`, reading variables from `vars`.
    pub fn load(dir: &Path, env: &str, vars: HashMap<String, String>) -> Result<Settings, String> {
        #[derive(serde::Deserialize)]
        struct Layered {
            bind: String,
            database_url: String,
            hold_seconds: u32,
            secret_key: Option<String>,
            public_url: Option<String>,
            #[serde(default)]
            sync: SyncConfig,
            google: Option<OAuthProvider>,
            microsoft: Option<OAuthProvider>,
            #[serde(default)]
            egress: EgressConfig,
            #[serde(default)]
            publishers: PublishersConfig,
            #[serde(default)]
            auth: AuthConfig,
            #[serde(default)]
            trusted_proxies: Vec<String>,
        }
        let layered: Layered = Config::builder()
            .set_default("bind", "127.0.0.1:8080")
            .and_then(|b| b.set_default("database_url", "sqlite://calsync.db?mode=rwc"))
            .and_then(|b| b.set_default("hold_seconds", 600))
            .map_err(|e| e.to_string())?
            .add_source(File::from(dir.join("base")).required(false))
            .add_source(File::from(dir.join(env)).required(false))
            .add_source(Environment::with_prefix("CALSYNC").prefix_separator("_").separator("__").source(Some(vars)))
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| format!("configuration: {e}"))?;
        Ok(Settings {
            bind: layered.bind,
            database_url: layered.database_url,
            hold_seconds: layered.hold_seconds,
            clock_start: None,
            secret_key: layered.secret_key,
            public_url: layered.public_url,
            sync: layered.sync,
            google: layered.google,
            microsoft: layered.microsoft,
            egress: layered.egress,
            publishers: layered.publishers,
            auth: layered.auth,
            environment: env.to_string(),
            trusted_proxies: layered.trusted_proxies,
        })
    }

    /// What makes these settings unfit for production, when the environment is `production`:
    /// the development token issuer, the repository's public `secret_key`, private networks
    /// open to addresses from outside, or no token issuer without an explicit `mode = "none"`.
    pub fn production_refusals(&self) -> Vec<String> {
        if self.environment != "production" {
            return Vec::new();
        }
        let mut refusals = Vec::new();
        if self.auth.mode() == AuthMode::Development {
            refusals.push(if self.auth.mode.is_some() {
                "[auth] mode = \"development\": the development token issuer is for a developer's machine".to_string()
            } else {
                "no [auth] issuer: configure the issuer whose tokens are accepted (CALSYNC_AUTH__ISSUER, \
                 CALSYNC_AUTH__JWKS_URL), or run without authorization only by saying so: [auth] mode = \"none\""
                    .to_string()
            });
        }
        if self.secret_key.as_deref() == Some(DEVELOPMENT_SECRET_KEY) {
            refusals.push("secret_key is the development key published in config/local.toml".into());
        }
        if self.egress.private_networks {
            refusals.push("[egress] private_networks = true lets outside addresses reach private networks".into());
        }
        refusals
    }

    /// Loads from `dir` with this process's `CALSYNC_ENV` and environment.
    pub fn from_environment(dir: &Path) -> Result<Settings, String> {
        let env = std::env::var("CALSYNC_ENV").unwrap_or_else(|_| "local".into());
        Settings::load(dir, &env, std::env::vars().filter(|(k, _)| k.starts_with("CALSYNC_")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(label: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("calsync-config-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn production_refuses_the_development_issuer_key_and_private_networks() {
        let dir = dir_with("production", &[("local.toml", &format!("secret_key = \"{DEVELOPMENT_SECRET_KEY}\"\n"))]);
        // A developer's machine: the development issuer, the public key, all fine.
        let local = Settings::load(&dir, "local", HashMap::new()).unwrap();
        assert_eq!(local.auth.mode(), AuthMode::Development);
        assert!(local.production_refusals().is_empty());
        // Production with nothing configured: no issuer is a refusal that says what to do.
        let bare = Settings::load(&dir, "production", HashMap::new()).unwrap();
        let refusals = bare.production_refusals();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(
            refusals[0].contains("CALSYNC_AUTH__ISSUER") && refusals[0].contains("mode = \"none\""),
            "{refusals:?}"
        );
        // Every unfit setting is named.
        let vars = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let unfit = Settings::load(
            &dir,
            "production",
            vars(&[
                ("CALSYNC_AUTH__MODE", "development"),
                ("CALSYNC_SECRET_KEY", DEVELOPMENT_SECRET_KEY),
                ("CALSYNC_EGRESS__PRIVATE_NETWORKS", "true"),
            ]),
        )
        .unwrap();
        let refusals = unfit.production_refusals().join(" | ");
        for named in ["development token issuer", "secret_key", "private_networks"] {
            assert!(refusals.contains(named), "{named}: {refusals}");
        }
        // An issuer, or an explicit "none", is fit.
        let issuer = Settings::load(
            &dir,
            "production",
            vars(&[
                ("CALSYNC_AUTH__ISSUER", "https://login.example"),
                ("CALSYNC_AUTH__JWKS_URL", "https://login.example/jwks"),
            ]),
        )
        .unwrap();
        assert_eq!(issuer.auth.mode(), AuthMode::Issuer);
        assert!(issuer.production_refusals().is_empty());
        let none = Settings::load(&dir, "production", vars(&[("CALSYNC_AUTH__MODE", "none")])).unwrap();
        assert!(none.production_refusals().is_empty());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn layers_apply_in_order() {
        let none = std::env::temp_dir().join("calsync-config-absent");
        let defaults = Settings::load(&none, "local", HashMap::new()).unwrap();
        assert_eq!(defaults.bind, "127.0.0.1:8080");
        assert_eq!(defaults.database_url, "sqlite://calsync.db?mode=rwc");

        let dir = dir_with(
            "layers",
            &[
                ("base.toml", "bind = \"127.0.0.1:9000\"\ndatabase_url = \"sqlite://base.db\"\n"),
                ("production.toml", "bind = \"0.0.0.0:8080\"\n"),
            ],
        );
        let local = Settings::load(&dir, "local", HashMap::new()).unwrap();
        assert_eq!((local.bind.as_str(), local.database_url.as_str()), ("127.0.0.1:9000", "sqlite://base.db"));
        let prod = Settings::load(&dir, "production", HashMap::new()).unwrap();
        assert_eq!((prod.bind.as_str(), prod.database_url.as_str()), ("0.0.0.0:8080", "sqlite://base.db"));
        let vars = HashMap::from([("CALSYNC_DATABASE_URL".to_string(), "postgres://db/calsync".to_string())]);
        let env = Settings::load(&dir, "production", vars).unwrap();
        assert_eq!((env.bind.as_str(), env.database_url.as_str()), ("0.0.0.0:8080", "postgres://db/calsync"));
        assert_eq!(env.sync, SyncConfig::default());
        assert!(env.google.is_none());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn tables_layer_and_take_double_underscore_variables() {
        let dir = dir_with(
            "tables",
            &[(
                "base.toml",
                "[sync]\nconcurrency = 4\nnightly_zone = \"Europe/Zurich\"\n\n[google]\nclient_id = \"id\"\n\
                 client_secret = \"from-file\"\nauthorize_url = \"https://a/auth\"\ntoken_url = \"https://a/token\"\n\
                 api_url = \"https://a/\"\n",
            )],
        );
        let vars = HashMap::from([
            ("CALSYNC_SYNC__WORKER".to_string(), "false".to_string()),
            ("CALSYNC_GOOGLE__CLIENT_SECRET".to_string(), "from-env".to_string()),
        ]);
        let s = Settings::load(&dir, "local", vars).unwrap();
        assert_eq!((s.sync.concurrency, s.sync.nightly_zone.as_str(), s.sync.worker), (4, "Europe/Zurich", false));
        assert_eq!(s.sync.horizon_days, SyncConfig::default().horizon_days);
        let google = s.google.unwrap();
        assert_eq!((google.client_id.as_str(), google.client_secret.as_str()), ("id", "from-env"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_repositorys_configuration_reaches_private_networks_on_a_developers_machine_only() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let production = Settings::load(&dir, "production", HashMap::new()).unwrap();
        assert_eq!(production.egress, EgressConfig::default());
        assert_eq!(production.egress.policy().unwrap(), calsync_connect::egress::Egress::public());
        let local = Settings::load(&dir, "local", HashMap::new()).unwrap();
        assert!(local.egress.private_networks);
        let vars = HashMap::from([("CALSYNC_EGRESS__PRIVATE_NETWORKS".to_string(), "true".to_string())]);
        assert!(Settings::load(&dir, "production", vars).unwrap().egress.private_networks);

        let hospital = dir_with("egress", &[("base.toml", "[egress]\nallow = [\"10.20.0.0/16\", \"192.168.1.7\"]\n")]);
        let s = Settings::load(&hospital, "production", HashMap::new()).unwrap();
        let policy = s.egress.policy().unwrap();
        assert!(policy.permits("10.20.3.4".parse().unwrap()) && !policy.permits("10.21.0.1".parse().unwrap()));
        let wrong = dir_with("egress-wrong", &[("base.toml", "[egress]\nallow = [\"intranet\"]\n")]);
        let err = Settings::load(&wrong, "production", HashMap::new()).unwrap().egress.policy().unwrap_err();
        assert!(err.contains("\"intranet\""), "{err}");
        std::fs::remove_dir_all(hospital).ok();
        std::fs::remove_dir_all(wrong).ok();
    }

    #[test]
    fn a_broken_file_is_a_clear_error() {
        let dir = dir_with("broken", &[("base.toml", "bind = \n")]);
        let err = Settings::load(&dir, "local", HashMap::new()).unwrap_err();
        assert!(err.starts_with("configuration: "), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
