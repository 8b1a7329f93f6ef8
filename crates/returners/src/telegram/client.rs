//! The Bot API over HTTP: `sendMessage` for a return, `getMe` for the start-up check. The
//! token is in every URL's path, so URLs stay in here: errors name the server only
//! ([`crate::http::where_`]) and are scrubbed of the token.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::config::TelegramConfig;
use super::encode;
use super::NAME;
use crate::http;
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// Salt's requests waited 120 s; an answer takes well under a second.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The Bot API answers a message with the message (its text included: up to 4096 characters).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

pub struct Client {
    http: reqwest::Client,
    /// `<api_url>bot<token>/`: holds the token, never shown.
    bot_url: Secret,
    /// The server, as errors name it.
    at: String,
    token: Secret,
    chat_id: String,
    thread_id: Option<String>,
}

impl Client {
    pub fn new(config: TelegramConfig) -> Result<Client> {
        let at = http::where_(&config.api_url);
        let bot_url = Secret::new(format!("{}bot{}/", config.api_url, config.token.expose()));
        Ok(Client { http: http::client(TIMEOUT)?, bot_url, at, token: config.token, chat_id: config.chat_id, thread_id: config.thread_id })
    }

    /// Sends `text` to the chat.
    pub async fn send(&self, text: &str) -> Result<()> {
        let body = encode::form(&self.chat_id, self.thread_id.as_deref(), text);
        let request = self
            .http
            .post(format!("{}sendMessage", self.bot_url.expose()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.call(request).await
    }

    /// `getMe`: whether the token is the bot's (a wrong one is a 401).
    pub async fn check(&self) -> Result<()> {
        self.call(self.http.get(format!("{}getMe", self.bot_url.expose()))).await
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<()> {
        let response = request.send().await.map_err(|e| http::unreachable(NAME, &self.at, &e.without_url(), &self.token))?;
        if !response.status().is_success() {
            let refusal = http::refusal_waiting(NAME, &self.at, response, encode::retry_after).await;
            return Err(http::scrubbed(refusal, &self.token));
        }
        let answer = http::body(NAME, response, MAX_ANSWER_BYTES).await.map_err(|e| http::scrubbed(e, &self.token))?;
        encode::sent(&answer).map_err(|words| ReturnerError::Rejected(self.token.scrub(&format!("{NAME}: {} answered: {words}", self.at))))
    }
}
