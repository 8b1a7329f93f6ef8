//! Pure: records to documents (Salt's shapes, and the job cache's own), the `_bulk` body and
//! its answer, the index definitions, and the bodies of the searches the store makes.
//!
//! The documents:
//! - Salt's per-function document, in `salt-<fun>` (an alias of `salt-<fun>-v1`):
//!   `{"@timestamp", "success", "retcode", "minion", "fun", "jid", "counts", "data"}`, with
//!   dots in the keys of `data` made `_` (Salt's `_convert_keys`) and the state options applied;
//! - the job cache's copy of each return, in `<master_job_cache_index>-returns`:
//!   `{"jid", "id", "fun", "@timestamp", "bytes", "full_ret"}`, `full_ret` the return as it came
//!   (not indexed, so no return can clash with another's field types), id `<jid>:<minion>`;
//! - a job, in `<master_job_cache_index>`: Salt's `{"jid", "load"}` with id = jid, plus the
//!   load's small fields as keywords (`fun`, `tgt`, `tgt_type`, `user`), `@timestamp` (the
//!   jid's time) and `bytes`;
//! - an event, in `<master_event_index>`: Salt's `{"tag", "data"}`.
//!
//! Every document is written with `create` under an id derived from its content's identity, so
//! a batch written twice (the spool retries after a lost answer) stores each document once.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::config::Layout;
use crate::json::dumps_map;
use crate::options::truthy;
use crate::record::ReturnRecord;
use crate::{Event, Load};

/// Salt's state functions (`STATE_FUNCTIONS`) and the index `states_single_index` gives them.
const STATE_FUNCTIONS: [&str; 3] = ["state.apply", "state.highstate", "state.sls"];
const STATE_INDEX: &str = "salt-state_apply";
/// A return nested deeper than this is refused: it could be stored but never read back
/// (answers are parsed with serde_json's nesting limit of 128, and a document sits a few
/// levels down in an answer).
pub(crate) const MAX_DEPTH: usize = 100;
/// The size assumed for a document stored without one (Salt's own job documents).
pub(crate) const UNKNOWN_DOC_BYTES: usize = 64 * 1024;
/// The load fields a job listing reads (`format::summary_from_load` uses these).
pub(crate) const SUMMARY_FIELDS: [&str; 8] =
    ["load.fun", "load.arg", "load.fun_args", "load.tgt", "load.tgt_type", "load.user", "load.metadata", "load.kwargs.metadata"];

/// What a document is for, which decides what its refusal costs: the job cache's documents
/// and events are the record (a refusal rejects it); Salt's per-function document is a view
/// of a return the job cache also keeps (a refusal is logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    PerFunction,
    Return,
    Load,
    Event,
}

/// One document for `_bulk`.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// The place of its record in the batch (the caller sets it).
    pub record: usize,
    pub role: Role,
    /// The alias it goes to.
    pub index: String,
    pub id: String,
    /// The document's JSON text.
    pub source: String,
}

impl Doc {
    /// `create` (a second write of the id is refused, so a retried batch stores nothing twice);
    /// into an alias, `require_alias`: were the index deleted, the server would otherwise create
    /// a bare one under the alias's name with guessed mappings.
    fn action(&self, require_alias: bool) -> String {
        let mut create = json!({"_index": self.index, "_id": self.id});
        if require_alias {
            create["require_alias"] = true.into();
        }
        json!({ "create": create }).to_string()
    }

    /// Its bytes in a `_bulk` body.
    pub fn bytes(&self) -> usize {
        self.source.len() + self.index.len() + self.id.len() + 40
    }
}

/// The `_bulk` body (NDJSON) that creates `docs`; `is_alias` says which indices are aliases.
pub(crate) fn bulk_body(docs: &[Doc], is_alias: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(docs.iter().map(Doc::bytes).sum());
    for doc in docs {
        body.extend_from_slice(doc.action(is_alias(&doc.index)).as_bytes());
        body.push(b'\n');
        body.extend_from_slice(doc.source.as_bytes());
        body.push(b'\n');
    }
    body
}

/// What became of one document of a `_bulk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Created, or there already (409 on `create`: an earlier write of the same document).
    Stored,
    /// The server is busy or failing (429, 5xx): write the batch again later.
    RetryLater(String),
    /// The server refuses this document (a mapping conflict, a bad name): for good.
    Refused(String),
    /// Its index is gone (deleted since it was made): make it again, then write the document.
    IndexGone,
}

