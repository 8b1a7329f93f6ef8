//! Documents and views, without I/O.
//!
//! - A return is the document Salt's module means to write, the return's fields plus `_id`
//!   and `timestamp` (`time.time()` when stored), with `_id` = `<jid>-<minion id>` (Salt's
//!   `_id` = jid made every minion's return after the first a conflict).
//! - A job's load is a document too, `_id` = `<jid>` (what Salt's `get_jids` lists: documents
//!   whose id is a jid), its fields plus `timestamp`.
//! - CouchDB keeps top-level names that start with `_` for itself (and refuses a document with
//!   others, such as the master's `_stamp`), and `timestamp` is the store's: such a name, and
//!   one that starts with `~`, is stored with a `~` in front, taken off when read.
//! - `_design/salt` holds Salt's views (`by-minion-fun-timestamp`, `minions`), for users'
//!   queries; the store reads its own, in `_design/jobs`.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::json::dumps_entry;
use crate::record::ReturnRecord;
use crate::Load;

/// The design document of the views the store reads.
pub const JOBS_DESIGN: &str = "_design/jobs";
/// Salt's design document, created when missing (never changed).
pub const SALT_DESIGN: &str = "_design/salt";

/// A return document (in a view's JavaScript): its `_id` is `<jid>-<id>`.
const IS_RETURN: &str = "doc._id === doc.jid + '-' + doc.id";
/// A load document: its `_id` is a jid.
const IS_LOAD: &str = "/^[0-9]{20}(_[0-9]+)?$/.test(doc._id)";

/// The `_id` of the return of `id` for `jid`.
pub fn return_id(jid: &str, id: &str) -> String {
    format!("{jid}-{id}")
}

/// The `_id`s of `jid`'s returns: from `"<jid>-"` up to, not including, `"<jid>."`.
pub fn return_ids_of(jid: &str) -> (String, String) {
    (format!("{jid}-"), format!("{jid}."))
}

/// A top-level name as stored.
fn escape(name: &str) -> Cow<'_, str> {
    if name.starts_with(['_', '~']) || name == "timestamp" {
        Cow::Owned(format!("~{name}"))
    } else {
        Cow::Borrowed(name)
    }
}

fn unescape(name: &str) -> &str {
    name.strip_prefix('~').unwrap_or(name)
}

/// The JSON text of a document: `_id`, then `fields` (their names escaped, settings redacted),
/// then `timestamp`.
pub fn document(id: &str, fields: &Load, timestamp: f64) -> String {
    let mut out = format!("{{\"_id\": {}", Value::String(id.to_string()));
    for (name, value) in fields {
        out.push_str(", ");
        out.push_str(&Value::String(escape(name).into_owned()).to_string());
        out.push_str(": ");
        out.push_str(&dumps_entry(name, value));
    }
    out.push_str(&format!(", \"timestamp\": {}}}", json!(timestamp)));
    out
}

/// A stored document's fields as they were given (without `_id`, `_rev` and `timestamp`).
pub fn fields(doc: Map<String, Value>) -> Load {
    doc.into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "_id" | "_rev" | "timestamp"))
        .map(|(name, value)| (unescape(&name).to_string(), value))
        .collect()
}

/// A return ready for `_bulk_docs`.
#[derive(Debug, Clone)]
pub struct ReturnDoc {
    pub jid: String,
    pub id: String,
    /// `(_id, JSON text)` of the return's document, and of the load's for a `req` return (its
    /// job's load).
    pub docs: Vec<(String, String)>,
}

impl ReturnDoc {
    /// `Ok(None)`: a return not to store (`nocache`); `Err`: why it cannot be stored.
    pub fn new(ret: &Load, timestamp: f64) -> Result<Option<ReturnDoc>, String> {
        let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
        let doc_id = return_id(&rec.jid, rec.id);
        let mut docs = vec![(doc_id.clone(), document(&doc_id, &rec.full, timestamp))];
        if rec.req {
            docs.push((rec.jid.clone(), document(&rec.jid, &rec.full, timestamp)));
        }
        Ok(Some(ReturnDoc { id: rec.id.to_string(), jid: rec.jid, docs }))
    }

    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    pub fn bytes(&self) -> usize {
        self.docs.iter().map(|(_, text)| text.len()).sum()
    }
}

/// Salt's views, made to work: on returns only (Salt's saw every document), and `minions` with
/// a reduce that runs (Salt's referred to an undefined name).
pub fn salt_design() -> Value {
    json!({
        "language": "javascript",
        "views": {
            "minions": {"map": format!("function (doc) {{ if ({IS_RETURN}) {{ emit(doc.id, null); }} }}"), "reduce": "_count"},
            "by-minion-fun-timestamp": {
                "map": format!("function (doc) {{ if ({IS_RETURN}) {{ emit([doc.id, doc.fun, doc.timestamp], doc); }} }}")
            },
        },
    })
}

