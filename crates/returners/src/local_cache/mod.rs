//! `local_cache`: the default master job cache.
//!
//! It keeps what Salt's `local_cache` keeps — the publish load, the expected minions, each
//! minion's return (`return`, `retcode`, `success`, `out`, and the full return load), the end
//! time and the `nocache` marker — and behaves as it does where a caller can see it:
//! `get_load` adds the sorted `Minions`, `get_jid` gives `{id: {"return", "retcode"?,
//! "success"?, "out"?}}`, a second return for the same (jid, minion) is ignored, `prep_jid` with
//! a jid records and returns it, and a `nocache` job stores no returns.
//!
//! The files are ours: one SQLite database, `<cachedir>/job_cache.sqlite`, instead of Salt's
//! `jobs/<hash>/<minion>/return.p` tree. Salt lists jobs by walking and unpickling every job
//! directory, so `jobs.list_jobs` costs O(all jobs); here listings walk an index in jid order and
//! stop after one page, and they never read a load or a result body (see [`schema`] for the
//! tables and `listing` for the walk).
//!
//! Crash safety: the database runs in WAL mode with `synchronous=NORMAL`. A write call returns
//! only after its transaction commits, and a committed transaction is in the WAL file (at least
//! in the OS page cache) by then, so a `kill -9` of the master loses no acknowledged return.
//! Only an OS crash or power cut can drop the last few commits; the file is never corrupted.
//!
//! All writes go through one connection (SQLite has one writer at a time anyway); reads use a
//! small pool of their own and are never blocked by writes.

//!
//! Its anatomy is the crate's template: [`config`], `encode` (rows), `client` (I/O), [`schema`],
//! and `listing` (the jid index walk).

mod client;
pub mod config;
mod encode;
mod listing;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};
use sqlx::sqlite::SqlitePool;

pub use config::LocalCacheConfig;

use crate::registry::{Entry, Store};
use crate::{Capability, JobCache, JobQuery, JobSummary, Load, Rejection, Result, Sink};

pub const NAME: &str = "local_cache";

/// Every job-cache call; events are not a job cache's business (Salt's has none either).
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[
        Capability::Returner,
        Capability::PrepJid,
        Capability::SaveLoad,
        Capability::SaveMinions,
        Capability::GetLoad,
        Capability::GetJid,
        Capability::GetJids,
        Capability::GetFun,
        Capability::GetMinions,
        Capability::CleanOldJobs,
        Capability::UpdateEndtime,
        Capability::GetEndtime,
    ],
    open: |lookup| {
        async move {
            let empty = Map::new();
            let config = LocalCacheConfig::from_opts(lookup.opts.unwrap_or(&empty))?;
            Ok(Store::JobCache(std::sync::Arc::new(LocalCache::open_with(&config).await?)))
        }
        .boxed()
    },
    schema: None,
};

/// One publish for [`LocalCache::save_loads`].
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    pub jid: &'a str,
    pub load: &'a Load,
    pub minions: Option<&'a [String]>,
}

pub struct LocalCache {
    path: PathBuf,
    writer: SqlitePool,
    readers: SqlitePool,
    unique_jid: bool,
}

impl LocalCache {
    pub async fn open(cachedir: &Path) -> Result<LocalCache> {
        Self::open_with(&LocalCacheConfig::new(cachedir)).await
    }

    pub async fn open_with(config: &LocalCacheConfig) -> Result<LocalCache> {
        let (writer, readers) = schema::open(&config.cachedir).await?;
        Ok(LocalCache { path: config.cachedir.join(schema::FILE_NAME), writer, readers, unique_jid: config.unique_jid })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections (checkpointing the WAL). Dropping the cache also closes them,
    /// without waiting.
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl Sink for LocalCache {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }
}

#[async_trait]
impl JobCache for LocalCache {
    async fn prep_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        self.record_jid(nocache, passed_jid).await
    }

    async fn save_load(&self, jid: &str, load: &Load, minions: Option<&[String]>) -> Result<()> {
        self.save_loads(&[NewJob { jid, load, minions }]).await
    }

    async fn save_minions(&self, jid: &str, minions: &[String], syndic_id: Option<&str>) -> Result<()> {
        self.record_minions(jid, minions, syndic_id).await
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        self.read_load(jid).await
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        self.read_jid(jid).await
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        self.read_fun(fun).await
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        listing::get_jids(&self.readers, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.read_minions().await
    }

    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        self.purge(keep).await
    }

