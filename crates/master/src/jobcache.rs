//! Writing jobs and returns to the master job cache, behind the CLI's back.
//!
//! Publishes and returns are queued here and written by one task in batches (one transaction
//! per batch for stores that batch), so neither the CLI nor a minion ever waits on the store.
//! A store that fails is retried with back-off, keeping the batch: nothing is dropped while the
//! master runs, and the queue is drained at shutdown.

use std::sync::Arc;
use std::time::Duration;

use salt_returners::{Load, Returner, ReturnerError};
use tokio::sync::mpsc;

/// One write for the job cache.
pub(crate) enum Write {
    /// The publish load and the minions it targeted.
    Load { jid: String, load: Load, minions: Vec<String> },
    /// A return load (`cmd: _return`, ...).
    Return(Load),
    Endtime { jid: String, time: String },
    /// Write what came before, then stop (master shutdown).
    Shutdown,
}

/// The most writes taken into one batch.
const BATCH: usize = 1000;

#[derive(Clone)]
pub(crate) struct JobCacheWriter {
    tx: mpsc::UnboundedSender<Write>,
}

impl JobCacheWriter {
    /// Starts the writer task; it ends after [`Write::Shutdown`], with everything before it written.
    pub(crate) fn start(store: Arc<dyn Returner>) -> (JobCacheWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(store, rx));
        (JobCacheWriter { tx }, task)
    }

    pub(crate) fn send(&self, write: Write) {
        if self.tx.send(write).is_err() {
            tracing::error!("the job cache writer has stopped; a job record could not be queued");
        }
    }
}

async fn write_loop(store: Arc<dyn Returner>, mut rx: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let shutdown = batch.iter().position(|w| matches!(w, Write::Shutdown));
        if let Some(at) = shutdown {
            batch.truncate(at);
        }
        let mut delay = Duration::from_millis(100);
        let mut outage_logged = false;
        loop {
            match write_batch(&*store, &batch).await {
                Ok(()) => break,
                Err(ReturnerError::Unavailable(e)) => {
                    if !outage_logged {
                        tracing::error!("job cache '{}' is unavailable ({e}); holding {} records and retrying", store.name(), batch.len());
                        outage_logged = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!("job cache '{}' refused {} records: {e}", store.name(), batch.len());
                    break;
                }
            }
        }
        if outage_logged {
            tracing::warn!("job cache '{}' is available again", store.name());
        }
        batch.clear();
        if shutdown.is_some() {
            break;
        }
    }
}

/// Loads first, so a store sees a job before its returns; returns in one batch call.
async fn write_batch(store: &dyn Returner, batch: &[Write]) -> salt_returners::Result<()> {
    let mut returns = Vec::new();
    for write in batch {
        match write {
            Write::Load { jid, load, minions } => {
                store.prep_jid(false, Some(jid)).await?;
                store.save_load(jid, load, Some(minions)).await?;
            }
            Write::Return(load) => returns.push(load.clone()),
            Write::Endtime { .. } | Write::Shutdown => {}
        }
    }
    if !returns.is_empty() {
        store.returner_batch(&returns).await?;
    }
    for write in batch {
        if let Write::Endtime { jid, time } = write {
            store.update_endtime(jid, time).await?;
        }
    }
    Ok(())
}

/// Salt's `get_keep_jobs_seconds`: `keep_jobs_seconds`, unless it is still the default and the
/// deprecated `keep_jobs` (hours) was changed.
pub(crate) fn keep_jobs_seconds(config: &salt_config::Config) -> u64 {
    let seconds = config.u64("keep_jobs_seconds").unwrap_or(86400);
    let hours = config.u64("keep_jobs").unwrap_or(24);
    if seconds == 86400 && hours != 24 {
        hours * 3600
    } else {
        seconds
    }
}

/// Every `loop_interval`, purge what is older than the retention (0 keeps everything).
pub(crate) async fn maintenance(store: Arc<dyn Returner>, config: salt_config::Config) {
    let interval = Duration::from_secs(config.u64("loop_interval").unwrap_or(60).max(1));
    let keep = keep_jobs_seconds(&config);
    if keep == 0 || !store.supports(salt_returners::Capability::CleanOldJobs) {
        return;
    }
    loop {
        tokio::time::sleep(interval).await;
        match store.clean_old_jobs(Duration::from_secs(keep)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("purged {n} jobs older than {keep} s from the job cache"),
            Err(e) => tracing::warn!("cleaning the job cache failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_keep_jobs_hours() {
        let c = salt_config::Config::from_yaml_str(salt_config::Role::Master, "keep_jobs: 2\n", "t").unwrap();
        assert_eq!(keep_jobs_seconds(&c), 7200);
        let c = salt_config::Config::from_yaml_str(salt_config::Role::Master, "keep_jobs: 2\nkeep_jobs_seconds: 60\n", "t").unwrap();
        assert_eq!(keep_jobs_seconds(&c), 60);
        let c = salt_config::Config::from_yaml_str(salt_config::Role::Master, "", "t").unwrap();
        assert_eq!(keep_jobs_seconds(&c), 86400);
    }
}
