//! The minion's one connection to its master: dial out, prove who we are, then carry
//! publishes down and returns up until the connection drops; then back off and dial again.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use rand::Rng;
use salt_proto::frame::{read_frame, write_frame, write_frame_bytes, FrameError, PRE_AUTH_MAX_FRAME};
use salt_proto::message::{Hello, MasterMessage, MinionMessage, Publish, SignedPublish};
use salt_transport::{Backoff, MasterPin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::{jobs, Minion};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the master's key is cached after first contact (Salt's name).
const MASTER_KEY_FILE: &str = "minion_master.pub";

/// How a connection attempt ended.
enum Ended {
    /// Dropped or failed; try again after a back-off.
    Retry(String),
    /// The key waits for acceptance; ask again after this long.
    Pending(Duration),
    /// The master has no room for another minion (its open files limit); try again later.
    Full { reason: String, wait: Duration },
    /// The master will never accept us (rejected, denied, refused): stop.
    Fatal(String),
}

pub async fn run(minion: Arc<Minion>) -> anyhow::Result<()> {
    let cfg = &minion.config;
    let base = Duration::from_millis(cfg.u64("recon_default").unwrap_or(1000));
    let max = Duration::from_millis(cfg.u64("recon_max").unwrap_or(10000));
    let mut backoff = Backoff::new(base, max);
    let mut outage_logged = false;
    loop {
        match connect_once(&minion, &mut backoff).await {
            Ended::Fatal(reason) => {
                tracing::error!("{reason}");
                return Err(anyhow!(reason));
            }
            Ended::Pending(wait) => {
                tracing::warn!("The Salt Master has cached the public key for this node, this salt minion will wait for {} seconds before attempting to re-authenticate", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
            Ended::Full { reason, wait } => {
                tracing::warn!("The Salt Master is full: {reason}");
                tokio::time::sleep(wait).await;
            }
            Ended::Retry(reason) => {
                // One line per outage, not one per attempt.
                if !outage_logged {
                    tracing::warn!("connection to the master lost or refused: {reason}; retrying with back-off");
                    outage_logged = true;
                } else {
                    tracing::debug!("still cannot reach the master: {reason}");
                }
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        }
        outage_logged = false;
    }
}

async fn connect_once(minion: &Arc<Minion>, backoff: &mut Backoff) -> Ended {
    let cfg = &minion.config;
    let host = cfg.str("master").unwrap_or("salt").to_string();
    let port = cfg.u64("master_port").unwrap_or(4506);
    let addr = if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Ended::Retry(format!("cannot connect to {addr}: {e}")),
        Err(_) => return Ended::Retry(format!("connecting to {addr} timed out")),
    };
    let _ = tcp.set_nodelay(true);

    let cached_path = minion.pki_dir.join(MASTER_KEY_FILE);
    let cached = std::fs::read_to_string(&cached_path).ok().and_then(|pem| salt_pki::public_der_from_pem(&pem).ok());
    let first_contact = cached.is_none();
    let pin = Arc::new(MasterPin::new(cached, cfg.str("master_finger").map(str::to_string)));
    let connector = match salt_transport::minion_connector(minion.key.pkcs8_der(), &minion.id, pin.clone()) {
        Ok(c) => c,
        Err(e) => return Ended::Fatal(format!("cannot set up TLS: {e}")),
    };
    let tls = match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(salt_transport::server_name(), tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return Ended::Retry(format!("TLS with {addr} failed: {e}")),
        Err(_) => return Ended::Retry(format!("TLS with {addr} timed out")),
    };
    let Some(master_key) = pin.seen_key() else { return Ended::Retry("the master presented no key".into()) };
    let (mut reader, mut writer) = tokio::io::split(tls);

    let hello = MinionMessage::Hello(Hello { protocol: salt_proto::PROTOCOL_VERSION, id: minion.id.clone() });
    if let Err(e) = write_frame(&mut writer, &hello, PRE_AUTH_MAX_FRAME).await {
        return Ended::Retry(format!("sending hello failed: {e}"));
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, read_frame::<MasterMessage, _>(&mut reader, PRE_AUTH_MAX_FRAME)).await {
        Ok(Ok(MasterMessage::Welcome { master_id })) => {
            if first_contact {
                if let Err(e) = cache_master_key(&cached_path, &master_key) {
                    return Ended::Fatal(format!("cannot cache the master key in {}: {e}", cached_path.display()));
                }
            }
            tracing::info!("Authentication with master at {addr} successful (master id {master_id})");
            backoff.reset();
        }
        Ok(Ok(MasterMessage::Pending { retry_secs })) => {
            let wait = cfg.u64("acceptance_wait_time").unwrap_or(retry_secs).max(1);
            return Ended::Pending(Duration::from_secs(wait));
        }
        Ok(Ok(MasterMessage::Rejected { reason })) => {
            return Ended::Fatal(format!("The Salt Master has rejected this minion's public key: {reason}"))
        }
        Ok(Ok(MasterMessage::Denied { reason })) => {
            return Ended::Fatal(format!("The Salt Master has denied this minion's public key: {reason}"))
        }
        Ok(Ok(MasterMessage::Refused { reason })) => return Ended::Fatal(format!("The Salt Master refused this minion: {reason}")),
        Ok(Ok(MasterMessage::Busy { reason, retry_secs })) => {
            // Spread over half to one and a half times the wait, so a swarm turned away does
            // not come back at one instant.
            let millis = retry_secs.clamp(1, 3600) * 1000;
            let wait = Duration::from_millis(rand::rng().random_range(millis / 2..=millis * 3 / 2));
            return Ended::Full { reason, wait };
        }
        Ok(Ok(_)) => return Ended::Retry("the master answered the hello with something else".into()),
        Ok(Err(e)) => return Ended::Retry(format!("no answer to hello: {e}")),
        Err(_) => return Ended::Retry("no answer to hello in time".into()),
    }

    let master_pem = salt_pki::pem_from_public_der(&master_key);
    let max = minion.config.u64("max_frame_bytes").map(|v| v as usize).unwrap_or(salt_proto::frame::DEFAULT_MAX_FRAME);
    if let Err(e) = write_frame(&mut writer, &MinionMessage::Grains((*minion.grains).clone()), max).await {
        return Ended::Retry(format!("sending grains failed: {e}"));
    }
    minion.outbox.resend_unacked();
    let _up = SessionUp::new(minion);
    let sender = send_returns(minion, &mut writer, max);
    let receiver = receive_publishes(minion, &mut reader, &master_pem, max);
    let reason = tokio::select! {
        r = sender => r,
        r = receiver => r,
        r = resend_when_stalled(minion) => r,
    };
    Ended::Retry(reason)
}

/// Counts this session among the sessions up for as long as it lives.
struct SessionUp(Arc<std::sync::atomic::AtomicUsize>);

impl SessionUp {
    fn new(minion: &Minion) -> SessionUp {
        minion.sessions_up.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SessionUp(minion.sessions_up.clone())
    }
}

impl Drop for SessionUp {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn cache_master_key(path: &std::path::Path, der: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, salt_pki::pem_from_public_der(der))?;
    std::fs::rename(tmp, path)
}

/// Sends queued returns until a write fails; the failed one goes back to the outbox.
async fn send_returns<W: AsyncWrite + Unpin>(minion: &Minion, writer: &mut W, max: usize) -> String {
    loop {
        let mut ret = minion.outbox.next().await;
        // A return too large for a frame is cut to fit, visibly, rather than never arrive.
        let bytes = match salt_proto::fit::encode_return(&mut ret, max) {
            Ok((bytes, salt_proto::fit::Fitted::Whole)) => bytes,
            Ok((bytes, salt_proto::fit::Fitted::Cut { from, to })) => {
                tracing::warn!(
                    "the return of job {} is {from} bytes, over max_frame_bytes ({max}); its output was truncated to {to} bytes",
                    ret.jid
                );
                bytes
            }
            Err(e) => {
                minion.outbox.dead_letter(&ret, &format!("cannot encode the return: {e}"));
                continue;
            }
        };
        match write_frame_bytes(writer, &bytes, max).await {
            Ok(()) => minion.outbox.sent(ret),
            // Cannot happen after encode_return; should it, never retried (it would fail for
            // ever) and never silently lost.
            Err(FrameError::TooLarge { len, max }) => {
                minion.outbox.dead_letter(&ret, &format!("the return is {len} bytes, over max_frame_bytes ({max})"))
            }
            Err(e) => {
                minion.outbox.put_back(ret);
                return format!("sending a return failed: {e}");
            }
        }
    }
}

/// Sends unacknowledged returns again when the master has acknowledged none for Salt's
/// `return_retry_timer` seconds (jittered up to `return_retry_timer_max`). Unlike Salt, which
/// gives up after `return_retry_tries`, it never stops: the return stays until the master has it.
async fn resend_when_stalled(minion: &Minion) -> String {
    let min = minion.config.u64("return_retry_timer").unwrap_or(5).max(1);
    let max = minion.config.u64("return_retry_timer_max").unwrap_or(10).max(min);
    loop {
        minion.outbox.until_awaiting_ack().await;
        let patience = Duration::from_millis(rand::rng().random_range(min * 1000..=max * 1000));
        tokio::time::sleep(patience / 2).await;
        let resent = minion.outbox.resend_if_stalled(patience);
        if resent > 0 {
            tracing::warn!("the master acknowledged none of {resent} returns for {patience:?}; sending them again");
        }
    }
}

async fn receive_publishes<R: AsyncRead + Unpin>(minion: &Arc<Minion>, reader: &mut R, master_pem: &str, max: usize) -> String {
    loop {
        match read_frame::<MasterMessage, _>(reader, max).await {
            Ok(MasterMessage::Publish(signed)) => match check_publish(minion, &signed, master_pem) {
                Ok(publish) => jobs::spawn(minion.clone(), publish),
                Err(reason) => tracing::warn!("dropped a publish: {reason}"),
            },
            Ok(MasterMessage::Ack { jid }) => minion.outbox.acked(&jid),
            Ok(other) => tracing::warn!("unexpected message from the master: {other:?}"),
            Err(FrameError::Closed) => return "the master closed the connection".into(),
            Err(e) => return format!("reading from the master failed: {e}"),
        }
    }
}

/// A publish runs only if the master signed it, its target names us, it has not expired, and its jid
/// is new.
fn check_publish(minion: &Minion, signed: &SignedPublish, master_pem: &str) -> anyhow::Result<Publish> {
    if !salt_pki::verify(master_pem, &signed.payload, &signed.signature) {
        return Err(anyhow!("bad signature"));
    }
    let publish: Publish = salt_proto::frame::decode(&signed.payload).context("malformed publish")?;
    salt_proto::jid::validate_jid(&publish.jid)?;
    if !targets_us(minion, &publish)? {
        return Err(anyhow!("job {} targets {} {}, which is not this minion", publish.jid, publish.tgt_type, publish.tgt));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    if publish.expires_at_ms < now {
        return Err(anyhow!("job {} expired {} ms ago", publish.jid, now - publish.expires_at_ms));
    }
    if !minion.jobs.first_sight(&publish.jid) {
        return Err(anyhow!("job {} was already received (replay or duplicate)", publish.jid));
    }
    Ok(publish)
}

/// Whether the publish's target names this minion, by its id and its own grains: the master
/// signs one publish for all the minions it targets, and each minion checks, as Salt's do.
fn targets_us(minion: &Minion, publish: &Publish) -> anyhow::Result<bool> {
    let tgt_type = salt_targeting::TargetType::from_str(&publish.tgt_type)
        .map_err(|e| anyhow!("job {} has an unknown target type: {e}", publish.jid))?;
    let delimiter = publish.kwargs.get("delimiter").and_then(serde_json::Value::as_str).unwrap_or(":");
    let matcher = salt_targeting::Matcher::new(&publish.tgt, tgt_type, delimiter)
        .map_err(|e| anyhow!("job {} has a target this minion cannot read: {e}", publish.jid))?;
    Ok(matcher.matches(&minion.id, &minion.grains))
}