/// The outcome of each document from a `_bulk` answer of `expected` items.
pub(crate) fn bulk_outcomes(answer: &Value, expected: usize) -> Result<Vec<Outcome>, String> {
    let items = answer.get("items").and_then(Value::as_array).ok_or("a _bulk answer without items")?;
    if items.len() != expected {
        return Err(format!("a _bulk answer with {} items for {expected} documents", items.len()));
    }
    items
        .iter()
        .map(|item| {
            let result = item.as_object().and_then(|m| m.values().next()).ok_or("a _bulk answer item without its operation")?;
            let status = result.get("status").and_then(Value::as_u64).ok_or("a _bulk answer item without a status")?;
            let error_type = result.pointer("/error/type").and_then(Value::as_str);
            Ok(match status {
                200..=299 | 409 => Outcome::Stored,
                404 if error_type == Some("index_not_found_exception") => Outcome::IndexGone,
                429 | 500..=599 => Outcome::RetryLater(format!("{status} {}", error_text(result.get("error")))),
                _ => Outcome::Refused(format!("{status} {}", error_text(result.get("error")))),
            })
        })
        .collect()
}

/// `type: reason (caused by: ...)` of an Elasticsearch error object, short.
pub(crate) fn error_text(error: Option<&Value>) -> String {
    let Some(error) = error else { return String::new() };
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut text = match error {
        Value::Object(_) => format!("{}: {}", field(error, "type"), field(error, "reason")),
        other => other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string()),
    };
    if let Some(cause) = error.get("caused_by") {
        text.push_str(&format!(" (caused by {}: {})", field(cause, "type"), field(cause, "reason")));
    }
    if text.len() > 512 {
        let cut = (0..=512).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// The documents of one return: the job cache's copy, the job for a `req` return (Salt's
/// returners save such a return as its job's load), and Salt's per-function document unless
/// Salt would skip it. `Ok(None)`: a return not to store (`nocache`); `Err`: why it is refused.
pub(crate) fn return_docs(ret: &Load, layout: &Layout, now: DateTime<Utc>) -> Result<Option<Vec<Doc>>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = rec.fun()?;
    if deeper_than(rec.value, MAX_DEPTH) {
        return Err(format!("the return of {} is nested more than {MAX_DEPTH} levels deep", rec.id));
    }
    let full_ret = dumps_map(&rec.full);
    let mut small = Map::new();
    small.insert("jid".into(), rec.jid.clone().into());
    small.insert("id".into(), rec.id.into());
    small.insert("fun".into(), fun.into());
    small.insert("@timestamp".into(), iso(now.naive_utc()).into());
    let mut docs = Vec::with_capacity(3);
    docs.push(Doc {
        record: 0,
        role: Role::Return,
        index: layout.returns_index(),
        id: format!("{}:{}", rec.jid, rec.id),
        source: with_raw(small, "full_ret", &full_ret),
    });
    if rec.req {
        docs.push(job_doc(&rec.jid, &rec.full, full_ret, layout));
    }
    if let Some((index, doc)) = per_function_doc(&rec, fun, layout, now) {
        docs.push(Doc { record: 0, role: Role::PerFunction, id: format!("{}:{}", rec.jid, rec.id), index, source: doc.to_string() });
    }
    Ok(Some(docs))
}

/// The job document of a publish load.
pub(crate) fn load_doc(jid: &str, load: &Load, layout: &Layout) -> Doc {
    job_doc(jid, load, dumps_map(load), layout)
}

fn job_doc(jid: &str, load: &Load, load_text: String, layout: &Layout) -> Doc {
    let mut small = Map::new();
    small.insert("jid".into(), jid.into());
    let started = salt_proto::jid::jid_datetime(jid).unwrap_or_else(|| Utc::now().naive_utc());
    small.insert("@timestamp".into(), iso(started).into());
    // The listing fields as keywords, when they have a keyword's shape (a dashboard filters on
    // them; the listing itself reads the load).
    for key in ["fun", "tgt_type", "user"] {
        if let Some(Value::String(s)) = load.get(key) {
            small.insert(key.into(), s.clone().into());
        }
    }
    match load.get("tgt") {
        Some(Value::String(s)) => {
            small.insert("tgt".into(), s.clone().into());
        }
        Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => {
            small.insert("tgt".into(), Value::Array(ids.clone()));
        }
        _ => {}
    }
    Doc {
        record: 0,
        role: Role::Load,
        index: layout.master_job_cache_index.clone(),
        id: jid.to_string(),
        source: with_raw(small, "load", &load_text),
    }
}

