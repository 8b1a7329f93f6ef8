//! Minion connections: TLS accept, authentication by key, then a session that carries
//! publishes down and returns up on the same connection.
//!
//! Before a minion is authenticated only [`MinionMessage::Hello`] is accepted, and only in a
//! small frame; anything else gets a `Refused` with the reason and the connection is closed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use salt_pki::KeyState;
use salt_proto::frame::{read_frame, write_frame, write_frame_bytes, FrameError, PRE_AUTH_MAX_FRAME};
use salt_proto::message::{Hello, JobReturn, MasterMessage, MinionMessage, Publish, SignedPublish};
use salt_returners::spool::Record;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::state::ReturnSeen;
use crate::Master;

/// Time a peer has to finish the TLS handshake and say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections that have not yet authenticated, at once. Each costs a TLS session and a
/// hello-sized buffer.
const MAX_UNAUTHENTICATED: usize = 256;
/// New connections that may wait for one of those turns. After a master restart the whole
/// fleet dials back within seconds: waiting a moment costs a minion less than being closed and
/// backing off for up to `recon_max`. Past these, a new connection is closed at once.
const MAX_WAITING_TO_AUTHENTICATE: usize = 4096;
/// How long a connection waits for its turn: well within a minion's 10 s to finish its TLS
/// handshake, so it is closed (and retries) rather than timing out on its own.
const AUTHENTICATION_TURN_WAIT: Duration = Duration::from_secs(5);

/// Publishes queued for one minion before it counts as unreachable.
const OUTBOX: usize = 1024;
/// How long a pending minion waits before asking again (Salt's acceptance_wait_time).
const PENDING_RETRY_SECS: u64 = 10;
/// Descriptors kept for everything but minion connections: listeners, CLI sessions, the
/// stores' connections, spool, journal and log files.
const DESCRIPTORS_KEPT: u64 = 512;
/// How long a minion turned away for want of room waits before it tries again (jittered by
/// the minion). Long enough that a swarm past the cap costs the master little.
const BUSY_RETRY_SECS: u64 = 60;

/// How many minions an open files limit lets the master hold: one descriptor each, with room
/// kept for connections still authenticating and for the master's own files.
pub fn capacity(open_files: u64) -> usize {
    open_files.saturating_sub(DESCRIPTORS_KEPT + MAX_UNAUTHENTICATED as u64) as usize
}

/// What a connection's writer sends: a message for this minion alone, or a frame encoded and
/// signed once and shared by every minion a publish goes to. Boxed, because each connection's
/// queue allocates 32 slots at once: 24 bytes a slot rather than a `MasterMessage`'s size, a
/// few KiB less per minion.
pub(crate) enum Outgoing {
    Message(Box<MasterMessage>),
    Shared(Arc<[u8]>),
}

pub async fn bind(master: &Master) -> anyhow::Result<TcpListener> {
    let cfg = master.config();
    let interface = cfg.str("interface").unwrap_or("0.0.0.0").to_string();
    let port = cfg.u64("ret_port").unwrap_or(4506);
    let host = if interface.contains(':') { format!("[{interface}]") } else { interface };
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

pub async fn serve(master: Arc<Master>, listener: TcpListener, capacity: usize) {
    let acceptor = match salt_transport::master_acceptor(master.key().pkcs8_der()) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot set up TLS: {e}");
            return;
        }
    };
    let reserve = crate::fds::Reserve::new();
    let mut out_of_fds = false;
    let unauthenticated = Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED));
    let waiting = Arc::new(tokio::sync::Semaphore::new(MAX_WAITING_TO_AUTHENTICATE));
    let turned_away = Arc::new(Mutex::new(Tally::default()));
    let full = Arc::new(Mutex::new(Tally::default()));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => {
                out_of_fds = false;
                c
            }
            Err(e) if crate::fds::is_out_of_descriptors(&e) => {
                if !std::mem::replace(&mut out_of_fds, true) {
                    tracing::error!("cannot accept minion connections: {e}; they are closed at once until descriptors are free (raise max_open_files or the hard limit)");
                }
                // Close the waiting connection (the minion retries with back-off) rather than
                // leave it in the backlog while this loop spins.
                reserve.release();
                drop(listener.accept().await);
                reserve.restore();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(in_line) = waiting.clone().try_acquire_owned() else {
            turn_away(&turned_away);
            drop(tcp);
            continue;
        };
        let (master, acceptor, full) = (master.clone(), acceptor.clone(), full.clone());
        let (unauthenticated, turned_away) = (unauthenticated.clone(), turned_away.clone());
        tokio::spawn(async move {
            let Ok(Ok(permit)) = tokio::time::timeout(AUTHENTICATION_TURN_WAIT, unauthenticated.acquire_owned()).await else {
                turn_away(&turned_away);
                return;
            };
            drop(in_line);
            if let Err(e) = handle(master, acceptor, tcp, permit, capacity, full).await {
                tracing::info!("connection from {peer} closed: {e}");
            }
        });
    }
}

