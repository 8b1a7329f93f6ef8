//! A fresh PostgreSQL database per test, on the server `SALTRS_TEST_POSTGRES` names (default
//! `postgres://postgres@127.0.0.1:5432`), dropped when the guard goes.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use salt_returners::pgjsonb::PgConfig;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub const VAR: &str = "SALTRS_TEST_POSTGRES";

pub fn server_url() -> String {
    std::env::var(VAR).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct TestDb {
    pub name: String,
    admin: PgConnectOptions,
    /// Connected to the test database, for checking rows behind the store's back.
    #[allow(dead_code)]
    pub pool: PgPool,
}

impl TestDb {
    /// A new, empty database, or None when the server is unreachable: the test is then
    /// skipped (a failure under CI=true). A server that answers but refuses the login fails
    /// the test.
    pub async fn create() -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = PgConnectOptions::from_str(&server_url()).expect("SALTRS_TEST_POSTGRES is a postgres:// URL").database("postgres");
        let how = format!("{VAR}=postgres://USER[:PASSWORD]@HOST:PORT (a user that may create databases)");
        if !saltrs_testkit::require_server("PostgreSQL", admin.get_host(), admin.get_port(), &how) {
            return None;
        }
        let pool = match PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect_with(admin.clone()).await {
            Ok(p) => p,
            Err(e) => panic!(
                "postgres: the server at {}:{} answers but the test cannot use it as {:?} ({VAR}): {e}",
                admin.get_host(),
                admin.get_port(),
                admin.get_username()
            ),
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("saltrs_t_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let pool = PgPoolOptions::new().max_connections(2).connect_with(admin.clone().database(&name)).await.unwrap();
        Some(TestDb { name, admin, pool })
    }

    /// The password in the server URL, if any.
    fn password() -> String {
        let url = server_url();
        let creds = url.split("://").nth(1).unwrap_or("").split('@').next().unwrap_or("");
        creds.split_once(':').map(|(_, p)| p.to_string()).unwrap_or_default()
    }

    /// Master config for `store` (`pgjsonb` or `postgres`) pointing at this database, with
    /// master id `test_master`.
    #[allow(dead_code)]
    pub fn opts(&self, store: &str) -> serde_json::Map<String, serde_json::Value> {
        let pass_key = if store == "postgres" { "passwd" } else { "pass" };
        let mut m = serde_json::Map::new();
        let p = format!("returner.{store}.");
        m.insert(format!("{p}host"), self.admin.get_host().into());
        m.insert(format!("{p}port"), self.admin.get_port().into());
        m.insert(format!("{p}user"), self.admin.get_username().into());
        m.insert(format!("{p}{pass_key}"), Self::password().into());
        m.insert(format!("{p}db"), self.name.clone().into());
        m.insert("id".into(), "test_master".into());
        m
    }

    /// The same as a config value.
    #[allow(dead_code)]
    pub fn config(&self) -> PgConfig {
        PgConfig {
            host: self.admin.get_host().to_string(),
            port: self.admin.get_port(),
            user: self.admin.get_username().to_string(),
            password: salt_returners::secret::Secret::new(Self::password()),
            db: self.name.clone(),
            connect_timeout: Some(Duration::from_secs(5)),
            sslmode: None,
            sslcert: None,
            sslkey: None,
            sslrootcert: None,
            sslcrl: None,
            master_id: "test_master".into(),
            archive_jobs: false,
            unique_jid: false,
        }
    }
}

/// The conformance suite's `Ager` (the same type; this module is also used without the suite).
#[allow(dead_code)]
pub type Ager = Box<dyn Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// Ages the rows of `db` behind the store's back (the conformance suite's `Backend::age`).
#[allow(dead_code)]
pub fn ager(db: &TestDb) -> Ager {
    let pool = db.pool.clone();
    Box::new(move |secs| {
        let pool = pool.clone();
        Box::pin(async move {
            for table in ["salt_returns", "salt_events"] {
                let sql = format!("UPDATE {table} SET alter_time = alter_time - make_interval(secs => $1)");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secs as f64).execute(&pool).await.unwrap();
            }
        })
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside async: a short-lived runtime on its own thread does the cleanup.
        let (name, admin) = (self.name.clone(), self.admin.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect_with(admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
