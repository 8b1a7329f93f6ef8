//! Pushover's message API over HTTP: `messages.json` for a return; `users/validate.json` and
//! `sounds.json` for the start-up check. The token goes in the form body (in the query string
//! for `sounds.json`); errors name the server only and are scrubbed of it.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::config::PushoverConfig;
use super::encode;
use super::NAME;
use crate::http;
use crate::{Result, ReturnerError};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Pushover answers in a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct Client {
    http: reqwest::Client,
    config: PushoverConfig,
    /// The server, as errors name it.
    at: String,
}

impl Client {
    pub fn new(config: PushoverConfig) -> Result<Client> {
        Ok(Client { http: http::client(TIMEOUT)?, at: http::where_(&config.base), config })
    }

    fn url(&self, endpoint: &str) -> Result<reqwest::Url> {
        self.config.base.join(endpoint).map_err(|e| ReturnerError::Invalid(format!("{NAME}: {e}")))
    }

    /// Sends `message` with the configured options.
    pub async fn send(&self, message: &str) -> Result<()> {
        let body = encode::form(&self.config, message);
        self.call(self.http.post(self.url("messages.json")?).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)).await?;
        Ok(())
    }

    /// Whether the user (and device) can receive messages from this token, and the sound is
    /// one Pushover has: each a clear error at start-up rather than a refused message later.
    pub async fn check(&self) -> Result<()> {
        let mut fields = vec![("token", self.config.token.expose()), ("user", self.config.user.as_str())];
        if let Some(device) = &self.config.device {
            fields.push(("device", device));
        }
        let validate = self.http.post(self.url("users/validate.json")?).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.call(validate.body(http::form(&fields))).await?;
        if let Some(sound) = &self.config.sound {
            let mut url = self.url("sounds.json")?;
            url.query_pairs_mut().append_pair("token", self.config.token.expose());
            let answer = self.call(self.http.get(url)).await?;
            if !encode::has_sound(&answer, sound) {
                return Err(ReturnerError::Invalid(format!("pushover.sound {sound:?} is not one of Pushover's sounds")));
            }
        }
        Ok(())
    }

    /// Sends `request`; the answer when Pushover took it.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<bytes::Bytes> {
        let token = &self.config.token;
        let response = request.send().await.map_err(|e| http::unreachable(NAME, &self.at, &e.without_url(), token))?;
        if !response.status().is_success() {
            return Err(http::scrubbed(http::refusal(NAME, &self.at, response).await, token));
        }
        let answer = http::body(NAME, response, MAX_ANSWER_BYTES).await.map_err(|e| http::scrubbed(e, token))?;
        encode::taken(&answer).map_err(|words| ReturnerError::Rejected(token.scrub(&format!("{NAME}: {} answered: {words}", self.at))))?;
        Ok(answer)
    }
}
