//! The `memcache` options, with Salt's names and defaults: `memcache.host` (`localhost`) and
//! `memcache.port` (11211); `alternative.memcache.*` and `--return_kwargs` work as for every
//! returner. The master's `unique_jid` shapes the jids `prep_jid` makes.

use std::time::Duration;

use serde_json::json;

use crate::options::{master_flag, opt_set, Lookup};
use crate::{Result, ReturnerError};

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one exchange (a pipeline of requests and their answers) may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcacheConfig {
    pub host: String,
    pub port: u16,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl MemcacheConfig {
    /// The options `lookup` finds (`memcache.*`, `memcache: {...}`, `alternative.memcache.*`
    /// with `--return_config`, `--return_kwargs`), with Salt's defaults.
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<MemcacheConfig> {
        let options = lookup.options(super::NAME, &["host", "port"], &[("host", json!("localhost")), ("port", json!(11211))]);
        let port = match opt_set(&options, "port") {
            None => 11211,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ReturnerError::Invalid(format!("memcache: port must be a number from 1 to 65535, not {p:?}")))?,
        };
        Ok(MemcacheConfig {
            host: opt_set(&options, "host").unwrap_or_else(|| "localhost".into()),
            port,
            unique_jid: master_flag(lookup.opts, "unique_jid"),
        })
    }

    /// `memcached at host:port`, for messages.
    pub fn server(&self) -> String {
        format!("memcached at {}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn config(opts: Value, ret: Value) -> Result<MemcacheConfig> {
        let opts: Map<String, Value> = opts.as_object().unwrap().clone();
        let ret: Map<String, Value> = ret.as_object().unwrap().clone();
        MemcacheConfig::from_lookup(&Lookup::new(&opts).with_ret(&ret))
    }

    #[test]
    fn salt_names_and_defaults() {
        let c = config(json!({}), json!({})).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.unique_jid), ("localhost", 11211, false));
        let c = config(json!({"memcache.host": "mc1", "memcache": {"port": "11311"}, "unique_jid": true}), json!({})).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.unique_jid), ("mc1", 11311, true));
        assert_eq!(c.server(), "memcached at mc1:11311");
        let opts = json!({"memcache.host": "mc1", "alternative.memcache.host": "mc2"});
        let c = config(opts.clone(), json!({"ret_config": "alternative", "ret_kwargs": {"port": 11400}})).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("mc2", 11400));
        assert!(config(json!({"memcache.port": "x"}), json!({})).unwrap_err().to_string().contains("port must be"));
    }
}
