//! `slack`: each return as a message in a Slack channel through the Web API's
//! `chat.postMessage` (Salt's `salt/returners/slack_returner.py` and `salt/utils/slack.py`),
//! `returner` only (Salt's has no `event_return`).
//!
//! Salt's message, see [`encode`]; its options in [`config`]; Slack's answers in [`client`].
//!
//! Where we differ from Salt, on purpose:
//! - `username` and `as_user` are sent when set (Salt sent nothing at all without them, and
//!   nothing with `as_user: false`); `changes` with `only_show_failed` is a clear error at
//!   start-up (Salt logged it and dropped each return).
//! - `changes` and `only_show_failed` keep the states as a mapping (Salt 3007 built a set of
//!   pairs, which fails on every state return).
//! - Slack's answer is read: a refused message goes to the dead-letter file with Slack's error
//!   code, a rate limit or Slack's own trouble is retried after `Retry-After`, a refused token
//!   keeps the returns in the spool (Salt logged the answer and dropped the return).
//! - A text past Slack's 40,000 characters is cut, saying so (Slack truncates it silently).
//! - `api_url` (ours) points the store at another base URL than `https://slack.com`.
//! - A return delivered once is not sent again ([`crate::delivered`]).

pub mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::SlackConfig;

use self::client::Client;
use crate::delivered::Delivered;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Load, Rejection, Result, Sink};

pub const NAME: &str = "slack";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Slack::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Slack {
    config: SlackConfig,
    client: Client,
    delivered: Delivered,
}

impl Slack {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Slack> {
        Self::open_with(SlackConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: SlackConfig) -> Result<Slack> {
        Ok(Slack { client: Client::new(&config)?, config, delivered: Delivered::default() })
    }
}

#[async_trait]
impl Sink for Slack {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Whether Slack takes the token (`auth.test`).
    async fn check(&self) -> Result<()> {
        self.client.call("auth.test", String::new()).await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) =
            self.delivered.prepare(rets, |record| Ok(encode::body(&encode::text(record, &self.config), &self.config)));
        self.delivered.send_each(&rows, |body| self.client.call("chat.postMessage", body.to_string()), &mut rejected).await?;
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }
}
