//! Returner throughput: returns stored per second into `mysql`, `pgjsonb` and `sqlite3`.
//!
//! `cargo run --release -p salt-returners --example bench_returners -- [returns] [runs]`
//!
//! For each store, in a fresh database (MariaDB and PostgreSQL on loopback, a temp SQLite file)
//! with Salt's schema made by the store's own `create_schema`, `returns` returns of one job
//! (default 1,000; master-side return loads like the transcript's `full_ret`, ~300 bytes)
//! arrive together and are timed until all are stored, in five ways:
//! - **spool**: what `master_job_cache` and minion-side returners do — one `push_nowait` per
//!   return (as the master and the minion call it), then `flush`; push-to-flushed;
//! - **store**: `returner_batch` of all of them, the store alone (no spool, no fsync of ours);
//! - **ceiling**: the raw server — rows pre-serialised, one transaction, nothing else: `COPY`
//!   for PostgreSQL, multi-row INSERTs of 500 for MySQL and SQLite;
//! - **Salt**: Salt's returner, emulated in Rust with the same statement and the same
//!   connection handling: one INSERT + COMMIT per return; `mysql` keeps one connection and
//!   pings it before each return (saltext-mysql's `_get_serv`), `pgjsonb` connects and closes
//!   per return (`salt/returners/pgjsonb.py`), `sqlite3` opens and closes the file per return
//!   (`sqlite3_return.py`);
//! - **Salt, kept connection**: the same INSERT + COMMIT per return on one open connection,
//!   which isolates the cost of a commit per return from the cost of connecting.
//!
//! Each figure is the median of `runs` runs (default 5); the tables are emptied before every
//! run and the stored row count is checked after it. The databases are dropped at the end.
//! Servers: `BENCH_MYSQL` (default `mysql://root@127.0.0.1:3306`) and `BENCH_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a server that cannot be reached is skipped.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use salt_returners::options::Lookup;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Entry, JobCache, Load, Rejection, Sink, Store};
use serde_json::{json, Map, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection};

/// Rows per multi-row INSERT in the ceiling.
const CEILING_ROWS: usize = 500;

/// A return as the master hands it to the job cache (the transcript's `full_ret`).
fn master_return(jid: &str, n: usize) -> Load {
    let v = json!({"cmd": "_return", "id": format!("minion{n:04}"), "success": true,
        "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "user": "root",
        "_stamp": "2026-11-25T00:39:16.909909+00:00", "ts": 1795567156});
    v.as_object().unwrap().clone()
}

/// A distinct jid per run, so no run can be mistaken for a retry of another.
fn jid_for(run: usize) -> String {
    salt_proto::jid::jid_at(chrono::Utc::now() + chrono::Duration::milliseconds(run as i64 * 7))
}