/// Counts a new connection closed for want of a turn to authenticate; logs now and then.
fn turn_away(turned_away: &Mutex<Tally>) {
    if let Some(n) = turned_away.lock().unwrap_or_else(|e| e.into_inner()).one() {
        tracing::warn!(
            "closed {n} new connection(s) that found no turn to authenticate ({MAX_UNAUTHENTICATED} at once, \
             {MAX_WAITING_TO_AUTHENTICATE} more waiting up to {AUTHENTICATION_TURN_WAIT:?}): a reconnect storm, or a flood"
        );
    }
}

/// Connections closed for one reason, logged at most once a minute with how many, rather than
/// once each (a reconnect storm, or a flood, would fill the log).
#[derive(Default)]
struct Tally {
    count: u64,
    since: Option<std::time::Instant>,
}

impl Tally {
    /// Counts one; the count to log when a minute has passed since the last line.
    fn one(&mut self) -> Option<u64> {
        self.count += 1;
        let now = std::time::Instant::now();
        if self.since.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
            return None;
        }
        self.since = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// One of the places for minions the descriptor limit allows, held for a connection's life.
struct Room(Arc<std::sync::atomic::AtomicUsize>);

impl Room {
    fn take(taken: &Arc<std::sync::atomic::AtomicUsize>, capacity: usize) -> Option<Room> {
        use std::sync::atomic::Ordering;
        taken.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < capacity).then_some(n + 1)).ok()?;
        Some(Room(taken.clone()))
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

async fn handle(
    master: Arc<Master>,
    acceptor: salt_transport::TlsAcceptor,
    tcp: TcpStream,
    unauthenticated: tokio::sync::OwnedSemaphorePermit,
    capacity: usize,
    full: Arc<Mutex<Tally>>,
) -> anyhow::Result<()> {
    // The handshake's state is several KiB and needed once: boxed, it is freed when the minion
    // is in, rather than held in the task for the connection's life (50,000 of them).
    let Some(Admitted { id, mut reader, writer, grains, _room }) =
        Box::pin(admit(&master, acceptor, tcp, unauthenticated, capacity, full)).await?
    else {
        return Ok(());
    };
    let (tx, rx) = mpsc::channel(OUTBOX);
    let serial = master.register(&id, tx);
    master.store_grains(&id, grains);
    // Jobs a previous master published to this minion before it died.
    for publish in master.journal().take_undelivered(&id, unix_millis()) {
        tracing::info!("sending job {} to minion {id} again (published before the master restarted)", publish.jid);
        if let Some(frame) = signed_publish(&master, &publish) {
            master.send_to_each([&id], &frame);
        }
    }
    fire_minion_start(&master, &id);
    tracing::info!("minion {id} connected");
    let max = master.max_frame;
    let writer_task = tokio::spawn(write_loop(writer, rx, max));
    let result = read_loop(&master, &id, &mut reader).await;
    master.unregister(&id, serial);
    writer_task.abort();
    tracing::info!("minion {id} disconnected");
    result
}

type TlsReader = tokio::io::ReadHalf<salt_transport::ServerTlsStream<TcpStream>>;
type TlsWriter = tokio::io::WriteHalf<salt_transport::ServerTlsStream<TcpStream>>;

/// A minion that authenticated and sent its grains, holding its place under the cap.
struct Admitted {
    id: String,
    reader: TlsReader,
    writer: TlsWriter,
    grains: Map<String, Value>,
    _room: Room,
}

/// The TLS handshake, the hello, the cap, the key check and the grains. None when the minion
/// was answered and may not go on (pending, rejected, the master full).
async fn admit(
    master: &Master,
    acceptor: salt_transport::TlsAcceptor,
    tcp: TcpStream,
    unauthenticated: tokio::sync::OwnedSemaphorePermit,
    capacity: usize,
    full: Arc<Mutex<Tally>>,
) -> anyhow::Result<Option<Admitted>> {
    let _ = tcp.set_nodelay(true);
    keepalive(&tcp);
    let tls = tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(tcp)).await.map_err(|_| anyhow::anyhow!("TLS handshake timed out"))??;
    let peer_key = salt_transport::peer_public_key(tls.get_ref().1.peer_certificates()).ok_or_else(|| anyhow::anyhow!("no client key"))?;
    let (mut reader, mut writer) = tokio::io::split(tls);

    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame::<MinionMessage, _>(&mut reader, PRE_AUTH_MAX_FRAME)).await {
        Err(_) => return Err(anyhow::anyhow!("no hello within {HELLO_TIMEOUT:?}")),
        Ok(Ok(MinionMessage::Hello(h))) => h,
        Ok(Ok(other)) => {
            let reason = format!("expected hello before anything else, got {}", kind(&other));
            refuse(&mut writer, &reason).await;
            return Err(anyhow::anyhow!(reason));
        }
        Ok(Err(FrameError::Closed)) => return Ok(None),
        Ok(Err(e)) => {
            let reason = format!("bad first message: {e}");
            refuse(&mut writer, &reason).await;
            return Err(anyhow::anyhow!(reason));
        }
    };
    // Past the cap a minion is told why and when to try again; those connected stay untouched.
    let Some(room) = Room::take(&master.minion_slots, capacity) else {
        if let Some(n) = full.lock().unwrap_or_else(|e| e.into_inner()).one() {
            tracing::error!(
                "turned {n} minion(s) away: the master holds {capacity} minions, all its open files limit allows; raise the hard limit (LimitNOFILE) and max_open_files"
            );
        }
        let reason = format!("the master holds {capacity} minions, all its open files limit allows; retrying in about {BUSY_RETRY_SECS} s");
        let _ = write_frame(&mut writer, &MasterMessage::Busy { reason, retry_secs: BUSY_RETRY_SECS }, PRE_AUTH_MAX_FRAME).await;
        return Ok(None);
    };
    let Some(authenticating) = master.authenticating(&hello.id) else {
        let reason = format!("too many connections are authenticating as minion {} at once", hello.id);
        refuse(&mut writer, &reason).await;
        return Err(anyhow::anyhow!(reason));
    };
    let Some(id) = authenticate(master, &hello, &peer_key, &mut writer).await? else {
        return Ok(None);
    };
    // Authenticated: the minion's first message is its grains, in a frame of normal size.
    let grains = match tokio::time::timeout(HELLO_TIMEOUT, read_frame::<MinionMessage, _>(&mut reader, master.max_frame)).await {
        Ok(Ok(MinionMessage::Grains(grains))) => grains,
        Ok(Ok(other)) => return Err(anyhow::anyhow!("minion {id} sent {} before its grains", kind(&other))),
        Ok(Err(e)) => return Err(anyhow::anyhow!("minion {id}: {e}")),
        Err(_) => return Err(anyhow::anyhow!("minion {id} sent no grains within {HELLO_TIMEOUT:?}")),
    };
    drop((unauthenticated, authenticating));
    Ok(Some(Admitted { id, reader, writer, grains, _room: room }))
}

