//! The `carbon` options, with Salt's names: `carbon.host` (no default: Salt sends nothing without
//! one, we refuse to open), `carbon.port` (2003, carbon's plaintext port; 2004, its pickle port,
//! in pickle mode), `carbon.skip_on_error` (false), `carbon.mode` (`text` or `pickle`) and
//! `carbon.metric_base_pattern` (`[module].[function].[minion_id]`). Nested (`carbon: {host:
//! ...}`), `alternative.carbon.*` with `--return_config`, and `--return_kwargs` (where Salt's
//! own name for `skip_on_error` is `skip`; both are taken) as for every returner.

use std::time::Duration;

use serde_json::{json, Value};

use crate::options::{flag, opt_set, Lookup};
use crate::{Result, ReturnerError};

/// How long connecting to carbon may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing a batch, and carbon reading it to the end, may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

const ATTRS: [&str; 5] = ["host", "port", "skip_on_error", "mode", "metric_base_pattern"];

/// Salt's documented default for `metric_base_pattern`.
pub const DEFAULT_PATTERN: &str = "[module].[function].[minion_id]";

/// Carbon's two TCP protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `name value timestamp\n` lines (carbon's `LINE_RECEIVER_PORT`, 2003).
    Text,
    /// Python pickles of `[(name, (timestamp, value)), ...]`, each after its 4-byte length
    /// (carbon's `PICKLE_RECEIVER_PORT`, 2004).
    Pickle,
}

impl Mode {
    /// Carbon's own port for the protocol.
    pub fn default_port(self) -> u16 {
        match self {
            Mode::Text => 2003,
            Mode::Pickle => 2004,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarbonConfig {
    pub host: String,
    pub port: u16,
    /// A value that is not a number is left out (true) or refuses its return (false).
    pub skip_on_error: bool,
    pub mode: Mode,
    /// `[module]`, `[function]` and `[minion_id]` replaced; not used for `virt.*` functions.
    pub metric_base_pattern: String,
}

impl CarbonConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<CarbonConfig> {
        let defaults = [("mode", json!("text")), ("metric_base_pattern", json!(DEFAULT_PATTERN))];
        let options = lookup.options(super::NAME, &ATTRS, &defaults);
        let invalid = |what: String| ReturnerError::Invalid(format!("carbon: {what}"));
        let host =
            opt_set(&options, "host").ok_or_else(|| invalid("carbon.host is not set (the carbon server's name or address)".into()))?;
        let mode = match opt_set(&options, "mode").unwrap_or_default().trim().to_ascii_lowercase().as_str() {
            "" | "text" => Mode::Text,
            "pickle" => Mode::Pickle,
            other => return Err(invalid(format!("carbon.mode is text or pickle, not {other:?}"))),
        };
        let port = match opt_set(&options, "port") {
            None => mode.default_port(),
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(format!("carbon.port must be a number from 1 to 65535, not {p:?}")))?,
        };
        // `skip` is the key Salt's `--return_kwargs` sets.
        // `--return_kwargs` names it `skip`.
        let skip_key = if options.contains_key("skip") { "skip" } else { "skip_on_error" };
        let skip_on_error = flag(super::NAME, &options, skip_key, false)?;
        let metric_base_pattern = match options.get("metric_base_pattern") {
            Some(Value::String(p)) if !p.trim().is_empty() => p.trim().to_string(),
            Some(other) if !other.is_null() && other.as_str().is_none() => {
                return Err(invalid(format!("carbon.metric_base_pattern must be text, not {other}")))
            }
            _ => DEFAULT_PATTERN.to_string(),
        };
        Ok(CarbonConfig { host, port, skip_on_error, mode, metric_base_pattern })
    }

    /// The server, for messages.
    pub fn server(&self) -> String {
        format!("carbon at {}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn config(v: Value) -> Result<CarbonConfig> {
        CarbonConfig::from_lookup(&Lookup::new(v.as_object().unwrap()))
    }

    #[test]
    fn salt_names_and_defaults() {
        let c = config(json!({"carbon.host": "graphite"})).unwrap();
        let want = CarbonConfig {
            host: "graphite".into(),
            port: 2003,
            skip_on_error: false,
            mode: Mode::Text,
            metric_base_pattern: DEFAULT_PATTERN.into(),
        };
        assert_eq!(c, want);
        assert_eq!(c.server(), "carbon at graphite:2003");
        let c = config(json!({"carbon": {"host": "g", "mode": "Pickle", "skip_on_error": "True",
                                         "metric_base_pattern": "carbon.[minion_id].[module].[function]"}}))
        .unwrap();
        assert_eq!((c.port, c.mode, c.skip_on_error), (2004, Mode::Pickle, true));
        assert_eq!(c.metric_base_pattern, "carbon.[minion_id].[module].[function]");
        assert_eq!(config(json!({"carbon.host": "g", "carbon.port": "2103", "carbon.mode": "pickle"})).unwrap().port, 2103);
    }

    #[test]
    fn bad_options_are_clear_errors() {
        for (opts, why) in [
            (json!({}), "carbon.host is not set"),
            (json!({"carbon.host": "g", "carbon.mode": "udp"}), "text or pickle"),
            (json!({"carbon.host": "g", "carbon.port": 0}), "carbon.port must be"),
            (json!({"carbon.host": "g", "carbon.metric_base_pattern": ["x"]}), "must be text"),
        ] {
            let err = config(opts).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn return_config_and_salts_kwargs_name() {
        let opts = json!({"carbon.host": "main", "alternative.carbon": {"host": "alt", "port": 2013}});
        let ret = json!({"ret_config": "alternative", "ret_kwargs": {"skip": true}});
        let c = CarbonConfig::from_lookup(&Lookup::new(opts.as_object().unwrap()).with_ret(ret.as_object().unwrap())).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.skip_on_error), ("alt", 2013, true));
        let ret: Map<String, Value> = json!({"ret_kwargs": {"skip_on_error": "yes"}}).as_object().unwrap().clone();
        assert!(CarbonConfig::from_lookup(&Lookup::new(opts.as_object().unwrap()).with_ret(&ret)).unwrap().skip_on_error);
    }
}
