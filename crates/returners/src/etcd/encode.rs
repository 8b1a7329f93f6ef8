//! Keys, values and transactions, without I/O.
//!
//! Salt's layout under the root ([`Layout`]):
//! - `minions/<id>`: the jid of the minion's last return;
//! - `jobs/<jid>/<id>/<field>`: `json.dumps` of each field of a return, a key per field;
//! - `jobs/<jid>/.load.p`: `json.dumps` of the job's load.
//!
//! Ours, beside it (Salt's readers list only `minions/` and `jobs/`):
//! - `jids/<jid>` and `jids-newest-first/<jid inverted>`: the job listing, each holding the
//!   load's listing fields, read in either order by range and limit (etcd sorts keys one way;
//!   a descending sort would make it read the whole range);
//! - `funs/<fun>/<id>`: the newest jid of a minion's return of `fun`, for `get_fun`.
//!
//! A name that goes into a key (a function, a field) has `%` and `/` percent-encoded, so it
//! stays one level of the path. Values are msgpack strings when `etcd.encode_values` is on
//! (Salt's v3 default), plain text otherwise; either reads back.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::batch::Indexed;
use crate::json::{dumps_entry, dumps_map};
use crate::record::ReturnRecord;
use crate::{JobSummary, Load};

/// etcd's limit of operations per transaction (`--max-txn-ops`, 128 by default).
pub const MAX_TXN_OPS: usize = 128;
/// The bytes of keys and values one transaction carries at most (more for a record bigger on
/// its own): etcd refuses a request over `--max-request-bytes`, 1.5 MiB by default.
pub const MAX_TXN_BYTES: usize = 1024 * 1024;

/// Where the keys go, under `etcd.returner_root`.
#[derive(Debug, Clone)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(root: &str) -> Layout {
        Layout { root: root.trim_end_matches('/').to_string() }
    }

    fn key(&self, parts: &[&str]) -> Vec<u8> {
        let mut k = self.root.clone();
        for p in parts {
            k.push('/');
            k.push_str(p);
        }
        k.into_bytes()
    }

    /// `<root>/minions/`.
    pub fn minions(&self) -> Vec<u8> {
        self.key(&["minions", ""])
    }

    pub fn minion(&self, id: &str) -> Vec<u8> {
        self.key(&["minions", id])
    }

    /// `<root>/jobs/<jid>/`: a job's load and returns.
    pub fn job(&self, jid: &str) -> Vec<u8> {
        self.key(&["jobs", jid, ""])
    }

    pub fn field(&self, jid: &str, id: &str, field: &str) -> Vec<u8> {
        self.key(&["jobs", jid, id, &segment(field)])
    }

    pub fn load(&self, jid: &str) -> Vec<u8> {
        self.key(&["jobs", jid, ".load.p"])
    }

    /// `<root>/jids/`, oldest first.
    pub fn listing(&self) -> Vec<u8> {
        self.key(&["jids", ""])
    }

    pub fn listed(&self, jid: &str) -> Vec<u8> {
        self.key(&["jids", jid])
    }

    /// `<root>/jids-newest-first/`.
    pub fn listing_newest_first(&self) -> Vec<u8> {
        self.key(&["jids-newest-first", ""])
    }

    pub fn listed_newest_first(&self, jid: &str) -> Vec<u8> {
        let mut k = self.listing_newest_first();
        k.extend(newest_first(jid));
        k
    }

    /// `<root>/funs/<fun>/`: the newest jid of each minion's return of `fun`.
    pub fn latest_of(&self, fun: &str) -> Vec<u8> {
        self.key(&["funs", &segment(fun), ""])
    }

    pub fn latest(&self, fun: &str, id: &str) -> Vec<u8> {
        self.key(&["funs", &segment(fun), id])
    }
}

/// The first key after every key that starts with `prefix` (etcd's `range_end` of a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every key: etcd's "\0" range end.
    vec![0]
}

