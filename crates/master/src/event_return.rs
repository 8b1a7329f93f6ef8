//! `event_return`: the master's events, filtered by `event_return_whitelist` /
//! `event_return_blacklist` (fnmatch on the tag; a non-empty whitelist denies by default, the
//! blacklist wins), queued as Salt does (`event_return_queue` events or
//! `event_return_queue_max_seconds`), and handed to each configured store's spool.

use std::time::{Duration, Instant};

use salt_returners::spool::Record;
use salt_targeting::fnmatch::fnmatch;
use tokio::sync::{mpsc, watch};

use crate::events::Event;
use crate::jobcache::SpooledStore;

/// Which tags are kept.
pub(crate) struct Filter {
    whitelist: Vec<String>,
    blacklist: Vec<String>,
}

impl Filter {
    pub(crate) fn from_config(config: &salt_config::Config) -> Filter {
        Filter { whitelist: config.str_list("event_return_whitelist"), blacklist: config.str_list("event_return_blacklist") }
    }

    pub(crate) fn keeps(&self, event: &Event) -> bool {
        // Events relayed from cluster peers are stored by the peer that fired them.
        if event.data.get("__peer_id").is_some() {
            return false;
        }
        let allowed = self.whitelist.is_empty() || self.whitelist.iter().any(|g| fnmatch(&event.tag, g));
        allowed && !self.blacklist.iter().any(|g| fnmatch(&event.tag, g))
    }
}

pub(crate) async fn run(
    mut events: mpsc::Receiver<std::sync::Arc<Event>>,
    sinks: Vec<SpooledStore>,
    config: salt_config::Config,
    mut shutdown: watch::Receiver<bool>,
) {
    let filter = Filter::from_config(&config);
    let queue_len = config.u64("event_return_queue").unwrap_or(0) as usize;
    let max_age = Duration::from_secs(config.u64("event_return_queue_max_seconds").unwrap_or(0));
    let mut queue: Vec<Record> = Vec::new();
    let mut oldest = Instant::now();
    let flush = |queue: &mut Vec<Record>| {
        for sink in &sinks {
            sink.write_all(queue.clone());
        }
        queue.clear();
    };
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if !filter.keeps(&event) {
                    continue;
                }
                if queue.is_empty() {
                    oldest = Instant::now();
                }
                queue.push(Record::Event { tag: event.tag.clone(), data: event.data.clone() });
                let full = queue.len() >= queue_len.max(1);
                let old = !max_age.is_zero() && oldest.elapsed() >= max_age;
                if full || old {
                    flush(&mut queue);
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    if !queue.is_empty() {
        flush(&mut queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whitelist_then_blacklist() {
        let c = salt_config::Config::from_yaml_str(
            salt_config::Role::Master,
            "event_return_whitelist: ['salt/job/*']\nevent_return_blacklist: ['salt/job/*/publish']\n",
            "t",
        )
        .unwrap();
        let f = Filter::from_config(&c);
        let ev = |tag: &str| Event { tag: tag.into(), data: json!({}) };
        assert!(f.keeps(&ev("salt/job/1/ret/m1")));
        assert!(!f.keeps(&ev("salt/job/1/publish")));
        assert!(!f.keeps(&ev("salt/auth")));
        assert!(!f.keeps(&Event { tag: "salt/job/1/new".into(), data: json!({"__peer_id": "m2"}) }));
        let open = Filter::from_config(&salt_config::Config::from_yaml_str(salt_config::Role::Master, "", "t").unwrap());
        assert!(open.keeps(&ev("salt/auth")));
    }
}
