//! A fresh MySQL/MariaDB database per test, on the server `SALTRS_TEST_MYSQL` names
//! (default `mysql://root@127.0.0.1:3306`), dropped when the guard goes.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use salt_returners::mysql::{schema, MySqlConfig};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

pub const VAR: &str = "SALTRS_TEST_MYSQL";

pub fn server_url() -> String {
    std::env::var(VAR).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Which schema a test database starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Tables {
    /// Salt's documented DDL (`CHARSET=utf8`, i.e. utf8mb3).
    SaltUtf8,
    /// The schema command's (utf8mb4).
    Utf8mb4,
    None,
}

pub struct TestDb {
    pub name: String,
    admin: MySqlConnectOptions,
    /// Connected to the test database.
    #[allow(dead_code)]
    pub pool: MySqlPool,
}

impl TestDb {
    /// A new database with `tables`, or None when the server is unreachable: the test is then
    /// skipped (a failure under CI=true). A server that answers but refuses the login or the
    /// `CREATE DATABASE` fails the test.
    pub async fn create(tables: Tables) -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = MySqlConnectOptions::from_str(&server_url()).expect("SALTRS_TEST_MYSQL is a mysql:// URL").charset("utf8mb4");
        let how = format!("{VAR}=mysql://USER[:PASSWORD]@HOST:PORT (a user that may create databases)");
        if !saltrs_testkit::require_server("MySQL/MariaDB", admin.get_host(), admin.get_port(), &how) {
            return None;
        }
        let pool =
            match MySqlPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect_with(admin.clone()).await {
                Ok(p) => p,
                Err(e) => panic!(
                    "mysql: the server at {}:{} answers but the test cannot use it as {:?} ({VAR}): {e}",
                    admin.get_host(),
                    admin.get_port(),
                    admin.get_username()
                ),
            };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("saltrs_t_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4"))).execute(&pool).await.unwrap();
        pool.close().await;
        let pool = MySqlPoolOptions::new().max_connections(2).connect_with(admin.clone().database(&name)).await.unwrap();
        match tables {
            Tables::SaltUtf8 => schema::create_salt_ddl(&pool).await.unwrap(),
            Tables::Utf8mb4 => schema::create(&pool).await.unwrap(),
            Tables::None => {}
        }
        Some(TestDb { name, admin, pool })
    }

    /// The store's config for this database (`archive_jobs` off, master id `test_master`).
    pub fn config(&self) -> MySqlConfig {
        let url = server_url();
        // mysql://user[:password]@host:port
        let creds = url.trim_start_matches("mysql://").split('@').next().unwrap_or("");
        let password = creds.split_once(':').map(|(_, p)| p.to_string()).unwrap_or_default();
        MySqlConfig {
            host: self.admin.get_host().to_string(),
            port: self.admin.get_port(),
            user: self.admin.get_username().to_string(),
            password: salt_returners::secret::Secret::new(password),
            db: self.name.clone(),
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
            unix_socket: None,
            master_id: "test_master".into(),
            archive_jobs: false,
            unique_jid: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(pool) = MySqlPoolOptions::new().max_connections(1).connect_with(admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`"))).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
