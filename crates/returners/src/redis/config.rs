//! The `redis` options, with Salt's names and defaults: `redis.host` (`salt`), `redis.port`
//! (6379), `redis.unix_socket_path` (unset: TCP), `redis.db` (`0`), `redis.password` (unset),
//! `redis.cluster_mode` (false), `redis.cluster.startup_nodes` (a list of `{host, port}`) and
//! `redis.cluster.skip_full_coverage_check` (false; accepted and without effect here: the
//! client never runs the `CONFIG` check that option skips in redis-py-cluster). The master's
//! `keep_jobs_seconds` (legacy `keep_jobs` hours) is the keys' TTL, and `unique_jid` shapes the
//! jids `prep_jid` makes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::options::{flag, master_flag, opt_set, opt_str, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one round trip may take: a pipeline of up to `client::MAX_PIPELINE_BYTES`.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

const ATTRS: [&str; 8] =
    ["host", "port", "unix_socket_path", "db", "password", "cluster_mode", "cluster.startup_nodes", "cluster.skip_full_coverage_check"];

/// Salt's default for `keep_jobs_seconds`.
const DEFAULT_KEEP_JOBS_SECONDS: u64 = 86400;

/// Where the store's server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    /// `cluster_mode`: the nodes to learn the cluster's layout from.
    Cluster(Vec<(String, u16)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub target: Target,
    pub db: i64,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    /// `keep_jobs_seconds`: the TTL of every job key; None for 0 (keep forever).
    pub ttl: Option<Duration>,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl RedisConfig {
    /// The options `lookup` finds (`redis.*`, `redis: {...}`, `alternative.redis.*` with
    /// `--return_config`, `--return_kwargs`), with Salt's defaults.
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<RedisConfig> {
        let defaults = [("host", json!("salt")), ("port", json!(6379)), ("db", json!("0"))];
        let options = lookup.options(super::NAME, &ATTRS, &defaults);
        let invalid = |what: String| ReturnerError::Invalid(format!("redis: {what}"));
        let db = match opt_set(&options, "db") {
            None => 0,
            Some(d) => {
                d.trim().parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| invalid(format!("db must be a number, not {d:?}")))?
            }
        };
        let target = if flag(super::NAME, &options, "cluster_mode", false)? {
            // Salt's attrs map `startup_nodes` to `cluster.startup_nodes`: `--return_kwargs` uses the short name.
            let nodes = startup_nodes(options.get("startup_nodes").or_else(|| options.get("cluster.startup_nodes"))).map_err(invalid)?;
            if db != 0 {
                return Err(invalid(format!("a Redis Cluster has only database 0, not db {db}")));
            }
            Target::Cluster(nodes)
        } else if let Some(path) = opt_set(&options, "unix_socket_path") {
            Target::Unix(PathBuf::from(path))
        } else {
            let host = opt_set(&options, "host").unwrap_or_else(|| "salt".into());
            let port = match opt_set(&options, "port") {
                None => 6379,
                Some(p) => port(&p).map_err(invalid)?,
            };
            Target::Tcp { host, port }
        };
        Ok(RedisConfig {
            target,
            db,
            password: Secret::new(opt_str(&options, "password").unwrap_or_default()),
            ttl: Some(keep_jobs_seconds(lookup.opts)).filter(|s| *s > 0).map(Duration::from_secs),
            unique_jid: master_flag(lookup.opts, "unique_jid"),
        })
    }

    /// The server without credentials, for messages: `host:port/db`, the socket, or the nodes.
    pub fn server(&self) -> String {
        match &self.target {
            Target::Tcp { host, port } => format!("Redis at {host}:{port}/{}", self.db),
            Target::Unix(path) => format!("Redis at {}/{}", path.display(), self.db),
            Target::Cluster(nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                format!("the Redis Cluster of {}", nodes.join(", "))
            }
        }
    }

    /// The TTL in seconds for `EX`/`EXPIRE`; 0 for none.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.map_or(0, |t| t.as_secs())
    }
}

fn port(text: &str) -> std::result::Result<u16, String> {
    text.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("port must be a number from 1 to 65535, not {text:?}"))
}

