//! Talking to the HTTP Event Collector: one POST of many events, `Authorization: Splunk
//! <token>`, and HEC's answers read as it means them:
//! - 2xx: every event indexed;
//! - 400 with `invalid-event-number` N (a blank event, a wrong index...): the events before N
//!   are indexed, N is refused for good with HEC's words, the ones after N were not read;
//! - 400 about the token's settings (a data channel or acknowledgement required, codes 10, 11,
//!   14, 16): the store is unusable until its config changes, retried meanwhile;
//! - 401/403 (a missing, wrong or disabled token), 5xx (code 9, server busy), 429: retried,
//!   after `Retry-After` when HEC says one; any other 4xx (413: too large) refuses the request.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;

use super::config::SplunkConfig;
use crate::http;
use crate::secret::Secret;
use crate::{Result, ReturnerError};

const STORE: &str = super::NAME;
/// A request's deadline: a batch of a megabyte, or a 10 MB return alone, to a busy indexer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a 400's answer is read: HEC's are a line of JSON.
const ANSWER_BYTES: usize = 64 * 1024;

/// What HEC did with a request's events.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Indexed every one.
    All,
    /// Indexed those before `index`, refused that one for good (HEC's words), read none after.
    RefusedAt { index: usize, words: String },
}

pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    /// `scheme://indexer:port`, how errors name the collector.
    at: String,
    token: Secret,
}

impl Client {
    pub fn new(config: &SplunkConfig) -> Result<Client> {
        let mut builder = http::builder(REQUEST_TIMEOUT);
        if !config.verify_ssl {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        Ok(Client { http: http::build(builder)?, url: config.url.clone(), at: http::where_(&config.url), token: config.token.clone() })
    }

    /// Sends `body` (events, one a line).
    pub async fn send(&self, body: Vec<u8>) -> Result<Sent> {
        let response = self
            .http
            .post(self.url.clone())
            .header(AUTHORIZATION, format!("Splunk {}", self.token.expose()))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| http::unreachable(STORE, &self.at, &e, &self.token))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Sent::All);
        }
        if status != StatusCode::BAD_REQUEST {
            return Err(http::refusal(STORE, &self.at, response).await);
        }
        let answer = http::body_within(STORE, response, ANSWER_BYTES).await?.unwrap_or_default();
        let hec: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        let text = hec
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&answer).trim().to_string());
        let code = hec.get("code").and_then(Value::as_i64);
        let words = match code {
            Some(code) => format!("{text} (HEC code {code})"),
            None => text,
        };
        match (code, hec.get("invalid-event-number").and_then(Value::as_u64)) {
            (Some(10 | 11 | 14 | 16), _) => Err(ReturnerError::Unavailable(format!(
                "{STORE}: {} refused the request: {words}; the token's settings need a change (indexer acknowledgement or query-string tokens are not used here)",
                self.at
            ))),
            (_, Some(index)) => Ok(Sent::RefusedAt { index: index as usize, words }),
            _ => Err(ReturnerError::Rejected(format!("{STORE}: {} answered 400 Bad Request: {words}", self.at))),
        }
    }

    /// Whether the collector takes the token: an empty request, which HEC answers "No data"
    /// (code 5) once the token is good, indexing nothing.
    pub async fn check(&self) -> Result<()> {
        match self.send(Vec::new()).await {
            Ok(_) => Ok(()),
            Err(ReturnerError::Rejected(words)) if words.contains("HEC code 5") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
