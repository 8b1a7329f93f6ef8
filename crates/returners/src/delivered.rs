//! What a sink that cannot ask its service what it holds (an event collector, a chat, a
//! webhook) remembers so that a return is delivered once: the spool sends a batch again after a
//! failure in its middle, and the same return may come twice (a batch holding it twice, the
//! master passing it again). Keyed by (jid, minion id), as a job cache keeps the first return of
//! a minion for a job; the newest [`REMEMBERED`] keys, in memory (a restart forgets them).

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;

use crate::batch::{prepare_all, Indexed};
use crate::record::{describe, ReturnRecord};
use crate::{Load, Rejection, Result, ReturnerError};

/// How many deliveries are remembered: far more than a spool's batch, few enough to be small.
pub(crate) const REMEMBERED: usize = 16 * 1024;

/// `(jid, minion id)`.
type Key = (String, String);

#[derive(Default)]
pub(crate) struct Delivered {
    /// The keys, and the same in the order they came (the oldest first, to forget).
    keys: Mutex<(HashSet<Key>, VecDeque<Key>)>,
}

impl Delivered {
    /// Whether the return of `id` for `jid` was delivered already.
    pub(crate) fn contains(&self, jid: &str, id: &str) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.0.contains(&(jid.to_string(), id.to_string()))
    }

    /// Remembers that the return of `id` for `jid` was delivered, forgetting the oldest past
    /// [`REMEMBERED`].
    pub(crate) fn insert(&self, jid: &str, id: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *keys;
        let key = (jid.to_string(), id.to_string());
        if set.insert(key.clone()) {
            order.push_back(key);
            if order.len() > REMEMBERED {
                if let Some(oldest) = order.pop_front() {
                    set.remove(&oldest);
                }
            }
        }
    }
}

/// One request to send: its body, and the return it carries (`None` for an event).
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub key: Option<Key>,
    pub body: String,
}

impl Outgoing {
    pub(crate) fn describe(&self) -> String {
        match &self.key {
            Some((jid, id)) => describe(id, jid),
            None => "event".to_string(),
        }
    }
}

impl Delivered {
    /// The returns of a batch not delivered yet, each rendered by `render` (a return it
    /// refuses is rejected alone), each (jid, id) once.
    pub(crate) fn prepare(
        &self,
        rets: &[Load],
        render: impl Fn(&ReturnRecord<'_>) -> std::result::Result<String, String>,
    ) -> (Vec<Indexed<Outgoing>>, Vec<Rejection>) {
        let mut in_batch = HashSet::new();
        prepare_all(rets, |ret| {
            let Some(record) = ReturnRecord::parse(ret)? else { return Ok(None) };
            let key = (record.jid.clone(), record.id.to_string());
            if self.contains(&key.0, &key.1) || !in_batch.insert(key.clone()) {
                return Ok(None);
            }
            Ok(Some(Outgoing { key: Some(key), body: render(&record)? }))
        })
    }

    /// Sends each row in turn with `send`, remembering each one delivered; a row the service
    /// refuses for good goes to `rejected` with the service's words, and the next is sent. Any
    /// other error stops there: the spool sends the batch again, and what was delivered is not.
    pub(crate) async fn send_each<'a, Fut>(
        &self,
        rows: &'a [Indexed<Outgoing>],
        send: impl Fn(&'a str) -> Fut,
        rejected: &mut Vec<Rejection>,
    ) -> Result<()>
    where
        Fut: Future<Output = Result<()>>,
    {
        for row in rows {
            match send(&row.row.body).await {
                Ok(()) => {
                    if let Some((jid, id)) = &row.row.key {
                        self.insert(jid, id);
                    }
                }
                Err(ReturnerError::Rejected(why)) => {
                    rejected.push(Rejection { index: row.index, reason: format!("{}: {why}", row.row.describe()) })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_and_forgets_the_oldest() {
        let d = Delivered::default();
        d.insert("1", "a");
        d.insert("1", "a");
        assert!(d.contains("1", "a") && !d.contains("1", "b"));
        for n in 0..REMEMBERED {
            d.insert(&n.to_string(), "x");
        }
        assert!(!d.contains("1", "a"), "the oldest went");
        assert!(d.contains(&(REMEMBERED - 1).to_string(), "x"));
    }
}
