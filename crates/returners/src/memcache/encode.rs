//! Pure: Salt's memcache keys, the values stored under them, the comma-terminated lists, the
//! time index, and values split into parts (and back).
//!
//! Salt's keys, unchanged (flags 16, python-memcached's mark for text; no expiry):
//! - `<jid>:<minion>` and `<fun>:<minion>`: `json.dumps(ret)`;
//! - `<jid>`: `json.dumps(load)`;
//! - `minions` and `jids`: comma-terminated lists (`a,b,`).
//!
//! Ours, beside them (each has a `:` after its second part, and no minion id has one, so no
//! Salt key looks like them):
//! - `jids:index:days` lists the days with jobs (`YYYYMMDD`), `jids:index:<YYYYMMDD>` the
//!   minutes of that day with jobs (`HHMM`), `jids:index:<YYYYMMDDHHMM>` the jids of that
//!   minute: the listing index, read newest day first, so the first page never reads old ones;
//! - `jids:summary:<jid>`: the load's listing fields;
//! - `chunk:<sha256 of the value>:<n>`: the parts of a value larger than one item, whose own
//!   key then holds a small manifest (flags [`CHUNKED`]).

use sha2::{Digest, Sha256};

use crate::json::dumps_map;
use crate::record::ReturnRecord;
use crate::Load;

/// python-memcached's flag for a `str`, as Salt's values carry it.
pub const TEXT: u32 = 16;
/// A manifest: the value is in parts (`TEXT` too, so python-memcached reads it as text).
pub const CHUNKED: u32 = TEXT | 0x2000;
/// memcached's longest key.
pub const MAX_KEY: usize = 250;
/// Bytes per item written: memcached's default item limit is 1 MiB, key and header included.
pub const PART_BYTES: usize = 1_000_000;
/// The largest value stored (in parts): a bigger one is refused, clearly.
pub const MAX_VALUE_BYTES: usize = 128 * 1024 * 1024;

pub const MINIONS: &str = "minions";
pub const JIDS: &str = "jids";
pub const DAYS: &str = "jids:index:days";

pub fn return_key(jid: &str, minion: &str) -> String {
    format!("{jid}:{minion}")
}

pub fn fun_key(fun: &str, minion: &str) -> String {
    format!("{fun}:{minion}")
}

pub fn summary_key(jid: &str) -> String {
    format!("jids:summary:{jid}")
}

/// The index list a jid's day or minute is in: `jids:index:<YYYYMMDD>` holds minutes,
/// `jids:index:<YYYYMMDDHHMM>` jids.
pub fn index_key(stamp: &str) -> String {
    format!("jids:index:{stamp}")
}

/// Where a jid goes in the index: (day, minute of the day, minute).
pub fn index_place(jid: &str) -> (&str, &str, &str) {
    (&jid[..8], &jid[8..12], &jid[..12])
}

/// Whether memcached takes `key`: at most 250 bytes, no spaces or control characters.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!(
            "the key {:?} is {} bytes; memcached takes 1 to {MAX_KEY}",
            key.chars().take(64).collect::<String>(),
            key.len()
        ));
    }
    if let Some(c) = key.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the key {key:?} holds {c:?}, which memcached does not take in a key"));
    }
    Ok(())
}

/// A comma-terminated list's items (Salt's `value.strip(",").split(",")`), without repeats.
pub fn parse_list(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.split(',').filter(|s| !s.is_empty() && seen.insert(*s)).map(str::to_string).collect()
}

/// Items as appended to a list: `a,b,`.
pub fn list_text<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|s| format!("{},", s.as_ref())).collect()
}

/// One return, as the values its keys get.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnRow {
    pub jid: String,
    pub id: String,
    pub fun: String,
    /// `json.dumps(ret)`, settings redacted.
    pub json: String,
    /// A `req` return is also its job's load: the summary of that load.
    pub req_summary: Option<String>,
}

impl ReturnRow {
    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }
}

/// A return as a row; `Ok(None)` for one not to store, `Err` says why it cannot be stored.
pub fn prepare_return(ret: &Load) -> Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = rec.fun()?.to_string();
    check_key(&return_key(&rec.jid, rec.id))?;
    check_key(&fun_key(&fun, rec.id))?;
    let json = dumps_map(&rec.full);
    if json.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the return of {} is {} bytes, more than the {MAX_VALUE_BYTES} this store keeps in memcached",
            rec.id,
            json.len()
        ));
    }
    let req_summary = rec.req.then(|| crate::summary::encode_summary(&rec.full));
    Ok(Some(ReturnRow { id: rec.id.to_string(), fun, json, req_summary, jid: rec.jid }))
}

