//! Returners against a real MariaDB: the seed walkthrough (`--return mysql`, `master_job_cache:
//! mysql`, `event_return: mysql`) compared with the rows real Salt writes, and a database outage
//! in the middle of a burst of returns.
//!
//! Needs MariaDB on `SALTRS_TEST_MYSQL_HOST:SALTRS_TEST_MYSQL_PORT` (default 127.0.0.1:3306) with a
//! passwordless `root` reachable over TCP through the `mariadb` client. Without a server there,
//! the tests are skipped (`saltrs_testkit::require_server`), except under CI=true, where that is
//! a failure; a server that refuses the login fails them.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Salt's documented MySQL schema, verbatim (utf8, as the seed creates it).
const SALT_SCHEMA: &str = "
CREATE TABLE `jids` (`jid` varchar(255) NOT NULL, `load` mediumtext NOT NULL, UNIQUE KEY `jid` (`jid`)) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE `salt_returns` (`fun` varchar(50) NOT NULL, `jid` varchar(255) NOT NULL, `return` mediumtext NOT NULL, `id` varchar(255) NOT NULL, `success` varchar(10) NOT NULL, `full_ret` mediumtext NOT NULL, `alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP, KEY `id` (`id`), KEY `jid` (`jid`), KEY `fun` (`fun`)) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE `salt_events` (`id` BIGINT NOT NULL AUTO_INCREMENT, `tag` varchar(255) NOT NULL, `data` mediumtext NOT NULL, `alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP, `master_id` varchar(255) NOT NULL, PRIMARY KEY (`id`), KEY `tag` (`tag`)) ENGINE=InnoDB DEFAULT CHARSET=utf8;
";

struct Db {
    host: String,
    port: u16,
    name: String,
    user: String,
    pass: String,
}

impl Db {
    /// A fresh database with Salt's schema and its own user, or None (skipped) without a server.
    fn create(tag: &str) -> Option<Db> {
        let host = std::env::var("SALTRS_TEST_MYSQL_HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let port: u16 = std::env::var("SALTRS_TEST_MYSQL_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3306);
        let how = "SALTRS_TEST_MYSQL_HOST and SALTRS_TEST_MYSQL_PORT (a MariaDB with a passwordless root over TCP)";
        if !saltrs_testkit::require_server("MariaDB", &host, port, how) {
            return None;
        }
        let name = format!("saltrs_e2e_{tag}_{}", std::process::id());
        let db = Db { host, port, user: name.clone(), pass: format!("pw-{tag}-'\"x"), name };
        let pass_sql = db.pass.replace('\\', "\\\\").replace('\'', "\\'");
        db.root(&format!(
            "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}; DROP USER IF EXISTS '{0}'@'%'; CREATE USER '{0}'@'%' IDENTIFIED BY '{1}'; GRANT ALL ON {0}.* TO '{0}'@'%';",
            db.name, pass_sql
        ));
        db.sql(SALT_SCHEMA);
        Some(db)
    }

    fn root(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args(["-h", &self.host, "-P", &self.port.to_string(), "-uroot", "--batch", "--raw", "--skip-column-names", "-e", sql])
            .output()
            .expect("the mariadb client");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn sql(&self, sql: &str) -> String {
        self.root(&format!("USE {}; {sql}", self.name))
    }

    /// The returner options, as a config block.
    fn config(&self, port: u16) -> String {
        let pass = self.pass.replace('\'', "''");
        format!("mysql.host: {}\nmysql.port: {port}\nmysql.user: {}\nmysql.pass: '{pass}'\nmysql.db: {}\n", self.host, self.user, self.name)
    }

    fn wait_count(&self, sql: &str, want: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let n: usize = self.sql(sql).trim().parse().unwrap_or(0);
            if n >= want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args([
                "-h",
                &self.host,
                "-P",
                &self.port.to_string(),
                "-uroot",
                "-e",
                &format!("DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%';", self.name),
            ])
            .output();
    }
}

#[test]
fn seed_walkthrough_against_mariadb() {
    let Some(db) = Db::create("seed") else { return };
    let mut c = Cluster::new("");
    c.start_master();
    c.start_minion("minion1", &db.config(db.port));
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "minion1 pending");
    c.salt_key(&["-a", "minion1", "-y"]);
    c.wait_connected("minion1");

