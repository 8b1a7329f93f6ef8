//! Publishing a job: resolve the target, check the caller's rights, subscribe to the job's
//! events, record the job, send each connected minion its signed copy.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use salt_proto::message::{Publish, PublishRequest};
use salt_targeting::{Matcher, TargetType};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::acl::{self, Caller};
use crate::events::Event;
use crate::journal::Entry;
use crate::minions::{signed_publish, unix_millis};
use crate::Master;
use salt_returners::spool::Record;

/// Events queued for one publisher before they are dropped.
pub(crate) const EVENT_QUEUE: usize = 65536;

/// A job that went out.
pub(crate) struct Published {
    pub jid: String,
    pub minions: Vec<String>,
    pub missing: Vec<String>,
    pub not_connected: Vec<String>,
    /// Every `salt/job/<jid>/...` event, from before the first copy was sent.
    pub events: mpsc::Receiver<Arc<Event>>,
}

/// Why a job did not go out; each is a text the CLI shows.
pub(crate) enum NotPublished {
    NoMinions(String),
    Refused(String),
    Invalid(String),
}

/// A job whose target is resolved and whose caller may send it, with its jid: a publish sends
/// it to every target at once, a batch slice by slice under that one jid.
pub(crate) struct Job {
    pub jid: String,
    /// Every minion the target matched.
    pub minions: Vec<String>,
    /// Salt's `missing`: ids a list target names that have no accepted key.
    pub missing: Vec<String>,
    /// The request as the minions get it (with the `ext_job_cache` returner added).
    request: PublishRequest,
    /// The load the job cache stores (secrets redacted).
    load: Map<String, Value>,
    user: String,
}

pub(crate) fn publish(master: &Master, caller: &Caller, req: PublishRequest) -> Result<Published, NotPublished> {
    let job = prepare(master, caller, req)?;
    // Subscribe before anything is sent, so no return can slip past the publisher.
    let events = master.bus().subscribe(format!("salt/job/{}/", job.jid), EVENT_QUEUE);
    let not_connected = send(master, &job, &job.minions);
    Ok(Published { jid: job.jid, minions: job.minions, missing: job.missing, not_connected, events })
}

/// Resolves the target, checks the caller's rights and assigns the jid; sends nothing.
fn prepare(master: &Master, caller: &Caller, mut req: PublishRequest) -> Result<Job, NotPublished> {
    let tgt_type = TargetType::from_str(&req.tgt_type).map_err(|e| NotPublished::Invalid(e.to_string()))?;
    let delimiter = req.kwargs.get("delimiter").and_then(Value::as_str).unwrap_or(":").to_string();
    let matcher = Matcher::new(&req.tgt, tgt_type, &delimiter).map_err(|e| NotPublished::Invalid(format!("Invalid target: {e}")))?;
    // Rights first, so a refused caller cannot tell which minions exist from the answer.
    acl::may_publish_fun(master.config(), caller, &req.fun).map_err(refused)?;
    let returners: Vec<&str> = req.ret.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
    let with_options = req.kwargs.contains_key("ret_config") || req.kwargs.contains_key("ret_kwargs");
    acl::may_choose_returners(master.config(), caller, &returners, with_options).map_err(refused)?;
    // Data nested deeper than the stores can read back is refused here, not stored unreadable.
    for (i, arg) in req.arg.iter().enumerate() {
        salt_proto::nesting::check(&format!("argument {} is", i + 1), arg).map_err(NotPublished::Invalid)?;
    }
    for (name, value) in &req.kwargs {
        salt_proto::nesting::check(&format!("keyword argument {name} is"), value).map_err(NotPublished::Invalid)?;
    }
    // An unreadable key directory (out of descriptors, say) is that error, not "no minions".
    let accepted = master.accepted_ids().map_err(|e| NotPublished::Invalid(e.to_string()))?;
    let minions = master.minions_matching(&matcher, &accepted);
    // Salt's `missing`: ids a list target names that have no accepted key.
    let listed = matcher.listed_ids().unwrap_or_default();
    let known: HashSet<&str> = if listed.is_empty() { Default::default() } else { accepted.iter().map(String::as_str).collect() };
    let missing: Vec<String> = listed.iter().filter(|id| !known.contains(id.as_str())).cloned().collect();
    if minions.is_empty() {
        return Err(NotPublished::NoMinions(format!("Master could not resolve minions for target {}", target_text(&req.tgt))));
    }
    acl::may_publish(master.config(), caller, &req.fun, &minions).map_err(refused)?;

    // With an ext_job_cache, every minion also returns to it (Salt's `_prep_pub`).
    if let Some(ext) = master.ext_job_cache_name() {
        if !req.ret.split(',').any(|r| r == ext) {
            req.ret = if req.ret.is_empty() { ext.to_string() } else { format!("{},{ext}", req.ret) };
        }
    }
    let jid = master.new_jid();
    let user = caller.name.clone();
    // Secrets in --return_kwargs reach the minions, but never a stored load or an event.
    let mut stored_req = req.clone();
    stored_req.kwargs = salt_returners::redact::redact_map(&req.kwargs);
    let load = clear_load(&jid, &user, &stored_req);
    Ok(Job { jid, minions, missing, request: req, load, user })
}

