//! Fresh databases for tests: SQLite by default, PostgreSQL when `CALSYNC_TEST_POSTGRES_URL`
//! names a server database the tests may create databases from (e.g.
//! `postgres://root@127.0.0.1:5432/test`). Each call gives a new, empty database.

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, Database};

/// A database made for one test; `finish` removes it.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL to connect to.
    pub url: String,
    postgres_admin: Option<(String, String)>,
    sqlite_file: Option<std::path::PathBuf>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    /// A new empty database on the configured backend.
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// A new empty database whose own collation orders text as people read it, not by bytes
    /// (PostgreSQL: ICU's `en`; SQLite has no other order than its bytes), to show what does not
    /// depend on the database's collation.
    pub async fn create_linguistic() -> Self {
        Self::create_with(" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'").await
    }

    /// A new empty database; `postgres_options` follow `CREATE DATABASE {name}` on PostgreSQL.
    async fn create_with(postgres_options: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("calsync_t_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), nanos);
        match std::env::var("CALSYNC_TEST_POSTGRES_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let admin = Database::connect(admin_url.as_str()).await.expect("PostgreSQL reachable");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}{postgres_options}"))
                    .await
                    .expect("CREATE DATABASE");
                admin.close().await.ok();
                let (server, _) = admin_url.rsplit_once('/').expect("URL ends in /database");
                TestDatabase {
                    url: format!("{server}/{name}"),
                    postgres_admin: Some((admin_url, name)),
                    sqlite_file: None,
                }
            }
            _ => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDatabase {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    postgres_admin: None,
                    sqlite_file: Some(path),
                }
            }
        }
    }

    /// Removes the database (close every connection to it first).
    pub async fn finish(self) {
        if let Some((admin_url, name)) = self.postgres_admin
            && let Ok(admin) = Database::connect(admin_url.as_str()).await
        {
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok();
        }
        if let Some(path) = self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
            }
        }
    }
}

/// The first column of the first row `sql` answers, as a number (`SELECT COUNT(*) …`,
/// `PRAGMA page_size`): for tests that look at the tables themselves.
pub async fn number(store: &crate::Store, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let statement = sea_orm::Statement::from_string(store.db.get_database_backend(), sql.to_string());
    let row = store.db.query_one_raw(statement).await.expect("the statement runs").expect("a row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

/// Makes the database at `url` what calsync wrote with its first `migrations` migrations, then
/// runs `statements` on it: the data an older calsync left, for tests of the later migrations.
pub async fn earlier_schema(url: &str, migrations: u32, statements: &[String]) {
    use sea_orm_migration::MigratorTrait;
    let old = Database::connect(url).await.expect("database reachable");
    crate::migration::Migrator::up(&old, Some(migrations)).await.expect("the earlier migrations run");
    for statement in statements {
        old.execute_unprepared(statement).await.expect("the statement runs");
    }
    old.close().await.ok();
}
