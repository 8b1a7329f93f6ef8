//! The `etcd` options, with Salt's names (`salt/returners/etcd_return.py` and
//! `salt/utils/etcd_util.py`):
//!
//! - the server: `etcd.host` (`127.0.0.1`), `etcd.port` (2379), `etcd.username` and
//!   `etcd.password` (a login, both or neither), `etcd.ca` (https, the server checked against
//!   that CA only), `etcd.client_cert` and `etcd.client_key` (a client certificate, both);
//! - profiles: `etcd.returner` names a profile, a dict of such `etcd.*` settings at the top of
//!   the config, which then stands in for the top-level ones; `etcd.returner_write_profile` and
//!   `etcd.returner_read_profile` name one for writing and one for reading;
//! - `etcd.returner_root` (`/salt/return`): where the keys go;
//! - `etcd.ttl`: how long keys live, in seconds (read from the write profile when one is named,
//!   as Salt does). Unset, the process's `keep_jobs_seconds` applies (Salt's etcd kept keys
//!   forever, and its `clean_old_jobs` does nothing, so `keep_jobs_seconds` never applied); a
//!   minion's config has none, so a minion's `--return etcd` keeps them forever, as Salt's. `0`
//!   means forever.
//! - etcd's v3 API only: `etcd.encode_values` (true, Salt's default for v3: each value is a
//!   msgpack string), `etcd.encode_keys` must stay false (msgpack keys cannot be read by
//!   prefix, as Salt's docs warn), `etcd.require_v2` is not followed (a warning says so).
//!
//! Every option is looked up as for every returner (`options::Lookup`: nested `etcd: {...}`,
//! `alternative.etcd.*` with `--return_config`, `--return_kwargs`); a named profile replaces
//! the top-level server settings, not the alternative ones or the kwargs.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::options::{master_flag, opt_set, opt_str, truthy, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// The top-level options (never from a profile).
const TOP_ATTRS: [&str; 5] = ["returner", "returner_root", "returner_write_profile", "returner_read_profile", "ttl"];
/// A server's settings: a profile's, or the top-level ones.
const SERVER_ATTRS: [&str; 10] =
    ["host", "port", "username", "password", "ca", "client_cert", "client_key", "encode_values", "encode_keys", "require_v2"];

pub const DEFAULT_ROOT: &str = "/salt/return";

#[derive(Debug, Clone, PartialEq)]
pub struct EtcdConfig {
    /// Where returns and loads are written.
    pub write: Endpoint,
    /// Where they are read (the same server unless a read profile says otherwise).
    pub read: Endpoint,
    /// `etcd.returner_root`, without a trailing `/`.
    pub root: String,
    /// How long the keys live; `None`: forever.
    pub ttl: Option<Duration>,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

/// One etcd server and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The login, when auth is enabled on the server.
    pub username: Option<String>,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Values written as msgpack strings (Salt's v3 default), else as plain text.
    pub encode_values: bool,
}

impl Endpoint {
    /// `http(s)://host:port`, the JSON gateway's base.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    pub fn tls(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some()
    }
}

impl EtcdConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<EtcdConfig> {
        let top = lookup.options(super::NAME, &TOP_ATTRS, &[("returner_root", json!(DEFAULT_ROOT))]);
        let profile = opt_set(&top, "returner");
        let write_profile = opt_set(&top, "returner_write_profile").or_else(|| profile.clone());
        let read_profile = opt_set(&top, "returner_read_profile").or_else(|| profile.clone());
        let write = endpoint(lookup, write_profile.as_deref())?;
        let read = endpoint(lookup, read_profile.as_deref())?;
        // Salt reads the TTL from the write profile when there is one, else from the top.
        let ttl = match opt_set(&top, "returner_write_profile") {
            Some(p) => profile_map(lookup, &p)?.get("etcd.ttl").cloned(),
            None => top.get("ttl").cloned(),
        };
        let ttl = match ttl.filter(|v| !matches!(v, Value::Null) && v.as_str() != Some("")) {
            Some(v) => seconds("etcd.ttl", &v)?,
            None => crate::options::keep_jobs_seconds(lookup.opts).unwrap_or(0),
        };
        let root = opt_set(&top, "returner_root").unwrap_or_else(|| DEFAULT_ROOT.into());
        let root = root.trim_end_matches('/').to_string();
        Ok(EtcdConfig {
            write,
            read,
            root,
            ttl: (ttl > 0).then(|| Duration::from_secs(ttl)),
            unique_jid: master_flag(lookup.opts, "unique_jid"),
        })
    }
}

