//! The local control socket (`sock_dir/master.sock`): how `salt` and `salt-run` talk to the
//! master. The socket is never exposed on the network; who may do what is decided per request
//! from the kernel's peer credentials ([`crate::acl`]).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use salt_proto::frame::{append_frame, read_frame, write_frame, FrameError, PRE_AUTH_MAX_FRAME};
use salt_proto::message::{ClientReply, ClientRequest, EventReply};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::acl::Caller;
use crate::fds::{is_out_of_descriptors, Reserve};
use crate::limits::PerKeyLimit;
use crate::publish::{publish, start_batch, Batch, NotPublished, EVENT_QUEUE};
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
    let reserve = Reserve::new();
    let mut out_of_fds = false;
    let sessions = PerKeyLimit::new(MAX_SESSIONS_PER_USER);
    loop {
        match listener.accept().await {
            Err(e) if is_out_of_descriptors(&e) => {
                if !std::mem::replace(&mut out_of_fds, true) {
                    tracing::error!("the control socket cannot accept: {e}; CLI calls are refused until descriptors are free (raise max_open_files or the hard limit)");
                }
                // Take the waiting client with the reserved descriptor and tell it why.
                reserve.release();
                if let Ok((stream, _)) = listener.accept().await {
                    let message = format!(
                        "The salt master cannot take this request: it has run out of file descriptors ({e}). See the master's log."
                    );
                    answer_and_close(stream, ClientReply::Error { message }).await;
                }
                reserve.restore();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Ok((stream, _)) => {
                out_of_fds = false;
                let caller = match stream.peer_cred() {
                    Ok(cred) => Caller::from_uid(cred.uid()),
                    Err(e) => {
                        tracing::warn!("control socket: cannot read the peer's credentials: {e}");
                        continue;
                    }
                };
                // Root and the master's user are not counted.
                let slot = (!caller.is_privileged()).then(|| sessions.try_acquire(caller.uid));
                if let Some(None) = slot {
                    let reason = format!("User {} has {MAX_SESSIONS_PER_USER} connections to the master open already", caller.name);
                    tokio::spawn(answer_and_close(stream, ClientReply::Refused { reason }));
                    continue;
                }
                let master = master.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(master, stream, caller).await {
                        tracing::debug!("client session ended: {e}");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Sessions an unprivileged user may hold open at once.
const MAX_SESSIONS_PER_USER: usize = 16;
/// Replies written to a client in one go, at most.
const REPLIES_PER_WRITE: usize = 256;
/// Batch jobs one connection may hold open (`salt -b` runs one).
const MAX_BATCHES_PER_SESSION: usize = 16;
/// The largest request a `publisher_acl` user may send (root and the master's user may send
/// up to `max_frame_bytes`; anyone else, only a request small enough to be refused politely).
const ACL_USER_MAX_FRAME: usize = 1024 * 1024;

/// What a session's writer sends: a reply of its own, or an event of the bus as it was fired
/// (shared with every other subscriber, never copied).
enum ToClient {
    Reply(ClientReply),
    Event(Arc<crate::events::Event>),
}

impl From<ClientReply> for ToClient {
    fn from(reply: ClientReply) -> ToClient {
        ToClient::Reply(reply)
    }
}

/// Sends one reply to a client this master will not serve, then closes; never waits long.
async fn answer_and_close(mut stream: UnixStream, reply: ClientReply) {
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), write_frame(&mut stream, &reply, 64 * 1024)).await;
}

async fn session(master: Arc<Master>, stream: UnixStream, caller: Caller) -> anyhow::Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<ToClient>(EVENT_QUEUE);
    let max = master.max_frame;
    // What the caller may send is decided from its credentials before any request is read.
    let max_request = if caller.is_privileged() {
        max
    } else if crate::acl::may_publish_something(master.config(), &caller) {
        ACL_USER_MAX_FRAME.min(max)
    } else {
        PRE_AUTH_MAX_FRAME
    };
    // What this session starts (event forwarders, runners) lives in one set, shut down when the
    // client goes: a forwarder waiting for events of a job that sends no more would otherwise
    // hold the connection, its task and its bus subscription for ever.
    let mut tasks = tokio::task::JoinSet::new();
    // The batch jobs this connection started, by jid: only they may get more slices.
    let mut batches: HashMap<String, Batch> = HashMap::new();
    let mut write_task = tokio::spawn(async move {
        // What is queued goes out in one write: 50,000 returns are not 50,000 system calls.
        let mut queued = Vec::with_capacity(REPLIES_PER_WRITE);
        let mut buf = Vec::new();
        while rx.recv_many(&mut queued, REPLIES_PER_WRITE).await > 0 {
            buf.clear();
            for out in queued.drain(..) {
                let appended = match &out {
                    ToClient::Reply(reply) => append_frame(&mut buf, reply, max),
                    ToClient::Event(event) => append_frame(&mut buf, &EventReply { tag: &event.tag, data: &event.data }, max),
                };
                if let Err(e) = appended {
                    // Too large for the client to read: it gets the reason instead.
                    let _ = append_frame(&mut buf, &ClientReply::Error { message: e.to_string() }, max);
                }
            }
            if writer.write_all(&buf).await.is_err() {
                break;
            }
            // A large runner reply's buffer is not kept for the rest of the session.
            if buf.capacity() > 1024 * 1024 {
                buf = Vec::new();
            }
        }
    });
    let result = loop {
        while tasks.try_join_next().is_some() {}
        let request = match read_frame::<ClientRequest, _>(&mut reader, max_request).await {
            Ok(r) => r,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => {
                let _ = tx.send(ClientReply::Error { message: e.to_string() }.into()).await;
                break Err(e.into());
            }
        };
        match request {
            ClientRequest::Publish(req) => match publish(&master, &caller, req) {
                Ok(p) => {
                    let reply =
                        ClientReply::Published { jid: p.jid, minions: p.minions, missing: p.missing, not_connected: p.not_connected };
                    if tx.send(reply.into()).await.is_err() {
                        break Ok(());
                    }
                    tasks.spawn(forward(p.events, tx.clone(), |_| true));
                }
                Err(e) => {
                    let _ = tx.send(not_published(e).into()).await;
                }
            },
            ClientRequest::Batch(req) => {
                if batches.len() >= MAX_BATCHES_PER_SESSION {
                    let message = format!("This connection has {MAX_BATCHES_PER_SESSION} batch jobs open already");
                    let _ = tx.send(ClientReply::Error { message }.into()).await;
                    continue;
                }
                let reply = match start_batch(&master, &caller, req) {
                    Ok((batch, p)) => {
                        tasks.spawn(forward(p.events, tx.clone(), |_| true));
                        batches.insert(p.jid.clone(), batch);
                        ClientReply::Published { jid: p.jid, minions: p.minions, missing: p.missing, not_connected: p.not_connected }
                    }
                    Err(e) => not_published(e),
                };
                if tx.send(reply.into()).await.is_err() {
                    break Ok(());
                }
            }
            ClientRequest::Slice { jid, minions } => {
                // Only the connection that started a batch holds it: a jid is never sent again
                // on anyone else's behalf.
                let reply = match batches.get_mut(&jid) {
                    None => {
                        let reason =
                            format!("Job {jid} is not a batch job this connection started; only its publisher may send it to more minions");
                        tracing::warn!("{}: {reason}", caller.name);
                        ClientReply::Refused { reason }
                    }
                    Some(batch) => match batch.send_slice(&master, &caller, &minions) {
                        Ok(not_connected) => ClientReply::Published { jid, minions, missing: Vec::new(), not_connected },
                        Err(e) => not_published(e),
                    },
                };
                if tx.send(reply.into()).await.is_err() {
                    break Ok(());
                }
            }
            ClientRequest::Runner(req) => {
                if let Err(reason) = crate::acl::may_run_runners(&caller) {
                    let _ = tx.send(ClientReply::Refused { reason }.into()).await;
                    continue;
                }
                // A runner may take a while (jobs.active waits for minions): do not block this
                // connection's other requests.
                let (master, tx, user) = (master.clone(), tx.clone(), caller.name.clone());
                tasks.spawn(async move {
                    let reply = crate::runner::run(&master, &user, req).await;
                    let _ = tx.send(reply.into()).await;
                });
            }
            ClientRequest::Events { tagmatch } => {
                if let Err(reason) = crate::acl::may_run_runners(&caller) {
                    let _ = tx.send(ClientReply::Refused { reason }.into()).await;
                    continue;
                }
                let events = master.bus().subscribe("", EVENT_QUEUE);
                tasks.spawn(forward(events, tx.clone(), move |tag| salt_targeting::fnmatch::fnmatch(tag, &tagmatch)));
            }
        }
    };
    // The client has gone or broke the protocol: stop what feeds the writer, let the writer send
    // what is queued (a final error), then close. Nothing of this session outlives it.
    tasks.shutdown().await;
    drop(tx);
    if tokio::time::timeout(std::time::Duration::from_secs(1), &mut write_task).await.is_err() {
        write_task.abort();
    }
    result
}

fn not_published(e: NotPublished) -> ClientReply {
    match e {
        NotPublished::NoMinions(error) => ClientReply::NoMinions { error },
        NotPublished::Refused(reason) => ClientReply::Refused { reason },
        NotPublished::Invalid(message) => ClientReply::Error { message },
    }
}

/// Pumps bus events matching `keep` to the client; the session aborts it when the client goes.
async fn forward(mut events: mpsc::Receiver<Arc<crate::events::Event>>, tx: mpsc::Sender<ToClient>, keep: impl Fn(&str) -> bool) {
    while let Some(event) = events.recv().await {
        if !keep(&event.tag) {
            continue;
        }
        if tx.send(ToClient::Event(event)).await.is_err() {
            break;
        }
    }
}