    // Minion side: the minion writes its own row, as Salt's minion does.
    let r = c.salt(&["-v", "minion1", "test.ping", "--return", "mysql"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    assert_eq!(db.wait_count(&format!("SELECT COUNT(*) FROM salt_returns WHERE jid='{jid}'"), 1, Duration::from_secs(20)), 1);
    let row = db.sql(&format!("SELECT fun, jid, `return`, id, success, full_ret FROM salt_returns WHERE jid='{jid}'"));
    assert_eq!(
        row.trim_end(),
        format!("test.ping\t{jid}\ttrue\tminion1\t1\t{{\"success\": true, \"return\": true, \"retcode\": 0, \"jid\": \"{jid}\", \"fun\": \"test.ping\", \"fun_args\": [], \"user\": \"root\", \"id\": \"minion1\"}}")
    );
    assert_eq!(db.sql("SELECT COUNT(*) FROM jids").trim(), "0", "the minion side writes no jids row");

    // A failing command, quotes and SQL metacharacters, and a 4-byte character on Salt's utf8 table.
    let r = c.salt(&["-v", "minion1", "cmd.run", "echo \"it's\"; exit 3", "--return", "mysql"]);
    let jid_fail = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    let r = c.salt(&["-v", "minion1", "test.echo", "smile 😀 '; DROP TABLE jids; --", "--return", "mysql"]);
    let jid_emoji = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    assert_eq!(db.wait_count("SELECT COUNT(*) FROM salt_returns", 3, Duration::from_secs(20)), 3);
    assert_eq!(db.sql(&format!("SELECT success FROM salt_returns WHERE jid='{jid_fail}'")).trim(), "0");
    let ret: serde_json::Value =
        serde_json::from_str(db.sql(&format!("SELECT `return` FROM salt_returns WHERE jid='{jid_emoji}'")).trim()).unwrap();
    assert_eq!(ret, "smile 😀 '; DROP TABLE jids; --", "stored, readable and valid JSON");
    let full: serde_json::Value =
        serde_json::from_str(db.sql(&format!("SELECT full_ret FROM salt_returns WHERE jid='{jid_emoji}'")).trim()).unwrap();
    assert_eq!(full["return"], "smile 😀 '; DROP TABLE jids; --");

    // Master side: master_job_cache and event_return in MySQL.
    std::fs::create_dir_all(c.etc().join("master.d")).unwrap();
    std::fs::write(
        c.etc().join("master.d").join("jobcache.conf"),
        format!("master_job_cache: mysql\nevent_return: mysql\n{}", db.config(db.port)),
    )
    .unwrap();
    c.stop_master();
    c.start_master();
    c.wait_connected("minion1");
    let r = c.salt(&["-v", "*", "cmd.run", "echo hi"]);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    assert_eq!(db.wait_count(&format!("SELECT COUNT(*) FROM salt_returns WHERE jid='{jid}'"), 1, Duration::from_secs(20)), 1);
    let load: serde_json::Value = serde_json::from_str(db.sql(&format!("SELECT `load` FROM jids WHERE jid='{jid}'")).trim()).unwrap();
    assert_eq!(load["cmd"], "publish");
    assert_eq!(load["fun"], "cmd.run");
    assert_eq!(load["arg"], serde_json::json!(["echo hi"]));
    assert_eq!(load["kwargs"], serde_json::json!({"show_timeout": true, "show_jid": false, "delimiter": ":"}));
    let full: serde_json::Value =
        serde_json::from_str(db.sql(&format!("SELECT full_ret FROM salt_returns WHERE jid='{jid}'")).trim()).unwrap();
    let keys: Vec<&String> = full.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cmd", "id", "success", "return", "retcode", "jid", "fun", "fun_args", "user", "_stamp", "ts"]);
    let r = c.salt_run(&["jobs.lookup_jid", &jid]);
    assert_eq!(r.stdout, "minion1:\n    hi\n", "read back from MySQL: {}", r.stderr);
    let n = db.wait_count(&format!("SELECT COUNT(*) FROM salt_events WHERE tag LIKE 'salt/job/{jid}/%'"), 3, Duration::from_secs(20));
    assert_eq!(n, 3, "new, publish and ret events");
    let master_ids = db.sql(&format!("SELECT DISTINCT master_id FROM salt_events WHERE tag LIKE 'salt/job/{jid}/%'"));
    assert!(master_ids.trim().ends_with("_master"), "{master_ids}");
    // The password appears nowhere it could leak.
    for text in [c.master_log(), c.minion_log("minion1"), db.sql("SELECT `load` FROM jids"), db.sql("SELECT data FROM salt_events")] {
        assert!(!text.contains(&db.pass), "the password leaked");
    }
}

/// MariaDB behind a proxy that can cut it off (the server itself is shared and stays up).
struct MySqlServer {
    db: Db,
    proxy: Outage,
}

impl crate::stores::StoreServer for MySqlServer {
    fn name(&self) -> &'static str {
        "mysql"
    }
    fn config(&self) -> String {
        self.db.config(self.proxy.port)
    }
    fn stop(&mut self) {
        self.proxy.down();
    }
    fn start(&mut self) {
        self.proxy.restore();
    }
    fn raw_count(&self, from_jid: &str) -> Option<(usize, usize)> {
        let stored = self.db.sql(&format!("SELECT COUNT(*) FROM salt_returns WHERE jid >= '{from_jid}'"));
        let dups = self.db.sql("SELECT COUNT(*) FROM (SELECT jid, id FROM salt_returns GROUP BY jid, id HAVING COUNT(*) > 1) d");
        Some((stored.trim().parse().unwrap(), dups.trim().parse().unwrap()))
    }
}

#[test]
fn database_outage_during_a_burst_loses_nothing_and_duplicates_nothing() {
    let Some(db) = Db::create("burst") else { return };
    let proxy = Outage::new((db.host.clone(), db.port));
    crate::stores::outage_during_a_burst(&mut MySqlServer { db, proxy });
}

#[test]
fn mysql_unreachable_at_start_then_back() {
    let Some(db) = Db::create("unreachable") else { return };
    let proxy = Outage::new((db.host.clone(), db.port));
    crate::stores::unreachable_at_start(&mut MySqlServer { db, proxy });
}

#[test]
fn return_config_and_return_kwargs_pick_another_database() {
    let Some(main) = Db::create("main") else { return };
    let Some(alt) = Db::create("alt") else { return };
    let alternative = alt.config(alt.port).replace("mysql.", "alternative.mysql.");
    let mut c = Cluster::new("");
    c.start_master();
    c.start_minion("minion1", &format!("{}{alternative}", main.config(main.port)));
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "minion1 pending");
    c.salt_key(&["-a", "minion1", "-y"]);
    c.wait_connected("minion1");