/// An event's document (Salt's `{"tag", "data"}`), its id a digest of its content: the same
/// event written twice is stored once.
pub(crate) fn event_doc(event: &Event, layout: &Layout, now: DateTime<Utc>) -> Result<Doc, String> {
    if deeper_than(&event.data, MAX_DEPTH) {
        return Err(format!("event {}: data nested more than {MAX_DEPTH} levels deep", event.tag));
    }
    let data = match &event.data {
        Value::Object(m) => dumps_map(m),
        other => other.to_string(),
    };
    let mut index = layout.master_event_index.clone();
    if layout.index_date {
        let stamp = event.data.get("_stamp").and_then(Value::as_str).and_then(parse_stamp);
        index = format!("{index}-{}", day(stamp.unwrap_or_else(|| now.naive_utc())));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{}\n{data}", event.tag).as_bytes());
    let id = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    let source = format!("{{\"tag\":{},\"data\":{data}}}", Value::String(event.tag.clone()));
    Ok(Doc { record: 0, role: Role::Event, index, id, source })
}

/// Salt's per-function document, and its index; `None` where Salt writes none (a blacklisted
/// function, a return of `None`).
fn per_function_doc(rec: &ReturnRecord<'_>, fun: &str, layout: &Layout, now: DateTime<Utc>) -> Option<(String, Value)> {
    if layout.functions_blacklist.iter().any(|f| f == fun) {
        return None;
    }
    if rec.value.is_null() && rec.full.get("data").is_none_or(Value::is_null) {
        return None;
    }
    let state = STATE_FUNCTIONS.contains(&fun);
    let mut index = if state && layout.states_single_index { STATE_INDEX.to_string() } else { format!("salt-{}", index_part(fun)) };
    if layout.index_date {
        // The job's day, not the writing day: a return retried after midnight lands where its
        // first write did.
        index = format!("{index}-{}", day(salt_proto::jid::jid_datetime(&rec.jid).unwrap_or_else(|| now.naive_utc())));
    }
    let mut data = rec.value.clone();
    let mut counts = Map::new();
    if state {
        match data {
            Value::Object(states) if layout.states_order_output => {
                index.push_str("-ordered");
                data = Value::Object(ordered_states(states));
            }
            Value::Object(_) => {}
            // A failed state run's message: Salt wraps it so `data` stays an object.
            other => data = json!({ "return": other }),
        }
        if layout.states_count {
            counts = count_states(&data);
        }
    }
    let retcode = rec.full.get("retcode").cloned().unwrap_or(json!(1));
    let doc = json!({
        "@timestamp": iso(now.naive_utc()),
        "success": !truthy(&retcode),
        "retcode": retcode,
        "minion": rec.id,
        "fun": fun,
        "jid": rec.jid,
        "counts": counts,
        "data": convert_keys(data),
    });
    Some((index, doc))
}

/// `salt-<fun>`'s part from the function: dots become `_` (Salt), and what Elasticsearch refuses
/// in an index name (capitals, `:`, `*`, ...) becomes `_` too (Salt's write fails).
fn index_part(fun: &str) -> String {
    let mut part: String = fun
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '_',
        })
        .collect();
    part.truncate(200);
    part
}

/// Salt's `states_order_output`: each state's key prefixed with its zero-padded `__run_num__`,
/// and its function (`file.managed`) in `_func`. A state without a run number keeps its key
/// (Salt's returner fails on it).
fn ordered_states(states: Map<String, Value>) -> Map<String, Value> {
    let width = states.len().to_string().len();
    states
        .into_iter()
        .map(|(uid, mut data)| {
            let Value::Object(state) = &mut data else { return (uid, data) };
            let parts: Vec<&str> = uid.split("_|-").collect();
            state.insert("_func".into(), format!("{}.{}", parts[0], parts[parts.len() - 1]).into());
            let key = match state.get("__run_num__") {
                Some(Value::String(n)) => format!("{}_|-{uid}", zfill(n, width)),
                Some(n @ Value::Number(_)) => format!("{}_|-{uid}", zfill(&n.to_string(), width)),
                _ => uid,
            };
            (key, data)
        })
        .collect()
}

/// Python's `str.zfill`.
fn zfill(s: &str, width: usize) -> String {
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let zeros = "0".repeat(width - len);
    match s.strip_prefix(['-', '+']) {
        Some(rest) => format!("{}{zeros}{rest}", &s[..1]),
        None => format!("{zeros}{s}"),
    }
}

/// Salt's `states_count`: a state whose `result` is `false` failed, any other succeeded (test
/// mode's `None` too). A state that is not a map (an error message) failed; Salt's returner
/// fails on it.
fn count_states(data: &Value) -> Map<String, Value> {
    let (mut succeeded, mut failed) = (0u64, 0u64);
    for state in data.as_object().into_iter().flat_map(Map::values) {
        match state {
            Value::Object(s) if s.get("result") == Some(&Value::Bool(false)) => failed += 1,
            Value::Object(_) => succeeded += 1,
            _ => failed += 1,
        }
    }
    let mut counts = Map::new();
    counts.insert("succeeded".into(), succeeded.into());
    counts.insert("failed".into(), failed.into());
    counts
}

/// Salt's `_convert_keys`: dots in keys become `_` (a dot in a field name means an object to
/// Elasticsearch), the original key kept in `_orig_key`. Salt keeps only the last of several
/// such keys of one map; here `_orig_key` lists them all when there are more than one.
pub(crate) fn convert_keys(value: Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            let mut originals = Vec::new();
            for (key, sub) in m {
                if key.contains('.') {
                    if originals.is_empty() {
                        // Where Salt puts it: before the first converted key.
                        out.insert("_orig_key".into(), Value::Null);
                    }
                    out.insert(key.replace('.', "_"), convert_keys(sub));
                    originals.push(Value::String(key));
                } else {
                    out.insert(key, convert_keys(sub));
                }
            }
            match originals.len() {
                0 => {}
                1 => {
                    out.insert("_orig_key".into(), originals.pop().unwrap_or_default());
                }
                _ => {
                    out.insert("_orig_key".into(), Value::Array(originals));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(convert_keys).collect()),
        other => other,
    }
}