/// A value in COPY's text format: backslash, tab, newline and carriage return escaped.
fn copy_text(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

/// Python's `json.dumps`, as Salt writes the JSON columns.
fn dumps(v: &Value) -> String {
    salt_output::json_dumps(v, None, false)
}

/// One `salt_returns` row as text: (fun, jid, return, id, success, full_ret).
struct Row {
    fun: String,
    jid: String,
    ret: String,
    id: String,
    full_ret: String,
}

fn row(ret: &Load) -> Row {
    let s = |k: &str| ret[k].as_str().unwrap().to_string();
    Row { fun: s("fun"), jid: s("jid"), ret: dumps(&ret["return"]), id: s("id"), full_ret: dumps(&Value::Object(ret.clone())) }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mysql,
    Pgjsonb,
    Sqlite3,
}

/// A fresh database for one store, and how to reach it with a plain driver connection.
struct Target {
    kind: Kind,
    name: String,
    mysql: Option<MySqlConnectOptions>,
    pg: Option<PgConnectOptions>,
    sqlite: Option<SqliteConnectOptions>,
    /// The returner config (`mysql.*`, `returner.pgjsonb.*`, `sqlite3.*`).
    opts: Map<String, Value>,
}

impl Target {
    async fn create(kind: Kind, dir: &std::path::Path) -> Result<Target, String> {
        let name = format!("saltrs_bench_ret_{}", std::process::id());
        let mut t = Target { kind, name: name.clone(), mysql: None, pg: None, sqlite: None, opts: Map::new() };
        match kind {
            Kind::Mysql => {
                let url = std::env::var("BENCH_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
                let admin = MySqlConnectOptions::from_str(&url).map_err(|e| e.to_string())?.charset("utf8mb4");
                let mut c = MySqlConnection::connect_with(&admin).await.map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4")))
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                c.close().await.ok();
                t.opts = json!({"mysql.host": admin.get_host(), "mysql.port": admin.get_port(), "mysql.user": admin.get_username(), "mysql.db": name})
                    .as_object().unwrap().clone();
                t.mysql = Some(admin.database(&name));
            }
            Kind::Pgjsonb => {
                let url = std::env::var("BENCH_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                let admin = PgConnectOptions::from_str(&url).map_err(|e| e.to_string())?;
                let mut c = PgConnection::connect_with(&admin).await.map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.map_err(|e| e.to_string())?;
                c.close().await.ok();
                t.opts = json!({"returner.pgjsonb.host": admin.get_host(), "returner.pgjsonb.port": admin.get_port(),
                                "returner.pgjsonb.user": admin.get_username(), "returner.pgjsonb.db": name})
                .as_object()
                .unwrap()
                .clone();
                t.pg = Some(admin.database(&name));
            }
            Kind::Sqlite3 => {
                let file = dir.join("salt.db");
                t.opts = json!({"sqlite3.database": file, "sqlite3.timeout": 5.0}).as_object().unwrap().clone();
                // Python's sqlite3.connect: default journal mode (DELETE) and synchronous=FULL.
                t.sqlite = Some(SqliteConnectOptions::new().filename(&file).busy_timeout(Duration::from_secs(5)));
            }
        }
        Ok(t)
    }

    fn store_name(&self) -> &'static str {
        match self.kind {
            Kind::Mysql => "mysql",
            Kind::Pgjsonb => "pgjsonb",
            Kind::Sqlite3 => "sqlite3",
        }
    }

    /// The store, opened by its Salt name as the master and the minion open it. The servers
    /// here take root/postgres without a password, and an empty `pass` in the config means
    /// Salt's default `salt`: the override is `--return_kwargs`'s, as a user would give it.
    async fn open_store(&self) -> Arc<dyn JobCache> {
        let kwargs = json!({"pass": ""}).as_object().unwrap().clone();
        let lookup = Lookup { opts: Some(&self.opts), ret_config: None, ret_kwargs: Some(&kwargs) };
        let store = salt_returners::open(self.store_name(), &lookup).await.unwrap().job_cache().unwrap();
        store.create_schema().await.unwrap();
        store
    }

    /// Runs `sql` on a new connection (for emptying and counting; never timed).
    async fn exec(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_string());
        match self.kind {
            Kind::Mysql => {
                let mut c = MySqlConnection::connect_with(self.mysql.as_ref().unwrap()).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.ok();
            }
            Kind::Pgjsonb => {
                let mut c = PgConnection::connect_with(self.pg.as_ref().unwrap()).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.ok();
            }
            Kind::Sqlite3 => {
                let mut c = SqliteConnection::connect_with(self.sqlite.as_ref().unwrap()).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.ok();
            }
        }
    }

    async fn empty(&self) {
        match self.kind {
            Kind::Sqlite3 => self.exec("DELETE FROM salt_returns; DELETE FROM jids").await,
            _ => self.exec("TRUNCATE TABLE salt_returns; TRUNCATE TABLE jids").await,
        }
    }

    async fn count(&self, jid: &str) -> i64 {
        let sql = "SELECT COUNT(*) FROM salt_returns WHERE jid = ";
        match self.kind {
            Kind::Mysql => {
                let mut c = MySqlConnection::connect_with(self.mysql.as_ref().unwrap()).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(format!("{sql}?"))).bind(jid).fetch_one(&mut c).await.unwrap()
            }
            Kind::Pgjsonb => {
                let mut c = PgConnection::connect_with(self.pg.as_ref().unwrap()).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(format!("{sql}$1"))).bind(jid).fetch_one(&mut c).await.unwrap()
            }
            Kind::Sqlite3 => {
                let mut c = SqliteConnection::connect_with(self.sqlite.as_ref().unwrap()).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(format!("{sql}?"))).bind(jid).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    async fn drop_database(&self) {
        match self.kind {
            Kind::Mysql => {
                let admin = self.mysql.clone().unwrap().database("mysql");
                let mut c = MySqlConnection::connect_with(&admin).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{}`", self.name))).execute(&mut c).await.unwrap();
            }
            Kind::Pgjsonb => {
                let admin = self.pg.clone().unwrap().database("postgres");
                let mut c = PgConnection::connect_with(&admin).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))).execute(&mut c).await.unwrap();
            }
            // The file goes with the temp dir.
            Kind::Sqlite3 => {}
        }
    }

    /// The ceiling: pre-serialised rows, multi-row INSERTs of [`CEILING_ROWS`], one transaction,
    /// on a connection opened before the clock starts (the store's pool is warm too).
    async fn ceiling(&self, rows: &[Row]) -> Duration {
        let start;
        match self.kind {
            Kind::Mysql => {
                let mut c = MySqlConnection::connect_with(self.mysql.as_ref().unwrap()).await.unwrap();
                start = Instant::now();
                let mut tx = c.begin().await.unwrap();
                for chunk in rows.chunks(CEILING_ROWS) {
                    let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                    let sql = format!("INSERT INTO `salt_returns` (`fun`, `jid`, `return`, `id`, `success`, `full_ret`) VALUES {values}");
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for r in chunk {
                        q = q.bind(&r.fun).bind(&r.jid).bind(&r.ret).bind(&r.id).bind("1").bind(&r.full_ret);
                    }
                    q.execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
                let took = start.elapsed();
                c.close().await.ok();
                took
            }
            Kind::Pgjsonb => {
                // PostgreSQL's fastest way in: COPY, rows pre-serialised in its text format, one
                // transaction (as the store's batch is).
                let mut c = PgConnection::connect_with(self.pg.as_ref().unwrap()).await.unwrap();
                let text: String =
                    rows.iter().map(|r| [&r.fun, &r.jid, &r.ret, &r.id, "true", &r.full_ret].map(copy_text).join("\t") + "\n").collect();
                start = Instant::now();
                let mut tx = c.begin().await.unwrap();
                let mut copy = tx.copy_in_raw("COPY salt_returns (fun, jid, return, id, success, full_ret) FROM STDIN").await.unwrap();
                copy.send(text.as_bytes()).await.unwrap();
                copy.finish().await.unwrap();
                tx.commit().await.unwrap();
                let took = start.elapsed();
                c.close().await.ok();
                took
            }
            Kind::Sqlite3 => {
                let mut c = SqliteConnection::connect_with(self.sqlite.as_ref().unwrap()).await.unwrap();
                start = Instant::now();
                let mut tx = c.begin().await.unwrap();
                for chunk in rows.chunks(CEILING_ROWS) {
                    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                    let sql = format!("INSERT INTO salt_returns (fun, jid, id, fun_args, date, full_ret, success) VALUES {values}");
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for r in chunk {
                        q = q
                            .bind(&r.fun)
                            .bind(&r.jid)
                            .bind(&r.id)
                            .bind("['ls /']")
                            .bind("2026-11-25 00:39:16.909909")
                            .bind(&r.ret)
                            .bind("1");
                    }
                    q.execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
                let took = start.elapsed();
                c.close().await.ok();
                took
            }
        }
    }

    /// Salt's returner: one INSERT + COMMIT per return, Salt's statement text. `kept`: on one
    /// connection; otherwise with Salt's own connection handling (see the module doc).
    async fn salt_per_return(&self, rets: &[Load], kept: bool) -> Duration {
        let start;
        match self.kind {
            Kind::Mysql => {
                // saltext-mysql: one cached PyMySQL connection (autocommit off), ping, INSERT,
                // COMMIT. The statement is Salt's, whitespace included.
                let sql = "INSERT INTO `salt_returns`
                     (`fun`, `jid`, `return`, `id`, `success`, `full_ret`)
                     VALUES (?, ?, ?, ?, ?, ?)";
                let mut c = MySqlConnection::connect_with(self.mysql.as_ref().unwrap()).await.unwrap();
                sqlx::raw_sql("SET autocommit = 0").execute(&mut c).await.unwrap();
                // Salt's connection lives as long as the process: its first connect is not timed.
                start = Instant::now();
                for ret in rets {
                    if !kept {
                        c.ping().await.unwrap();
                    }
                    let r = row(ret);
                    sqlx::query(sql)
                        .bind(&r.fun)
                        .bind(&r.jid)
                        .bind(&r.ret)
                        .bind(&r.id)
                        .bind(1i32)
                        .bind(&r.full_ret)
                        .execute(&mut c)
                        .await
                        .unwrap();
                    sqlx::raw_sql("COMMIT").execute(&mut c).await.unwrap();
                }
                let took = start.elapsed();
                c.close().await.ok();
                took
            }
            Kind::Pgjsonb => {
                // psycopg2 sends Json() as a string literal the server casts to jsonb, and
                // opens a transaction before the INSERT.
                let sql = "INSERT INTO salt_returns
                    (fun, jid, return, id, success, full_ret, alter_time)
                    VALUES ($1, $2, $3::jsonb, $4, $5, $6::jsonb, to_timestamp($7))";
                let opts = self.pg.as_ref().unwrap();
                let mut kept_conn = if kept { Some(PgConnection::connect_with(opts).await.unwrap()) } else { None };
                start = Instant::now();
                for ret in rets {
                    let mut fresh = None;
                    let c = match kept_conn.as_mut() {
                        Some(c) => c,
                        None => fresh.insert(PgConnection::connect_with(opts).await.unwrap()),
                    };
                    let r = row(ret);
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
                    let mut tx = c.begin().await.unwrap();
                    sqlx::query(sql)
                        .bind(&r.fun)
                        .bind(&r.jid)
                        .bind(&r.ret)
                        .bind(&r.id)
                        .bind("true")
                        .bind(&r.full_ret)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    if let Some(c) = fresh {
                        c.close().await.ok();
                    }
                }
                let took = start.elapsed();
                if let Some(c) = kept_conn {
                    c.close().await.ok();
                }
                took
            }
            Kind::Sqlite3 => {
                // sqlite3_return: sqlite3.connect, INSERT (the module opens a transaction),
                // commit, close. Salt names its parameters (:fun, ...); they bind in this order.
                let sql = "INSERT INTO salt_returns
             (fun, jid, id, fun_args, date, full_ret, success)
             VALUES (?, ?, ?, ?, ?, ?, ?)";
                let opts = self.sqlite.as_ref().unwrap();
                let mut kept_conn = if kept { Some(SqliteConnection::connect_with(opts).await.unwrap()) } else { None };
                start = Instant::now();
                for ret in rets {
                    let mut fresh = None;
                    let c = match kept_conn.as_mut() {
                        Some(c) => c,
                        None => fresh.insert(SqliteConnection::connect_with(opts).await.unwrap()),
                    };
                    let r = row(ret);
                    let date = chrono::Local::now().naive_local().format("%Y-%m-%d %H:%M:%S%.6f").to_string();
                    let mut tx = c.begin().await.unwrap();
                    sqlx::query(sql)
                        .bind(&r.fun)
                        .bind(&r.jid)
                        .bind(&r.id)
                        .bind("['ls /']")
                        .bind(&date)
                        .bind(&r.ret)
                        .bind("1")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    if let Some(c) = fresh {
                        c.close().await.ok();
                    }
                }
                let took = start.elapsed();
                if let Some(c) = kept_conn {
                    c.close().await.ok();
                }
                took
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Way {
    Spool,
    Store,
    Ceiling,
    Salt,
    SaltKept,
}

impl Way {
    const ALL: [Way; 5] = [Way::Spool, Way::Store, Way::Ceiling, Way::Salt, Way::SaltKept];

    fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Way::Spool, _) => "ours: spool → store (`master_job_cache`, minion-side `--return`)",
            (Way::Store, _) => "ours: `returner_batch` alone",
            (Way::Ceiling, Kind::Pgjsonb) => "ceiling: raw COPY, one transaction",
            (Way::Ceiling, _) => "ceiling: raw multi-row INSERT (500 rows), one transaction",
            (Way::Salt, Kind::Mysql) => "Salt's way: ping + INSERT + COMMIT per return, one kept connection",
            (Way::Salt, Kind::Pgjsonb) => "Salt's way: connect + INSERT + COMMIT + close per return",
            (Way::Salt, Kind::Sqlite3) => "Salt's way: open + INSERT + COMMIT + close per return",
            (Way::SaltKept, _) => "INSERT + COMMIT per return, one kept connection (no ping)",
        }
    }
}

/// One `push_nowait` per return, as the master and the minion queue them, then `flush`.
async fn spooled(spool: &Spool, rets: &[Load]) -> Duration {
    let start = Instant::now();
    for ret in rets {
        spool.push_nowait(vec![Record::Return { ret: ret.clone() }]);
    }
    assert!(spool.flush(Duration::from_secs(600)).await, "the spool did not drain");
    start.elapsed()
}

/// A store that takes every batch at once: what is left is the spool's own cost (its fsyncs,
/// its JSON lines, its cursor).
struct Accepting;

static ACCEPTING: Entry = Entry::unlisted("instant", &[salt_returners::Capability::Returner]);

#[async_trait::async_trait]
impl Sink for Accepting {
    fn entry(&self) -> &'static Entry {
        &ACCEPTING
    }

    async fn returner_batch(&self, _rets: &[Load]) -> salt_returners::Result<Vec<Rejection>> {
        Ok(Vec::new())
    }
}

/// Median of `runs` runs of one way into one store, in returns per second.
async fn measure(t: &Target, store: &Arc<dyn JobCache>, spool: &Spool, way: Way, n: usize, runs: usize) -> f64 {
    let mut rates = Vec::with_capacity(runs);
    for run in 0..runs {
        t.empty().await;
        let jid = jid_for(run);
        let rets: Vec<Load> = (0..n).map(|i| master_return(&jid, i)).collect();
        let rows: Vec<Row> = rets.iter().map(row).collect();
        let elapsed = match way {
            Way::Spool => spooled(spool, &rets).await,
            Way::Store => {
                let start = Instant::now();
                store.returner_batch(&rets).await.unwrap();
                start.elapsed()
            }
            Way::Ceiling => t.ceiling(&rows).await,
            Way::Salt => t.salt_per_return(&rets, false).await,
            Way::SaltKept => t.salt_per_return(&rets, true).await,
        };
        let stored = t.count(&jid).await;
        assert_eq!(stored, n as i64, "{}: {} returns stored, {n} expected", t.store_name(), stored);
        rates.push(n as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[runs / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("usage: [returns] [runs]")).collect();
    let n = args.first().copied().unwrap_or(1000);
    let runs = args.get(1).copied().unwrap_or(5).max(1);
    let tmp = tempfile::Builder::new().prefix("bench-returners").tempdir().unwrap();
    let size = dumps(&Value::Object(master_return(&jid_for(0), 0))).len();

    println!("Command: `cargo run --release -p salt-returners --example bench_returners -- {n} {runs}`\n");
    println!(
        "{n} returns of one job arriving together ({size}-byte `full_ret` each); returns/s, median of {runs} runs; \
              ratio = rate / ceiling of the same store.\n"
    );
    let alone = Spool::open(&tmp.path().join("spool-alone"), Store::Sink(Arc::new(Accepting))).unwrap();
    let mut rates = Vec::new();
    for run in 0..runs {
        let jid = jid_for(run);
        let rets: Vec<Load> = (0..n).map(|i| master_return(&jid, i)).collect();
        rates.push(n as f64 / spooled(&alone, &rets).await.as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("The spool alone (into a store that accepts every batch at once): {:.0} returns/s.\n", rates[runs / 2]);
    // SALTRS_BENCH_STORES=mysql,sqlite3 measures only those (all three by default).
    let only = std::env::var("SALTRS_BENCH_STORES").ok();
    for kind in [Kind::Mysql, Kind::Pgjsonb, Kind::Sqlite3] {
        let name = ["mysql", "pgjsonb", "sqlite3"][kind as usize];
        if only.as_deref().is_some_and(|only| !only.split(',').any(|s| s == name)) {
            continue;
        }
        let dir = tmp.path().join(format!("{}", kind as u8));
        std::fs::create_dir_all(&dir).unwrap();
        let t = match Target::create(kind, &dir).await {
            Ok(t) => t,
            Err(e) => {
                println!("### {name}\n\nskipped: server unreachable ({e})\n");
                continue;
            }
        };
        let store = t.open_store().await;
        let spool = Spool::open(&dir.join("spool"), Store::JobCache(store.clone())).unwrap();
        let mut results = Vec::new();
        for way in Way::ALL {
            let rate = measure(&t, &store, &spool, way, n, runs).await;
            eprintln!("{} {}: {rate:.0}/s", t.store_name(), way.label(kind));
            results.push((way, rate));
        }
        let ceiling = results.iter().find(|(w, _)| matches!(w, Way::Ceiling)).unwrap().1;
        println!("### {}\n", t.store_name());
        println!("| way | returns/s | ratio to ceiling |\n|---|---:|---:|");
        for (way, rate) in &results {
            println!("| {} | {rate:.0} | {:.2} |", way.label(kind), rate / ceiling);
        }
        println!();
        drop(spool);
        drop(store);
        t.drop_database().await;
    }
}
