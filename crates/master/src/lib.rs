//! The salt-master: it accepts minion connections ([`minions`]), takes jobs from the local
//! socket ([`client`]), publishes them to the targeted minions, and fires every return on the
//! event bus ([`events`]), where the CLI and the job-cache writers pick them up.

pub mod acl;
pub mod client;
mod event_return;
pub mod events;
mod fds;
mod grains;
mod jobcache;
mod journal;
mod limits;
pub mod minions;
mod publish;
mod runner;
mod state;

pub use fds::raise_open_files_limit;
pub use state::Master;

use std::sync::Arc;

use salt_config::Config;

pub use salt_config::master_control_socket as control_socket_path;

/// Job data (the job cache, spools, minion data) is owner-only; what an older version or another
/// umask left readable is tightened at start.
fn tighten_cachedir(cachedir: &std::path::Path) {
    match salt_proto::private::tighten_tree(cachedir) {
        Ok(0) => {}
        Ok(n) => tracing::warn!("made {n} files and directories in {} owner-only (they hold job data)", cachedir.display()),
        Err(e) => tracing::warn!("cannot make {} owner-only: {e}", cachedir.display()),
    }
}

/// Runs the master until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let open_files = fds::raise_open_files_limit(config.u64("max_open_files").unwrap_or(100_000), "max_open_files");
    let capacity = minions::capacity(open_files);
    tracing::info!("room for {capacity} minions (one open file each, {open_files} in all)");
    if let Some(cachedir) = config.path("cachedir") {
        tighten_cachedir(&cachedir);
    }
    let master = Arc::new(Master::new(config).await?);
    let listener = minions::bind(&master).await?;
    let control = client::bind(&master)?;
    tracing::info!("salt-master {} listening on {} (master id {})", salt_proto::VERSION, listener.local_addr()?, master.id());
    let accept_minions = tokio::spawn(minions::serve(master.clone(), listener, capacity));
    let accept_clients = tokio::spawn(client::serve(master.clone(), control));
    let key_watch = tokio::spawn(minions::watch_keys(master.clone()));
    let maintenance = tokio::spawn(jobcache::maintenance(master.clone()));
    // Each store is checked once at start, without holding the start up.
    for sink in master.sinks() {
        tokio::spawn(async move { sink.check().await });
    }
    let (stop_events, stopped) = tokio::sync::watch::channel(false);
    let event_return = (!master.event_returners.is_empty()).then(|| {
        let events = master.bus().subscribe("", publish::EVENT_QUEUE);
        tokio::spawn(event_return::run(events, master.event_returners.clone(), master.config().clone(), stopped))
    });
    shutdown.await;
    tracing::info!("salt-master shutting down");
    accept_minions.abort();
    accept_clients.abort();
    maintenance.abort();
    key_watch.abort();
    let _ = std::fs::remove_file(control_socket_path(master.config()));
    let _ = stop_events.send(true);
    if let Some(task) = event_return {
        let _ = task.await;
    }
    // Give the stores a moment to take what is spooled; what is left stays on disk for next time.
    for sink in master.sinks() {
        sink.flush(std::time::Duration::from_secs(10)).await;
    }
    Ok(())
}