/// The smallest key after `key`.
pub fn after(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

/// A name as one level of a key: `%` and `/` percent-encoded.
pub fn segment(name: &str) -> Cow<'_, str> {
    if name.contains(['%', '/']) {
        Cow::Owned(name.replace('%', "%25").replace('/', "%2F"))
    } else {
        Cow::Borrowed(name)
    }
}

pub fn unsegment(level: &str) -> Cow<'_, str> {
    if level.contains('%') {
        Cow::Owned(level.replace("%2F", "/").replace("%25", "%"))
    } else {
        Cow::Borrowed(level)
    }
}

/// A jid as a key that sorts the other way: each byte inverted, then `0xff`, so that a jid
/// sorts before every jid it is a prefix of (`…001` before `…001_42` oldest first, after it
/// newest first).
pub fn newest_first(jid: &str) -> Vec<u8> {
    let mut k: Vec<u8> = jid.bytes().map(|b| 0xff - b).collect();
    k.push(0xff);
    k
}

pub fn jid_from_newest_first(key: &[u8]) -> Option<String> {
    let body = key.strip_suffix(&[0xff])?;
    String::from_utf8(body.iter().map(|b| 0xff - b).collect()).ok()
}

/// A value as written: a msgpack string (Salt's v3 `encode_values`), or the text itself.
pub fn encode_value(text: &str, msgpack: bool) -> Vec<u8> {
    if !msgpack {
        return text.as_bytes().to_vec();
    }
    let n = text.len();
    let mut out = Vec::with_capacity(n + 5);
    match n {
        0..=31 => out.push(0xa0 | n as u8),
        32..=0xff => out.extend([0xd9, n as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend((n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
    out
}

/// The text of a stored value, whether it is a msgpack string or plain text. The two never
/// look alike: what we store as text (JSON, a jid) starts with an ASCII byte, a msgpack string
/// with `0xa0`–`0xbf` or `0xd9`–`0xdb`.
pub fn decode_text(value: &[u8]) -> Result<String, String> {
    let (len, body) = match value.first() {
        Some(&b @ 0xa0..=0xbf) => ((b & 0x1f) as usize, &value[1..]),
        Some(0xd9) if value.len() >= 2 => (value[1] as usize, &value[2..]),
        Some(0xda) if value.len() >= 3 => (u16::from_be_bytes([value[1], value[2]]) as usize, &value[3..]),
        Some(0xdb) if value.len() >= 5 => (u32::from_be_bytes([value[1], value[2], value[3], value[4]]) as usize, &value[5..]),
        _ => return String::from_utf8(value.to_vec()).map_err(|_| "a value that is neither text nor a msgpack string".into()),
    };
    if body.len() != len {
        return Err("a msgpack string of the wrong length".into());
    }
    String::from_utf8(body.to_vec()).map_err(|_| "a msgpack string that is not UTF-8".into())
}

/// The JSON a stored value holds.
pub fn decode_json(value: &[u8]) -> Result<Value, String> {
    serde_json::from_str(&decode_text(value)?).map_err(|e| format!("not JSON: {e}"))
}

/// A key and its value.
pub type Kv = (Vec<u8>, Vec<u8>);

/// A job's load: `.load.p` and its two listing entries, written together, the first time.
#[derive(Debug, Clone)]
pub struct LoadKeys {
    pub load: Kv,
    pub listed: Kv,
    pub listed_newest_first: Kv,
}

impl LoadKeys {
    pub fn new(layout: &Layout, jid: &str, load: &Load, msgpack: bool) -> LoadKeys {
        let listing = summary_json(&crate::format::summary_from_load(jid, load)).into_bytes();
        LoadKeys {
            load: (layout.load(jid), encode_value(&dumps_map(load), msgpack)),
            listed: (layout.listed(jid), listing.clone()),
            listed_newest_first: (layout.listed_newest_first(jid), listing),
        }
    }

    fn bytes(&self) -> usize {
        [&self.load, &self.listed, &self.listed_newest_first].iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// One return as keys: a key per field, Salt's `minions/<id>`, and the `get_fun` entry.
#[derive(Debug, Clone)]
pub struct ReturnKeys {
    pub jid: String,
    pub id: String,
    pub fun: Option<String>,
    /// Every field's key and value; the first is `return`, whose key says the return is stored.
    pub fields: Vec<Kv>,
    pub minion_value: Vec<u8>,
    /// A `req` return is also its job's load.
    pub load: Option<LoadKeys>,
}

impl ReturnKeys {
    /// `Ok(None)`: a return not to store (`nocache`); `Err`: why it cannot be stored.
    pub fn new(layout: &Layout, ret: &Load, msgpack: bool) -> Result<Option<ReturnKeys>, String> {
        let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
        let mut fields = vec![(layout.field(&rec.jid, rec.id, "return"), encode_value(&dumps_entry("return", rec.value), msgpack))];
        for (name, value) in rec.full.iter().filter(|(name, _)| *name != "return") {
            if name.is_empty() || name == "." || name == ".." {
                return Err(format!("the return of {} has a field named {name:?}, which cannot be a key", rec.id));
            }
            fields.push((layout.field(&rec.jid, rec.id, name), encode_value(&dumps_entry(name, value), msgpack)));
        }
        Ok(Some(ReturnKeys {
            load: rec.req.then(|| LoadKeys::new(layout, &rec.jid, &rec.full, msgpack)),
            minion_value: encode_value(&rec.jid, msgpack),
            fun: rec.fun_given.map(str::to_string),
            id: rec.id.to_string(),
            jid: rec.jid,
            fields,
        }))
    }

    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    /// Top-level operations in a transaction.
    pub fn ops(&self) -> usize {
        1 + usize::from(self.load.is_some())
    }

    /// The most operations below its top-level ones, at most: the field puts, the
    /// `minions/<id>` put and the `get_fun` entry's transaction, which holds two levels of one
    /// operation (see [`returns_txn`]).
    pub fn nested_ops(&self) -> usize {
        (self.fields.len() + 4).max(3)
    }

    pub fn bytes(&self) -> usize {
        self.fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + self.load.as_ref().map_or(0, LoadKeys::bytes)
    }
}

/// Runs of records that each fit one transaction: within [`MAX_TXN_OPS`] and
/// [`MAX_TXN_BYTES`] (a bigger record goes alone). etcd counts the operations of a nested
/// transaction against what the levels above it left: the top-level operations plus the most
/// any record nests must stay within the limit.
pub(crate) fn transactions(rows: &[Indexed<ReturnKeys>]) -> Vec<&[Indexed<ReturnKeys>]> {
    let mut out = Vec::new();
    let (mut start, mut ops, mut nested, mut bytes) = (0, 0, 0, 0);
    for (i, Indexed { row, .. }) in rows.iter().enumerate() {
        let too_many = ops + row.ops() + nested.max(row.nested_ops()) > MAX_TXN_OPS;
        if i > start && (too_many || bytes + row.bytes() > MAX_TXN_BYTES) {
            out.push(&rows[start..i]);
            (start, ops, nested, bytes) = (i, 0, 0, 0);
        }
        ops += row.ops();
        nested = nested.max(row.nested_ops());
        bytes += row.bytes();
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

pub fn b64(bytes: &[u8]) -> Value {
    Value::String(BASE64.encode(bytes))
}

pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    BASE64.decode(text).map_err(|e| format!("bad base64 from the server: {e}"))
}

fn put((key, value): &Kv, lease: Option<i64>) -> Value {
    let mut put = json!({"key": b64(key), "value": b64(value)});
    if let Some(lease) = lease {
        put["lease"] = Value::String(lease.to_string());
    }
    json!({"request_put": put})
}

/// The comparison "`key` does not exist".
fn absent(key: &[u8]) -> Value {
    json!({"key": b64(key), "target": "VERSION", "result": "EQUAL", "version": "0"})
}

/// `puts` only if `guard` does not exist: what makes a second write of a record a no-op.
fn first_time(guard: &[u8], puts: Vec<Value>) -> Value {
    json!({"request_txn": {"compare": [absent(guard)], "success": puts}})
}

/// Puts `jid` at `key` unless it holds a newer one. (etcd compares the values as bytes: the
/// value is the jid as plain text, whose byte order is time order.)
fn put_if_newer(key: &[u8], jid: &str, lease: Option<i64>) -> Value {
    let kv = (key.to_vec(), jid.as_bytes().to_vec());
    json!({"request_txn": {
        "compare": [{"key": b64(key), "target": "VALUE", "result": "LESS", "value": b64(jid.as_bytes())}],
        "success": [put(&kv, lease)],
        // A missing key compares as false: put it then.
        "failure": [first_time(key, vec![put(&kv, lease)])],
    }})
}

/// The operation that stores a load, the first time.
pub fn load_op(keys: &LoadKeys, lease: Option<i64>) -> Value {
    let puts = [&keys.load, &keys.listed, &keys.listed_newest_first].into_iter().map(|kv| put(kv, lease)).collect();
    first_time(&keys.load.0, puts)
}

/// The transaction that stores `rows`. Each return is written whole the first time only
/// (idempotent on jid and minion); a key that several records share (`minions/<id>`, the
/// `get_fun` entry) is written by one of them, the newest (etcd refuses a transaction that
/// writes a key twice).
pub(crate) fn returns_txn(layout: &Layout, rows: &[Indexed<ReturnKeys>], lease: Option<i64>) -> Value {
    // The record that writes each shared key: the newest of those that share it.
    let mut minion_writer: HashMap<&str, usize> = HashMap::new();
    let mut fun_writer: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, Indexed { row, .. }) in rows.iter().enumerate() {
        let newest = |j: &mut usize| {
            if rows[*j].row.jid < row.jid {
                *j = i
            }
        };
        minion_writer.entry(&row.id).and_modify(newest).or_insert(i);
        if let Some(fun) = &row.fun {
            fun_writer.entry((fun, &row.id)).and_modify(newest).or_insert(i);
        }
    }
    let mut ops = Vec::new();
    for (i, Indexed { row, .. }) in rows.iter().enumerate() {
        let mut puts: Vec<Value> = row.fields.iter().map(|kv| put(kv, lease)).collect();
        if minion_writer.get(row.id.as_str()) == Some(&i) {
            puts.push(put(&(layout.minion(&row.id), row.minion_value.clone()), lease));
        }
        if let Some(fun) = row.fun.as_deref().filter(|f| fun_writer.get(&(*f, row.id.as_str())) == Some(&i)) {
            puts.push(put_if_newer(&layout.latest(fun, &row.id), &row.jid, lease));
        }
        ops.push(first_time(&row.fields[0].0, puts));
        if let Some(load) = &row.load {
            ops.push(load_op(load, lease));
        }
    }
    json!({"success": ops})
}

/// A load's listing fields, as its listing entries hold them.
pub fn summary_json(s: &JobSummary) -> String {
    let mut m = Map::new();
    m.insert("fun".into(), s.fun.clone().into());
    m.insert("arg".into(), Value::Array(s.arg.clone()));
    m.insert("tgt".into(), s.tgt.clone());
    m.insert("tgt_type".into(), s.tgt_type.clone().into());
    m.insert("user".into(), s.user.clone().into());
    if let Some(md) = &s.metadata {
        m.insert("metadata".into(), md.clone());
    }
    Value::Object(m).to_string()
}

pub fn summary_from_json(jid: &str, value: &[u8]) -> Result<JobSummary, String> {
    let v: Value = serde_json::from_slice(value).map_err(|e| format!("the listing entry of {jid} is not JSON: {e}"))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(JobSummary {
        jid: jid.to_string(),
        fun: text("fun"),
        arg: v.get("arg").and_then(Value::as_array).cloned().unwrap_or_default(),
        tgt: v.get("tgt").cloned().unwrap_or(Value::Null),
        tgt_type: text("tgt_type"),
        user: text("user"),
        metadata: v.get("metadata").cloned(),
        end_time: None,
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
    fn salts_keys_and_ours() {
        let l = Layout::new("/salt/return/");
        assert_eq!(l.minion("web1"), b"/salt/return/minions/web1");
        assert_eq!(l.field(JID, "web1", "fun_args"), format!("/salt/return/jobs/{JID}/web1/fun_args").into_bytes());
        assert_eq!(l.load(JID), format!("/salt/return/jobs/{JID}/.load.p").into_bytes());
        assert_eq!(l.job(JID), format!("/salt/return/jobs/{JID}/").into_bytes());
        assert_eq!(l.listed(JID), format!("/salt/return/jids/{JID}").into_bytes());
        // A slash in a function or a field stays inside its level.
        assert_eq!(l.latest("a/b%c", "m1"), b"/salt/return/funs/a%2Fb%25c/m1");
        assert_eq!(l.field(JID, "m1", "x/y"), format!("/salt/return/jobs/{JID}/m1/x%2Fy").into_bytes());
        assert_eq!(unsegment("a%2Fb%25c"), "a/b%c");
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
    }

    #[test]
    fn newest_first_keys_sort_the_other_way() {
        let mut jids = ["20240510093000000001", "20240510093000000001_42", "20240510093000000002", "20240510093000000001_5"];
        let mut keys: Vec<Vec<u8>> = jids.iter().map(|j| newest_first(j)).collect();
        keys.sort();
        jids.sort();
        jids.reverse();
        let back: Vec<String> = keys.iter().map(|k| jid_from_newest_first(k).unwrap()).collect();
        assert_eq!(back, jids);
    }

    #[test]
    fn values_are_msgpack_strings_or_text() {
        for text in ["", "x", &"y".repeat(31), &"z".repeat(32), &"é".repeat(200), &"w".repeat(70_000)] {
            let packed = encode_value(text, true);
            assert_eq!(decode_text(&packed).unwrap(), text);
            assert_eq!(decode_text(&encode_value(text, false)).unwrap(), text);
        }
        // Salt's own msgpack of a jid (salt.utils.msgpack.dumps("2024...")): fixstr, 20 bytes.
        assert_eq!(encode_value(JID, true)[0], 0xb4);
        assert_eq!(encode_value(&"a".repeat(40), true)[..2], [0xd9, 40]);
        assert!(decode_text(&[0xd9, 9, b'x']).is_err());
        assert_eq!(decode_json(br#"{"a": [1]}"#).unwrap(), json!({"a": [1]}));
    }

    #[test]
    fn a_return_is_a_key_per_field_and_return_comes_first() {
        let l = Layout::new("/r");
        let ret = obj(json!({"id": "m1", "jid": JID, "fun": "test.echo", "fun_args": ["x"], "return": {"a": "é"},
                             "ret_kwargs": {"password": "hunter2"}, "success": true}));
        let k = ReturnKeys::new(&l, &ret, false).unwrap().unwrap();
        let fields: Vec<(String, String)> =
            k.fields.iter().map(|(k, v)| (String::from_utf8(k.clone()).unwrap(), String::from_utf8(v.clone()).unwrap())).collect();
        assert_eq!(fields[0], (format!("/r/jobs/{JID}/m1/return"), r#"{"a": "é"}"#.to_string()));
        assert!(fields.contains(&(format!("/r/jobs/{JID}/m1/fun_args"), r#"["x"]"#.into())));
        assert!(fields.contains(&(format!("/r/jobs/{JID}/m1/jid"), format!("\"{JID}\""))));
        assert!(fields.iter().any(|(k, v)| k.ends_with("/ret_kwargs") && !v.contains("hunter2")));
        assert_eq!(k.minion_value, JID.as_bytes());
        assert!(k.load.is_none());
        let req = obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "return": true}));
        let k = ReturnKeys::new(&l, &req, true).unwrap().unwrap();
        assert!(k.load.is_some() && k.jid != "req" && k.ops() == 2);
        let bad = obj(json!({"id": "m1", "jid": JID, "fun": "f", "return": 1, "": 2}));
        assert!(ReturnKeys::new(&l, &bad, true).unwrap_err().contains("cannot be a key"));
        assert!(ReturnKeys::new(&l, &obj(json!({"id": "m1", "jid": "nocache", "return": 1})), true).unwrap().is_none());
    }

    #[test]
    fn shared_keys_are_written_once_per_transaction_by_the_newest() {
        let l = Layout::new("/r");
        let rec = |jid: &str, id: &str, fun: &str| {
            let ret = obj(json!({"id": id, "jid": jid, "fun": fun, "return": 1}));
            ReturnKeys::new(&l, &ret, false).unwrap().unwrap()
        };
        let rows: Vec<Indexed<ReturnKeys>> = [
            rec("20240510093000000002", "m1", "test.ping"),
            rec("20240510093000000003", "m1", "test.ping"),
            rec("20240510093000000001", "m1", "cmd.run"),
            rec("20240510093000000001", "m2", "test.ping"),
        ]
        .into_iter()
        .enumerate()
        .map(|(index, row)| Indexed { index, row })
        .collect();
        let txn = returns_txn(&l, &rows, Some(7)).to_string();
        let count = |key: &[u8]| txn.matches(&format!("\"key\":\"{}\"", BASE64.encode(key))).count();
        // minions/m1: one put, by the newest record (…003).
        assert_eq!(count(&l.minion("m1")), 1);
        assert_eq!(count(&l.minion("m2")), 1);
        // funs/test.ping/m1: compared, then put, in the one nested transaction of …003.
        assert_eq!(count(&l.latest("test.ping", "m1")), 4);
        assert!(txn.contains("\"lease\":\"7\""));
        let ops = returns_txn(&l, &rows, None)["success"].as_array().unwrap().len();
        assert_eq!(ops, 4);
    }

    #[test]
    fn transactions_stay_within_etcds_limits() {
        let l = Layout::new("/r");
        let row = |index: usize, size: usize| {
            let ret = obj(json!({"id": "m1", "jid": JID, "fun": "f", "return": "x".repeat(size)}));
            Indexed { index, row: ReturnKeys::new(&l, &ret, false).unwrap().unwrap() }
        };
        let many: Vec<_> = (0..300).map(|i| row(i, 10)).collect();
        let runs = transactions(&many);
        // 4 fields: 8 operations nested, 120 records a transaction.
        assert_eq!(runs.iter().map(|r| r.len()).collect::<Vec<_>>(), [120, 120, 60]);
        let big: Vec<_> = vec![row(0, 10), row(1, 2 * MAX_TXN_BYTES), row(2, 10)];
        assert_eq!(transactions(&big).iter().map(|r| r.len()).collect::<Vec<_>>(), [1, 1, 1]);
    }

    #[test]
    fn listing_entries_round_trip() {
        let load = obj(json!({"fun": "cmd.run", "arg": ["ls /", {"__kwarg__": true, "metadata": {"env": "prod"}}], "tgt": ["a", "b"],
                              "tgt_type": "list", "user": "root", "ret": ""}));
        let s = crate::format::summary_from_load(JID, &load);
        assert_eq!(summary_from_json(JID, summary_json(&s).as_bytes()).unwrap(), s);
    }
}