/// A refusal, logged: an operator wants to see who tried what.
fn refused(reason: String) -> NotPublished {
    tracing::warn!("{reason}");
    NotPublished::Refused(reason)
}

/// Sends `job` to `to`, some or all of its minions: announces it, journals it, stores its load
/// with `to` as its minions (the job cache merges the lists of a jid sent more than once, as
/// Salt 3008's does for batches), and sends each connected minion its signed copy. Returns the
/// minions of `to` that had no connection.
fn send(master: &Master, job: &Job, to: &[String]) -> Vec<String> {
    let req = &job.request;
    let jid = &job.jid;
    let (reachable, not_connected): (Vec<String>, Vec<String>) = to.iter().cloned().partition(|id| master.is_connected(id));

    let mut new = Map::new();
    new.insert("jid".into(), jid.clone().into());
    new.insert("tgt_type".into(), req.tgt_type.clone().into());
    new.insert("tgt".into(), req.tgt.clone());
    new.insert("user".into(), job.user.clone().into());
    new.insert("fun".into(), req.fun.clone().into());
    new.insert("arg".into(), Value::Array(req.arg.clone()));
    new.insert("minions".into(), to.to_vec().into());
    new.insert("missing".into(), job.missing.clone().into());
    master.bus().fire(format!("salt/job/{jid}/new"), new);

    let template = Publish {
        jid: jid.clone(),
        fun: req.fun.clone(),
        arg: req.arg.clone(),
        tgt: req.tgt.clone(),
        tgt_type: req.tgt_type.clone(),
        ret: req.ret.clone(),
        user: job.user.clone(),
        expires_at_ms: unix_millis() + master.publish_ttl.as_millis() as u64,
        kwargs: req.kwargs.clone(),
    };
    // On disk before anything is sent or the jid is printed: a master that dies now sends the
    // job when it comes back (see crate::journal).
    // If the journal cannot be written (a full disk), the job still goes out: refusing every
    // job would be worse than losing this one to a second fault, a master crash in the next
    // instant. The failure is logged once per outage.
    let entry = Entry { publish: template, load: job.load.clone(), minions: reachable };
    master.journal().record(&entry);
    master.store_load(Record::Load { jid: jid.clone(), load: entry.load, minions: to.to_vec() });
    // One signature and one encoding for every minion (each checks the target itself).
    if let Some(frame) = signed_publish(master, &entry.publish) {
        let unsent = master.send_to_each(&entry.minions, &frame);
        if !unsent.is_empty() {
            let shown: Vec<&str> = unsent.iter().take(10).map(|id| id.as_str()).collect();
            let more = if unsent.len() > shown.len() { format!(" and {} more", unsent.len() - shown.len()) } else { String::new() };
            tracing::warn!("cannot queue job {jid} for {}{more}: disconnected, or their queues are full", shown.join(", "));
        }
    }

    let mut published = Map::new();
    published.insert("fun".into(), req.fun.clone().into());
    published.insert("arg".into(), Value::Array(req.arg.clone()));
    published.insert("tgt".into(), req.tgt.clone());
    published.insert("jid".into(), jid.clone().into());
    published.insert("ret".into(), req.ret.clone().into());
    published.insert("tgt_type".into(), req.tgt_type.clone().into());
    published.insert("user".into(), job.user.clone().into());
    master.bus().fire(format!("salt/job/{jid}/publish"), published);
    not_connected
}

