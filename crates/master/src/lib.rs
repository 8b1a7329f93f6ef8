//! The salt-master: it accepts minion connections ([`minions`]), takes jobs from the local
//! socket ([`client`]), publishes them to the targeted minions, and fires every return on the
//! event bus ([`events`]), where the CLI and the job-cache writers pick them up.

pub mod acl;
pub mod client;
pub mod events;
mod jobcache;
pub mod minions;
mod publish;
mod runner;
mod state;

pub use state::Master;

use std::path::PathBuf;
use std::sync::Arc;

use salt_config::Config;

/// Where the local control socket lives: `sock_dir/master.sock`.
pub fn control_socket_path(config: &Config) -> PathBuf {
    config
        .path("sock_dir")
        .unwrap_or_else(|| PathBuf::from("/var/run/salt/master"))
        .join("master.sock")
}

/// Runs the master until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let (master, writer_task) = Master::new(config).await?;
    let master = Arc::new(master);
    let listener = minions::bind(&master).await?;
    let control = client::bind(&master)?;
    tracing::info!(
        "salt-master {} listening on {} (master id {})",
        salt_proto::VERSION,
        listener.local_addr()?,
        master.id()
    );
    let accept_minions = tokio::spawn(minions::serve(master.clone(), listener));
    let accept_clients = tokio::spawn(client::serve(master.clone(), control));
    let maintenance = master.job_cache().map(|store| tokio::spawn(jobcache::maintenance(store, master.config().clone())));
    shutdown.await;
    tracing::info!("salt-master shutting down");
    accept_minions.abort();
    accept_clients.abort();
    if let Some(m) = maintenance {
        m.abort();
    }
    let _ = std::fs::remove_file(control_socket_path(master.config()));
    // Flush the job cache: everything queued so far is written before we exit.
    master.write_job_cache(jobcache::Write::Shutdown);
    if let Some(task) = writer_task {
        if tokio::time::timeout(std::time::Duration::from_secs(30), task).await.is_err() {
            tracing::error!("the job cache writer did not finish within 30 s; some records may not be stored");
        }
    }
    Ok(())
}