/// The views the store reads:
/// - `by-jid`: each job's listing fields, by jid (`get_jids`);
/// - `latest-by-fun`: `[fun, id]` to the newest jid of that minion's return of fun (`get_fun`);
/// - `minions`: the minions with a return (`get_minions`);
/// - `by-timestamp` and `activity`: what is older than a time, and each job's newest document
///   (`clean_old_jobs`).
pub fn jobs_design() -> Value {
    let listing = "{fun: doc.fun, arg: doc.arg, fun_args: doc.fun_args, tgt: doc.tgt, tgt_type: doc.tgt_type, user: doc.user, \
                   metadata: doc.metadata, kwargs: doc.kwargs && doc.kwargs.metadata !== undefined ? {metadata: doc.kwargs.metadata} : undefined}";
    let newest = "function (keys, values, rereduce) { var newest = values[0]; \
                  for (var i = 1; i < values.length; i++) { if (values[i] > newest) { newest = values[i]; } } return newest; }";
    let job_of = format!("({IS_LOAD}) ? doc._id : (({IS_RETURN}) ? doc.jid : null)");
    json!({
        "language": "javascript",
        "views": {
            "by-jid": {"map": format!("function (doc) {{ if ({IS_LOAD}) {{ emit(doc._id, {listing}); }} }}")},
            "latest-by-fun": {
                "map": format!("function (doc) {{ if ({IS_RETURN} && typeof doc.fun === 'string') {{ emit([doc.fun, doc.id], doc.jid); }} }}"),
                "reduce": newest,
            },
            "minions": {"map": format!("function (doc) {{ if ({IS_RETURN}) {{ emit(doc.id, null); }} }}"), "reduce": "_count"},
            "by-timestamp": {
                "map": format!("function (doc) {{ var jid = {job_of}; if (jid !== null && typeof doc.timestamp === 'number') {{ emit(doc.timestamp, jid); }} }}")
            },
            "activity": {
                "map": format!("function (doc) {{ var jid = {job_of}; if (jid !== null && typeof doc.timestamp === 'number') {{ emit(jid, doc.timestamp); }} }}"),
                "reduce": "_stats",
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    const JID: &str = "20240510093000000001";

    #[test]
    fn a_return_is_salts_document_with_its_own_id() {
        let ret = obj(json!({"cmd": "_return", "id": "web1", "jid": JID, "fun": "test.echo", "return": {"_x": "é"},
                             "_stamp": "2024-05-10T09:30:00.000000", "timestamp": 1, "~t": 2, "ret_kwargs": {"pass": "hunter2"}}));
        let d = ReturnDoc::new(&ret, 1715333400.25).unwrap().unwrap();
        assert_eq!(d.docs.len(), 1);
        let text = &d.docs[0].1;
        assert!(!text.contains("hunter2"), "{text}");
        let doc: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(
            doc.keys().collect::<Vec<_>>(),
            ["_id", "cmd", "id", "jid", "fun", "return", "~_stamp", "~timestamp", "~~t", "ret_kwargs", "timestamp"]
        );
        assert_eq!((doc["_id"].as_str(), doc["timestamp"].as_f64()), (Some("20240510093000000001-web1"), Some(1715333400.25)));
        let mut back = fields(doc);
        back.insert("ret_kwargs".into(), ret["ret_kwargs"].clone());
        assert_eq!(back, ret, "the fields as given, in their order");
    }

    #[test]
    fn a_req_return_is_its_jobs_load_too() {
        let ret = obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "return": true}));
        let d = ReturnDoc::new(&ret, 1.0).unwrap().unwrap();
        let load: Value = serde_json::from_str(&d.docs[1].1).unwrap();
        assert_eq!(load["_id"], json!(d.jid));
        assert!(salt_proto::jid::is_jid(&d.jid));
        assert!(ReturnDoc::new(&obj(json!({"id": "m1", "jid": "nocache", "return": 1})), 1.0).unwrap().is_none());
    }

    #[test]
    fn the_returns_of_a_job_are_one_range_of_ids() {
        let (from, to) = return_ids_of(JID);
        for id in ["a", "web1.example.com", "user@host", "Z-9_x"] {
            let doc = return_id(JID, id);
            assert!(from <= doc && doc < to, "{doc}");
        }
        // Not the load, nor another jid's returns.
        assert!(JID < from.as_str());
        let other = return_id("20240510093000000001_42", "a");
        assert!(!(from <= other && other < to));
    }

    #[test]
    fn views_are_javascript_with_the_guards() {
        let design = jobs_design().to_string();
        assert!(design.contains("doc._id === doc.jid + '-' + doc.id"), "{design}");
        assert!(salt_design()["views"]["by-minion-fun-timestamp"]["map"]
            .as_str()
            .unwrap()
            .contains("[doc.id, doc.fun, doc.timestamp], doc"));
    }
}