/// Checks the hello and the key; answers the minion. Returns the id when it may go on.
async fn authenticate<W: AsyncWrite + Unpin>(master: &Master, hello: &Hello, key: &[u8], writer: &mut W) -> anyhow::Result<Option<String>> {
    if hello.protocol != salt_proto::PROTOCOL_VERSION {
        let reason = format!("protocol version {} is not supported (the master speaks {})", hello.protocol, salt_proto::PROTOCOL_VERSION);
        refuse(writer, &reason).await;
        return Err(anyhow::anyhow!(reason));
    }
    if let Err(e) = salt_proto::id::validate_minion_id(&hello.id) {
        let reason = format!("invalid minion id: {e}");
        tracing::warn!("refused a connection: {reason}");
        refuse(writer, &reason).await;
        return Ok(None);
    }
    let id = hello.id.clone();
    let pem = salt_pki::pem_from_public_der(key);
    let state = master.keys().authorize(&id, &pem, &master.accept_policy())?;
    let (reply, act) = match state {
        KeyState::Accepted => (MasterMessage::Welcome { master_id: master.id().to_string() }, "accept"),
        KeyState::Pending => (MasterMessage::Pending { retry_secs: PENDING_RETRY_SECS }, "pend"),
        KeyState::Rejected => (MasterMessage::Rejected { reason: format!("the key of minion {id} has been rejected") }, "reject"),
        KeyState::Denied => {
            let reason = master.keys().denial_reason(&id);
            tracing::error!(
                "denied minion {id}: {reason}; the key it presented (fingerprint {}) was put in minions_denied",
                salt_transport::fingerprint(key)
            );
            (MasterMessage::Denied { reason }, "denied")
        }
    };
    let mut data = Map::new();
    data.insert("result".into(), (state != KeyState::Rejected && state != KeyState::Denied).into());
    data.insert("act".into(), act.into());
    data.insert("id".into(), id.clone().into());
    data.insert("pub".into(), pem.into());
    master.bus().fire("salt/auth".into(), data);
    write_frame(writer, &reply, PRE_AUTH_MAX_FRAME).await?;
    Ok((state == KeyState::Accepted).then_some(id))
}