/// The profile `name`: a dict at the top of the config.
fn profile_map<'a>(lookup: &Lookup<'a>, name: &str) -> Result<&'a Map<String, Value>> {
    lookup
        .opts
        .and_then(|o| o.get(name))
        .and_then(Value::as_object)
        .ok_or_else(|| ReturnerError::Invalid(format!("etcd: the profile '{name}' named by the etcd options is not in the config")))
}

/// The server settings of `profile`, or the top-level ones.
fn endpoint(lookup: &Lookup<'_>, profile: Option<&str>) -> Result<Endpoint> {
    let scoped;
    let lookup = match profile {
        None => *lookup,
        Some(name) => {
            // The profile's settings in place of the top-level `etcd.*` ones; the alternative
            // settings and the kwargs still apply over them.
            let opts = lookup.opts.map(|o| o.iter().filter(|(k, _)| *k != "etcd" && !k.starts_with("etcd.")));
            let mut map: Map<String, Value> = opts.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
            map.extend(profile_map(lookup, name)?.clone());
            scoped = map;
            Lookup { opts: Some(&scoped), ..*lookup }
        }
    };
    let o = lookup.options(super::NAME, &SERVER_ATTRS, &[("host", json!("127.0.0.1")), ("port", json!(2379))]);
    let port = match opt_set(&o, "port") {
        None => 2379,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| ReturnerError::Invalid(format!("etcd.port must be a number from 1 to 65535, not {p:?}")))?,
    };
    let username = opt_set(&o, "username");
    let password = opt_str(&o, "password").filter(|p| !p.is_empty());
    if username.is_some() != password.is_some() {
        return Err(ReturnerError::Invalid("etcd.username and etcd.password go together: set both, or neither".into()));
    }
    let (client_cert, client_key) = (opt_set(&o, "client_cert").map(PathBuf::from), opt_set(&o, "client_key").map(PathBuf::from));
    if client_cert.is_some() != client_key.is_some() {
        return Err(ReturnerError::Invalid("etcd.client_cert and etcd.client_key go together: set both, or neither".into()));
    }
    if o.get("encode_keys").is_some_and(truthy) {
        return Err(ReturnerError::Invalid(
            "etcd.encode_keys is not supported: msgpack-encoded keys cannot be read by prefix (Salt's own docs warn that \
             listing breaks with it); set it to false"
                .into(),
        ));
    }
    if o.get("require_v2").is_some_and(truthy) {
        tracing::warn!(
            "etcd.require_v2 is set, but this returner speaks etcd's v3 API only (v2 is deprecated, and gone in etcd 3.6): \
             what Salt wrote through v2 is not read, and new keys go to the v3 store"
        );
    }
    Ok(Endpoint {
        host: opt_set(&o, "host").unwrap_or_else(|| "127.0.0.1".into()),
        port,
        username,
        password: Secret::new(password.unwrap_or_default()),
        ca: opt_set(&o, "ca").map(PathBuf::from),
        client_cert,
        client_key,
        encode_values: o.get("encode_values").is_none_or(truthy),
    })
}