/// A value as the items that hold it: itself, or (over [`PART_BYTES`]) its parts and then the
/// manifest for its own key. Parts are named by the value's hash, so the same value stored
/// under two keys (`<jid>:<minion>` and `<fun>:<minion>`) shares them, and a reader never
/// mixes the parts of two values.
pub fn items_for(value: &str) -> Items {
    if value.len() <= PART_BYTES {
        return Items { parts: Vec::new(), flags: TEXT, data: value.as_bytes().to_vec() };
    }
    let hash = hex(&Sha256::digest(value.as_bytes()));
    let parts: Vec<(String, Vec<u8>)> =
        value.as_bytes().chunks(PART_BYTES).enumerate().map(|(i, part)| (format!("chunk:{hash}:{i}"), part.to_vec())).collect();
    let manifest = format!(r#"{{"chunks": {}, "bytes": {}, "sha256": "{hash}"}}"#, parts.len(), value.len());
    Items { parts, flags: CHUNKED, data: manifest.into_bytes() }
}

/// The items that hold a value: its parts (key, bytes), if any, then what its own key gets.
#[derive(Debug)]
pub struct Items {
    pub parts: Vec<(String, Vec<u8>)>,
    pub flags: u32,
    pub data: Vec<u8>,
}

/// What a manifest says: the part keys and the value's length.
pub fn parts_of(manifest: &[u8]) -> Result<(Vec<String>, usize), String> {
    let m: serde_json::Value = serde_json::from_slice(manifest).map_err(|e| format!("a manifest that is not JSON: {e}"))?;
    let (Some(n), Some(bytes), Some(hash)) = (m["chunks"].as_u64(), m["bytes"].as_u64(), m["sha256"].as_str()) else {
        return Err(format!("a manifest without chunks, bytes and sha256: {m}"));
    };
    let (n, bytes) = (n as usize, bytes as usize);
    if bytes > MAX_VALUE_BYTES || n != bytes.div_ceil(PART_BYTES) || hash.len() != 64 {
        return Err(format!("a manifest this store did not write: {m}"));
    }
    Ok(((0..n).map(|i| format!("chunk:{hash}:{i}")).collect(), bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn salt_keys_and_ours() {
        let j = "20240510093015123456";
        assert_eq!((return_key(j, "web1"), fun_key("test.ping", "web1")), ("20240510093015123456:web1".into(), "test.ping:web1".into()));
        assert_eq!(index_place(j), ("20240510", "0930", "202405100930"));
        assert_eq!((index_key("20240510"), summary_key(j)), ("jids:index:20240510".into(), "jids:summary:20240510093015123456".into()));
    }

    #[test]
    fn keys_memcached_refuses() {
        assert!(check_key("test.ping:web1").is_ok());
        assert!(check_key(&"x".repeat(251)).unwrap_err().contains("1 to 250"));
        assert!(check_key("my fun:web1").unwrap_err().contains("' '"));
        let ret = json!({"id": "m1", "jid": "20240510093015123456", "fun": "bad\nfun", "return": 1});
        assert!(prepare_return(ret.as_object().unwrap()).unwrap_err().contains("does not take"));
        let long_id = "a".repeat(240);
        let ret = json!({"id": long_id, "jid": "20240510093015123456", "fun": "f", "return": 1});
        assert!(prepare_return(ret.as_object().unwrap()).unwrap_err().contains("1 to 250"));
    }

    #[test]
    fn salt_lists() {
        assert_eq!(parse_list("a,b,a,,c,"), ["a", "b", "c"]);
        assert_eq!(parse_list(""), Vec::<String>::new());
        assert_eq!(list_text(&["a", "b"]), "a,b,");
    }

    #[test]
    fn big_values_go_in_parts() {
        let small = items_for("small");
        assert!(small.parts.is_empty());
        assert_eq!((small.flags, small.data.as_slice()), (TEXT, b"small".as_slice()));
        let big = "y".repeat(2 * PART_BYTES + 5);
        let Items { parts, flags, data: manifest } = items_for(&big);
        assert_eq!(flags, CHUNKED);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].1.len(), 5);
        let (keys, bytes) = parts_of(&manifest).unwrap();
        assert_eq!(keys, parts.iter().map(|p| p.0.clone()).collect::<Vec<_>>());
        assert_eq!(bytes, big.len());
        assert!(keys.iter().all(|k| check_key(k).is_ok()));
        assert!(parts_of(br#"{"chunks": 9, "bytes": 5, "sha256": "x"}"#).is_err());
    }
}