fn fire_minion_start(master: &Master, id: &str) {
    let started = chrono::Utc::now().format("%a %b %d %H:%M:%S %Y").to_string();
    let mut data = Map::new();
    data.insert("id".into(), id.into());
    data.insert("cmd".into(), "_minion_event".into());
    data.insert("pretag".into(), Value::Null);
    data.insert("data".into(), format!("Minion {id} started at {started}").into());
    data.insert("tag".into(), format!("salt/minion/{id}/start").into());
    data.insert("ts".into(), unix_secs().into());
    master.bus().fire(format!("salt/minion/{id}/start"), data);
}

async fn read_loop<R: AsyncRead + Unpin>(master: &Master, id: &str, reader: &mut R) -> anyhow::Result<()> {
    loop {
        match read_frame::<MinionMessage, _>(reader, master.max_frame).await {
            Ok(MinionMessage::Return(ret)) => {
                let jid = ret.jid.clone();
                let acknowledge = match take_return(master, id, ret) {
                    Taken::Acknowledge => true,
                    // Boxed: the spooling's state is needed only while a return is spooled, not
                    // for the connection's life (and under 1 KiB, which glibc serves without
                    // consolidating its free lists, as it does for each larger request).
                    Taken::Spool(records) => Box::pin(spool_return(master, id, &jid, records)).await,
                };
                if acknowledge {
                    // Looked up each time rather than held, so dropping the connection closes it.
                    if let Some(tx) = master.sender(id) {
                        let _ = tx.send(Outgoing::Message(Box::new(MasterMessage::Ack { jid }))).await;
                    }
                }
            }
            Ok(MinionMessage::Grains(grains)) => master.store_grains(id, grains),
            Ok(MinionMessage::Hello(_)) => return Err(anyhow::anyhow!("minion {id} sent a second hello")),
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => return Err(anyhow::anyhow!("minion {id}: {e}")),
        }
    }
}

