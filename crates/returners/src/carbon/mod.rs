//! `carbon`: the numbers of returns and events as Graphite metrics (Salt's
//! `salt/returners/carbon_return.py`, 3007 core), sent to carbon over TCP.
//!
//! As Salt: the options (see [`config`]), the metric names (`metric_base_pattern`, then the
//! return walked to its numbers, see [`encode`]), the plaintext and pickle protocols,
//! `skip_on_error`, and `event_return` (the numbers of each event's `data`, under its tag).
//!
//! Where we differ from Salt, on purpose:
//! - Text mode sends what Salt's documentation describes: Salt 3007's sends nothing on Python 3
//!   (it hands the socket a `str`).
//! - `metric_base_pattern` is applied as documented; Salt 3007 reads it but never uses it.
//! - A datapoint's time is its job's (the jid's), an event's its `_stamp`; Salt used the moment
//!   of sending. A return delivered late by the spool lands at its job's time, and one delivered
//!   twice writes the same datapoints.
//! - A batch of returns is one connection (pickle messages of up to 1 MB each); Salt opened one
//!   per return. The batch counts as delivered once carbon has read all of it.
//! - Whitespace and control characters in a key, list item or tag become `_` and `/` becomes
//!   `.` (Salt's line was dropped by carbon, or wrote the same file under a name graphite cannot
//!   query); NaN and infinity are not numbers; a metric name longer than 4096 bytes is not sent.
//! - A return with a value that is not a number (without `skip_on_error`) is refused for good,
//!   and goes to the spool's dead-letter file saying which value; Salt's raised and lost it.
//! - `carbon.host` unset is an error when the returner opens; Salt logged and dropped each
//!   return. `carbon.port` defaults to 2003 (2004 in pickle mode); Salt's had no default.

mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::{CarbonConfig, Mode};

use crate::batch::prepare_all;
use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, Load, Rejection, Result, Sink};
use client::Client;

pub const NAME: &str = "carbon";

/// Salt's carbon calls.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Carbon::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Carbon {
    client: Client,
}

impl Carbon {
    /// Opens the returner with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Carbon> {
        Ok(Self::open_with(CarbonConfig::from_lookup(lookup)?))
    }

    pub fn open_with(config: CarbonConfig) -> Carbon {
        Carbon { client: Client::new(config) }
    }

    pub fn config(&self) -> &CarbonConfig {
        self.client.config()
    }
}

#[async_trait]
impl Sink for Carbon {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn check(&self) -> Result<()> {
        self.client.ping().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let config = self.config();
        let (rows, rejected) = prepare_all(rets, |ret| encode::return_metrics(ret, &config.metric_base_pattern, config.skip_on_error));
        let metrics: Vec<encode::Metric> = rows.into_iter().flat_map(|r| r.row).collect();
        self.client.send(&encode::payload(config.mode, &metrics)).await?;
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let (rows, rejected) = prepare_all(events, |event| encode::event_metrics(event).map(Some));
        let metrics: Vec<encode::Metric> = rows.into_iter().flat_map(|r| r.row).collect();
        self.client.send(&encode::payload(self.config().mode, &metrics)).await?;
        Ok(rejected)
    }
}