/// Whether `value` nests more than `limit` maps and lists.
pub(crate) fn deeper_than(value: &Value, limit: usize) -> bool {
    match value {
        Value::Object(m) => limit == 0 || m.values().any(|v| deeper_than(v, limit - 1)),
        Value::Array(a) => limit == 0 || a.iter().any(|v| deeper_than(v, limit - 1)),
        _ => false,
    }
}

/// `{small..., "bytes": N, "<key>": raw}`: a document whose big part is JSON text already.
fn with_raw(mut small: Map<String, Value>, key: &str, raw: &str) -> String {
    small.insert("bytes".into(), raw.len().into());
    let head = Value::Object(small).to_string();
    let head = head.strip_suffix('}').unwrap_or(&head);
    format!("{head},{}:{raw}}}", Value::String(key.into()))
}

/// An ISO 8601 time in UTC, as Python's `datetime.now(utc).isoformat()` writes it.
fn iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// `index_date`'s suffix.
fn day(t: NaiveDateTime) -> String {
    t.format("%Y.%m.%d").to_string()
}

/// An event's `_stamp` (`2024-05-10T09:30:15.402113`, `+00:00` since 3008).
fn parse_stamp(stamp: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(stamp)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

/// What the server can do, from its `GET /` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Server {
    /// `require_alias` in `_bulk` actions (Elasticsearch 7.10, every OpenSearch).
    pub require_alias: bool,
}

impl Server {
    /// OpenSearch, or Elasticsearch 7 or later (6 still has mapping types, which the job
    /// cache's index definitions do not name). A server that does not say its version (a proxy
    /// in front of it) is taken for a 7.0.
    pub(crate) fn from_info(info: &Value) -> Result<Server, String> {
        if info.pointer("/version/distribution").and_then(Value::as_str) == Some("opensearch") {
            return Ok(Server { require_alias: true });
        }
        let number = info.pointer("/version/number").and_then(Value::as_str).unwrap_or("7.0.0");
        let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if major < 7 {
            return Err(format!("Elasticsearch {number} is too old: this store needs 7.0 or later, or OpenSearch"));
        }
        Ok(Server { require_alias: (major, minor) >= (7, 10) })
    }
}

/// How an index of documents of `role` is created: Salt's settings, and for the job cache's
/// indices mappings that index only the fields searched (`dynamic: false`: anything else is
/// kept in the document but never mapped, so no load or return can clash with another's).
pub(crate) fn index_definition(role: Role, layout: &Layout) -> Value {
    let keyword = json!({"type": "keyword"});
    // A keyword longer than this is kept but not indexed (Lucene refuses terms over 32 KiB).
    let short_keyword = json!({"type": "keyword", "ignore_above": 1024});
    let unindexed = json!({"type": "object", "enabled": false});
    let mut definition =
        json!({"settings": {"number_of_shards": layout.number_of_shards, "number_of_replicas": layout.number_of_replicas}});
    let properties = match role {
        Role::Load => json!({
            "jid": keyword, "@timestamp": {"type": "date"}, "fun": short_keyword, "tgt": short_keyword,
            "tgt_type": short_keyword, "user": short_keyword, "bytes": {"type": "long"}, "load": unindexed,
        }),
        Role::Return => json!({
            "jid": keyword, "id": keyword, "fun": short_keyword, "@timestamp": {"type": "date"},
            "bytes": {"type": "long"}, "full_ret": unindexed,
        }),
        // Salt's indices: its settings only, so the cluster's index templates decide the rest.
        Role::PerFunction | Role::Event => return definition,
    };
    definition["mappings"] = json!({"dynamic": false, "properties": properties});
    definition
}

/// `lo <(=) jid < hi` on the job index, `size` jobs in jid order, each with its size (to fetch
/// the loads in bounded answers).
/// No bound is no range: a range query is costly where a sorted page alone is not.
pub(crate) fn jobs_page(lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, size: usize) -> Value {
    let mut range = Map::new();
    if !(lo.is_empty() && lo_inclusive) {
        range.insert(if lo_inclusive { "gte" } else { "gt" }.into(), lo.into());
    }
    if let Some(hi) = hi {
        range.insert("lt".into(), hi.into());
    }
    let query = if range.is_empty() { json!({"match_all": {}}) } else { json!({"range": {"jid": range}}) };
    json!({
        "size": size,
        "query": query,
        "sort": [{"jid": if oldest_first { "asc" } else { "desc" }}],
        "_source": ["bytes"],
        "track_total_hits": false,
    })
}

