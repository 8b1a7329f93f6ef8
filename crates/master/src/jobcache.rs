//! Where the master's records go: the master job cache, an `ext_job_cache`, and the
//! `event_return` stores. Every write goes through a durable [`Spool`] per store, so neither
//! the CLI nor a minion ever waits on a store, and a store that is down loses nothing. A store
//! made of others (`multi_returner`) gets a spool per part, so one part that is down holds back
//! only its own records.

use std::sync::Arc;
use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::spool::{Record, Spool, SpoolStats};
use salt_returners::{missing_for, Capability, JobCache, Sink, Store};

/// A store with its spools.
#[derive(Clone)]
pub(crate) struct SpooledStore {
    pub(crate) store: Store,
    /// The store's own spool, or one per part ([`salt_returners::Sink::parts`]), each with the
    /// part it delivers to.
    spools: Vec<Spool>,
    /// The role it serves here (`master_job_cache`, `ext_job_cache`, `event_return`).
    label: String,
}

impl SpooledStore {
    /// Opens the store `name` for `role` (refusing it at once if it lacks a call the role needs)
    /// and its spool under `cachedir/spool/<label>-<name>`.
    pub(crate) async fn open(name: &str, label: &str, role: &[Capability], config: &salt_config::Config) -> anyhow::Result<SpooledStore> {
        let store = salt_returners::open(name, &Lookup::new(config.as_map()))
            .await
            .map_err(|e| anyhow::anyhow!("cannot open returner '{name}' for {label}: {e}"))?;
        if role.iter().any(|c| c.needs_job_cache()) && store.clone().job_cache().is_none() {
            anyhow::bail!("returner '{name}' cannot be used for {label}: it keeps no jobs");
        }
        if let Some(call) = missing_for(store.as_sink(), role) {
            anyhow::bail!("returner '{name}' cannot be used for {label}: it does not support {}", call.salt_name());
        }
        let cachedir = config.path("cachedir").ok_or_else(|| anyhow::anyhow!("cachedir is not set"))?;
        let dir = cachedir.join("spool").join(format!("{label}-{name}"));
        let open = |dir: &std::path::Path, store: Store| {
            Spool::open(dir, store).map_err(|e| anyhow::anyhow!("cannot open the spool {}: {e}", dir.display()))
        };
        let parts = store.as_sink().parts();
        let spools = if parts.is_empty() {
            vec![open(&dir, store.clone())?]
        } else {
            parts.iter().map(|part| open(&dir.join(part.as_sink().name()), part.clone())).collect::<anyhow::Result<_>>()?
        };
        Ok(SpooledStore { store, spools, label: label.to_string() })
    }

    pub(crate) fn sink(&self) -> &dyn Sink {
        self.store.as_sink()
    }

    /// The store as a job cache (every role but `event_return` opens one).
    pub(crate) fn job_cache(&self) -> Option<Arc<dyn JobCache>> {
        self.store.clone().job_cache()
    }

    /// At start-up: says at once, in one line, what is wrong with the store (a wrong password,
    /// a missing table); records are spooled meanwhile, so the master starts anyway.
    pub(crate) async fn check(&self) {
        salt_returners::health::check_at_start(self.sink(), &self.label).await;
    }

    pub(crate) fn write(&self, record: Record) {
        self.write_all(vec![record]);
    }

    /// Queues `records` in every spool, without waiting for the disk.
    pub(crate) fn write_all(&self, records: Vec<Record>) {
        for spool in &self.spools {
            spool.push_nowait(records.clone());
        }
    }

    /// Queues `records` in every spool; resolves once they are on disk in all of them.
    pub(crate) async fn push(&self, records: Vec<Record>) -> std::io::Result<()> {
        for spool in &self.spools {
            spool.push(records.clone()).await?;
        }
        Ok(())
    }

    /// Each spool's state, named by the store it delivers to.
    pub(crate) fn stats(&self) -> impl Iterator<Item = (&'static str, SpoolStats)> + '_ {
        self.spools.iter().map(|s| (s.store().as_sink().name(), s.stats()))
    }

    /// At shutdown: wait (a while) until the stores have everything, and say what is left.
    pub(crate) async fn flush(&self, timeout: Duration) {
        for spool in &self.spools {
            if !spool.flush(timeout).await {
                let stats = spool.stats();
                tracing::warn!(
                    "returner '{}' still has {} records spooled (oldest {} s); they will be delivered after the next start",
                    spool.store().as_sink().name(),
                    stats.depth,
                    stats.oldest_age_secs
                );
            }
        }
    }
}

/// Salt's `get_keep_jobs_seconds` (the master's config has its defaults).
pub(crate) fn keep_jobs_seconds(config: &salt_config::Config) -> u64 {
    salt_returners::options::keep_jobs_seconds(Some(config.as_map())).unwrap_or(86400)
}

/// Every `loop_interval`, purge what is older than the retention (0 keeps everything), and
/// report a spool that is not draining and events a slow subscriber lost.
pub(crate) async fn maintenance(master: Arc<crate::Master>) {
    let config = master.config().clone();
    let (sinks, job_cache) = (master.sinks(), master.job_cache());
    let interval = Duration::from_secs(config.u64("loop_interval").unwrap_or(60).max(1));
    let keep = keep_jobs_seconds(&config);
    let mut dropped = 0;
    loop {
        tokio::time::sleep(interval).await;
        master.journal().expire(crate::minions::unix_millis());
        let now_dropped = master.bus().dropped();
        if now_dropped > dropped {
            tracing::warn!(
                "event bus: {} events dropped for slow subscribers in the last {} s ({now_dropped} since start)",
                now_dropped - dropped,
                interval.as_secs()
            );
            dropped = now_dropped;
        }
        if let Some(store) = job_cache.as_ref().filter(|s| keep > 0 && s.supports(Capability::CleanOldJobs)) {
            match store.clean_old_jobs(Duration::from_secs(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("purged {n} jobs older than {keep} s from the job cache"),
                Err(e) => tracing::warn!("cleaning the job cache failed: {e}"),
            }
        }
        for (name, stats) in sinks.iter().flat_map(SpooledStore::stats) {
            if stats.depth > 0 && stats.oldest_age_secs >= interval.as_secs() {
                tracing::warn!("spool for returner '{name}': {} records waiting, oldest {} s", stats.depth, stats.oldest_age_secs);
            }
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