/// A whole number of seconds from a config value (`60`, `"60"`, `60.0`).
fn seconds(name: &str, v: &Value) -> Result<u64> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && s.fract() == 0.0)
        .map(|s| s as u64)
        .ok_or_else(|| ReturnerError::Invalid(format!("{name} must be a whole number of seconds, not {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn config(v: Value) -> Result<EtcdConfig> {
        EtcdConfig::from_lookup(&Lookup::new(&map(v)))
    }

    #[test]
    fn salts_defaults() {
        let c = config(json!({})).unwrap();
        assert_eq!(c.write.base_url(), "http://127.0.0.1:2379");
        assert_eq!(c.write, c.read);
        assert_eq!((c.root.as_str(), c.ttl), ("/salt/return", None));
        assert!(c.write.encode_values && c.write.username.is_none());
        // A master's config: keep_jobs_seconds is the TTL unless etcd.ttl says otherwise.
        assert_eq!(config(json!({"keep_jobs_seconds": 86400, "keep_jobs": 24})).unwrap().ttl, Some(Duration::from_secs(86400)));
        assert_eq!(config(json!({"keep_jobs_seconds": 86400, "keep_jobs": 2})).unwrap().ttl, Some(Duration::from_secs(7200)));
        assert_eq!(config(json!({"keep_jobs_seconds": 0})).unwrap().ttl, None);
        assert_eq!(config(json!({"keep_jobs_seconds": 600, "etcd.ttl": 5})).unwrap().ttl, Some(Duration::from_secs(5)));
        assert_eq!(config(json!({"keep_jobs_seconds": 600, "etcd.ttl": "0"})).unwrap().ttl, None);
    }

    #[test]
    fn flat_nested_alternative_and_kwargs() {
        let o = map(json!({"etcd.host": "10.0.0.1", "etcd": {"port": "2381", "returner_root": "/jobs/"},
                           "alternative.etcd.host": "10.0.0.2", "etcd.username": "salt", "etcd.password": "s3cret"}));
        let c = EtcdConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.write.base_url(), c.root.as_str()), ("http://10.0.0.1:2381".to_string(), "/jobs"));
        assert_eq!((c.write.username.as_deref(), c.write.password.expose()), (Some("salt"), "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let ret = map(json!({"ret_config": "alternative", "ret_kwargs": {"ttl": 30, "port": 2390}}));
        let c = EtcdConfig::from_lookup(&Lookup::new(&o).with_ret(&ret)).unwrap();
        assert_eq!((c.write.base_url(), c.ttl), ("http://10.0.0.2:2390".to_string(), Some(Duration::from_secs(30))));
    }

    #[test]
    fn profiles_stand_in_for_the_top_level_settings() {
        let o = map(json!({
            "etcd.host": "top", "etcd.ttl": 60, "etcd.returner": "main",
            "main": {"etcd.host": "main-host", "etcd.port": 2400},
            "writer": {"etcd.host": "writer-host", "etcd.ttl": 5, "etcd.ca": "/etc/ca.pem",
                       "etcd.client_cert": "/etc/c.pem", "etcd.client_key": "/etc/k.pem"},
        }));
        let c = EtcdConfig::from_lookup(&Lookup::new(&o)).unwrap();
        // The profile's settings, Salt's defaults for what it leaves out (not the top level's).
        assert_eq!(c.write.base_url(), "http://main-host:2400");
        assert_eq!(c.ttl, Some(Duration::from_secs(60)));
        let mut o2 = o.clone();
        o2.insert("etcd.returner_write_profile".into(), json!("writer"));
        let c = EtcdConfig::from_lookup(&Lookup::new(&o2)).unwrap();
        assert_eq!((c.write.base_url(), c.read.base_url()), ("https://writer-host:2379".to_string(), "http://main-host:2400".to_string()));
        assert_eq!(c.ttl, Some(Duration::from_secs(5)), "the write profile's TTL, as in Salt");
        o2.insert("etcd.returner_read_profile".into(), json!("missing"));
        assert!(EtcdConfig::from_lookup(&Lookup::new(&o2)).unwrap_err().to_string().contains("profile 'missing'"));
    }

    #[test]
    fn bad_settings_are_named() {
        for (opts, says) in [
            (json!({"etcd.port": "x"}), "etcd.port"),
            (json!({"etcd.username": "salt"}), "go together"),
            (json!({"etcd.client_key": "/k.pem"}), "go together"),
            (json!({"etcd.encode_keys": true}), "encode_keys"),
            (json!({"etcd.ttl": "soon"}), "etcd.ttl"),
            (json!({"etcd.ttl": -1}), "etcd.ttl"),
        ] {
            let err = config(opts).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        assert!(!config(json!({"etcd.encode_values": false})).unwrap().write.encode_values);
    }
}