/// The returns of `jid`, `size` at a time in minion id order after `after`, with their sizes.
pub(crate) fn job_returns_page(jid: &str, size: usize, after: Option<&Value>) -> Value {
    let mut body = json!({
        "size": size,
        "query": {"term": {"jid": jid}},
        "sort": [{"id": "asc"}],
        "_source": ["bytes"],
        "track_total_hits": false,
    });
    if let Some(after) = after {
        body["search_after"] = after.clone();
    }
    body
}

/// A page of distinct `field` values (a composite aggregation named `page`), after `after`,
/// among the documents `query` matches; with `latest`, each value's document with the highest
/// jid (its id and size).
pub(crate) fn distinct_page(field: &str, query: Value, size: usize, after: Option<&Value>, latest: bool) -> Value {
    let mut composite = json!({"size": size, "sources": [{"key": {"terms": {"field": field}}}]});
    if let Some(after) = after {
        composite["after"] = after.clone();
    }
    let mut page = json!({"composite": composite});
    if latest {
        page["aggs"] = json!({"latest": {"top_hits": {"size": 1, "sort": [{"jid": "desc"}], "_source": ["bytes"]}}});
    }
    json!({"size": 0, "query": query, "aggs": {"page": page}, "track_total_hits": false})
}

/// The buckets of a [`distinct_page`] answer and the key to continue after (None: last page).
pub(crate) fn distinct_buckets(answer: &Value) -> Result<(Vec<Value>, Option<Value>), String> {
    let page = answer.pointer("/aggregations/page").ok_or("an answer without its aggregation")?;
    let buckets = page.get("buckets").and_then(Value::as_array).cloned().unwrap_or_default();
    let after = page.get("after_key").filter(|_| !buckets.is_empty()).cloned();
    Ok((buckets, after))
}

/// A bucket's key (the field's value).
pub(crate) fn bucket_key(bucket: &Value) -> Option<&str> {
    bucket.pointer("/key/key").and_then(Value::as_str)
}

/// The hits of a search answer.
pub(crate) fn hits(answer: &Value) -> Result<&Vec<Value>, String> {
    answer.pointer("/hits/hits").and_then(Value::as_array).ok_or_else(|| "a search answer without hits".to_string())
}

/// A hit's `_id` and the size its document was stored with.
pub(crate) fn id_and_bytes(hit: &Value) -> Option<(String, usize)> {
    let id = hit.get("_id")?.as_str()?.to_string();
    let bytes = hit.pointer("/_source/bytes").and_then(Value::as_u64).map_or(UNKNOWN_DOC_BYTES, |b| b as usize);
    Some((id, bytes))
}

/// Jobs with jid before `cut_jid` (a page of them is purged at a time).
pub(crate) fn jids_before(cut_jid: &str) -> Value {
    json!({"range": {"jid": {"lt": cut_jid}}})
}

/// Among `jids`, those with a return stored at or after `cut` (a job still running).
pub(crate) fn still_active(jids: &[String], cut: DateTime<Utc>) -> Value {
    json!({
        "size": 0,
        "query": {"bool": {"filter": [{"terms": {"jid": jids}}, {"range": {"@timestamp": {"gte": iso(cut.naive_utc())}}}]}},
        "aggs": {"active": {"terms": {"field": "jid", "size": jids.len().max(1)}}},
        "track_total_hits": false,
    })
}

