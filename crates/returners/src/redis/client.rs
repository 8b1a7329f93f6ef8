//! I/O with Redis: a connection made on first use (a standalone server through a reconnecting
//! `ConnectionManager`, or a cluster), pipelines as one round trip, reads bounded in count and
//! time, and errors classified: the server down, a wrong password, out of memory or read-only
//! is `Unavailable` (retry later); a command the server refuses for its data (a key of another
//! type) refuses that record alone. No message carries the password.
//!
//! Bounds: every reply comes within [`RESPONSE_TIMEOUT`]; listings read index ranges with a
//! `LIMIT` and sets with `SSCAN ... COUNT`; what a reply holds is what this store wrote (each
//! value at most `encode::MAX_VALUE_BYTES`): the redis crate has no cap of its own on a reply.

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue, IntoConnectionInfo, Pipeline, RedisError, Value};
use tokio::sync::OnceCell;

use super::config::{RedisConfig, Target, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use crate::{Result, ReturnerError};

/// Bytes of values per pipeline: a batch bigger than that takes a few round trips.
pub const MAX_PIPELINE_BYTES: usize = 16 * 1024 * 1024;
/// Entries per `SSCAN`/`ZRANGEBYSCORE` page.
pub const PAGE: usize = 1000;
/// Commands in flight at once on a cluster.
const CLUSTER_IN_FLIGHT: usize = 256;

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

pub struct Client {
    config: RedisConfig,
    conn: OnceCell<Conn>,
}

/// What the server said to one command of a pipeline sent with `ignore_errors`.
pub enum Reply {
    Done,
    /// The server refused this command for its data: the record it belongs to is refused.
    Refused(String),
}

impl Client {
    pub fn new(config: RedisConfig) -> Client {
        Client { config, conn: OnceCell::new() }
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.config.target, Target::Cluster(_))
    }

    fn connection_info(&self, addr: ConnectionAddr) -> Result<ConnectionInfo> {
        let mut settings = redis::RedisConnectionInfo::default().set_db(self.config.db);
        if !self.config.password.is_empty() {
            settings = settings.set_password(self.config.password.expose());
        }
        Ok(addr.into_connection_info().map_err(|e| self.error(e))?.set_redis_settings(settings))
    }

    /// The connection, made on first use (a failed attempt is tried again on the next call).
    async fn conn(&self) -> Result<Conn> {
        self.conn
            .get_or_try_init(|| async {
                match &self.config.target {
                    Target::Cluster(nodes) => {
                        let infos = nodes
                            .iter()
                            .map(|(h, p)| self.connection_info(ConnectionAddr::Tcp(h.clone(), *p)))
                            .collect::<Result<Vec<_>>>()?;
                        let mut builder = redis::cluster::ClusterClientBuilder::new(infos)
                            .connection_timeout(CONNECT_TIMEOUT)
                            .response_timeout(RESPONSE_TIMEOUT);
                        if !self.config.password.is_empty() {
                            builder = builder.password(self.config.password.expose());
                        }
                        let client = builder.build().map_err(|e| self.error(e))?;
                        let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_connection())
                            .await
                            .map_err(|_| self.timed_out("connect"))?
                            .map_err(|e| self.error(e))?;
                        Ok(Conn::Cluster(conn))
                    }
                    Target::Tcp { host, port } => self.single(ConnectionAddr::Tcp(host.clone(), *port)),
                    Target::Unix(path) => self.single(ConnectionAddr::Unix(path.clone())),
                }
            })
            .await
            .cloned()
    }

    /// A standalone server: the manager connects when first used and reconnects after a
    /// failure; a call while the server is down fails at once (the spool retries it).
    fn single(&self, addr: ConnectionAddr) -> Result<Conn> {
        let client = redis::Client::open(self.connection_info(addr)?).map_err(|e| self.error(e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        Ok(Conn::Single(ConnectionManager::new_lazy_with_config(client, config).map_err(|e| self.error(e))?))
    }

    /// Each command's answer to `pipe`. A standalone server gets the pipeline in one round
    /// trip. A cluster gets each command on its own, all at once (the driver routes each to its
    /// node, and sends those for one node together): its pipelines must stay within one slot,
    /// and a job's keys are spread over many.
    async fn answers(&self, pipe: &mut Pipeline) -> Result<Vec<redis::RedisResult<Value>>> {
        let run = async {
            match self.conn().await? {
                Conn::Single(mut c) => {
                    let values: Vec<Value> = pipe.ignore_errors().query_async(&mut c).await.map_err(|e| self.error(e))?;
                    Ok(values
                        .into_iter()
                        .map(|v| match v {
                            Value::ServerError(e) => Err(e.into()),
                            v => Ok(v),
                        })
                        .collect())
                }
                Conn::Cluster(c) => {
                    let each: Vec<_> = pipe.cmd_iter().map(|cmd| one_command(cmd, c.clone())).collect();
                    Ok(futures::stream::iter(each).buffered(CLUSTER_IN_FLIGHT).collect().await)
                }
            }
        };
        // The drivers time out each exchange; this bounds a cluster's redirections too.
        tokio::time::timeout(RESPONSE_TIMEOUT + CONNECT_TIMEOUT, run).await.map_err(|_| self.timed_out("answer"))?
    }

    /// `pipe`'s answers as `T` (a tuple or a list, one item per command); any error fails the
    /// whole call.
    pub async fn query<T: FromRedisValue>(&self, pipe: &mut Pipeline) -> Result<T> {
        let values = self.answers(pipe).await?.into_iter().collect::<redis::RedisResult<Vec<Value>>>().map_err(|e| self.error(e))?;
        T::from_redis_value(Value::Array(values)).map_err(|e| self.error(e.into()))
    }

    /// Each command's own outcome: a command refused for its data is [`Reply::Refused`]; a
    /// server that cannot work (down, out of memory, read-only) fails the whole call.
    pub async fn query_each(&self, pipe: &mut Pipeline) -> Result<Vec<Reply>> {
        self.answers(pipe)
            .await?
            .into_iter()
            .map(|answer| match answer {
                Ok(_) => Ok(Reply::Done),
                Err(e) if refuses_the_record(&e) => Ok(Reply::Refused(self.config.password.scrub(&e.to_string()))),
                Err(e) => Err(self.error(e)),
            })
            .collect()
    }

    /// `PING` through the store's connection: reaches the server and logs in.
    pub async fn ping(&self) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        let _: Vec<Value> = self.query(&mut pipe).await?;
        Ok(())
    }

    fn timed_out(&self, what: &str) -> ReturnerError {
        ReturnerError::Unavailable(format!(
            "redis: {} did not {what} within {} s",
            self.config.server(),
            (RESPONSE_TIMEOUT + CONNECT_TIMEOUT).as_secs()
        ))
    }

    /// A driver error as a returner error: what failed and where, without the password.
    pub fn error(&self, e: RedisError) -> ReturnerError {
        let server = self.config.server();
        let text = self.config.password.scrub(&e.to_string());
        let code = e.code().unwrap_or_default();
        let message = if e.kind() == ErrorKind::AuthenticationFailed || matches!(code, "WRONGPASS" | "NOAUTH") {
            format!("redis: could not log in to {server}: {text}")
        } else if e.kind() == ErrorKind::InvalidClientConfig {
            return ReturnerError::Invalid(format!("redis: {text}"));
        } else if e.is_timeout() {
            format!("redis: {server} did not answer in time: {text}")
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            format!("redis: could not connect to {server}: {text}")
        } else {
            format!("redis: {server} failed: {text}")
        };
        ReturnerError::Unavailable(message)
    }
}

