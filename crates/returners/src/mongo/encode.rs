//! Pure: returns, loads and events as the documents Salt's MongoDB returners write, and back.
//!
//! - `saltReturns`: `{_id: "<jid>:<minion>", minion, jid, return, fun, full_ret[, out]}`;
//! - `jobs`: `{_id: "<jid>", ...the load's own fields}`;
//! - `events`: `{_id: ObjectId, tag, data}`.
//!
//! Keys are escaped with the scheme of Salt's `_safe_copy` (its `jobs` documents): `%` → `%25`,
//! `\` → `%5c`, `$` → `%24`, `.` → `%2e`, plus NUL → `%00` (BSON keys are C strings) and a
//! load's own top-level `_id` → `%5fid`. Every `%` is escaped, so unescaping gives the original
//! keys back exactly, and keys of `jobs` documents Salt wrote read back right too.

use std::borrow::Cow;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document, RawDocumentBuf};
use serde_json::{Map, Number, Value};

use crate::json::{dumps, SETTINGS_KEYS};
use crate::record::ReturnRecord;
use crate::redact::redact;
use crate::{Event, Load};

pub const RETURNS: &str = "saltReturns";
pub const JOBS: &str = "jobs";
pub const EVENTS: &str = "events";

/// MongoDB's largest document (the server's `maxBsonObjectSize`).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// What escaping turns each special character of a key into.
const ESCAPES: [(char, &str); 5] = [('%', "%25"), ('\\', "%5c"), ('$', "%24"), ('.', "%2e"), ('\0', "%00")];
/// `_id` is the document's key of its own: a load's `_id` field is stored as this.
const ESCAPED_ID: &str = "%5fid";

pub fn escape_key(key: &str) -> Cow<'_, str> {
    if !key.contains(|c| ESCAPES.iter().any(|(special, _)| *special == c)) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match ESCAPES.iter().find(|(special, _)| *special == c) {
            Some((_, escaped)) => out.push_str(escaped),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`escape_key`] (and of the `_id` escape). Any other `%` sequence is left
/// as it is: it cannot come from escaping.
pub fn unescape_key(key: &str) -> Cow<'_, str> {
    if !key.contains('%') {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).map(str::to_ascii_lowercase);
        let decoded = match code.as_deref() {
            Some("5f") => Some('_'),
            Some(code) => ESCAPES.iter().find(|(_, escaped)| &escaped[1..] == code).map(|(c, _)| *c),
            None => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A JSON value as BSON, keys escaped. Integers are Int32 when they fit (as pymongo writes
/// them), else Int64; one beyond Int64 has no BSON type and is refused.
pub fn to_bson(value: &Value) -> Result<Bson, String> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32),
            (None, _) if n.is_u64() => return Err(format!("the integer {n} is beyond MongoDB's 64-bit integers")),
            (None, Some(f)) => Bson::Double(f),
            (None, None) => return Err(format!("the number {n} has no BSON type")),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(to_bson).collect::<Result<_, _>>()?),
        Value::Object(map) => Bson::Document(to_document(map)?),
    })
}

fn to_document(map: &Map<String, Value>) -> Result<Document, String> {
    let mut doc = Document::new();
    for (k, v) in map {
        doc.insert(escape_key(k), to_bson(v)?);
    }
    Ok(doc)
}

/// A BSON value as JSON, keys unescaped. Types we never write (a document Salt wrote may hold
/// an ObjectId or a date) come as MongoDB's relaxed extended JSON.
pub fn to_json(value: Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Int32(i) => Value::from(i),
        Bson::Int64(i) => Value::from(i),
        Bson::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Bson::String(s) => Value::String(s),
        Bson::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Bson::Document(doc) => Value::Object(to_map(doc)),
        other => other.into_relaxed_extjson(),
    }
}

fn to_map(doc: Document) -> Map<String, Value> {
    doc.into_iter().map(|(k, v)| (unescape_key(&k).into_owned(), to_json(v))).collect()
}

/// A load, an event's data or a full return as stored: settings redacted, keys escaped, and a
/// top-level `_id` moved out of the way of the document's own.
fn stored_map(map: &Map<String, Value>) -> Result<Document, String> {
    let mut doc = Document::new();
    for (k, v) in map {
        let v = if SETTINGS_KEYS.contains(&k.as_str()) { Cow::Owned(redact(v)) } else { Cow::Borrowed(v) };
        let key = if k == "_id" { Cow::Borrowed(ESCAPED_ID) } else { escape_key(k) };
        doc.insert(key, to_bson(&v)?);
    }
    Ok(doc)
}