/// Every document of `jids`.
pub(crate) fn of_jids(jids: &[String]) -> Value {
    json!({"query": {"terms": {"jid": jids}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 39, 16).unwrap()
    }

    const JID: &str = "20261124235959657727";

    fn ret(fun: &str, value: Value) -> Load {
        obj(json!({"success": true, "return": value, "retcode": 0, "jid": JID, "fun": fun, "fun_args": [], "id": "web1"}))
    }

    fn docs(ret: &Load, layout: &Layout) -> Vec<Doc> {
        return_docs(ret, layout, now()).unwrap().unwrap()
    }

    fn source(doc: &Doc) -> Value {
        serde_json::from_str(&doc.source).unwrap()
    }

    #[test]
    fn a_return_as_salt_writes_it_and_as_the_job_cache_keeps_it() {
        let r = ret("test.echo", json!({"a.b": {"c.d": 1, "e": [{"f.g": 2}]}, "x": "y"}));
        let d = docs(&r, &Layout::default());
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].role, d[0].index.as_str(), d[0].id.as_str(), d[0].record),
            (Role::Return, "salt-master-job-cache-returns", "20261124235959657727:web1", 0)
        );
        let full = dumps_map(&r);
        assert_eq!(
            d[0].source,
            format!(
                r#"{{"jid":"{JID}","id":"web1","fun":"test.echo","@timestamp":"2026-11-25T00:39:16.000000+00:00","bytes":{},"full_ret":{full}}}"#,
                full.len()
            )
        );
        assert_eq!(source(&d[0])["full_ret"], Value::Object(r.clone()));
        assert_eq!((d[1].role, d[1].index.as_str(), d[1].id.as_str()), (Role::PerFunction, "salt-test_echo", d[0].id.as_str()));
        assert_eq!(
            source(&d[1]),
            json!({"@timestamp": "2026-11-25T00:39:16.000000+00:00", "success": true, "retcode": 0, "minion": "web1",
                   "fun": "test.echo", "jid": JID, "counts": {},
                   "data": {"_orig_key": "a.b", "a_b": {"_orig_key": "c.d", "c_d": 1, "e": [{"_orig_key": "f.g", "f_g": 2}]}, "x": "y"}})
        );
        // Salt's key order in the document.
        let shown: Vec<String> = source(&d[1]).as_object().unwrap().keys().cloned().collect();
        assert_eq!(shown, ["@timestamp", "success", "retcode", "minion", "fun", "jid", "counts", "data"]);
    }

    #[test]
    fn several_dotted_keys_are_all_remembered() {
        let v = convert_keys(json!({"a": 1, "b.c": 2, "d.e": 3}));
        assert_eq!(v, json!({"a": 1, "_orig_key": ["b.c", "d.e"], "b_c": 2, "d_e": 3}));
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["a", "_orig_key", "b_c", "d_e"]);
    }

    #[test]
    fn success_and_retcode_as_salt_derives_them() {
        let mut r = ret("cmd.run", json!("boom"));
        r.insert("retcode".into(), json!(2));
        let d = docs(&r, &Layout::default());
        assert_eq!((source(&d[1])["success"].clone(), source(&d[1])["retcode"].clone()), (json!(false), json!(2)));
        r.remove("retcode");
        let d = docs(&r, &Layout::default());
        assert_eq!((source(&d[1])["success"].clone(), source(&d[1])["retcode"].clone()), (json!(false), json!(1)));
    }

    #[test]
    fn salt_skips_blacklisted_functions_and_none_returns_the_job_cache_does_not() {
        let layout = Layout { functions_blacklist: vec!["test.ping".into()], ..Layout::default() };
        let d = docs(&ret("test.ping", json!(true)), &layout);
        assert_eq!(d.iter().map(|d| d.role).collect::<Vec<_>>(), [Role::Return]);
        let d = docs(&ret("test.echo", Value::Null), &Layout::default());
        assert_eq!(d.iter().map(|d| d.role).collect::<Vec<_>>(), [Role::Return]);
        assert_eq!(source(&d[0])["full_ret"]["return"], Value::Null);
    }

    #[test]
    fn index_names_dates_and_state_indices() {
        let dated = Layout { index_date: true, ..Layout::default() };
        // The job's day (the jid is 23:59:59 on the 24th; now is the 25th).
        assert_eq!(docs(&ret("test.ping", json!(true)), &dated)[1].index, "salt-test_ping-2026.11.24");
        assert_eq!(docs(&ret("Test.Odd:Fun*", json!(true)), &Layout::default())[1].index, "salt-test_odd_fun_");
        let single = Layout { states_single_index: true, ..Layout::default() };
        assert_eq!(docs(&ret("state.sls", json!({})), &single)[1].index, "salt-state_apply");
        assert_eq!(docs(&ret("state.sls", json!({})), &Layout::default())[1].index, "salt-state_sls");
        let ordered = Layout { states_order_output: true, index_date: true, ..single };
        assert_eq!(docs(&ret("state.highstate", json!({})), &ordered)[1].index, "salt-state_apply-2026.11.24-ordered");
        // Only a map of states is ordered (and the index says so).
        assert_eq!(docs(&ret("state.highstate", json!("no top file")), &ordered)[1].index, "salt-state_apply-2026.11.24");
    }

    #[test]
    fn state_options() {
        let states = json!({
            "file_|-motd_|-/etc/motd_|-managed": {"result": true, "__run_num__": 0, "changes": {}},
            "pkg_|-vim_|-vim_|-installed": {"result": false, "__run_num__": 11},
            "cmd_|-test_|-true_|-run": {"result": null, "__run_num__": 2},
        });
        let mut many = states.as_object().unwrap().clone();
        for i in 0..9 {
            many.insert(format!("test_|-n{i}_|-n{i}_|-nop"), json!({"result": true, "__run_num__": 3 + i}));
        }
        let layout = Layout { states_count: true, states_order_output: true, ..Layout::default() };
        let doc = source(&docs(&ret("state.apply", Value::Object(many)), &layout)[1]);
        assert_eq!(doc["counts"], json!({"succeeded": 11, "failed": 1}));
        let keys: Vec<&String> = doc["data"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys[..3],
            ["00_|-file_|-motd_|-/etc/motd_|-managed", "11_|-pkg_|-vim_|-vim_|-installed", "02_|-cmd_|-test_|-true_|-run"]
        );
        assert_eq!(doc["data"]["00_|-file_|-motd_|-/etc/motd_|-managed"]["_func"], "file.managed");
        // A failed run's message is wrapped, and counts as failed.
        let doc = source(&docs(&ret("state.apply", json!("Pillar failed to render")), &layout)[1]);
        assert_eq!(doc["data"], json!({"return": "Pillar failed to render"}));
        assert_eq!(doc["counts"], json!({"succeeded": 0, "failed": 1}));
        // The job cache's copy is the return as it came.
        let d = docs(&ret("state.apply", states.clone()), &layout);
        assert_eq!(source(&d[0])["full_ret"]["return"], states);
        assert_eq!(zfill("-7", 4), "-007");
        assert_eq!(zfill("123", 2), "123");
    }

    #[test]
    fn req_returns_are_their_jobs_load_and_bad_ones_are_refused() {
        let r = obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "return": true}));
        let d = docs(&r, &Layout::default());
        assert_eq!(d.iter().map(|d| d.role).collect::<Vec<_>>(), [Role::Return, Role::Load, Role::PerFunction]);
        let jid = source(&d[0])["jid"].as_str().unwrap().to_string();
        assert!(salt_proto::jid::is_jid(&jid));
        assert_eq!((d[1].id.as_str(), d[1].index.as_str()), (jid.as_str(), "salt-master-job-cache"));
        assert_eq!(source(&d[1])["load"]["jid"], jid);
        let nocache = obj(json!({"id": "m1", "jid": "nocache", "fun": "test.ping", "return": true}));
        assert!(return_docs(&nocache, &Layout::default(), now()).unwrap().is_none());
        let no_fun = obj(json!({"id": "m1", "jid": JID, "return": true}));
        assert!(return_docs(&no_fun, &Layout::default(), now()).unwrap_err().contains("'fun'"));
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH {
            deep = json!([deep]);
        }
        let err = return_docs(&ret("test.echo", deep), &Layout::default(), now()).unwrap_err();
        assert!(err.contains("nested more than 100"), "{err}");
    }

    #[test]
    fn job_documents_keep_salts_shape_with_keywords() {
        let load = obj(json!({"cmd": "publish", "tgt": ["web1", "db1"], "fun": "cmd.run", "arg": ["ls"], "tgt_type": "list",
                              "user": "root", "kwargs": {"ret_kwargs": {"password": "hunter2"}}}));
        let d = load_doc(JID, &load, &Layout::default());
        assert_eq!((d.role, d.index.as_str(), d.id.as_str()), (Role::Load, "salt-master-job-cache", JID));
        let s = source(&d);
        assert_eq!(s["@timestamp"], "2026-11-24T23:59:59.657727+00:00");
        assert_eq!(
            (s["fun"].clone(), s["tgt"].clone(), s["tgt_type"].clone(), s["user"].clone()),
            (json!("cmd.run"), json!(["web1", "db1"]), json!("list"), json!("root"))
        );
        assert_eq!(s["load"]["kwargs"]["ret_kwargs"]["password"], crate::redact::REDACTED);
        assert!(!d.source.contains("hunter2"));
        // A target of another shape stays in the load only.
        let odd = obj(json!({"fun": "x", "tgt": {"a": 1}}));
        assert!(source(&load_doc(JID, &odd, &Layout::default())).get("tgt").is_none());
    }

    #[test]
    fn events_every_one_with_an_id_of_its_content() {
        let ev = |tag: &str, data: Value| Event { tag: tag.into(), data };
        let a =
            event_doc(&ev("salt/job/1/new", json!({"_stamp": "2024-05-10T09:30:00.000000", "x": 1})), &Layout::default(), now()).unwrap();
        assert_eq!(a.index, "salt-master-event-cache");
        assert_eq!(source(&a), json!({"tag": "salt/job/1/new", "data": {"_stamp": "2024-05-10T09:30:00.000000", "x": 1}}));
        let again =
            event_doc(&ev("salt/job/1/new", json!({"_stamp": "2024-05-10T09:30:00.000000", "x": 1})), &Layout::default(), now()).unwrap();
        let other =
            event_doc(&ev("salt/job/1/new", json!({"_stamp": "2024-05-10T09:30:00.000001", "x": 1})), &Layout::default(), now()).unwrap();
        assert_eq!(a.id, again.id);
        assert_ne!(a.id, other.id);
        assert_eq!(a.id.len(), 32);
        let dated = Layout { index_date: true, ..Layout::default() };
        assert_eq!(
            event_doc(&ev("t", json!({"_stamp": "2024-05-10T09:30:00+00:00"})), &dated, now()).unwrap().index,
            "salt-master-event-cache-2024.05.10"
        );
        assert_eq!(event_doc(&ev("t", json!("text")), &dated, now()).unwrap().index, "salt-master-event-cache-2026.11.25");
    }

    #[test]
    fn bulk_bodies_and_answers() {
        let d = docs(&ret("test.ping", json!(true)), &Layout::default());
        let body = String::from_utf8(bulk_body(&d, |index| index.ends_with("-returns"))).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            format!(r#"{{"create":{{"_index":"salt-master-job-cache-returns","_id":"{JID}:web1","require_alias":true}}}}"#)
        );
        assert_eq!(lines[2], format!(r#"{{"create":{{"_index":"salt-test_ping","_id":"{JID}:web1"}}}}"#));
        assert!(body.ends_with('\n'));
        let answer = json!({"errors": true, "items": [
            {"create": {"status": 201}}, {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [data.x]",
                                                  "caused_by": {"type": "illegal_state_exception", "reason": "Can't get text"}}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"create": {"status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index [x]"}}},
        ]});
        assert_eq!(
            bulk_outcomes(&answer, 5).unwrap(),
            [
                Outcome::Stored,
                Outcome::Stored,
                Outcome::Refused(
                    "400 mapper_parsing_exception: failed to parse field [data.x] (caused by illegal_state_exception: Can't get text)"
                        .into()
                ),
                Outcome::RetryLater("429 es_rejected_execution_exception: queue full".into()),
                Outcome::IndexGone,
            ]
        );
        assert!(bulk_outcomes(&answer, 3).unwrap_err().contains("5 items for 3"));
        assert!(bulk_outcomes(&json!({"took": 1}), 1).is_err());
    }

    #[test]
    fn index_definitions() {
        let layout = Layout { number_of_shards: 3, number_of_replicas: 2, ..Layout::default() };
        assert_eq!(index_definition(Role::PerFunction, &layout), json!({"settings": {"number_of_shards": 3, "number_of_replicas": 2}}));
        let jobs = index_definition(Role::Load, &layout);
        assert_eq!(jobs["mappings"]["dynamic"], false);
        assert_eq!(jobs["mappings"]["properties"]["jid"], json!({"type": "keyword"}));
        assert_eq!(jobs["mappings"]["properties"]["load"], json!({"type": "object", "enabled": false}));
        assert_eq!(index_definition(Role::Return, &layout)["mappings"]["properties"]["full_ret"]["enabled"], false);
    }

    #[test]
    fn servers_by_version() {
        let es = |n: &str| Server::from_info(&json!({"version": {"number": n, "build_flavor": "default"}}));
        assert_eq!(es("8.15.0"), Ok(Server { require_alias: true }));
        assert_eq!(es("7.10.2"), Ok(Server { require_alias: true }));
        assert_eq!(es("7.9.3"), Ok(Server { require_alias: false }));
        assert!(es("6.8.23").unwrap_err().contains("Elasticsearch 6.8.23 is too old"));
        let opensearch = json!({"version": {"distribution": "opensearch", "number": "1.3.0"}});
        assert_eq!(Server::from_info(&opensearch), Ok(Server { require_alias: true }));
        assert_eq!(Server::from_info(&json!({})), Ok(Server { require_alias: false }));
    }

    #[test]
    fn searches() {
        assert_eq!(
            jobs_page("", true, Some("2024"), false, 64),
            json!({"size": 64, "query": {"range": {"jid": {"lt": "2024"}}}, "sort": [{"jid": "desc"}], "_source": ["bytes"], "track_total_hits": false})
        );
        assert_eq!(jobs_page("2024", false, None, true, 1)["query"], json!({"range": {"jid": {"gt": "2024"}}}));
        assert_eq!(jobs_page("", true, None, false, 100)["query"], json!({"match_all": {}}));
        assert_eq!(job_returns_page(JID, 10, Some(&json!(["m1"])))["search_after"], json!(["m1"]));
        let page = distinct_page("id", json!({"term": {"fun": "test.ping"}}), 500, Some(&json!({"key": "m1"})), true);
        assert_eq!(page["aggs"]["page"]["composite"]["after"], json!({"key": "m1"}));
        assert_eq!(page["aggs"]["page"]["aggs"]["latest"]["top_hits"]["sort"], json!([{"jid": "desc"}]));
        let answer =
            json!({"aggregations": {"page": {"after_key": {"key": "b"}, "buckets": [{"key": {"key": "a"}}, {"key": {"key": "b"}}]}}});
        let (buckets, after) = distinct_buckets(&answer).unwrap();
        assert_eq!((buckets.iter().filter_map(bucket_key).collect::<Vec<_>>(), after), (vec!["a", "b"], Some(json!({"key": "b"}))));
        let empty = json!({"aggregations": {"page": {"buckets": []}}});
        assert_eq!(distinct_buckets(&empty).unwrap(), (vec![], None));
        assert_eq!(id_and_bytes(&json!({"_id": "x", "_source": {"bytes": 7}})), Some(("x".into(), 7)));
        assert_eq!(id_and_bytes(&json!({"_id": "x", "_source": {}})), Some(("x".into(), UNKNOWN_DOC_BYTES)));
    }
}