async fn one_command(cmd: &redis::Cmd, mut conn: ClusterConnection) -> redis::RedisResult<Value> {
    cmd.query_async(&mut conn).await
}

/// A server error about the record's data, not the server: a key holding another type (a
/// name clash with something else in the database), or a value the server will not take.
fn refuses_the_record(e: &RedisError) -> bool {
    let code = e.code().unwrap_or_default();
    code == "WRONGTYPE" || (code == "ERR" && e.to_string().contains("exceeds maximum allowed size"))
}

/// The store's reads and writes, each a bounded number of round trips.
pub mod ops {
    use std::collections::{BTreeSet, HashSet};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use redis::Pipeline;
    use serde_json::{Map, Value as Json};

    use super::super::encode::{self, ReturnRow, JIDS, JID_ACTIVITY, MINIONS, MINION_ACTIVITY};
    use super::{Client, Reply, MAX_PIPELINE_BYTES, PAGE};
    use crate::batch::{by_size, Indexed};
    use crate::{JobSummary, Load, Rejection, Result, ReturnerError};

    /// `<minion>:<fun>` := jid, unless it already names a later jid (a late or retried return
    /// never hides a newer one); with the TTL when there is one.
    const SET_IF_NEWER: &str = r"
        local cur = redis.call('GET', KEYS[1])
        if cur and cur >= ARGV[1] then return 0 end
        if ARGV[2] ~= '0' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
        else redis.call('SET', KEYS[1], ARGV[1]) end
        return 1";

