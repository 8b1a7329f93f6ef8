//! `syslog`: each return as a syslog message (Salt's `salt/returners/syslog_return.py`, 3008
//! core), to the local socket as the C library's `syslog()` sends it, or to a receiver over UDP
//! or TCP.
//!
//! As Salt: the options `level`, `facility`, `tag` and `options` (see [`config`]) and the
//! message, `<PRI>Mmm dd hh:mm:ss TAG: ` then `json.dumps(ret)` (see [`encode`]). No
//! `event_return` (Salt's has none).
//!
//! Where we differ from Salt, on purpose:
//! - UDP and TCP (octet-counted frames, RFC 6587) to a receiver elsewhere, and another socket
//!   than `/dev/log`: `syslog.transport`, `.host`, `.port`, `.socket` are ours.
//! - A return whose message would pass `syslog.max_message_size` (8096 bytes, rsyslog's default
//!   limit, where it cuts) is sent as marked parts that can be put back together
//!   ([`encode`] says how); Salt sent one message, which rsyslog cut.
//! - Bad options are an error when the returner opens; Salt logged one and dropped each return.
//! - The returns of a batch go over one connection (TCP); a return this process delivered
//!   already is not sent again when the spool retries a batch, or when it comes twice.
//! - Settings under `kwargs`/`ret_kwargs` are redacted from the message.

mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::{SyslogConfig, Target};

use crate::batch::prepare_all;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Load, Rejection, Result, Sink};
use client::Client;

pub const NAME: &str = "syslog";

/// Salt's syslog calls: returns only.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Syslog::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Syslog {
    client: Client,
}

impl Syslog {
    /// Opens the returner with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Syslog> {
        Ok(Self::open_with(SyslogConfig::from_lookup(lookup)?))
    }

    pub fn open_with(config: SyslogConfig) -> Syslog {
        Syslog { client: Client::new(config) }
    }

    pub fn config(&self) -> &SyslogConfig {
        self.client.config()
    }
}

#[async_trait]
impl Sink for Syslog {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn check(&self) -> Result<()> {
        self.client.ping().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let config = self.config();
        let pid = config.with_pid.then(std::process::id);
        let header = encode::header(config.pri, chrono::Local::now(), &config.tag, pid);
        let (rows, mut rejected) = prepare_all(rets, |ret| encode::prepare_return(ret, &header, config.max_message_size));
        self.client.send(&rows, &mut rejected).await?;
        Ok(rejected)
    }
}
