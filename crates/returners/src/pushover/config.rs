//! The `pushover` options, with Salt's names: `pushover.user` and `pushover.token` (required),
//! `title`, `device`, `priority`, `expire`, `retry`, `sound`, `api_version` (default `1`), and
//! `profile`: the name of a map in the config whose `pushover.<option>` keys replace these
//! ([`Lookup::apply_profile`]). Looked up as for every returner (nested
//! `pushover: {...}`, `alternative.pushover.*` with `--return_config`, `--return_kwargs`).
//! Ours: `pushover.api_url` (default [`DEFAULT_API_URL`]).
//!
//! Pushover's rules are checked here, once, so a config it would refuse is an error when the
//! returner is opened: `priority` is a number from -2 to 2; the emergency priority 2 needs
//! `retry` (at least 30 seconds) and `expire` (at most 10800); a `title` is at most 250
//! characters (a longer one is cut, and says so).

use serde_json::json;

use crate::notify;
use crate::options::{opt_set, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_API_URL: &str = "https://api.pushover.net";
/// Pushover's rules (<https://pushover.net/api>).
pub const MAX_TITLE_BYTES: usize = 250;
pub const MIN_RETRY_SECS: u32 = 30;
pub const MAX_EXPIRE_SECS: u32 = 10_800;

const ATTRS: &[&str] = &["user", "token", "title", "device", "priority", "expire", "retry", "sound", "api_version", "profile", "api_url"];
/// What a profile may set (Salt's `profile_attrs`).
const PROFILE_ATTRS: &[&str] = &["user", "device", "token", "priority", "title", "api_version", "expire", "retry", "sound"];

#[derive(Debug, Clone)]
pub struct PushoverConfig {
    /// The user or group key the messages go to.
    pub user: String,
    /// The application's token: never shown.
    pub token: Secret,
    pub title: Option<String>,
    pub device: Option<String>,
    /// Sent only when set (Pushover's default is 0).
    pub priority: Option<i8>,
    pub expire: Option<u32>,
    pub retry: Option<u32>,
    pub sound: Option<String>,
    /// `<api_url>/<api_version>/`: where the endpoints are.
    pub base: reqwest::Url,
}

impl PushoverConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<PushoverConfig> {
        let mut options = lookup.options(super::NAME, ATTRS, &[("api_version", json!("1"))]);
        lookup.apply_profile(super::NAME, &mut options, "profile", PROFILE_ATTRS);
        let invalid = |why: String| ReturnerError::Invalid(why);
        // Salt raised "Pushover user key is unavailable." when the message was due.
        let required =
            |key: &str| opt_set(&options, key).ok_or_else(|| invalid(format!("pushover.{key} is not set: the pushover returner needs it")));
        let user = required("user")?;
        let token = Secret::new(required("token")?);
        let number = |key: &str| -> Result<Option<i64>> {
            opt_set(&options, key)
                .map(|text| text.trim().parse::<i64>().map_err(|_| invalid(format!("pushover.{key} must be a whole number, not {text:?}"))))
                .transpose()
        };
        let priority = match number("priority")? {
            None => None,
            Some(p @ -2..=2) => Some(p as i8),
            Some(p) => return Err(invalid(format!("pushover.priority must be -2, -1, 0, 1 or 2, not {p}"))),
        };
        let seconds = |key: &str| -> Result<Option<u32>> {
            number(key)?
                .map(|n| u32::try_from(n).map_err(|_| invalid(format!("pushover.{key} must be a number of seconds, not {n}"))))
                .transpose()
        };
        let (retry, expire) = (seconds("retry")?, seconds("expire")?);
        if priority == Some(2) && (retry.is_none() || expire.is_none()) {
            return Err(invalid("pushover.priority 2 (emergency) needs pushover.retry and pushover.expire".into()));
        }
        if retry.is_some_and(|r| r < MIN_RETRY_SECS) {
            return Err(invalid(format!("pushover.retry must be at least {MIN_RETRY_SECS} seconds (Pushover's rule)")));
        }
        if expire.is_some_and(|e| e == 0 || e > MAX_EXPIRE_SECS) {
            return Err(invalid(format!("pushover.expire must be from 1 to {MAX_EXPIRE_SECS} seconds (Pushover's rule)")));
        }
        let title = opt_set(&options, "title").map(|t| {
            let cut = notify::cut(&t, MAX_TITLE_BYTES);
            if cut.len() < t.len() {
                tracing::warn!("pushover.title is longer than Pushover's 250 characters: it is cut");
            }
            cut.into_owned()
        });
        let api_version = opt_set(&options, "api_version").unwrap_or_else(|| "1".into());
        if !api_version.chars().all(|c| c.is_ascii_digit()) || api_version.is_empty() {
            return Err(invalid(format!("pushover.api_version must be a number (1), not {api_version:?}")));
        }
        let api_url =
            crate::http::base_url(super::NAME, "api_url", &opt_set(&options, "api_url").unwrap_or_else(|| DEFAULT_API_URL.into()))?;
        let base = api_url.join(&format!("{api_version}/")).map_err(|e| invalid(format!("pushover.api_url: {e}")))?;
        Ok(PushoverConfig {
            user,
            token,
            title,
            device: opt_set(&options, "device"),
            priority,
            expire,
            retry,
            sound: opt_set(&options, "sound"),
            base,
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

    fn config(v: Value) -> Result<PushoverConfig> {
        PushoverConfig::from_lookup(&Lookup::new(&map(v)))
    }

    #[test]
    fn salts_names_a_profile_and_only_what_is_set() {
        let c = config(json!({
            "pushover": {"user": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "profile": "pushover_profile", "priority": "None"},
            "pushover_profile": {"pushover.token": "abAHuZyCLtdH8P4zhmFZmgUHUsv1ei8"},
        }))
        .unwrap();
        assert_eq!((c.user.as_str(), c.token.expose()), ("uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "abAHuZyCLtdH8P4zhmFZmgUHUsv1ei8"));
        assert_eq!((c.title, c.device, c.priority, c.expire, c.retry, c.sound), (None, None, None, None, None, None));
        assert_eq!(c.base.as_str(), "https://api.pushover.net/1/");
        let c = config(json!({"pushover.user": "u", "pushover.token": "t", "pushover.priority": "2", "pushover.retry": 60,
                              "pushover.expire": "3600", "pushover.sound": "siren", "pushover.api_url": "http://127.0.0.1:9/po"}))
        .unwrap();
        assert_eq!((c.priority, c.retry, c.expire, c.sound.as_deref()), (Some(2), Some(60), Some(3600), Some("siren")));
        assert_eq!(c.base.as_str(), "http://127.0.0.1:9/po/1/");
        assert!(!format!("{c:?}").contains("abAHuZ"));
    }

    #[test]
    fn pushovers_rules_are_config_errors() {
        for (v, says) in [
            (json!({"pushover.token": "t"}), "pushover.user is not set"),
            (json!({"pushover.user": "u"}), "pushover.token is not set"),
            (json!({"pushover.user": "u", "pushover.token": "t", "pushover.priority": "high"}), "whole number"),
            (json!({"pushover.user": "u", "pushover.token": "t", "pushover.priority": 3}), "-2, -1, 0, 1 or 2"),
            (
                json!({"pushover.user": "u", "pushover.token": "t", "pushover.priority": 2, "pushover.retry": 60}),
                "needs pushover.retry and pushover.expire",
            ),
            (
                json!({"pushover.user": "u", "pushover.token": "t", "pushover.priority": 2, "pushover.retry": 5, "pushover.expire": 60}),
                "at least 30",
            ),
            (
                json!({"pushover.user": "u", "pushover.token": "t", "pushover.priority": 2, "pushover.retry": 30, "pushover.expire": 86400}),
                "1 to 10800",
            ),
            (json!({"pushover.user": "u", "pushover.token": "t", "pushover.api_version": "v1"}), "api_version"),
        ] {
            let err = config(v.clone()).unwrap_err().to_string();
            assert!(err.contains(says), "{v}: {err}");
        }
    }

    #[test]
    fn a_long_title_is_cut_and_says_so() {
        let c = config(json!({"pushover.user": "u", "pushover.token": "t", "pushover.title": "t".repeat(300)})).unwrap();
        let title = c.title.unwrap();
        assert!(title.len() <= MAX_TITLE_BYTES && title.contains("[cut: "), "{title}");
    }
}