    /// Purges one job if it is still idle since before the cut-off, in one step, so a return
    /// arriving meanwhile is never deleted with it. KEYS: jid_activity, jids, ret:, load:,
    /// summary:, minions:<jid>; ARGV: jid, cut-off.
    const PURGE_JOB: &str = r"
        local t = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not t or tonumber(t) >= tonumber(ARGV[2]) then return 0 end
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
        return 1";

    /// Forgets a minion whose latest return is older than the cut-off. KEYS: minion_activity,
    /// minions; ARGV: minion id, cut-off.
    const PURGE_MINION: &str = r"
        local t = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not t or tonumber(t) >= tonumber(ARGV[2]) then return 0 end
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('SREM', KEYS[2], ARGV[1])
        return 1";

    /// Unix time in seconds: the activity scores.
    fn now() -> f64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
    }

    /// `SET key value NX [EX ttl]`: the first value stays.
    fn set_first(pipe: &mut Pipeline, key: String, value: &str, ttl: u64) {
        let cmd = pipe.cmd("SET").arg(key).arg(value).arg("NX");
        if ttl > 0 {
            cmd.arg("EX").arg(ttl);
        }
    }

    fn expire(pipe: &mut Pipeline, key: String, ttl: u64) {
        if ttl > 0 {
            pipe.cmd("EXPIRE").arg(key).arg(ttl);
        }
    }

    /// The keys of a job's load: the load, its summary, the index entry, its activity.
    fn add_load(pipe: &mut Pipeline, jid: &str, load: &str, summary: &str, ttl: u64, at: f64) {
        set_first(pipe, encode::load_key(jid), load, ttl);
        set_first(pipe, encode::summary_key(jid), summary, ttl);
        pipe.cmd("ZADD").arg(JIDS).arg(0).arg(jid);
        pipe.cmd("ZADD").arg(JID_ACTIVITY).arg(at).arg(jid);
    }

    impl Client {
        /// Stores the prepared returns, a pipeline per `MAX_PIPELINE_BYTES`; a return the
        /// server refuses goes to `rejected`.
        pub async fn write_returns(&self, rows: &[Indexed<ReturnRow>], rejected: &mut Vec<Rejection>) -> Result<()> {
            let ttl = self.config().ttl_secs();
            for chunk in by_size(rows, MAX_PIPELINE_BYTES, |r| r.row.bytes()) {
                let (mut pipe, mut owner) = (redis::pipe(), Vec::new());
                let at = now();
                // What is per job or per minion is sent once per pipeline.
                let (mut jobs, mut minions) = (HashSet::new(), HashSet::new());
                for Indexed { index, row } in chunk {
                    let before = pipe.len();
                    let ret_key = encode::ret_key(&row.jid);
                    // First return stored for (jid, minion) wins: a retried batch changes nothing.
                    pipe.cmd("HSETNX").arg(&ret_key).arg(&row.id).arg(&row.json);
                    if jobs.insert(row.jid.as_str()) {
                        // After the HSETNX: EXPIRE on a missing key does nothing.
                        expire(&mut pipe, ret_key, ttl);
                        pipe.cmd("ZADD").arg(JID_ACTIVITY).arg(at).arg(&row.jid);
                    }
                    pipe.cmd("EVAL").arg(SET_IF_NEWER).arg(1).arg(encode::latest_key(&row.id, &row.fun)).arg(&row.jid).arg(ttl);
                    if minions.insert(row.id.as_str()) {
                        pipe.cmd("SADD").arg(MINIONS).arg(&row.id);
                        pipe.cmd("ZADD").arg(MINION_ACTIVITY).arg(at).arg(&row.id);
                    }
                    if let Some(summary) = &row.req_summary {
                        add_load(&mut pipe, &row.jid, &row.json, summary, ttl, at);
                    }
                    owner.extend(std::iter::repeat_n(*index, pipe.len() - before));
                }
                for (reply, index) in self.query_each(&mut pipe).await?.into_iter().zip(owner) {
                    if let Reply::Refused(why) = reply {
                        if rejected.last().is_none_or(|r| r.index != index) {
                            let row = &chunk.iter().find(|r| r.index == index).expect("every command has its record").row;
                            rejected.push(Rejection { index, reason: format!("{}: {why}", row.describe()) });
                        }
                    }
                }
            }
            rejected.sort_by_key(|r| r.index);
            Ok(())
        }

        /// Stores a job's load (the first one stays) and adds `minions` to its expected minions.
        pub async fn write_load(&self, jid: &str, load: &Load, minions: &[String]) -> Result<()> {
            let text = crate::json::dumps_map(load);
            if text.len() > encode::MAX_VALUE_BYTES {
                return Err(ReturnerError::Rejected(format!("redis: the load of {jid} is more than the 512 MiB a Redis value holds")));
            }
            let ttl = self.config().ttl_secs();
            let mut pipe = redis::pipe();
            add_load(&mut pipe, jid, &text, &encode::encode_summary(load), ttl, now());
            self.add_minions(&mut pipe, jid, minions, ttl);
            self.refuse_whole(&mut pipe, jid).await
        }

        /// Adds `minions` to a job's expected minions (a syndic's list merges in).
        pub async fn write_minions(&self, jid: &str, minions: &[String]) -> Result<()> {
            let mut pipe = redis::pipe();
            self.add_minions(&mut pipe, jid, minions, self.config().ttl_secs());
            pipe.cmd("ZADD").arg(JID_ACTIVITY).arg(now()).arg(jid);
            self.refuse_whole(&mut pipe, jid).await
        }

        fn add_minions(&self, pipe: &mut Pipeline, jid: &str, minions: &[String], ttl: u64) {
            if !minions.is_empty() {
                let key = encode::expected_minions_key(jid);
                pipe.cmd("SADD").arg(&key).arg(minions);
                expire(pipe, key, ttl);
            }
        }

        /// Runs a pipeline that stands for one record: a refused command refuses it.
        async fn refuse_whole(&self, pipe: &mut Pipeline, jid: &str) -> Result<()> {
            for reply in self.query_each(pipe).await? {
                if let Reply::Refused(why) = reply {
                    return Err(ReturnerError::Rejected(format!("redis: the load of {jid}: {why}")));
                }
            }
            Ok(())
        }

        /// The load of `jid` and its expected minions (sorted), if it has a load.
        pub async fn read_load(&self, jid: &str) -> Result<Option<(Load, Vec<String>)>> {
            let mut pipe = redis::pipe();
            pipe.cmd("GET").arg(encode::load_key(jid)).cmd("SMEMBERS").arg(encode::expected_minions_key(jid));
            let (text, mut minions): (Option<String>, Vec<String>) = self.query(&mut pipe).await?;
            let Some(text) = text else { return Ok(None) };
            let load = encode::decode_object(&format!("the stored load of {jid}"), &text).map_err(|e| self.unreadable(e))?;
            minions.sort();
            Ok(Some((load, minions)))
        }

        /// `ret:<jid>`: each minion's return, by minion id.
        pub async fn read_returns(&self, jid: &str) -> Result<Map<String, Json>> {
            let mut pipe = redis::pipe();
            pipe.cmd("HGETALL").arg(encode::ret_key(jid));
            let (mut pairs,): (Vec<(String, String)>,) = self.query(&mut pipe).await?;
            pairs.sort();
            self.decode_returns(jid, pairs)
        }

        fn decode_returns(&self, jid: &str, pairs: Vec<(String, String)>) -> Result<Map<String, Json>> {
            pairs
                .into_iter()
                .map(|(id, text)| {
                    let ret =
                        encode::decode_object(&format!("the stored return of {id} for {jid}"), &text).map_err(|e| self.unreadable(e))?;
                    Ok((id, Json::Object(ret)))
                })
                .collect()
        }

        /// Each minion's latest return of `fun`: `<minion>:<fun>` names the jid, `ret:<jid>` holds it.
        pub async fn read_latest(&self, fun: &str) -> Result<Map<String, Json>> {
            let minions = self.members(MINIONS).await?;
            let mut found = Vec::new();
            for page in minions.chunks(PAGE) {
                let mut pipe = redis::pipe();
                for m in page {
                    pipe.cmd("GET").arg(encode::latest_key(m, fun));
                }
                let jids: Vec<Option<String>> = self.query(&mut pipe).await?;
                found.extend(page.iter().zip(jids).filter_map(|(m, j)| Some((m.clone(), j?))));
            }
            let mut out = Vec::new();
            for page in found.chunks(PAGE) {
                let mut pipe = redis::pipe();
                for (m, jid) in page {
                    pipe.cmd("HGET").arg(encode::ret_key(jid)).arg(m);
                }
                let rets: Vec<Option<String>> = self.query(&mut pipe).await?;
                // A pointer whose return has expired is skipped.
                out.extend(page.iter().zip(rets).filter_map(|((m, _), r)| Some((m.clone(), r?))));
            }
            self.decode_returns(fun, out)
        }

        /// Every member of a set, sorted, read a page at a time.
        pub async fn members(&self, key: &str) -> Result<Vec<String>> {
            let mut all = BTreeSet::new();
            let mut cursor = 0u64;
            loop {
                let mut pipe = redis::pipe();
                pipe.cmd("SSCAN").arg(key).arg(cursor).arg("COUNT").arg(PAGE);
                let ((next, page),): ((u64, Vec<String>),) = self.query(&mut pipe).await?;
                all.extend(page);
                if next == 0 {
                    return Ok(all.into_iter().collect());
                }
                cursor = next;
            }
        }

        /// Up to `limit` listed jobs with `lo <(=) jid < hi`, in jid order; index entries whose
        /// job has expired are passed over.
        pub async fn read_summaries(
            &self,
            lo: &str,
            lo_inclusive: bool,
            hi: Option<&str>,
            oldest_first: bool,
            limit: usize,
        ) -> Result<Vec<JobSummary>> {
            let (mut lo, mut lo_inclusive, mut hi) = (lo.to_string(), lo_inclusive, hi.map(str::to_string));
            let mut out = Vec::new();
            while out.len() < limit {
                let want = limit - out.len();
                let min = match (lo.as_str(), lo_inclusive) {
                    ("", true) => "-".to_string(),
                    (lo, true) => format!("[{lo}"),
                    (lo, false) => format!("({lo}"),
                };
                let max = hi.as_ref().map_or_else(|| "+".to_string(), |h| format!("({h}"));
                let mut pipe = redis::pipe();
                if oldest_first {
                    pipe.cmd("ZRANGEBYLEX").arg(JIDS).arg(&min).arg(&max);
                } else {
                    pipe.cmd("ZREVRANGEBYLEX").arg(JIDS).arg(&max).arg(&min);
                }
                pipe.arg("LIMIT").arg(0).arg(want);
                let (jids,): (Vec<String>,) = self.query(&mut pipe).await?;
                let Some(last) = jids.last() else { break };
                if oldest_first {
                    (lo, lo_inclusive) = (last.clone(), false);
                } else {
                    hi = Some(last.clone());
                }
                let mut pipe = redis::pipe();
                for jid in &jids {
                    pipe.cmd("GET").arg(encode::summary_key(jid));
                }
                let summaries: Vec<Option<String>> = self.query(&mut pipe).await?;
                out.extend(jids.iter().zip(summaries).filter_map(|(jid, s)| encode::decode_summary(jid, &s?)));
                if jids.len() < want {
                    break;
                }
            }
            Ok(out)
        }

        /// Removes every job whose latest write is older than `cutoff` (Unix seconds) with its
        /// index entries, and forgets the minions whose latest return is older. Returns the
        /// number of jobs removed.
        pub async fn purge(&self, cutoff: f64) -> Result<u64> {
            let cutoff_arg = format!("{cutoff:.6}");
            let mut purged = 0;
            loop {
                let old = self.older_than(JID_ACTIVITY, &cutoff_arg).await?;
                let mut pipe = redis::pipe();
                for jid in &old {
                    let keys = [encode::ret_key(jid), encode::load_key(jid), encode::summary_key(jid), encode::expected_minions_key(jid)];
                    if self.is_cluster() {
                        // A job's keys live on different nodes: no one step can check and
                        // delete them (see the module docs for what that leaves open).
                        pipe.cmd("ZREM").arg(JID_ACTIVITY).arg(jid);
                        pipe.cmd("DEL").arg(&keys[0]).cmd("DEL").arg(&keys[1]).cmd("DEL").arg(&keys[2]).cmd("DEL").arg(&keys[3]);
                        pipe.cmd("ZREM").arg(JIDS).arg(jid);
                    } else {
                        pipe.cmd("EVAL").arg(PURGE_JOB).arg(6).arg(JID_ACTIVITY).arg(JIDS).arg(&keys).arg(jid).arg(&cutoff_arg);
                    }
                }
                if !old.is_empty() {
                    let answers: Vec<u64> = self.query(&mut pipe).await?;
                    // Per job, the first answer says whether it went (the ZREM or the script).
                    let per_job = answers.len() / old.len();
                    purged += answers.iter().step_by(per_job).sum::<u64>();
                }
                if old.len() < PAGE {
                    break;
                }
            }
            loop {
                let old = self.older_than(MINION_ACTIVITY, &cutoff_arg).await?;
                let mut pipe = redis::pipe();
                for id in &old {
                    if self.is_cluster() {
                        pipe.cmd("ZREM").arg(MINION_ACTIVITY).arg(id).cmd("SREM").arg(MINIONS).arg(id);
                    } else {
                        pipe.cmd("EVAL").arg(PURGE_MINION).arg(2).arg(MINION_ACTIVITY).arg(MINIONS).arg(id).arg(&cutoff_arg);
                    }
                }
                if !old.is_empty() {
                    let _: Vec<u64> = self.query(&mut pipe).await?;
                }
                if old.len() < PAGE {
                    break;
                }
            }
            Ok(purged)
        }

        /// A page of the members of an activity set scored before `cutoff`.
        async fn older_than(&self, key: &str, cutoff: &str) -> Result<Vec<String>> {
            let mut pipe = redis::pipe();
            pipe.cmd("ZRANGEBYSCORE").arg(key).arg("-inf").arg(format!("({cutoff}")).arg("LIMIT").arg(0).arg(PAGE);
            let (members,): (Vec<String>,) = self.query(&mut pipe).await?;
            Ok(members)
        }

        /// Stored data this store cannot read (another program's value under one of its keys).
        fn unreadable(&self, what: String) -> ReturnerError {
            ReturnerError::Unavailable(format!("redis: {what} (in {})", self.config().server()))
        }
    }
}