/// The `_id` of a return: jids never hold a `:`, so the jid is everything before the first one,
/// and the returns of a jid are the ids from `<jid>:` up to `<jid>;` (`;` follows `:`).
pub fn return_id(jid: &str, minion: &str) -> String {
    format!("{jid}:{minion}")
}

/// The `_id` range of the returns of `jid`: `[lo, hi)`.
pub fn return_id_range(jid: &str) -> (String, String) {
    (format!("{jid}:"), format!("{jid};"))
}

/// A return as its `saltReturns` document, serialized (its size is known), and, for a `req`
/// return, the `jobs` document it is also the load of.
#[derive(Debug)]
pub struct ReturnDocs {
    pub minion: String,
    pub jid: String,
    pub doc: RawDocumentBuf,
    pub load: Option<RawDocumentBuf>,
}

/// Salt's `saltReturns` document of a return. When the two copies of the return (`return` and
/// `full_ret.return`) do not fit in one document, `return` is left out: `full_ret` is the one
/// this store reads. A return that does not fit even once is refused.
pub fn return_document(rec: &ReturnRecord<'_>) -> Result<ReturnDocs, String> {
    let fun = rec.fun()?;
    let what = || crate::record::describe(rec.id, &rec.jid);
    let full_ret = stored_map(&rec.full).map_err(|e| format!("{}: {e}", what()))?;
    let mut doc = Document::new();
    doc.insert("_id", return_id(&rec.jid, rec.id));
    doc.insert("minion", rec.id);
    doc.insert("jid", rec.jid.as_str());
    doc.insert("return", full_ret.get("return").cloned().unwrap_or(Bson::Null));
    doc.insert("fun", fun);
    doc.insert("full_ret", full_ret);
    if let Some(out) = rec.full.get("out") {
        doc.insert("out", to_bson(out).map_err(|e| format!("{}: {e}", what()))?);
    }
    let mut raw = serialize(&doc).map_err(|e| format!("{}: {e}", what()))?;
    if raw.as_bytes().len() > MAX_DOCUMENT_BYTES {
        doc.remove("return");
        raw = serialize(&doc).map_err(|e| format!("{}: {e}", what()))?;
        if raw.as_bytes().len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{} is larger than the 16 MiB of a MongoDB document", what()));
        }
    }
    let load = if rec.req { Some(load_document(&rec.jid, &rec.full)?) } else { None };
    Ok(ReturnDocs { minion: rec.id.to_string(), jid: rec.jid.clone(), doc: raw, load })
}

/// A `jobs` document: `_id` the jid, then the load's own fields (Salt stores the load as it is).
pub fn load_document(jid: &str, load: &Load) -> Result<RawDocumentBuf, String> {
    let mut doc = Document::new();
    doc.insert("_id", jid);
    doc.extend(stored_map(load).map_err(|e| format!("the load of {jid}: {e}"))?);
    let raw = serialize(&doc).map_err(|e| format!("the load of {jid}: {e}"))?;
    if raw.as_bytes().len() > MAX_DOCUMENT_BYTES {
        return Err(format!("the load of {jid} is larger than the 16 MiB of a MongoDB document"));
    }
    Ok(raw)
}

/// A stored load back: without the document's `_id`, keys unescaped.
pub fn load_from_document(mut doc: Document) -> Load {
    doc.remove("_id");
    to_map(doc)
}

/// `full_ret` of a `saltReturns` document (a document Salt wrote without one gives Null).
pub fn full_ret_from_document(mut doc: Document) -> Value {
    doc.remove("full_ret").map_or(Value::Null, to_json)
}

/// An `events` document. Its `_id` is made from the event, so a batch sent again (the spool
/// retries after a failure) stores each event once: the time of its `_stamp` (an ObjectId
/// starts with seconds, so `_id` order stays time order) and a hash of its tag and data. An
/// event without `_stamp` (Salt's bus always stamps them) gets a new ObjectId.
pub fn event_document(event: &Event) -> Result<RawDocumentBuf, String> {
    let mut doc = Document::new();
    let stamp = event.data.get("_stamp").and_then(Value::as_str).and_then(stamp_seconds);
    doc.insert("_id", stamp.map_or_else(ObjectId::new, |secs| event_object_id(secs, event)));
    doc.insert("tag", event.tag.as_str());
    let data = match &event.data {
        Value::Object(map) => stored_map(map).map(Bson::Document),
        other => to_bson(other),
    };
    let data = data.map_err(|e| format!("event {}: {e}", event.tag))?;
    doc.insert("data", data);
    let raw = serialize(&doc).map_err(|e| format!("event {}: {e}", event.tag))?;
    if raw.as_bytes().len() > MAX_DOCUMENT_BYTES {
        return Err(format!("event {} is larger than the 16 MiB of a MongoDB document", event.tag));
    }
    Ok(raw)
}