/// What to do with a return the master has taken in.
enum Taken {
    /// Acknowledge it: dropped as invalid, or stored already (a copy sent again).
    Acknowledge,
    /// Spool these records, then acknowledge it.
    Spool(Vec<Record>),
}

/// A return enters the system here: checked, fired as `salt/job/<jid>/ret/<id>` (the CLI is a
/// subscriber), and made into the records to spool for the job cache.
fn take_return(master: &Master, id: &str, mut ret: JobReturn) -> Taken {
    if ret.id != id {
        tracing::warn!("minion {id} sent a return claiming to be from {:?}; dropped", ret.id);
        return Taken::Acknowledge;
    }
    if let Err(e) = salt_proto::jid::validate_jid(&ret.jid) {
        tracing::warn!("minion {id} sent a return with {e}; dropped");
        return Taken::Acknowledge;
    }
    // Minions cut a return nested too deep to be read back from a store; so does the master,
    // for one that did not.
    if salt_proto::nesting::cut_deeper(&mut ret.ret) {
        tracing::warn!(
            "the return of job {} from {id} was nested deeper than {} levels; the deeper part was cut",
            ret.jid,
            salt_proto::nesting::MAX_DEPTH
        );
    }
    let jid = ret.jid.clone();
    let stored = match master.return_seen(&jid, id) {
        Some(ReturnSeen::Spooled) => {
            tracing::debug!("return of job {jid} from {id} received again; it is stored already");
            return Taken::Acknowledge;
        }
        None => {
            let mut load = ret.into_load();
            // Salt's stored load ends with `_stamp` then `ts`; a placeholder keeps `_stamp` in
            // place when the bus fills it in.
            load.insert("_stamp".into(), Value::Null);
            load.insert("ts".into(), unix_secs().into());
            let data = match &master.bus().fire(format!("salt/job/{jid}/ret/{id}"), load).data {
                Value::Object(data) => data.clone(),
                _ => Map::new(),
            };
            let (stamp, ts) = (data.get("_stamp").cloned().unwrap_or_default(), data.get("ts").cloned().unwrap_or_default());
            master.note_return(&jid, id, ReturnSeen::Fired { stamp, ts });
            data
        }
        // Received, not yet spooled (the spool failed, or the first copy is still on its way
        // to the disk): stored with the first copy's stamps, and no second event.
        Some(ReturnSeen::Fired { stamp, ts }) => {
            tracing::debug!("return of job {jid} from {id} received again; no second event");
            let mut load = ret.into_load();
            load.insert("_stamp".into(), stamp);
            load.insert("ts".into(), ts);
            load
        }
    };
    let mut records = vec![Record::Return { ret: stored }];
    if master.config().bool("job_cache_store_endtime").unwrap_or(false) {
        let time = salt_proto::jid::jid_to_time(&master.new_jid());
        records.push(Record::Endtime { jid, time });
    }
    Taken::Spool(records)
}

/// Spools a return's records. True when the master has them on disk (or keeps no job cache) and
/// may acknowledge the return; nothing here waits on the store itself.
async fn spool_return(master: &Master, id: &str, jid: &str, records: Vec<Record>) -> bool {
    for record in records {
        if let Err(e) = master.store_return(record).await {
            // Not acknowledged: the minion sends it again (store_return has logged the failure).
            tracing::debug!("cannot spool the return of job {jid} from {id}: {e}");
            return false;
        }
    }
    master.note_return(jid, id, ReturnSeen::Spooled);
    master.journal().returned(jid, id);
    true
}

