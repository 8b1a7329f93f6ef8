//! `mattermost`: each return (and event) as a message through a Mattermost incoming webhook
//! (Salt's `salt/returners/mattermost_returner.py` and `salt/utils/mattermost.py`,
//! saltext-mattermost 1.0.0), `returner` and `event_return`.
//!
//! Salt's message and body, see [`encode`]; its options in [`config`].
//!
//! Where we differ from Salt, on purpose:
//! - The body is URL-encoded as its form content type says (Salt's was not, see [`encode`]).
//! - The answer is read: a 2xx is delivered; a 429 or 5xx is retried (after `Retry-After`),
//!   any other refusal (an unknown hook, a missing channel...) goes to the dead-letter file
//!   with Mattermost's words (Salt logged it and went on).
//! - A text past Mattermost's post size is cut, saying so (Mattermost split it into posts).
//! - The hook is a secret: errors name the server only (Salt logged its options).
//! - A return delivered once is not sent again ([`crate::delivered`]).

pub mod config;
pub mod encode;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::MattermostConfig;

use crate::batch::prepare_all;
use crate::delivered::{Delivered, Outgoing};
use crate::http;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "mattermost";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Mattermost::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Mattermost {
    config: MattermostConfig,
    url: reqwest::Url,
    http: reqwest::Client,
    delivered: Delivered,
}

impl Mattermost {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Mattermost> {
        Self::open_with(MattermostConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: MattermostConfig) -> Result<Mattermost> {
        let url = reqwest::Url::parse(config.url.expose()).map_err(|_| ReturnerError::Invalid(format!("{NAME}: the hook makes no URL")))?;
        Ok(Mattermost { url, http: http::client(REQUEST_TIMEOUT)?, config, delivered: Delivered::default() })
    }

    async fn post(&self, body: &str) -> Result<()> {
        http::post_form(&self.http, NAME, &self.url, &self.config.url, body.to_string()).await
    }
}

#[async_trait]
impl Sink for Mattermost {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = self.delivered.prepare(rets, |r| Ok(encode::body(&encode::return_text(&r.full), &self.config)));
        self.delivered.send_each(&rows, |b| self.post(b), &mut rejected).await?;
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) =
            prepare_all(events, |e| Ok(Some(Outgoing { key: None, body: encode::body(&encode::event_text(e), &self.config) })));
        self.delivered.send_each(&rows, |b| self.post(b), &mut rejected).await?;
        Ok(rejected)
    }
}
