//! The on-disk layout of `job_cache.sqlite` and how its connections are opened.
//!
//! Tables (every one keyed by jid, so a job and everything about it sits together):
//! - `jobs`: one small row per job, clustered by jid (`WITHOUT ROWID`). It holds only what a
//!   listing shows and filters on, so walking it in jid order never touches a result body or a
//!   full load. `loaded = 0` marks a job known only from `prep_jid` or an early return: Salt's
//!   listings skip a job without a load, so ours do too. `last_activity` is the unix time of the
//!   latest write for the job (publish, minions, return, end time); purge reads only that.
//! - `functions`: the distinct function names of stored loads, so a function glob is resolved
//!   against a few hundred names instead of a million jobs.
//! - `loads`: the full publish load (JSON), read only by `get_load`.
//! - `minions`: the expected minions (JSON list) per (jid, syndic id; `''` for the master's own).
//! - `returns`: one row per (jid, minion), clustered by jid so `get_jid` reads one contiguous
//!   range. `ret` is the JSON of `return`; `full_ret` is the whole return load with its `return`
//!   value replaced by `null` (the value lives in `ret`, so a 10 MB return is stored once, and the
//!   placeholder keeps the key's position when the full return is rebuilt).
//!
//! Foreign keys with `ON DELETE CASCADE` mean deleting a `jobs` row removes the job entirely.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::client::db_err;
use crate::{Result, ReturnerError};

/// The file inside the master's cachedir.
pub const FILE_NAME: &str = "job_cache.sqlite";

/// Bumped when the layout changes; a newer file is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS jobs (
        jid TEXT PRIMARY KEY NOT NULL,
        loaded INTEGER NOT NULL DEFAULT 0,
        fun TEXT,
        tgt TEXT,
        tgt_type TEXT,
        user TEXT,
        arg TEXT,
        metadata TEXT,
        nocache INTEGER NOT NULL DEFAULT 0,
        endtime TEXT,
        last_activity INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS jobs_by_activity ON jobs(last_activity)",
    // Entries are (fun, jid): one function's jobs in jid order, for filtered listings.
    "CREATE INDEX IF NOT EXISTS jobs_by_fun ON jobs(fun)",
    "CREATE TABLE IF NOT EXISTS functions (fun TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS loads (
        jid TEXT PRIMARY KEY NOT NULL REFERENCES jobs(jid) ON DELETE CASCADE,
        load TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS minions (
        jid TEXT NOT NULL REFERENCES jobs(jid) ON DELETE CASCADE,
        syndic_id TEXT NOT NULL,
        ids TEXT NOT NULL,
        PRIMARY KEY (jid, syndic_id)
    )",
    "CREATE TABLE IF NOT EXISTS returns (
        jid TEXT NOT NULL REFERENCES jobs(jid) ON DELETE CASCADE,
        id TEXT NOT NULL,
        fun TEXT,
        ret TEXT,
        retcode INTEGER,
        success INTEGER,
        out TEXT,
        full_ret TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        PRIMARY KEY (jid, id)
    ) WITHOUT ROWID",
    // Entries are (fun, id, jid): the latest return of a function per minion (get_fun).
    "CREATE INDEX IF NOT EXISTS returns_by_fun ON returns(fun, id)",
    // Entries are (id, jid): every minion that returned (get_minions).
    "CREATE INDEX IF NOT EXISTS returns_by_id ON returns(id)",
];

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // WAL + synchronous=NORMAL: a commit is in the WAL (the OS page cache) before it returns,
        // so killing the process loses nothing committed; only an OS crash or power cut can lose
        // the last commits, and never corrupts the file.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // 16 MiB of page cache per connection: the top of the jid index stays hot.
        .pragma("cache_size", "-16384")
}

/// Opens (creating if needed) the cache file and returns (writer, readers). All writes go
/// through the single writer connection, so they are serialised in-process and a transaction
/// never has to upgrade from a read lock (which SQLite answers with SQLITE_BUSY, not a wait).
/// In WAL mode readers never block the writer nor each other.
pub async fn open(cachedir: &Path) -> Result<(SqlitePool, SqlitePool)> {
    salt_proto::private::create_dir_all(cachedir)
        .map_err(|e| ReturnerError::Unavailable(format!("cannot create cachedir {}: {e}", cachedir.display())))?;
    let path = cachedir.join(FILE_NAME);
    // Created owner-only before SQLite opens it: its WAL and shared-memory files take the
    // database file's mode.
    salt_proto::private::open_options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| ReturnerError::Unavailable(format!("cannot create {}: {e}", path.display())))?;
    let opts = options(&path);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(opts.clone())
        .await
        .map_err(|e| ReturnerError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    migrate(&writer).await?;
    let readers = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(|e| ReturnerError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    Ok((writer, readers))
}

async fn migrate(writer: &SqlitePool) -> Result<()> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await.map_err(db_err)?;
    if version > SCHEMA_VERSION {
        return Err(ReturnerError::Unavailable(format!(
            "{FILE_NAME} has schema version {version}; this build knows up to {SCHEMA_VERSION}"
        )));
    }
    for stmt in DDL {
        sqlx::query(*stmt).execute(&mut *tx).await.map_err(db_err)?;
    }
    // PRAGMA takes no bound parameters; the value is our own constant.
    let set_version = format!("PRAGMA user_version = {SCHEMA_VERSION}");
    sqlx::query(sqlx::AssertSqlSafe(set_version)).execute(&mut *tx).await.map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}