    async fn update_endtime(&self, jid: &str, time: &str) -> Result<()> {
        client::checked_jid(jid)?;
        self.touch(jid, Some(time)).await
    }

    async fn get_endtime(&self, jid: &str) -> Result<Option<String>> {
        self.read_endtime(jid).await
    }
}

#[cfg(test)]
mod tests {
    use super::client::AGGREGATE_UP_TO;
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn file_is_wal_and_reopens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let jid = "20240510093015123456";
        {
            let c = LocalCache::open(dir.path()).await.unwrap();
            c.save_load(jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), Some(&["m1".to_string()])).await.unwrap();
            c.returner(&obj(json!({"id": "m1", "jid": jid, "return": true, "retcode": 0}))).await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&c.readers).await.unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&c.writer).await.unwrap();
            assert_eq!(sync, 1, "synchronous=NORMAL");
            // No close(): a dropped cache must not lose what it acknowledged.
        }
        let c = LocalCache::open(dir.path()).await.unwrap();
        assert_eq!(c.get_jid(jid).await.unwrap(), *json!({"m1": {"return": true, "retcode": 0}}).as_object().unwrap());
        assert_eq!(c.path(), dir.path().join("job_cache.sqlite"));
    }

    #[tokio::test]
    async fn large_jobs_are_read_row_by_row_with_the_same_answer() {
        let dir = tempfile::tempdir().unwrap();
        let jid = "20240510093015123456";
        let c = LocalCache::open(dir.path()).await.unwrap();
        c.save_load(jid, &obj(json!({"fun": "cmd.run", "tgt": "*"})), None).await.unwrap();
        c.returner(&obj(json!({"id": "m1", "jid": jid, "return": {"a": [1, "é"]}, "retcode": 0, "success": true, "out": "nested"})))
            .await
            .unwrap();
        c.returner(&obj(json!({"id": "m2", "jid": jid, "return": "x", "success": false}))).await.unwrap();
        c.returner(&obj(json!({"id": "m3", "jid": jid, "return": null}))).await.unwrap();
        let aggregated = c.get_jid(jid).await.unwrap();
        assert_eq!(aggregated.len(), 3);
        assert_eq!(c.get_jid_row_by_row(jid).await.unwrap(), aggregated);

        // Past the threshold, get_jid takes the row path and still answers.
        let big = "x".repeat(AGGREGATE_UP_TO as usize + 1);
        c.returner(&obj(json!({"id": "m4", "jid": jid, "return": big, "retcode": 0}))).await.unwrap();
        let all = c.get_jid(jid).await.unwrap();
        assert_eq!(all["m4"]["return"].as_str().map(str::len), Some(AGGREGATE_UP_TO as usize + 1));
        assert_eq!(all["m1"], aggregated["m1"]);
    }

    #[tokio::test]
    async fn req_jid_gets_a_fresh_job() {
        let dir = tempfile::tempdir().unwrap();
        let c = LocalCache::open(dir.path()).await.unwrap();
        c.returner(&obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "return": true}))).await.unwrap();
        let funs = c.get_fun("test.ping").await.unwrap();
        let jid = funs["m1"]["jid"].as_str().unwrap();
        assert!(salt_proto::jid::is_jid(jid), "{jid}");
        assert_eq!(c.get_jid(jid).await.unwrap()["m1"], json!({"return": true}));
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = LocalCache::open(dir.path()).await.unwrap();
        sqlx::query("PRAGMA user_version = 99").execute(&c.writer).await.unwrap();
        c.close().await;
        let err = LocalCache::open(dir.path()).await.err().expect("refused");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn unique_jid_from_opts() {
        let dir = tempfile::tempdir().unwrap();
        let opts = json!({"cachedir": dir.path().to_str().unwrap(), "unique_jid": true});
        let cfg = LocalCacheConfig::from_opts(opts.as_object().unwrap()).unwrap();
        let c = LocalCache::open_with(&cfg).await.unwrap();
        let jid = c.prep_jid(false, None).await.unwrap();
        assert!(jid.ends_with(&format!("_{}", std::process::id())), "{jid}");
        assert!(LocalCacheConfig::from_opts(&Map::new()).is_err());
    }
}
