//! Layered configuration: built-in defaults, then `config/base.toml`, then
//! `config/{CALSYNC_ENV}.toml` (`local` unless set, e.g. `production`), then
//! `CALSYNC_*` environment variables (`CALSYNC_BIND`, `CALSYNC_DATABASE_URL`; a key in a
//! table with a double underscore: `CALSYNC_SYNC__CONCURRENCY`, `CALSYNC_GOOGLE__CLIENT_SECRET`).
//! Command-line flags override all of them.

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File};

use crate::{EgressConfig, OAuthProvider, Settings, SyncConfig};

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
        })
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