    let r = c.salt(&["minion1", "test.echo", "to-alt", "--return", "mysql", "--return_config", "alternative"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(alt.wait_count("SELECT COUNT(*) FROM salt_returns WHERE `return` = '\"to-alt\"'", 1, Duration::from_secs(20)), 1);
    assert_eq!(main.sql("SELECT COUNT(*) FROM salt_returns").trim(), "0");

    // --return_kwargs overrides by plain option name; its password is not stored with the job.
    let kwargs = format!(
        "{{\"db\": \"{}\", \"user\": \"{}\", \"pass\": \"{}\"}}",
        alt.name,
        alt.user,
        alt.pass.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let r = c.salt(&["minion1", "test.echo", "kwargs-to-alt", "--return", "mysql", "--return_kwargs", &kwargs]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(alt.wait_count("SELECT COUNT(*) FROM salt_returns WHERE `return` = '\"kwargs-to-alt\"'", 1, Duration::from_secs(20)), 1);
    assert_eq!(main.sql("SELECT COUNT(*) FROM salt_returns").trim(), "0");
    let full = alt.sql("SELECT full_ret FROM salt_returns WHERE `return` = '\"kwargs-to-alt\"'");
    assert!(!full.contains(&alt.pass) && full.contains("**********"), "{full}");
}

#[test]
fn a_returner_lacking_a_call_is_refused_at_start_up() {
    let c =
        Cluster::new(&format!("event_return: sqlite3\nsqlite3.database: {}/ev.db\nsqlite3.timeout: 5\n", std::env::temp_dir().display()));
    let r = run(bin("salt-master"), &c.etc(), &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("returner 'sqlite3' cannot be used for event_return: it does not support event_return"), "{}", r.stderr);
}

#[test]
fn ext_job_cache_gets_loads_from_the_master_and_returns_from_the_minions() {
    let mut c = Cluster::new("");
    let db = c.dir.path().join("ext.db");
    let opts = format!("sqlite3.database: {}\nsqlite3.timeout: 5\n", db.display());
    std::fs::write(
        c.etc().join("master"),
        format!("{}ext_job_cache: sqlite3\n{opts}", std::fs::read_to_string(c.etc().join("master")).unwrap()),
    )
    .unwrap();
    let r = run(bin("salt-returner-schema"), &c.etc(), &["sqlite3", "--create"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    c.start_master();
    c.start_minion("minion1", &opts);
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "minion1 pending");
    c.salt_key(&["-a", "minion1", "-y"]);
    c.wait_connected("minion1");
    let r = c.salt(&["-v", "minion1", "cmd.run", "echo ext"]);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    c.wait_lookup(&jid, "minion1:\n    ext\n", Duration::from_secs(20));
    let r = c.salt_run(&["jobs.list_job", &jid, "--out=json"]);
    let job: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(job["Function"], "cmd.run", "the master saved the load in the ext_job_cache: {job}");
}

fn terminate_master(c: &mut Cluster) {
    let child = &mut c.master.as_mut().expect("master running").0;
    // SAFETY: kill takes a pid and a signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the master did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.master = None;
}

/// `event_return` through a real master: the whitelist and blacklist pick the tags, the queue
/// holds events until it is full, `event_return_queue_max_seconds` lets it go by age, and
/// SIGTERM flushes what is queued into the store before the master exits.
#[test]
fn event_return_queue_filters_and_the_flush_at_sigterm() {
    let Some(db) = Db::create("evq") else { return };
    let filters = "event_return_whitelist: ['salt/job/*']\nevent_return_blacklist: ['salt/job/*/publish']\n";
    let mut c = Cluster::new(&format!(
        "event_return: mysql\nevent_return_queue: 1000\nevent_return_queue_max_seconds: 3600\n{filters}{}",
        db.config(db.port)
    ));
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["-v", "minion1", "test.ping"]);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    let events = || db.sql("SELECT tag FROM salt_events ORDER BY id");
    // Queued, not written: far from 1,000 events and an hour old.
    c.wait_lookup(&jid, "minion1:\n    True\n", Duration::from_secs(10));
    assert_eq!(events(), "", "events written before the queue was full");

    terminate_master(&mut c);
    let tags = events();
    let tags: Vec<&str> = tags.lines().collect();
    assert!(tags.contains(&format!("salt/job/{jid}/new").as_str()), "{tags:?}");
    assert!(tags.contains(&format!("salt/job/{jid}/ret/minion1").as_str()), "{tags:?}");
    assert!(tags.iter().all(|t| t.starts_with("salt/job/") && !t.ends_with("/publish")), "the filters let through {tags:?}");

    // By age: with a one-second queue, the next event after a second sends the queue on.
    db.sql("DELETE FROM salt_events");
    std::fs::write(
        c.etc().join("master"),
        std::fs::read_to_string(c.etc().join("master"))
            .unwrap()
            .replace("event_return_queue_max_seconds: 3600", "event_return_queue_max_seconds: 1"),
    )
    .unwrap();
    c.start_master();
    c.wait_connected("minion1");
    let r = c.salt(&["-v", "minion1", "test.ping"]);
    let first = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    let tag = format!("salt/job/{first}/ret/minion1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !events().contains(&tag) {
        assert!(Instant::now() < deadline, "the queue never went out by age: {}", events());
        std::thread::sleep(Duration::from_millis(1100));
        c.salt(&["minion1", "test.ping"]);
    }
}

/// A fresh PostgreSQL database on the server `SALTRS_TEST_POSTGRES` names, through `psql`.
struct PgDb {
    url: String,
    name: String,
}

impl PgDb {
    fn create(tag: &str) -> Option<PgDb> {
        let url = std::env::var("SALTRS_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let (host, port) = pg_host_port(&url);
        let how = "SALTRS_TEST_POSTGRES=postgres://USER[:PASSWORD]@HOST:PORT (a user that may create databases)";
        if !saltrs_testkit::require_server("PostgreSQL", &host, port, how) {
            return None;
        }
        let db = PgDb { url, name: format!("saltrs_e2e_{tag}_{}", std::process::id()) };
        db.psql("postgres", &format!("DROP DATABASE IF EXISTS {}", db.name));
        db.psql("postgres", &format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(format!("{}/{database}", self.url.trim_end_matches('/')))
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("the psql client");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The options for `store` (`pgjsonb` or `postgres`), reaching the server on `port`.
    fn config(&self, store: &str, port: u16) -> String {
        let rest = self.url.split("://").nth(1).unwrap_or_default();
        let (creds, _) = rest.split_once('@').unwrap_or(("postgres", rest));
        let (user, pass) = creds.split_once(':').unwrap_or((creds, ""));
        let (host, _) = pg_host_port(&self.url);
        let pass_key = if store == "postgres" { "passwd" } else { "pass" };
        let p = format!("returner.{store}");
        format!("{p}.host: {host}\n{p}.port: {port}\n{p}.user: {user}\n{p}.{pass_key}: '{pass}'\n{p}.db: {}\n", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(format!("{}/postgres", self.url.trim_end_matches('/')))
            .args(["-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

fn pg_host_port(url: &str) -> (String, u16) {
    let rest = url.split("://").nth(1).unwrap_or_default();
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h).split('/').next().unwrap_or_default();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    (host.to_string(), port.parse().unwrap_or(5432))
}

/// A PostgreSQL database behind a proxy that can cut it off, as `store`.
struct PgServer {
    store: &'static str,
    db: PgDb,
    proxy: Outage,
}

impl crate::stores::StoreServer for PgServer {
    fn name(&self) -> &'static str {
        self.store
    }
    fn config(&self) -> String {
        self.db.config(self.store, self.proxy.port)
    }
    fn stop(&mut self) {
        self.proxy.down();
    }
    fn start(&mut self) {
        self.proxy.restore();
    }
    fn raw_count(&self, from_jid: &str) -> Option<(usize, usize)> {
        let stored = self.db.psql(&self.db.name, &format!("SELECT count(*) FROM salt_returns WHERE jid >= '{from_jid}'"));
        let dups =
            self.db.psql(&self.db.name, "SELECT count(*) FROM (SELECT jid, id FROM salt_returns GROUP BY jid, id HAVING count(*) > 1) d");
        Some((stored.trim().parse().unwrap(), dups.trim().parse().unwrap()))
    }
}

/// pgjsonb and postgres through the walkthrough, their schema made by salt-returner-schema.
#[test]
fn postgresql_walkthrough() {
    for store in ["pgjsonb", "postgres"] {
        let Some(db) = PgDb::create(store) else { return };
        let (host, port) = pg_host_port(&db.url);
        let proxy = Outage::new((host, port));
        let mut server = PgServer { store, db, proxy };
        let etc = tempfile::tempdir().unwrap();
        std::fs::write(etc.path().join("master"), crate::stores::StoreServer::config(&server)).unwrap();
        let r = run(bin("salt-returner-schema"), etc.path(), &[store, "--create"]);
        assert_eq!(r.code, 0, "{store}: {}{}", r.stdout, r.stderr);
        crate::stores::walkthrough(&mut server);
    }
}

/// A store that cannot work (a wrong password, a missing table) is named in one clear line when
/// the master starts, not at the first return; the master starts anyway and spools.
#[test]
fn a_broken_store_is_reported_at_start_up() {
    let Some(db) = Db::create("health") else { return };
    let config = db.config(db.port).replace(&format!("mysql.pass: '{}'", db.pass.replace('\'', "''")), "mysql.pass: 'wrong'");
    assert!(config.contains("mysql.pass: 'wrong'"), "{config}");
    let mut c = Cluster::new(&format!("master_job_cache: mysql\n{config}"));
    c.start_master();
    wait_for(|| c.master_log().contains("returner 'mysql' for master_job_cache:"), Duration::from_secs(20), "the start-up check");
    let log = c.master_log();
    let line = log.lines().find(|l| l.contains("returner 'mysql' for master_job_cache:")).unwrap();
    assert!(line.contains("[ERROR") && line.contains("spool"), "{line}");
    assert!(!line.contains("wrong"), "the password is in the log: {line}");
    // A minion whose config returns to the same store says so too, in its own log.
    c.start_accepted_with(&["minion1"], &format!("return: mysql\n{config}"));
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.stdout, "minion1:\n    True\n", "{}", r.stderr);
    let check = "returner 'mysql' for the minion's return setting:";
    wait_for(|| c.minion_log("minion1").contains(check), Duration::from_secs(20), "the minion's start-up check");
    let log = c.minion_log("minion1");
    let line = log.lines().find(|l| l.contains(check)).unwrap();
    assert!(line.contains("[ERROR") && line.contains("could not log in") && !line.contains("wrong"), "{line}");

    // Right password, missing table: also named at start.
    db.sql("DROP TABLE salt_events");
    let mut c = Cluster::new(&format!("master_job_cache: mysql\n{}", db.config(db.port)));
    c.start_master();
    wait_for(|| c.master_log().contains("returner 'mysql' for master_job_cache:"), Duration::from_secs(20), "the start-up check");
    let log = c.master_log();
    let line = log.lines().find(|l| l.contains("returner 'mysql' for master_job_cache:")).unwrap();
    assert!(line.contains("salt_events"), "{line}");
}

/// `master_job_cache: multi_returner` over MariaDB and Redis: every job in both; with Redis
/// down, MariaDB still gets each return at once (each store has its own spool) and `jobs.*`
/// answers; back up, Redis gets what it missed.
#[test]
fn multi_returner_writes_each_store_through_its_own_spool() {
    let Some(db) = Db::create("multi") else { return };
    let Some(mut redis) = saltrs_testkit::Server::redis() else { return };
    let redis_config = format!("redis.host: 127.0.0.1\nredis.port: {}\n", redis.port());
    let stores = format!("multi_returner: [mysql, redis]\n{}{redis_config}", db.config(db.port));
    let mut c = Cluster::new(&format!("master_job_cache: multi_returner\n{stores}"));
    c.start_master();
    c.start_accepted_with(&["minion1"], "");
    let jid_of = |r: &Run| {
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.lines().next().unwrap_or_default().trim_start_matches("Executing job with jid ").trim().to_string()
    };
    let first = jid_of(&c.salt(&["-v", "minion1", "test.ping"]));
    let redis_alone = crate::stores::Reader::open("redis", &redis_config);
    assert_eq!(redis_alone.wait_job(&first, 1, Duration::from_secs(20)).len(), 1, "redis has the first job");
    assert_eq!(db.wait_count(&format!("SELECT COUNT(*) FROM salt_returns WHERE jid = '{first}'"), 1, Duration::from_secs(20)), 1);

    redis.stop();
    let during: Vec<String> = (0..3).map(|_| jid_of(&c.salt(&["-v", "minion1", "test.ping"]))).collect();
    for jid in &during {
        let sql = format!("SELECT COUNT(*) FROM salt_returns WHERE jid = '{jid}'");
        assert_eq!(db.wait_count(&sql, 1, Duration::from_secs(20)), 1, "mysql is not held back by redis");
    }
    let r = c.salt_run(&["jobs.lookup_jid", &during[0]]);
    assert!(r.stdout.contains("True"), "jobs.lookup_jid answers from mysql: {}{}", r.stdout, r.stderr);
    let spools = c.root().join("var/cache/salt/master/spool/master_job_cache-multi_returner");
    assert!(spools.join("mysql").is_dir() && spools.join("redis").is_dir(), "a spool per store in {}", spools.display());

    redis.start().unwrap();
    for jid in &during {
        assert_eq!(redis_alone.wait_job(jid, 1, Duration::from_secs(60)).len(), 1, "redis got {jid} after the outage");
    }
}

/// `--return local`: the minion prints the return on its standard output, as Salt's
/// `print(ret)`, in the order the minion sends the keys.
#[test]
fn return_local_prints_on_the_minions_standard_output() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["-v", "minion1", "test.ping", "--return", "local"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    wait_for(|| c.minion_stdout("minion1").contains(&jid), Duration::from_secs(20), "the return printed by the minion");
    let want = format!(
        "{{'success': True, 'return': True, 'retcode': 0, 'jid': '{jid}', 'fun': 'test.ping', 'fun_args': [], 'user': 'root', 'id': 'minion1'}}"
    );
    let printed = c.minion_stdout("minion1");
    assert!(printed.lines().any(|l| l == want), "wanted {want}, the minion printed {printed}");
}

/// A minion sends a return again when the master's acknowledgement is late (a master busy with
/// 10,000 returns) or lost. The master used to stamp the copy anew, so `full_ret` differed and
/// MariaDB got a second row for one (jid, minion). One row, whatever the copies.
#[test]
fn a_return_sent_again_is_stored_once() {
    use salt_proto::frame::{read_frame, write_frame};
    use salt_proto::message::{Hello, MasterMessage, MinionMessage};

    let Some(db) = Db::create("resend") else { return };
    let mut c = Cluster::new(&format!("master_job_cache: mysql\n{}", db.config(db.port)));
    c.start_master();
    // A minion of our own making, whose key the master has accepted.
    let keys = tempfile::tempdir().unwrap();
    let key = salt_pki::KeyPair::load_or_generate(keys.path(), "minion").unwrap();
    std::fs::write(c.master_pki().join("minions/resender"), key.public_pem()).unwrap();
    let ret = MinionMessage::Return(ping_return("resender", "20261202051500123456"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Three copies: two on one connection, the third after a reconnect, each acknowledged.
    for copies in [2, 1] {
        runtime.block_on(async {
            let pin = std::sync::Arc::new(salt_transport::MasterPin::new(None, None));
            let connector = salt_transport::minion_connector(key.pkcs8_der(), "resender", pin).unwrap();
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", c.port)).await.unwrap();
            let mut tls = connector.connect(salt_transport::server_name(), tcp).await.unwrap();
            let hello = MinionMessage::Hello(Hello { protocol: salt_proto::PROTOCOL_VERSION, id: "resender".into() });
            write_frame(&mut tls, &hello, 1 << 20).await.unwrap();
            let welcome: MasterMessage = read_frame(&mut tls, 1 << 20).await.unwrap();
            assert!(matches!(welcome, MasterMessage::Welcome { .. }), "{welcome:?}");
            write_frame(&mut tls, &MinionMessage::Grains(Default::default()), 1 << 20).await.unwrap();
            for _ in 0..copies {
                write_frame(&mut tls, &ret, 1 << 20).await.unwrap();
                loop {
                    let reply = tokio::time::timeout(Duration::from_secs(20), read_frame::<MasterMessage, _>(&mut tls, 1 << 20));
                    match reply.await.expect("an acknowledgement within 20 s").unwrap() {
                        MasterMessage::Ack { jid } if jid == "20261202051500123456" => break,
                        _ => continue,
                    }
                }
                // Let the spool deliver the copy before the next one comes.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    let sql = "SELECT COUNT(*) FROM salt_returns WHERE jid = '20261202051500123456'";
    assert_eq!(db.wait_count(sql, 1, Duration::from_secs(20)), 1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(db.sql(sql).trim(), "1", "one row for one (jid, minion)");
}
