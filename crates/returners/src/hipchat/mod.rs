//! `hipchat`: each return as a message to a HipChat room (Salt's
//! `salt/returners/hipchat_return.py`, removed in Salt 3000 with the service): v1 `POST
//! <api_url>/v1/rooms/message?format=json&auth_token=<key>` with the form fields `room_id`,
//! `from`, `message`, `message_format=text`, `color`, `notify`; v2 `POST
//! <api_url>/v2/room/<room_id>/notification` with `Authorization: Bearer <key>` and the same
//! fields as JSON. The message is Salt's text (`id`, `function`, `function args`, `jid`,
//! `return` lines, the `return` as `pprint.pformat` shows it), `red` when the return's
//! `retcode` is not 0. Salt's call: `returner`.
//!
//! HipChat's cloud (`api.hipchat.com`, still the default) is gone; configurations that name it
//! keep working against a self-hosted server that speaks the same API, set by `api_url`.
//!
//! Where we differ from Salt, on purpose:
//! - Salt's `event_return` sent each event's data dict where the message text goes (it failed
//!   on the first event); there is none here.
//! - Delivery goes through the spool: a server that cannot be reached, answers 5xx or 429 (v2's
//!   rate limit), or 401/403 (a wrong key; v1's rate limit) is tried again later and nothing is
//!   lost; another 4xx (`Room not found`) sends the return to the dead-letter file with
//!   HipChat's words. Salt logged failures at debug level, and counted v2's success (204) as
//!   a failure.
//! - A message over HipChat's 10,000 characters is cut with a last line saying so (Salt cut it
//!   silently).
//! - The key is in v1's query string: no error or log line shows a URL.
//! - What is missing is an error when the returner is opened; `from_name` is needed for v1
//!   only (v2 takes the sender from the key's label); an unknown `color` is an error.
//! - A profile may set `api_key`, `api_version`, `api_url` and `from_name`, and changes only
//!   what it holds (Salt read `api_version` from the profile's `api_key`, and set the others
//!   it lacked to None). `hipchat.url` is read when `api_url` is not set; a URL with a path
//!   keeps it (Salt's `urljoin` dropped its last part).
//! - The same return handed over twice (a retried batch) is sent once.

pub mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::HipchatConfig;

use self::client::Client;
use crate::delivered::Delivered;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Load, Rejection, Result, Sink};

pub const NAME: &str = "hipchat";

/// Salt's hipchat calls that worked: returns.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Hipchat::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Hipchat {
    client: Client,
    config: HipchatConfig,
    delivered: Delivered,
}

impl Hipchat {
    /// Opens the returner with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Hipchat> {
        Self::open_with(HipchatConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: HipchatConfig) -> Result<Hipchat> {
        Ok(Hipchat { client: Client::new(config.clone())?, config, delivered: Delivered::default() })
    }
}

#[async_trait]
impl Sink for Hipchat {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// One room message per return, in order.
    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) =
            self.delivered.prepare(rets, |record| Ok(self.client.body(&encode::message(&record.full, &self.config))));
        self.delivered.send_each(&rows, |body| self.client.send(body), &mut rejected).await?;
        Ok(rejected)
    }
}
