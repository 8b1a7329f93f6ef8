//! `slack_webhook`: each return as attachments posted to a Slack incoming webhook (Salt's
//! `salt/returners/slack_webhook_return.py`), `returner` and `event_return`.
//!
//! Salt's payload, see [`encode`]; its options in [`config`].
//!
//! Where we differ from Salt, on purpose:
//! - `event_return` posts the job returns among the events (`salt/job/<jid>/ret/<id>`,
//!   `saltutil.find_job` left out) and skips the rest; Salt's test of the event read keys most
//!   events lack and failed on them.
//! - The answer is read: a 2xx is delivered; a 429 or 5xx is retried (after `Retry-After`),
//!   any other refusal (`no_service`, `channel_not_found`, `invalid_payload`...) goes to the
//!   dead-letter file with Slack's words (Salt logged it and dropped the return).
//! - `{id}` in a title is the return's minion (Salt used the grains of the process running the
//!   returner: the master's own id on the master); grains other than the host's show empty.
//! - A return's text past 40,000 bytes is cut, saying so.
//! - `api_url` (ours) replaces `https://hooks.slack.com/services/`, the base of `webhook`.
//! - The webhook URL is a secret: errors name the server only.
//! - A return delivered once is not sent again ([`crate::delivered`]).

pub mod config;
pub mod encode;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::Value;

pub use config::SlackWebhookConfig;

use self::encode::{body, payload, Report};
use crate::batch::prepare_all;
use crate::delivered::{Delivered, Outgoing};
use crate::http;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::secret::Secret;
use crate::{Capability, Event, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "slack_webhook";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(SlackWebhook::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct SlackWebhook {
    config: SlackWebhookConfig,
    url: reqwest::Url,
    http: reqwest::Client,
    delivered: Delivered,
}

impl SlackWebhook {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<SlackWebhook> {
        Self::open_with(SlackWebhookConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: SlackWebhookConfig) -> Result<SlackWebhook> {
        let url =
            reqwest::Url::parse(config.url.expose()).map_err(|_| ReturnerError::Invalid(format!("{NAME}: the webhook is not a URL")))?;
        Ok(SlackWebhook { url, http: http::client(REQUEST_TIMEOUT)?, config, delivered: Delivered::default() })
    }

    async fn post(&self, body: &str) -> Result<()> {
        http::post_form(&self.http, NAME, &self.url, &self.config.url, body.to_string()).await
    }

    fn secret(&self) -> &Secret {
        &self.config.url
    }
}

#[async_trait]
impl Sink for SlackWebhook {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) =
            self.delivered.prepare(rets, |r| Ok(body(&payload(&Report { id: r.id, jid: &r.jid, ret: &r.full }, &self.config))));
        self.delivered.send_each(&rows, |b| self.post(b), &mut rejected).await.map_err(|e| scrubbed(e, self.secret()))?;
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(events, |event| {
            let Some(ret) = event.data.as_object() else { return Ok(None) };
            let fun = ret.get("fun").and_then(Value::as_str);
            let (Some(id), Some(jid)) = (ret.get("id").and_then(Value::as_str), ret.get("jid").and_then(Value::as_str)) else {
                return Ok(None);
            };
            if fun.is_none_or(|f| f.contains("saltutil.find_job")) || event.tag.starts_with("salt/auth") || !ret.contains_key("return") {
                return Ok(None);
            }
            Ok(Some(Outgoing { key: None, body: body(&payload(&Report { id, jid, ret }, &self.config)) }))
        });
        self.delivered.send_each(&rows, |b| self.post(b), &mut rejected).await.map_err(|e| scrubbed(e, self.secret()))?;
        Ok(rejected)
    }
}

/// An error without the webhook's URL in it (the answer of a server may quote it).
fn scrubbed(e: ReturnerError, secret: &Secret) -> ReturnerError {
    match e {
        ReturnerError::Unavailable(m) => ReturnerError::Unavailable(secret.scrub(&m)),
        ReturnerError::Rejected(m) => ReturnerError::Rejected(secret.scrub(&m)),
        ReturnerError::Throttled { message, after } => ReturnerError::Throttled { message: secret.scrub(&message), after },
        other => other,
    }
}
