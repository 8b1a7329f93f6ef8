//! The local control socket (`sock_dir/master.sock`): how `salt` and the runners talk to the
//! master. The socket is never exposed on the network; who may publish is decided per request
//! from the kernel's peer credentials ([`crate::acl`]).

use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;
use std::sync::Arc;

use salt_proto::frame::{read_frame, write_frame, FrameError};
use salt_proto::message::{ClientReply, ClientRequest, Publish, PublishRequest};
use salt_targeting::{Matcher, TargetType};
use serde_json::{Map, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::acl::{self, Caller};
use crate::minions::{send_publish, unix_millis};
use crate::{control_socket_path, Master};

/// Replies and events queued for one client before events are dropped.
const CLIENT_QUEUE: usize = 65536;

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
    let (tx, mut rx) = mpsc::channel::<ClientReply>(CLIENT_QUEUE);
    let max = master.max_frame;
    let writer_task = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if write_frame(&mut writer, &reply, max).await.is_err() {
                break;
            }
        }
    });
    let result = loop {
        match read_frame::<ClientRequest, _>(&mut reader, max).await {
            Ok(ClientRequest::Publish(req)) => {
                let reply = publish(&master, &caller, req, &tx);
                if let Some(reply) = reply {
                    let _ = tx.send(reply).await;
                }
            }
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => {
                let _ = tx.send(ClientReply::Error { message: e.to_string() }).await;
                break Err(e.into());
            }
        }
    };
    drop(tx);
    let _ = writer_task.await;
    result
}

/// Resolves the target, answers the caller, then sends the job to each connected minion.
/// Returns a reply only when the job did not go out.
fn publish(master: &Master, caller: &Caller, req: PublishRequest, tx: &mpsc::Sender<ClientReply>) -> Option<ClientReply> {
    let tgt_type = match TargetType::from_str(&req.tgt_type) {
        Ok(t) => t,
        Err(e) => return Some(ClientReply::Error { message: e.to_string() }),
    };
    let delimiter = req.kwargs.get("delimiter").and_then(Value::as_str).unwrap_or(":").to_string();
    let matcher = match Matcher::new(&req.tgt, tgt_type, &delimiter) {
        Ok(m) => m,
        Err(e) => return Some(ClientReply::Error { message: format!("Invalid target: {e}") }),
    };
    let accepted = master.accepted_minions();
    let minions: Vec<String> = accepted.iter().filter(|id| matcher.matches(id, &master.grains_of(id))).cloned().collect();
    // Salt's `missing`: ids a list target names that have no accepted key.
    let missing: Vec<String> = matcher.listed_ids().unwrap_or_default().iter().filter(|id| !accepted.contains(id)).cloned().collect();
    if minions.is_empty() {
        return Some(ClientReply::NoMinions { error: format!("Master could not resolve minions for target {}", target_text(&req.tgt)) });
    }
    if let Err(reason) = acl::may_publish(master.config(), caller, &req.fun, &minions) {
        tracing::warn!("{reason}");
        return Some(ClientReply::Refused { reason });
    }

    let jid = master.new_jid();
    let not_connected: Vec<String> = minions.iter().filter(|id| !master.is_connected(id)).cloned().collect();
    // Subscribe before anything is sent, so no return can slip past the caller.
    let mut events = master.bus().subscribe(format!("salt/job/{jid}/"), CLIENT_QUEUE);
    let published = ClientReply::Published { jid: jid.clone(), minions: minions.clone(), missing: missing.clone(), not_connected: not_connected.clone() };
    if tx.try_send(published).is_err() {
        return None;
    }
    let forward = tx.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let reply = ClientReply::Event { tag: event.tag.clone(), data: event.data.clone() };
            if forward.send(reply).await.is_err() {
                break;
            }
        }
    });

    let user = caller.name.clone();
    let mut new = Map::new();
    new.insert("jid".into(), jid.clone().into());
    new.insert("tgt_type".into(), req.tgt_type.clone().into());
    new.insert("tgt".into(), req.tgt.clone());
    new.insert("user".into(), user.clone().into());
    new.insert("fun".into(), req.fun.clone().into());
    new.insert("arg".into(), Value::Array(req.arg.clone()));
    new.insert("minions".into(), minions.clone().into());
    new.insert("missing".into(), missing.into());
    master.bus().fire(format!("salt/job/{jid}/new"), new);

    let expires_at_ms = unix_millis() + master.publish_ttl.as_millis() as u64;
    for minion in minions.iter().filter(|m| !not_connected.contains(m)) {
        let publish = Publish {
            jid: jid.clone(),
            minion: minion.clone(),
            fun: req.fun.clone(),
            arg: req.arg.clone(),
            tgt: req.tgt.clone(),
            tgt_type: req.tgt_type.clone(),
            ret: req.ret.clone(),
            user: user.clone(),
            expires_at_ms,
            kwargs: req.kwargs.clone(),
        };
        send_publish(master, &publish);
    }

    let mut published = Map::new();
    published.insert("fun".into(), req.fun.into());
    published.insert("arg".into(), Value::Array(req.arg));
    published.insert("tgt".into(), req.tgt);
    published.insert("jid".into(), jid.clone().into());
    published.insert("ret".into(), req.ret.into());
    published.insert("tgt_type".into(), req.tgt_type.into());
    published.insert("user".into(), user.into());
    master.bus().fire(format!("salt/job/{jid}/publish"), published);
    None
}

fn target_text(tgt: &Value) -> String {
    match tgt {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