/// Sends queued messages; when the queue closes (the master dropped this connection), closes
/// the connection so the minion notices and authenticates again.
async fn write_loop<W: AsyncWrite + Unpin>(mut writer: W, mut rx: mpsc::Receiver<Outgoing>, max: usize) {
    while let Some(out) = rx.recv().await {
        let written = match out {
            Outgoing::Message(msg) => write_frame(&mut writer, &msg, max).await,
            Outgoing::Shared(frame) => write_frame_bytes(&mut writer, &frame, max).await,
        };
        if let Err(e) = written {
            tracing::info!("write to minion failed: {e}");
            return;
        }
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut writer).await;
}

/// Watches the key directories (`salt-key` writes them): fires Salt's `salt/key` event for
/// each change, and drops the connections of minions whose keys are no longer accepted.
pub(crate) async fn watch_keys(master: std::sync::Arc<Master>) {
    let mut seen = master.keys().last_change();
    let mut states = key_states(&master);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = master.keys().last_change();
        if now == seen {
            continue;
        }
        seen = now;
        let current = key_states(&master);
        for (id, state) in &current {
            if states.get(id) != Some(state) {
                fire_key_event(
                    &master,
                    id,
                    match state {
                        KeyState::Accepted => "accept",
                        KeyState::Pending => "pend",
                        KeyState::Rejected => "reject",
                        KeyState::Denied => "denied",
                    },
                );
            }
        }
        for id in states.keys().filter(|id| !current.contains_key(*id)) {
            fire_key_event(&master, id, "delete");
        }
        states = current;
        for id in master.connected_minions() {
            if current_state(&states, &id) != Some(KeyState::Accepted) {
                tracing::warn!("the key of minion {id} is no longer accepted; closing its connection");
                master.disconnect(&id);
            }
        }
    }
}

/// Each id's key state; an id with an accepted key counts as accepted even if another key for
/// it sits in `minions_denied`.
fn key_states(master: &Master) -> std::collections::HashMap<String, KeyState> {
    let mut states = std::collections::HashMap::new();
    for state in [KeyState::Denied, KeyState::Rejected, KeyState::Pending, KeyState::Accepted] {
        for id in master.keys().list(state) {
            states.insert(id, state);
        }
    }
    states
}

fn current_state(states: &std::collections::HashMap<String, KeyState>, id: &str) -> Option<KeyState> {
    states.get(id).copied()
}

fn fire_key_event(master: &Master, id: &str, act: &str) {
    let mut data = Map::new();
    data.insert("act".into(), act.into());
    data.insert("id".into(), id.into());
    data.insert("result".into(), true.into());
    master.bus().fire("salt/key".into(), data);
}

async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, reason: &str) {
    let _ = write_frame(writer, &MasterMessage::Refused { reason: reason.to_string() }, PRE_AUTH_MAX_FRAME).await;
}

fn kind(msg: &MinionMessage) -> &'static str {
    match msg {
        MinionMessage::Hello(_) => "hello",
        MinionMessage::Grains(_) => "grains",
        MinionMessage::Return(_) => "a return",
    }
}

pub(crate) fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Dead peers (a minion host that vanished) are noticed within minutes, not hours.
fn keepalive(tcp: &TcpStream) {
    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60)).with_interval(Duration::from_secs(15));
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka);
}

/// `publish` signed with the master key and framed, once for every minion it goes to.
pub(crate) fn signed_publish(master: &Master, publish: &Publish) -> Option<Arc<[u8]>> {
    let framed = salt_proto::frame::encode(publish).and_then(|payload| {
        let signature = master.key().sign(&payload);
        salt_proto::frame::encode(&MasterMessage::Publish(SignedPublish { payload, signature }))
    });
    match framed {
        Ok(frame) => Some(frame.into()),
        Err(e) => {
            tracing::error!("cannot encode publish {}: {e}", publish.jid);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_message_is_small() {
        // Each connection's queue holds 32 of these from its start (see `Outgoing`).
        assert!(std::mem::size_of::<Outgoing>() <= 24, "{}", std::mem::size_of::<Outgoing>());
        assert!(std::mem::size_of::<MasterMessage>() > 24, "boxing is no longer worth it");
    }
}
