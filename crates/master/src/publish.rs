//! Publishing a job: resolve the target, check the caller's rights, subscribe to the job's
//! events, record the job, send each connected minion its signed copy.

use std::str::FromStr;
use std::sync::Arc;

use salt_proto::message::{Publish, PublishRequest};
use salt_targeting::{Matcher, TargetType};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::acl::{self, Caller};
use crate::events::Event;
use crate::journal::Entry;
use crate::minions::{send_publish, unix_millis};
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

pub(crate) fn publish(master: &Master, caller: &Caller, mut req: PublishRequest) -> Result<Published, NotPublished> {
    let tgt_type = TargetType::from_str(&req.tgt_type).map_err(|e| NotPublished::Invalid(e.to_string()))?;
    let delimiter = req.kwargs.get("delimiter").and_then(Value::as_str).unwrap_or(":").to_string();
    let matcher = Matcher::new(&req.tgt, tgt_type, &delimiter).map_err(|e| NotPublished::Invalid(format!("Invalid target: {e}")))?;
    // Rights first, so a refused caller cannot tell which minions exist from the answer.
    let refused = |reason: String| {
        tracing::warn!("{reason}");
        NotPublished::Refused(reason)
    };
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
    let known: std::collections::HashSet<&str> =
        if listed.is_empty() { Default::default() } else { accepted.iter().map(String::as_str).collect() };
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
    // Secrets in --return_kwargs reach the minions, but never a stored load or an event.
    let shown_kwargs = salt_returners::redact::redact_map(&req.kwargs);

    let jid = master.new_jid();
    let user = caller.name.clone();
    let not_connected: Vec<String> = minions.iter().filter(|id| !master.is_connected(id)).cloned().collect();
    // Subscribe before anything is sent, so no return can slip past the publisher.
    let events = master.bus().subscribe(format!("salt/job/{jid}/"), EVENT_QUEUE);

    let mut new = Map::new();
    new.insert("jid".into(), jid.clone().into());
    new.insert("tgt_type".into(), req.tgt_type.clone().into());
    new.insert("tgt".into(), req.tgt.clone());
    new.insert("user".into(), user.clone().into());
    new.insert("fun".into(), req.fun.clone().into());
    new.insert("arg".into(), Value::Array(req.arg.clone()));
    new.insert("minions".into(), minions.clone().into());
    new.insert("missing".into(), missing.clone().into());
    master.bus().fire(format!("salt/job/{jid}/new"), new);

    let mut stored_req = req.clone();
    stored_req.kwargs = shown_kwargs;
    let load = clear_load(&jid, &user, &stored_req);
    let template = Publish {
        jid: jid.clone(),
        minion: String::new(),
        fun: req.fun.clone(),
        arg: req.arg.clone(),
        tgt: req.tgt.clone(),
        tgt_type: req.tgt_type.clone(),
        ret: req.ret.clone(),
        user: user.clone(),
        expires_at_ms: unix_millis() + master.publish_ttl.as_millis() as u64,
        kwargs: req.kwargs.clone(),
    };
    let reachable: Vec<String> = minions.iter().filter(|m| !not_connected.contains(m)).cloned().collect();
    // On disk before anything is sent or the jid is printed: a master that dies now sends the
    // job when it comes back (see crate::journal).
    // If the journal cannot be written (a full disk), the job still goes out: refusing every
    // job would be worse than losing this one to a second fault, a master crash in the next
    // instant. The failure is logged once per outage.
    let entry = Entry { publish: template, load, minions: reachable };
    master.journal().record(&entry);
    master.store_load(Record::Load { jid: jid.clone(), load: entry.load, minions: minions.clone() });
    for minion in &entry.minions {
        send_publish(master, &Publish { minion: minion.clone(), ..entry.publish.clone() });
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

    Ok(Published { jid, minions, missing, not_connected, events })
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
