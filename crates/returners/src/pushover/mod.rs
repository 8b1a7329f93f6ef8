//! `pushover`: each return as a Pushover notification (Salt's
//! `salt/returners/pushover_returner.py` with `salt/utils/pushover.py`, now saltext-pushover):
//! `POST <api_url>/1/messages.json` with the form fields `token`, `user`, `message` (Salt's
//! text: `id`, `function`, `function args`, `jid`, `return` lines, the `return` as
//! `pprint.pformat` shows it) and the options that are set: `title`, `device`, `sound`,
//! `priority`, `expire`, `retry`. Salt's call: `returner`.
//!
//! Where we differ from Salt, on purpose:
//! - Only the options that are set are sent, `priority`, `expire` and `retry` as numbers
//!   (Salt 3007 sent unset ones as the text `None`; saltext-pushover 2.0.0 with Salt's default
//!   `priority: "0"` failed its own check and sent nothing).
//! - Pushover's rules are config errors when the returner is opened: `priority` from -2 to 2,
//!   the emergency priority 2 with `retry` (at least 30 s) and `expire` (at most 10800 s), a
//!   `title` of at most 250 characters (cut, saying so). Salt let Pushover refuse each message.
//! - The user is validated once, at start-up ([`Sink::check`]: `users/validate.json`, and
//!   `sounds.json` when a `sound` is set), not before every message as Salt 3007 did (two
//!   requests per return, and a return dropped when the check failed).
//! - A message over Pushover's 1024 characters is cut, with a last line saying so (Salt's was
//!   refused and lost).
//! - Delivery goes through the spool: a Pushover that cannot be reached, answers 5xx, or 429
//!   (the application's monthly quota is spent) is tried again later and nothing is lost; a 4xx
//!   (`user identifier is invalid`) sends the return to the dead-letter file with Pushover's
//!   words. Salt logged the failure at info level.
//! - A profile changes only the options it holds (Salt's set every profile option, a missing
//!   one to None). `pushover.api_url` is ours.
//! - The same return handed over twice (a retried batch) is sent once.

pub mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::PushoverConfig;

use self::client::Client;
use crate::delivered::Delivered;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Load, Rejection, Result, Sink};

pub const NAME: &str = "pushover";

/// Salt's pushover calls: returns only.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Pushover::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Pushover {
    client: Client,
    delivered: Delivered,
}

impl Pushover {
    /// Opens the returner with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Pushover> {
        Self::open_with(PushoverConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: PushoverConfig) -> Result<Pushover> {
        Ok(Pushover { client: Client::new(config)?, delivered: Delivered::default() })
    }
}

#[async_trait]
impl Sink for Pushover {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// One notification per return, in order.
    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = self.delivered.prepare(rets, |record| Ok(encode::message(&record.full)));
        self.delivered.send_each(&rows, |body| self.client.send(body), &mut rejected).await?;
        Ok(rejected)
    }

    async fn check(&self) -> Result<()> {
        self.client.check().await
    }
}
