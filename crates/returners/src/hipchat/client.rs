//! HipChat's room message API over HTTP, v1 or v2. v1 puts the key in the query string, so
//! URLs stay in here: errors name the server only and are scrubbed of the key.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::config::{ApiVersion, HipchatConfig};
use super::encode::{self, Message};
use super::NAME;
use crate::http;
use crate::{Result, ReturnerError};

const TIMEOUT: Duration = Duration::from_secs(30);
/// HipChat answers a message in a few bytes (v1) or none (v2: 204).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct Client {
    http: reqwest::Client,
    config: HipchatConfig,
    /// The message endpoint (v1: with the key in its query: never shown).
    endpoint: reqwest::Url,
    /// The server, as errors name it.
    at: String,
}

impl Client {
    pub fn new(config: HipchatConfig) -> Result<Client> {
        let mut endpoint = encode::endpoint(&config.api_url, &config);
        if config.api_version == ApiVersion::V1 {
            endpoint.query_pairs_mut().append_pair("format", "json").append_pair("auth_token", config.api_key.expose());
        }
        Ok(Client { http: http::client(TIMEOUT)?, at: http::where_(&config.api_url), endpoint, config })
    }

    /// The request body of `message`: v1's form or v2's JSON.
    pub fn body(&self, message: &Message) -> String {
        match self.config.api_version {
            ApiVersion::V1 => encode::v1_form(&self.config, message),
            ApiVersion::V2 => encode::v2_body(&self.config, message),
        }
    }

    /// Sends a [`Client::body`].
    pub async fn send(&self, body: &str) -> Result<()> {
        let key = &self.config.api_key;
        let request = match self.config.api_version {
            ApiVersion::V1 => self.http.post(self.endpoint.clone()).header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
            ApiVersion::V2 => self
                .http
                .post(self.endpoint.clone())
                .header(AUTHORIZATION, format!("Bearer {}", key.expose()))
                .header(CONTENT_TYPE, "application/json"),
        }
        .body(body.to_string());
        let response = request.send().await.map_err(|e| http::unreachable(NAME, &self.at, &e.without_url(), key))?;
        if !response.status().is_success() {
            return Err(http::scrubbed(http::refusal(NAME, &self.at, response).await, key));
        }
        let v1 = self.config.api_version == ApiVersion::V1;
        let answer = http::body(NAME, response, MAX_ANSWER_BYTES).await.map_err(|e| http::scrubbed(e, key))?;
        if v1 {
            encode::v1_sent(&answer)
                .map_err(|words| ReturnerError::Rejected(key.scrub(&format!("{NAME}: {} answered: {words}", self.at))))?;
        }
        Ok(())
    }
}