/// The seconds since the epoch of an event's `_stamp` (naive UTC, or with an offset in 3008).
fn stamp_seconds(stamp: &str) -> Option<u32> {
    let t = chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| t.timestamp())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc().timestamp()))
        .ok()?;
    u32::try_from(t).ok()
}

fn event_object_id(secs: u32, event: &Event) -> ObjectId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(event.tag.as_bytes());
    ctx.update(b"\0");
    ctx.update(dumps(&event.data).as_bytes());
    let hash = ctx.finish();
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..].copy_from_slice(&hash.as_ref()[..8]);
    ObjectId::from_bytes(bytes)
}

fn serialize(doc: &Document) -> Result<RawDocumentBuf, String> {
    RawDocumentBuf::from_document(doc).map_err(|e| format!("cannot be written as BSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    fn doc(raw: &RawDocumentBuf) -> Document {
        raw.to_document().unwrap()
    }

    #[test]
    fn keys_escape_as_salts_safe_copy_and_come_back() {
        assert_eq!(escape_key("a.b$c\\d%e"), "a%2eb%24c%5cd%25e");
        assert_eq!(escape_key("nul\0"), "nul%00");
        assert!(matches!(escape_key("plain_key-1"), Cow::Borrowed(_)));
        for key in ["a.b", "$set", "%2e", "%", "100%", "x%5fid", "a\\.b$%", "emoji 😀.", "\0", "%zz", "%2", "%5C"] {
            assert_eq!(unescape_key(&escape_key(key)), key, "{key}");
        }
        // What Salt's _safe_copy wrote reads back as the original key.
        assert_eq!(unescape_key("file_|-/etc/hosts%2econf_|-managed"), "file_|-/etc/hosts.conf_|-managed");
        // A `%` sequence escaping never makes is left alone.
        assert_eq!(unescape_key("100%zz"), "100%zz");
    }

    #[test]
    fn values_round_trip_with_bson_types() {
        let v = json!({"a.b": [1, -7, 1.5, 3_000_000_000_i64, null, true, "x", {"$set": {"c.d": 0}}], "": {}});
        let b = to_bson(&v).unwrap();
        let Bson::Document(d) = &b else { panic!() };
        let list = d.get_array("a%2eb").unwrap();
        assert_eq!(list[0], Bson::Int32(1));
        assert_eq!(list[3], Bson::Int64(3_000_000_000));
        assert_eq!(list[2], Bson::Double(1.5));
        assert!(list[7].as_document().unwrap().contains_key("%24set"));
        assert_eq!(to_json(b), v);
        let err = to_bson(&json!(u64::MAX)).unwrap_err();
        assert!(err.contains("beyond MongoDB's 64-bit integers"), "{err}");
    }

    fn record(v: Value) -> Load {
        obj(v)
    }

    #[test]
    fn return_documents_as_salt_lays_them_out() {
        let ret = record(json!({"success": true, "return": {"pkg.installed": true}, "retcode": 0, "jid": "20240510093015123456",
                                "fun": "state.apply", "fun_args": [], "id": "web1.example.com", "out": "highstate",
                                "ret_kwargs": {"password": "hunter2"}}));
        let rec = ReturnRecord::parse(&ret).unwrap().unwrap();
        let docs = return_document(&rec).unwrap();
        let d = doc(&docs.doc);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["_id", "minion", "jid", "return", "fun", "full_ret", "out"]);
        assert_eq!(d.get_str("_id").unwrap(), "20240510093015123456:web1.example.com");
        assert_eq!(d.get_str("minion").unwrap(), "web1.example.com");
        assert!(d.get_document("return").unwrap().get_bool("pkg%2einstalled").unwrap());
        assert!(docs.load.is_none());
        let full = full_ret_from_document(d);
        assert_eq!(full["return"], json!({"pkg.installed": true}));
        assert_eq!(full["ret_kwargs"]["password"], crate::redact::REDACTED);
        let (lo, hi) = return_id_range("20240510093015123456");
        assert!(lo.as_str() <= docs.doc.get_str("_id").unwrap() && docs.doc.get_str("_id").unwrap() < hi.as_str());
        // A unique_jid jid (`_<pid>`) is another range.
        assert!(return_id("20240510093015123456_42", "m").as_str() >= hi.as_str());
    }

    #[test]
    fn a_return_too_big_for_two_copies_keeps_full_ret_and_one_too_big_for_one_is_refused() {
        let ret = record(json!({"return": "x".repeat(10 * 1024 * 1024), "jid": "20240510093015123456", "fun": "cmd.run", "id": "m1"}));
        let rec = ReturnRecord::parse(&ret).unwrap().unwrap();
        let docs = return_document(&rec).unwrap();
        let d = doc(&docs.doc);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["_id", "minion", "jid", "fun", "full_ret"]);
        assert_eq!(full_ret_from_document(d)["return"].as_str().map(str::len), Some(10 * 1024 * 1024));
        let huge = record(json!({"return": "x".repeat(MAX_DOCUMENT_BYTES), "jid": "20240510093015123456", "fun": "f", "id": "m1"}));
        let err = return_document(&ReturnRecord::parse(&huge).unwrap().unwrap()).unwrap_err();
        assert!(err.contains("16 MiB") && err.contains("return of m1"), "{err}");
        let unsigned = record(json!({"return": [u64::MAX], "jid": "20240510093015123456", "fun": "f", "id": "m1"}));
        let err = return_document(&ReturnRecord::parse(&unsigned).unwrap().unwrap()).unwrap_err();
        assert!(err.starts_with("return of m1 for 20240510093015123456: the integer"), "{err}");
        let no_fun = record(json!({"return": 1, "jid": "20240510093015123456", "id": "m1"}));
        assert!(return_document(&ReturnRecord::parse(&no_fun).unwrap().unwrap()).unwrap_err().contains("'fun'"));
    }

    #[test]
    fn req_returns_are_their_jobs_load() {
        let ret = record(json!({"return": true, "jid": "req", "fun": "test.ping", "id": "m1"}));
        let rec = ReturnRecord::parse(&ret).unwrap().unwrap();
        let docs = return_document(&rec).unwrap();
        let load = doc(docs.load.as_ref().unwrap());
        assert_eq!(load.get_str("_id").unwrap(), rec.jid);
        assert_eq!(load.get_str("jid").unwrap(), rec.jid);
    }

    #[test]
    fn loads_keep_their_fields_and_order() {
        let load = obj(json!({"cmd": "publish", "_id": "theirs", "tgt": "*", "kwargs": {"metadata": {"a.b": 1}, "mongo.password": "pw"}}));
        let raw = load_document("20240510093015123456", &load).unwrap();
        let d = doc(&raw);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["_id", "cmd", "%5fid", "tgt", "kwargs"]);
        let back = load_from_document(d);
        assert_eq!(back["_id"], "theirs");
        assert_eq!(back["kwargs"]["metadata"], json!({"a.b": 1}));
        assert_eq!(back["kwargs"]["mongo.password"], crate::redact::REDACTED);
        assert_eq!(back.keys().collect::<Vec<_>>(), ["cmd", "_id", "tgt", "kwargs"]);
    }

    #[test]
    fn events_get_an_id_of_their_own() {
        let ev = |stamp: &str, x: i64| Event { tag: "salt/job/1/ret/m1".into(), data: json!({"_stamp": stamp, "x": x, "a.b": 1}) };
        let id = |e: &Event| doc(&event_document(e).unwrap()).get_object_id("_id").unwrap();
        let a = ev("2024-05-10T09:30:15.402113", 1);
        assert_eq!(id(&a), id(&a.clone()));
        assert_ne!(id(&a), id(&ev("2024-05-10T09:30:15.402113", 2)));
        assert_eq!(id(&a).timestamp().timestamp_millis(), 1_715_333_415_000);
        assert_eq!(id(&ev("2024-05-10T09:30:15.402113+00:00", 1)).timestamp().timestamp_millis(), 1_715_333_415_000);
        let d = doc(&event_document(&a).unwrap());
        assert_eq!(d.keys().collect::<Vec<_>>(), ["_id", "tag", "data"]);
        assert!(d.get_document("data").unwrap().contains_key("a%2eb"));
        let unstamped = Event { tag: "t".into(), data: json!([1]) };
        assert_ne!(id(&unstamped), id(&unstamped));
    }
}
