//! `telegram`: each return as a message to a Telegram chat (Salt's
//! `salt/returners/telegram_return.py` with `salt/modules/telegram.py`): `POST
//! <api_url>/bot<token>/sendMessage` with the form fields `chat_id`, `text` (and
//! `message_thread_id` when `telegram.thread_id` is set), the text Salt's: `id`, `function`,
//! `function args`, `jid`, `return` lines, values as Python's `str()` shows them. Salt's
//! call: `returner`.
//!
//! Where we differ from Salt, on purpose:
//! - Delivery goes through the spool: a Bot API that cannot be reached, answers 5xx, or 429
//!   (`Too Many Requests`, waiting the `Retry-After` header or the answer's
//!   `parameters.retry_after`, whichever it gives) is tried again later and nothing is lost; a
//!   message refused for good (400 `Bad Request: chat not found`) goes to the dead-letter file
//!   with Telegram's words. A 401 (a wrong token) is retried: fix the token and the returns
//!   arrive. Salt logged a failure at debug level and dropped the return.
//! - A text over Telegram's 4096 characters is cut, with a last line saying so (Salt's
//!   request was refused: `Bad Request: message is too long`, and the return was lost).
//! - The token is in the URL's path: no error or log line shows a URL (they name the server).
//! - A missing `chat_id` or `token` is an error when the returner is opened (Salt logged it
//!   and sent the request anyway). `telegram.api_url` is ours (default
//!   `https://api.telegram.org`).
//! - The same return handed over twice (a retried batch) is sent once (see `crate::delivered`).
//! - [`Sink::check`] asks `getMe`, so a wrong token is one line at start-up.

pub mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::TelegramConfig;

use self::client::Client;
use crate::delivered::Delivered;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Load, Rejection, Result, Sink};

pub const NAME: &str = "telegram";

/// Salt's telegram calls: returns only.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Telegram::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Telegram {
    client: Client,
    delivered: Delivered,
}

impl Telegram {
    /// Opens the returner with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Telegram> {
        Self::open_with(TelegramConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: TelegramConfig) -> Result<Telegram> {
        Ok(Telegram { client: Client::new(config)?, delivered: Delivered::default() })
    }
}

#[async_trait]
impl Sink for Telegram {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// One message per return, in order (Telegram takes about one message a second in a
    /// chat: a burst is answered 429, and the spool waits as asked).
    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = self.delivered.prepare(rets, |record| Ok(encode::text(&record.full)));
        self.delivered.send_each(&rows, |body| self.client.send(body), &mut rejected).await?;
        Ok(rejected)
    }

    async fn check(&self) -> Result<()> {
        self.client.check().await
    }
}
