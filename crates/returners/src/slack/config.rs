//! The `slack` options, with Salt's names and defaults, looked up as for every returner
//! (`slack.channel` flat, `slack: {...}` nested, `alternative.slack.*` with `--return_config`,
//! `--return_kwargs`), and Salt's profile: `slack.profile: <name>` takes `api_key` from the
//! config entry `<name>: {slack.api_key: ...}`.
//!
//! `channel` (`#general`), `api_key` (required; never shown), `username`, `as_user`,
//! `changes` (only the states that changed or failed), `only_show_failed` (only the states
//! that failed; not with `changes`), `yaml_format` (the return as YAML, else Python's
//! `pprint`). Ours: `api_url` (`https://slack.com`), the Web API's base URL.

use serde_json::json;

use crate::options::{flag, opt_set, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_CHANNEL: &str = "#general";
pub const DEFAULT_API_URL: &str = "https://slack.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The Web API's base, ending in `/`: messages go to `<api_url>api/chat.postMessage`.
    pub api_url: reqwest::Url,
    pub channel: String,
    pub api_key: Secret,
    pub username: Option<String>,
    pub as_user: Option<bool>,
    pub changes: bool,
    pub only_show_failed: bool,
    pub yaml_format: bool,
}

fn invalid(message: String) -> ReturnerError {
    ReturnerError::Invalid(format!("{}: {message}", super::NAME))
}

impl SlackConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<SlackConfig> {
        const ATTRS: [&str; 9] =
            ["profile", "channel", "username", "as_user", "api_key", "changes", "only_show_failed", "yaml_format", "api_url"];
        let mut o = lookup.options(super::NAME, &ATTRS, &[("channel", json!(DEFAULT_CHANNEL)), ("api_url", json!(DEFAULT_API_URL))]);
        lookup.apply_profile(super::NAME, &mut o, "profile", &["api_key"]);
        let api_key = opt_set(&o, "api_key").ok_or_else(|| invalid("slack.api_key is not set (a Slack token)".into()))?;
        let changes = flag(super::NAME, &o, "changes", false)?;
        let only_show_failed = flag(super::NAME, &o, "only_show_failed", false)?;
        if changes && only_show_failed {
            return Err(invalid("slack.changes and slack.only_show_failed cannot both be set".into()));
        }
        let as_user = match o.get("as_user") {
            None => None,
            Some(_) => Some(flag(super::NAME, &o, "as_user", false)?),
        };
        Ok(SlackConfig {
            api_url: crate::http::base_url(super::NAME, "api_url", &opt_set(&o, "api_url").unwrap_or_else(|| DEFAULT_API_URL.into()))?,
            channel: opt_set(&o, "channel").unwrap_or_else(|| DEFAULT_CHANNEL.into()),
            api_key: Secret::new(api_key),
            username: opt_set(&o, "username"),
            as_user,
            changes,
            only_show_failed,
            yaml_format: flag(super::NAME, &o, "yaml_format", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn salts_options_defaults_and_profile() {
        let o = map(json!({"slack.api_key": "xoxb-1", "slack": {"username": "salt", "as_user": "True", "yaml_format": true}}));
        let c = SlackConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.channel.as_str(), c.api_url.as_str(), c.api_key.expose()), ("#general", "https://slack.com/", "xoxb-1"));
        assert_eq!((c.username.as_deref(), c.as_user, c.yaml_format, c.changes), (Some("salt"), Some(true), true, false));
        assert!(!format!("{c:?}").contains("xoxb-1"));
        let o = map(json!({"slack": {"profile": "team", "channel": "#ops", "api_url": "http://127.0.0.1:9"},
                           "team": {"slack.api_key": "xoxb-profile"}}));
        let c = SlackConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.channel.as_str(), c.api_key.expose(), c.api_url.as_str()), ("#ops", "xoxb-profile", "http://127.0.0.1:9/"));
        assert_eq!(c.as_user, None);
    }

    #[test]
    fn bad_settings_are_named() {
        for (o, says) in [
            (json!({}), "api_key is not set"),
            (json!({"slack": {"api_key": "k", "changes": true, "only_show_failed": true}}), "cannot both"),
            (json!({"slack": {"api_key": "k", "api_url": "ftp://x"}}), "http(s) URL"),
            (json!({"slack": {"api_key": "k", "yaml_format": "sometimes"}}), "true or false"),
        ] {
            let err = SlackConfig::from_lookup(&Lookup::new(&map(o.clone()))).unwrap_err().to_string();
            assert!(err.contains(says), "{o}: {err}");
        }
    }
}