/// A batch job (`salt -b`) a connection started: Salt 3008 sends every slice of a batch under
/// one jid. The connection that started it holds it, so no one else can send it (or anything
/// under its jid) to more minions.
pub(crate) struct Batch {
    job: Job,
    /// Targets the job has not been sent to yet: a slice may name only these, so each minion
    /// gets the job once.
    unsent: HashSet<String>,
}

/// Starts a batch: what [`publish`] does, except sending. `not_connected` in the answer are the
/// targets without a connection now (Salt's batch pings first and leaves those out).
pub(crate) fn start_batch(master: &Master, caller: &Caller, req: PublishRequest) -> Result<(Batch, Published), NotPublished> {
    let job = prepare(master, caller, req)?;
    let events = master.bus().subscribe(format!("salt/job/{}/", job.jid), EVENT_QUEUE);
    let not_connected: Vec<String> = job.minions.iter().filter(|id| !master.is_connected(id)).cloned().collect();
    let published = Published { jid: job.jid.clone(), minions: job.minions.clone(), missing: job.missing.clone(), not_connected, events };
    let unsent = job.minions.iter().cloned().collect();
    Ok((Batch { job, unsent }, published))
}

impl Batch {
    /// Sends the job to `minions`, targets it has not been sent to; returns those not connected.
    /// The caller's rights are checked again for these minions (as for any publish).
    pub(crate) fn send_slice(&mut self, master: &Master, caller: &Caller, minions: &[String]) -> Result<Vec<String>, NotPublished> {
        if minions.is_empty() {
            return Err(NotPublished::Invalid(format!("a slice of batch job {} names no minion", self.job.jid)));
        }
        let mut seen = HashSet::new();
        if let Some(bad) = minions.iter().find(|id| !self.unsent.contains(*id) || !seen.insert(id.as_str())) {
            return Err(NotPublished::Invalid(format!(
                "{bad} is not a target of batch job {} that the job has not been sent to yet",
                self.job.jid
            )));
        }
        acl::may_publish(master.config(), caller, &self.job.request.fun, minions).map_err(refused)?;
        for id in minions {
            self.unsent.remove(id);
        }
        Ok(send(master, &self.job, minions))
    }
}

/// The publish load as Salt's master stores it (`jids.load`): cmd, tgt, fun, arg, tgt_type, ret,
/// jid, kwargs, user.
fn clear_load(jid: &str, user: &str, req: &PublishRequest) -> Map<String, Value> {
    let mut load = Map::new();
    load.insert("cmd".into(), "publish".into());
    load.insert("tgt".into(), req.tgt.clone());
    load.insert("fun".into(), req.fun.clone().into());
    load.insert("arg".into(), Value::Array(req.arg.clone()));
    load.insert("tgt_type".into(), req.tgt_type.clone().into());
    load.insert("ret".into(), req.ret.clone().into());
    load.insert("jid".into(), jid.into());
    if !req.kwargs.is_empty() {
        load.insert("kwargs".into(), Value::Object(req.kwargs.clone()));
    }
    load.insert("user".into(), user.into());
    load
}

fn target_text(tgt: &Value) -> String {
    match tgt {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
