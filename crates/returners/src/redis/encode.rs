//! Pure: Salt's redis keys, a return as the values stored under them, and the small listing
//! summary of a load (and back).
//!
//! Salt's keys, unchanged (users' scripts read them):
//! - `ret:<jid>`: a hash, minion id -> `json.dumps(ret)`, with the TTL;
//! - `load:<jid>`: `json.dumps(load)`, with the TTL;
//! - `<minion>:<fun>`: the jid of the minion's latest return of `fun`;
//! - `minions`: a set of every minion id with a stored return.
//!
//! Ours, beside them (no Salt key has these names; minion ids never contain `:`):
//! - `minions:<jid>`: a set, the minions the job targeted (`Minions` in `get_load`), with the TTL;
//! - `summary:<jid>`: the load's listing fields as JSON, with the TTL, so a listing never
//!   reads a load (a `req` job's load is a whole return, maybe megabytes);
//! - `jids`: a sorted set of the jids that have a load, all with score 0, so that Redis orders
//!   them as strings, which for jids is time order: the listing index;
//! - `jid_activity`: a sorted set, jid -> Unix time of the job's latest write (its purge age);
//! - `minion_activity`: a sorted set, minion id -> Unix time of its latest return.

use serde_json::{Map, Value};

use crate::json::dumps_map;
use crate::record::ReturnRecord;
pub use crate::summary::{decode_summary, encode_summary};
use crate::Load;

/// Redis refuses a string longer than `proto-max-bulk-len` (512 MiB by default); a record that
/// big is refused here, clearly, instead of by the server.
pub const MAX_VALUE_BYTES: usize = 512 * 1024 * 1024 - 1;

pub const MINIONS: &str = "minions";
pub const JIDS: &str = "jids";
pub const JID_ACTIVITY: &str = "jid_activity";
pub const MINION_ACTIVITY: &str = "minion_activity";

pub fn ret_key(jid: &str) -> String {
    format!("ret:{jid}")
}

pub fn load_key(jid: &str) -> String {
    format!("load:{jid}")
}

pub fn latest_key(minion: &str, fun: &str) -> String {
    format!("{minion}:{fun}")
}

pub fn expected_minions_key(jid: &str) -> String {
    format!("minions:{jid}")
}

pub fn summary_key(jid: &str) -> String {
    format!("summary:{jid}")
}

/// One return, as the values its keys get.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnRow {
    pub jid: String,
    pub id: String,
    pub fun: String,
    /// `json.dumps(ret)`, settings redacted: the `ret:<jid>` field.
    pub json: String,
    /// A `req` return (a job the minion started itself) is also its job's load: the summary
    /// of that load.
    pub req_summary: Option<String>,
}

impl ReturnRow {
    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    /// Bytes sent for it (a `req` return is sent twice: as the return and as the load).
    pub fn bytes(&self) -> usize {
        self.json.len() * if self.req_summary.is_some() { 2 } else { 1 } + self.id.len() + self.fun.len() + 64
    }
}

/// A return as a row; `Ok(None)` for one not to store, `Err` says why it cannot be stored.
pub fn prepare_return(ret: &Load) -> Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = rec.fun()?.to_string();
    let json = dumps_map(&rec.full);
    if json.len() > MAX_VALUE_BYTES {
        return Err(format!("the return of {} is {} bytes, more than the 512 MiB a Redis value holds", rec.id, json.len()));
    }
    let req_summary = rec.req.then(|| encode_summary(&rec.full));
    Ok(Some(ReturnRow { id: rec.id.to_string(), fun, json, req_summary, jid: rec.jid }))
}

/// A stored JSON object (a load or a return); `Err` names what could not be read.
pub fn decode_object(what: &str, text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{what} is not a JSON object")),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn salt_keys() {
        let j = "20240510093015123456";
        assert_eq!((ret_key(j), load_key(j)), ("ret:20240510093015123456".into(), "load:20240510093015123456".into()));
        assert_eq!(latest_key("web1.example.com", "test.ping"), "web1.example.com:test.ping");
        assert_eq!(
            (expected_minions_key(j), summary_key(j)),
            ("minions:20240510093015123456".into(), "summary:20240510093015123456".into())
        );
    }

    #[test]
    fn a_return_as_salt_writes_it() {
        let ret = obj(json!({"success": true, "return": "bin\nboot", "retcode": 0, "jid": "20240510093015123456",
                             "fun": "cmd.run", "fun_args": ["ls /"], "id": "m1", "ret_kwargs": {"password": "hunter2"}}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert_eq!(
            (row.jid.as_str(), row.id.as_str(), row.fun.as_str(), row.req_summary.as_deref()),
            ("20240510093015123456", "m1", "cmd.run", None)
        );
        assert!(
            row.json.starts_with(r#"{"success": true, "return": "bin\nboot", "retcode": 0, "jid": "20240510093015123456""#),
            "{}",
            row.json
        );
        assert!(!row.json.contains("hunter2"));
        let no_fun = obj(json!({"return": 1, "jid": "20240510093015123456", "id": "m1"}));
        assert!(prepare_return(&no_fun).unwrap_err().contains("'fun'"));
        let nocache = obj(json!({"return": 1, "jid": "nocache", "id": "m1", "fun": "f"}));
        assert_eq!(prepare_return(&nocache).unwrap(), None);
    }

    #[test]
    fn a_req_return_is_its_jobs_load() {
        let ret = obj(json!({"return": true, "jid": "req", "id": "m1", "fun": "test.ping", "fun_args": ["a"]}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert!(salt_proto::jid::is_jid(&row.jid));
        let summary = decode_summary(&row.jid, row.req_summary.as_deref().unwrap()).unwrap();
        assert_eq!((summary.fun.as_str(), summary.arg.clone()), ("test.ping", vec![json!("a")]));
    }
}
