//! `splunk`: returns and events to Splunk's HTTP Event Collector (Salt's
//! `salt/returners/splunk.py`, saltext-splunk 1.0.0), `returner` and `event_return`.
//!
//! Salt's event, see [`encode`]: `POST <scheme>://<indexer>:<port>/services/collector/event`,
//! `Authorization: Splunk <token>`, `{"time", "index", "sourcetype", "event": <the return>,
//! "host"}`. Options in [`config`].
//!
//! Where we differ from Salt, on purpose:
//! - Many events go in one request (HEC reads concatenated JSON objects), up to
//!   `batch_bytes`; Salt sent one request per return or event.
//! - The scheme and port are options (Salt hard-codes `https` and 8088, still the defaults).
//! - HEC's refusals are read (Salt ignored the answer): a refused event goes to the dead-letter
//!   file with HEC's words, the others of its request are delivered; a wrong token, a busy or
//!   unreachable collector keep the records in the spool (after `Retry-After` when HEC says one).
//! - `index` and `sourcetype` are left out when unset (Salt sent `null`); a content type
//!   `application/json` is sent (Salt sent none).
//! - The token is never logged (Salt logged its options, token included, at info level).
//! - A return already delivered (the same jid and minion) is not sent again: see
//!   [`crate::delivered`].

pub mod client;
pub mod config;
pub mod encode;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::FutureExt;

pub use config::SplunkConfig;

use self::client::{Client, Sent};
use self::encode::{body, HecEvent};
use crate::batch::{by_size, prepare_all, Indexed};
use crate::delivered::Delivered;
use crate::options::Lookup;
use crate::record::ReturnRecord;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "splunk";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Splunk::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Splunk {
    config: SplunkConfig,
    client: Client,
    delivered: Delivered,
}

/// `int(time.time())`.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl Splunk {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Splunk> {
        Self::open_with(SplunkConfig::from_opts(lookup.opts)?)
    }

    pub fn open_with(config: SplunkConfig) -> Result<Splunk> {
        Ok(Splunk { client: Client::new(&config)?, config, delivered: Delivered::default() })
    }

    /// Sends `rows` in requests of at most `batch_bytes`; the rows HEC refuses go to
    /// `rejected`, the ones it indexed are remembered as delivered.
    async fn send_all(&self, rows: &[Indexed<HecEvent>], rejected: &mut Vec<Rejection>) -> Result<()> {
        for run in by_size(rows, self.config.batch_bytes, |r| r.row.text.len() + 1) {
            let mut rest = run;
            while !rest.is_empty() {
                match self.client.send(body(rest.iter().map(|r| &r.row))).await {
                    Ok(Sent::All) => {
                        self.remember(rest);
                        break;
                    }
                    Ok(Sent::RefusedAt { index, words }) => {
                        let Some(bad) = rest.get(index) else {
                            return Err(ReturnerError::Unavailable(format!(
                                "{NAME}: the collector refused event {index} of a request of {}",
                                rest.len()
                            )));
                        };
                        self.remember(&rest[..index]);
                        rejected
                            .push(Rejection { index: bad.index, reason: format!("{}: splunk refused it: {words}", bad.row.describe()) });
                        rest = &rest[index + 1..];
                    }
                    // Refused whole, nothing indexed (413, a body HEC cannot read): each alone.
                    Err(ReturnerError::Rejected(why)) if rest.len() == 1 => {
                        rejected.push(Rejection { index: rest[0].index, reason: format!("{}: {why}", rest[0].row.describe()) });
                        break;
                    }
                    Err(ReturnerError::Rejected(_)) => {
                        for row in rest {
                            Box::pin(self.send_all(std::slice::from_ref(row), rejected)).await?;
                        }
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn remember(&self, rows: &[Indexed<HecEvent>]) {
        for (jid, id) in rows.iter().filter_map(|r| r.row.key.as_ref()) {
            self.delivered.insert(jid, id);
        }
    }
}

#[async_trait]
impl Sink for Splunk {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Whether the collector answers and takes the token (nothing is indexed).
    async fn check(&self) -> Result<()> {
        self.client.check().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let time = now();
        let mut in_batch = HashSet::new();
        let (rows, mut rejected) = prepare_all(rets, |ret| {
            let Some(record) = ReturnRecord::parse(ret)? else { return Ok(None) };
            let key = (record.jid.clone(), record.id.to_string());
            if self.delivered.contains(&key.0, &key.1) || !in_batch.insert(key) {
                return Ok(None);
            }
            Ok(Some(HecEvent::of_return(&record, time, &self.config)))
        });
        self.send_all(&rows, &mut rejected).await?;
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let time = now();
        let (rows, mut rejected) = prepare_all(events, |event| Ok(Some(HecEvent::of_event(event, time, &self.config))));
        self.send_all(&rows, &mut rejected).await?;
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }
}
