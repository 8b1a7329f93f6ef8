//! Talking to Slack's Web API: `POST <api_url>api/chat.postMessage` with `Authorization:
//! Bearer <api_key>` and a form body, and Slack's answers as it means them. Slack answers
//! HTTP 200 with `{"ok": false, "error": "<code>"}` for most refusals:
//! - `ratelimited` (or HTTP 429) and Slack's own trouble (`fatal_error`, `internal_error`,
//!   `service_unavailable`, `request_timeout`, HTTP 5xx): retry later, after `Retry-After`;
//! - a token refused (`invalid_auth`, `not_authed`, `token_revoked`, ...): the store is unusable
//!   until its config changes; retried meanwhile, so nothing is lost (as a refused login
//!   everywhere in this crate);
//! - any other code (`channel_not_found`, `not_in_channel`, `is_archived`, `msg_too_long`...):
//!   this message is refused for good, with Slack's code in the dead-letter file.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use super::config::SlackConfig;
use crate::http;
use crate::secret::Secret;
use crate::{Result, ReturnerError};

const STORE: &str = super::NAME;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack's answers are a message echoed back: its text, at most 40,000 characters, and a few
/// fields.
const ANSWER_BYTES: usize = 1024 * 1024;

/// Slack's error codes that mean the token is refused.
const AUTH_ERRORS: [&str; 9] = [
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "team_access_not_granted",
];
/// Slack's error codes that mean Slack's own trouble.
const SERVER_ERRORS: [&str; 5] = ["fatal_error", "internal_error", "service_unavailable", "request_timeout", "ratelimited"];

pub struct Client {
    http: reqwest::Client,
    api_url: reqwest::Url,
    at: String,
    token: Secret,
}

impl Client {
    pub fn new(config: &SlackConfig) -> Result<Client> {
        Ok(Client {
            http: http::client(REQUEST_TIMEOUT)?,
            api_url: config.api_url.clone(),
            at: http::where_(&config.api_url),
            token: config.api_key.clone(),
        })
    }

    /// Calls the Web API method `method` with the form `body`.
    pub async fn call(&self, method: &str, body: String) -> Result<()> {
        let url = self.api_url.join(&format!("api/{method}")).map_err(|e| ReturnerError::Invalid(format!("{STORE}: {e}")))?;
        let response = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| http::unreachable(STORE, &self.at, &e, &self.token))?;
        if !response.status().is_success() {
            return Err(http::refusal(STORE, &self.at, response).await);
        }
        let after = http::retry_after(response.headers(), std::time::SystemTime::now());
        let answer = http::body(STORE, response, ANSWER_BYTES).await?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|_| ReturnerError::Unavailable(format!("{STORE}: {} answered {method} with something other than JSON", self.at)))?;
        if answer.get("ok") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        let error = answer.get("error").and_then(Value::as_str).unwrap_or("an error without a code");
        let message = format!("{STORE}: {} refused {method}: {error}", self.at);
        Err(if SERVER_ERRORS.contains(&error) {
            match after {
                Some(after) => ReturnerError::Throttled { message, after },
                None => ReturnerError::Unavailable(message),
            }
        } else if AUTH_ERRORS.contains(&error) {
            ReturnerError::Unavailable(format!("{message}; check slack.api_key"))
        } else {
            ReturnerError::Rejected(message)
        })
    }
}