/// `cluster.startup_nodes`: Salt's list of `{host: ..., port: ...}` (a `host:port` string is
/// taken too).
fn startup_nodes(value: Option<&Value>) -> std::result::Result<Vec<(String, u16)>, String> {
    let list = value
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or("cluster_mode needs cluster.startup_nodes, a list of {host, port}")?;
    list.iter()
        .map(|node| match node {
            Value::Object(m) => {
                let host = m.get("host").and_then(Value::as_str).ok_or_else(|| format!("a startup node needs a host: {node}"))?;
                let p = m.get("port").map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string)).unwrap_or_else(|| "6379".into());
                Ok((host.to_string(), port(&p)?))
            }
            Value::String(s) => {
                let (host, p) = s.rsplit_once(':').unwrap_or((s, "6379"));
                Ok((host.to_string(), port(p)?))
            }
            other => Err(format!("a startup node is {{host, port}}, not {other}")),
        })
        .collect()
}

fn keep_jobs_seconds(opts: Option<&Map<String, Value>>) -> u64 {
    crate::options::keep_jobs_seconds(opts).unwrap_or(DEFAULT_KEEP_JOBS_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;

    fn config(v: Value) -> Result<RedisConfig> {
        RedisConfig::from_lookup(&Lookup::new(v.as_object().unwrap()))
    }

    #[test]
    fn salt_defaults() {
        let c = config(json!({})).unwrap();
        assert_eq!(c.target, Target::Tcp { host: "salt".into(), port: 6379 });
        assert_eq!((c.db, c.password.expose(), c.ttl, c.unique_jid), (0, "", Some(Duration::from_secs(86400)), false));
        assert_eq!(c.server(), "Redis at salt:6379/0");
    }

    #[test]
    fn flat_nested_socket_password_and_ttl() {
        let c =
            config(json!({"redis.host": "r1", "redis": {"port": "6380", "db": 3, "password": "hunter2"}, "keep_jobs_seconds": 0})).unwrap();
        assert_eq!(c.target, Target::Tcp { host: "r1".into(), port: 6380 });
        assert_eq!((c.db, c.password.expose(), c.ttl), (3, "hunter2", None));
        assert!(!format!("{c:?}").contains("hunter2") && format!("{c:?}").contains(REDACTED));
        let c = config(json!({"redis.unix_socket_path": "/run/redis.sock", "keep_jobs": 2})).unwrap();
        assert_eq!(c.target, Target::Unix("/run/redis.sock".into()));
        assert_eq!(c.ttl, Some(Duration::from_secs(7200)));
        assert!(config(json!({"redis.db": "zero"})).unwrap_err().to_string().contains("db must be a number"));
        assert!(config(json!({"redis.port": 0})).unwrap_err().to_string().contains("port must be"));
    }

    #[test]
    fn cluster_options() {
        let c = config(json!({"redis.cluster_mode": true, "redis.cluster.skip_full_coverage_check": true,
                              "redis.cluster.startup_nodes": [{"host": "n1", "port": 7000}, {"host": "n2", "port": "7001"}, "n3:7002"]}))
        .unwrap();
        assert_eq!(c.target, Target::Cluster(vec![("n1".into(), 7000), ("n2".into(), 7001), ("n3".into(), 7002)]));
        assert_eq!(c.server(), "the Redis Cluster of n1:7000, n2:7001, n3:7002");
        let err = config(json!({"redis.cluster_mode": "True"})).unwrap_err().to_string();
        assert!(err.contains("needs cluster.startup_nodes"), "{err}");
        let err = config(json!({"redis.cluster_mode": true, "redis.db": 1, "redis.cluster.startup_nodes": ["n:1"]})).unwrap_err();
        assert!(err.to_string().contains("only database 0"), "{err}");
        assert!(matches!(config(json!({"redis.cluster_mode": "False"})).unwrap().target, Target::Tcp { .. }));
    }

    #[test]
    fn return_config_and_return_kwargs() {
        let opts = json!({"redis.host": "main", "alternative.redis.host": "alt", "alternative.redis": {"db": "2"}});
        let ret = json!({"ret_config": "alternative", "ret_kwargs": {"port": 6390}});
        let lookup = Lookup::new(opts.as_object().unwrap()).with_ret(ret.as_object().unwrap());
        let c = RedisConfig::from_lookup(&lookup).unwrap();
        assert_eq!((c.target, c.db), (Target::Tcp { host: "alt".into(), port: 6390 }, 2));
        // `startup_nodes` by its short name, as Salt's attrs map it.
        let ret = json!({"ret_kwargs": {"cluster_mode": true, "startup_nodes": ["k:7000"]}});
        let lookup = Lookup::new(opts.as_object().unwrap()).with_ret(ret.as_object().unwrap());
        assert_eq!(RedisConfig::from_lookup(&lookup).unwrap().target, Target::Cluster(vec![("k".into(), 7000)]));
    }
}
