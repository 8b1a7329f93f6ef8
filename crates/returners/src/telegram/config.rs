//! The `telegram` options, with Salt's names: `telegram.chat_id` and `telegram.token`
//! (required), `telegram.thread_id` (optional: a topic of a forum chat, Salt 3007), looked up
//! as for every returner (nested `telegram: {...}`, `alternative.telegram.*` with
//! `--return_config`, `--return_kwargs`). Ours: `telegram.api_url` (default
//! [`DEFAULT_API_URL`]), so the same code talks to a Bot API server of one's own, or a test's
//! stand-in.

use serde_json::json;

use crate::options::{opt_set, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// A chat's number (`-1001234567890`) or a channel's `@name`.
    pub chat_id: String,
    pub thread_id: Option<String>,
    /// The bot's token. It goes in the URL's path (`/bot<token>/sendMessage`), so no URL is
    /// ever shown: errors name the server only.
    pub token: Secret,
    pub api_url: reqwest::Url,
}

impl TelegramConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<TelegramConfig> {
        let options = lookup.options(super::NAME, &["chat_id", "token", "thread_id", "api_url"], &[("api_url", json!(DEFAULT_API_URL))]);
        // Salt logged "telegram.chat_id not defined in salt config" and sent a request anyway.
        let required = |key: &str| {
            opt_set(&options, key)
                .ok_or_else(|| ReturnerError::Invalid(format!("telegram.{key} is not set: the telegram returner needs it")))
        };
        let chat_id = required("chat_id")?;
        let token = Secret::new(required("token")?);
        let api_url =
            crate::http::base_url(super::NAME, "api_url", &opt_set(&options, "api_url").unwrap_or_else(|| DEFAULT_API_URL.into()))?;
        Ok(TelegramConfig { chat_id, thread_id: opt_set(&options, "thread_id"), token, api_url })
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
    fn salts_names_and_our_api_url() {
        let o = map(json!({"telegram": {"chat_id": -1001234567890i64, "token": "123:abc"}}));
        let c = TelegramConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.chat_id.as_str(), c.token.expose(), c.api_url.as_str()), ("-1001234567890", "123:abc", "https://api.telegram.org/"));
        assert_eq!(c.thread_id, None);
        assert!(!format!("{c:?}").contains("123:abc"));
        let o = map(json!({"telegram.chat_id": "@ops", "telegram.token": "1:x", "telegram.thread_id": 7,
                           "telegram.api_url": "http://127.0.0.1:8081"}));
        let c = TelegramConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.chat_id.as_str(), c.thread_id.as_deref(), c.api_url.as_str()), ("@ops", Some("7"), "http://127.0.0.1:8081/"));
    }

    #[test]
    fn a_missing_chat_or_token_is_named() {
        let err = TelegramConfig::from_lookup(&Lookup::new(&map(json!({"telegram.token": "1:x"})))).unwrap_err();
        assert!(err.to_string().contains("telegram.chat_id is not set"), "{err}");
        let err = TelegramConfig::from_lookup(&Lookup::new(&map(json!({"telegram.chat_id": "1"})))).unwrap_err();
        assert!(err.to_string().contains("telegram.token is not set"), "{err}");
    }
}
