//! The start-up check every daemon runs on the stores it is configured with: one line in the
//! log says at once whether each works (a wrong password, a missing table, no server), instead
//! of silence until the first return. The daemon starts either way; records wait in the spool.

use std::time::Duration;

use crate::Sink;

/// How long the check waits for a store.
pub const CHECK_WITHIN: Duration = Duration::from_secs(15);

/// Checks `store`, serving `role` (`master_job_cache`, `the config's return:`, ...), and logs the
/// outcome in one line.
pub async fn check_at_start(store: &dyn Sink, role: &str) {
    let name = store.name();
    match tokio::time::timeout(CHECK_WITHIN, store.check()).await {
        Ok(Ok(())) => tracing::info!("returner '{name}' for {role} is ready"),
        Ok(Err(e)) => tracing::error!("returner '{name}' for {role}: {e}; its records wait in the spool until it works"),
        Err(_) => {
            tracing::error!("returner '{name}' for {role}: no answer within {} s; its records wait in the spool", CHECK_WITHIN.as_secs())
        }
    }
}
