//! The `splunk` options, read as Salt reads them: `config.get('splunk_http_forwarder:<key>')`,
//! so the nested `splunk_http_forwarder: {token, indexer, sourcetype, index, verify_ssl}` of
//! the process config (Salt also looks in grains and pillar; we do not).
//!
//! Ours besides Salt's (Salt hard-codes the first two): `scheme` (`https`), `port` (8088),
//! `host` (each event's `host` field; this machine's name, as Salt's), `batch_bytes` (how
//! much one request to the collector carries, 1,000,000 bytes: Splunk Cloud's limit; a larger
//! return goes alone).

use serde_json::{Map, Value};

use crate::options::{flag, hostname, opt_set};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// The config key Salt reads the options under.
pub const SECTION: &str = "splunk_http_forwarder";
pub const DEFAULT_SCHEME: &str = "https";
pub const DEFAULT_PORT: u16 = 8088;
/// Splunk Cloud refuses a request over 1 MB; Splunk Enterprise takes up to 800 MB by default
/// (`limits.conf` `max_content_length`).
pub const DEFAULT_BATCH_BYTES: usize = 1_000_000;
/// The HTTP Event Collector's endpoint for JSON events.
pub const EVENT_PATH: &str = "/services/collector/event";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplunkConfig {
    /// `<scheme>://<indexer>:<port>/services/collector/event`.
    pub url: reqwest::Url,
    /// The HEC token, sent as `Authorization: Splunk <token>`; never shown.
    pub token: Secret,
    pub sourcetype: Option<String>,
    pub index: Option<String>,
    pub verify_ssl: bool,
    /// The `host` field of each event.
    pub host: String,
    pub batch_bytes: usize,
}

fn invalid(message: String) -> ReturnerError {
    ReturnerError::Invalid(format!("{}: {message}", super::NAME))
}

impl SplunkConfig {
    pub fn from_opts(opts: Option<&Map<String, Value>>) -> Result<SplunkConfig> {
        let empty = Map::new();
        let o = opts.and_then(|o| o.get(SECTION)).and_then(Value::as_object).unwrap_or(&empty);
        let token = opt_set(o, "token").ok_or_else(|| invalid(format!("{SECTION}: token is not set (the HEC token)")))?;
        let indexer = opt_set(o, "indexer").ok_or_else(|| invalid(format!("{SECTION}: indexer is not set (the collector's host)")))?;
        let scheme = opt_set(o, "scheme").unwrap_or_else(|| DEFAULT_SCHEME.into()).to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https") {
            return Err(invalid(format!("{SECTION}: scheme must be http or https, not {scheme:?}")));
        }
        let port = match opt_set(o, "port") {
            None => DEFAULT_PORT,
            Some(p) => {
                p.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| invalid(format!("{SECTION}: port {p:?} is not a port")))?
            }
        };
        let batch_bytes = match opt_set(o, "batch_bytes") {
            None => DEFAULT_BATCH_BYTES,
            Some(n) => n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| invalid(format!("{SECTION}: batch_bytes must be a number of bytes of at least 1024, not {n:?}")))?,
        };
        Ok(SplunkConfig {
            url: event_url(&scheme, &indexer, port)?,
            token: Secret::new(token),
            sourcetype: opt_set(o, "sourcetype"),
            index: opt_set(o, "index"),
            verify_ssl: flag(super::NAME, o, "verify_ssl", true)?,
            host: opt_set(o, "host").unwrap_or_else(hostname),
            batch_bytes,
        })
    }
}

/// The collector's URL: the indexer must be a host name or address alone (Salt pastes it
/// between `https://` and `:8088`).
fn event_url(scheme: &str, indexer: &str, port: u16) -> Result<reqwest::Url> {
    let host = indexer.trim();
    let bad = || invalid(format!("{SECTION}: indexer {host:?} is not a host name or address (the port is `port`, the scheme `scheme`)"));
    if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) || (host.contains(':') && !host.starts_with('[')) {
        return Err(bad());
    }
    let url = reqwest::Url::parse(&format!("{scheme}://{host}:{port}{EVENT_PATH}")).map_err(|_| bad())?;
    if url.host_str().is_none() {
        return Err(bad());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> Result<SplunkConfig> {
        SplunkConfig::from_opts(Some(v.as_object().unwrap()))
    }

    #[test]
    fn salts_options_and_defaults() {
        let c = config(json!({"splunk_http_forwarder": {"token": "abc-123", "indexer": "splunk.example.com",
                                                        "sourcetype": "salt", "index": "main"}}))
        .unwrap();
        assert_eq!(c.url.as_str(), "https://splunk.example.com:8088/services/collector/event");
        assert_eq!((c.sourcetype.as_deref(), c.index.as_deref(), c.verify_ssl), (Some("salt"), Some("main"), true));
        assert_eq!((c.token.expose(), c.batch_bytes, c.host.as_str()), ("abc-123", DEFAULT_BATCH_BYTES, hostname().as_str()));
        assert!(!format!("{c:?}").contains("abc-123"));
        let c = config(json!({"splunk_http_forwarder": {"token": "t", "indexer": "127.0.0.1", "scheme": "http", "port": "18088",
                                                        "verify_ssl": "False", "host": "web1", "batch_bytes": 4096}}))
        .unwrap();
        assert_eq!(c.url.as_str(), "http://127.0.0.1:18088/services/collector/event");
        assert_eq!((c.verify_ssl, c.host.as_str(), c.batch_bytes, c.index.as_deref()), (false, "web1", 4096, None));
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        for (opts, says) in [
            (json!({}), "token is not set"),
            (json!({"splunk_http_forwarder": {"token": "t"}}), "indexer is not set"),
            (json!({"splunk_http_forwarder": {"token": "t", "indexer": "h:8088"}}), "not a host name"),
            (json!({"splunk_http_forwarder": {"token": "t", "indexer": "https://h"}}), "not a host name"),
            (json!({"splunk_http_forwarder": {"token": "t", "indexer": "h", "scheme": "ftp"}}), "http or https"),
            (json!({"splunk_http_forwarder": {"token": "t", "indexer": "h", "port": 70000}}), "not a port"),
            (json!({"splunk_http_forwarder": {"token": "t", "indexer": "h", "verify_ssl": "maybe"}}), "true or false"),
            (json!({"splunk_http_forwarder": {"token": "t", "indexer": "h", "batch_bytes": 10}}), "at least 1024"),
        ] {
            let err = config(opts.clone()).unwrap_err().to_string();
            assert!(err.contains(says), "{opts}: {err}");
        }
        assert!(config(json!({"splunk_http_forwarder": {"token": "t", "indexer": "[::1]"}})).is_ok());
    }
}
