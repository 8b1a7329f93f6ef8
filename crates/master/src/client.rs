//! The local control socket (`sock_dir/master.sock`): how `salt` and `salt-run` talk to the
//! master. The socket is never exposed on the network; who may do what is decided per request
//! from the kernel's peer credentials ([`crate::acl`]).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use salt_proto::frame::{read_frame, write_frame, FrameError};
use salt_proto::message::{ClientReply, ClientRequest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::acl::Caller;
use crate::publish::{publish, NotPublished, EVENT_QUEUE};
use crate::{control_socket_path, Master};

pub fn bind(master: &Master) -> anyhow::Result<UnixListener> {
    let path = control_socket_path(master.config());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    // A socket left by a master that died; a live master would still hold the pid file.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    // Anyone may connect; publisher_acl decides what each caller may do.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

pub async fn serve(master: Arc<Master>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let master = master.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(master, stream).await {
                        tracing::debug!("client session ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(master: Arc<Master>, stream: UnixStream) -> anyhow::Result<()> {
    let caller = Caller::from_uid(stream.peer_cred()?.uid());
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<ClientReply>(EVENT_QUEUE);
    let max = master.max_frame;
    let writer_task = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if write_frame(&mut writer, &reply, max).await.is_err() {
                break;
            }
        }
    });
    let result = loop {
        let request = match read_frame::<ClientRequest, _>(&mut reader, max).await {
            Ok(r) => r,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => {
                let _ = tx.send(ClientReply::Error { message: e.to_string() }).await;
                break Err(e.into());
            }
        };
        match request {
            ClientRequest::Publish(req) => match publish(&master, &caller, req) {
                Ok(p) => {
                    let reply = ClientReply::Published { jid: p.jid, minions: p.minions, missing: p.missing, not_connected: p.not_connected };
                    if tx.send(reply).await.is_err() {
                        break Ok(());
                    }
                    forward(p.events, tx.clone(), |_| true);
                }
                Err(e) => {
                    let reply = match e {
                        NotPublished::NoMinions(error) => ClientReply::NoMinions { error },
                        NotPublished::Refused(reason) => ClientReply::Refused { reason },
                        NotPublished::Invalid(message) => ClientReply::Error { message },
                    };
                    let _ = tx.send(reply).await;
                }
            },
            ClientRequest::Runner(req) => {
                if let Err(reason) = crate::acl::may_run_runners(&caller) {
                    let _ = tx.send(ClientReply::Refused { reason }).await;
                    continue;
                }
                // A runner may take a while (jobs.active waits for minions): do not block this
                // connection's other requests.
                let (master, tx, user) = (master.clone(), tx.clone(), caller.name.clone());
                tokio::spawn(async move {
                    let reply = crate::runner::run(&master, &user, req).await;
                    let _ = tx.send(reply).await;
                });
            }
            ClientRequest::Events { tagmatch } => {
                if let Err(reason) = crate::acl::may_run_runners(&caller) {
                    let _ = tx.send(ClientReply::Refused { reason }).await;
                    continue;
                }
                let events = master.bus().subscribe("", EVENT_QUEUE);
                forward(events, tx.clone(), move |tag| salt_targeting::fnmatch::fnmatch(tag, &tagmatch));
            }
        }
    };
    drop(tx);
    let _ = writer_task.await;
    result
}

/// Pumps bus events matching `keep` to the client until it goes away.
fn forward(
    mut events: mpsc::Receiver<Arc<crate::events::Event>>,
    tx: mpsc::Sender<ClientReply>,
    keep: impl Fn(&str) -> bool + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if !keep(&event.tag) {
                continue;
            }
            let reply = ClientReply::Event { tag: event.tag.clone(), data: event.data.clone() };
            if tx.send(reply).await.is_err() {
                break;
            }
        }
    });
}
