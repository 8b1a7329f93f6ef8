//! Records as local_cache's rows (pure: no I/O, unit-tested here): a return split into its
//! listing columns, its value and its envelope; `get_jid`'s entry as Salt's local_cache gives it.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::options::truthy;
use crate::record::ReturnRecord;
use crate::Load;

/// Rows per INSERT statement: 9 parameters each keeps a statement far below SQLite's limit of
/// 32766 bound parameters.
pub(super) const ROWS_PER_INSERT: usize = 256;

/// One return, ready for the `returns` table.
pub(super) struct ReturnRow {
    pub jid: String,
    /// A `req` return (a job the minion started itself, under a jid from the process's clock):
    /// its job row is made here, with the return's `nocache` flag.
    pub req_nocache: Option<bool>,
    pub id: String,
    pub fun: Option<String>,
    pub ret: String,
    pub retcode: Option<i64>,
    pub success: Option<bool>,
    pub out: Option<String>,
    /// The return load with `return` set to null (see the schema notes).
    pub envelope: Map<String, Value>,
}

impl ReturnRow {
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// What `get_jid` shows, for comparing a duplicate with the stored return.
    pub fn stored_fields(&self) -> (Option<Value>, Option<i64>, Option<bool>, Option<String>) {
        (serde_json::from_str(&self.ret).ok(), self.retcode, self.success, self.out.clone())
    }
}

/// One return as a row. `Err` says why the cache cannot take it.
pub(super) fn prepare(load: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(load)? else { return Ok(None) };
    let ret = serde_json::to_string(rec.value).map_err(|e| e.to_string())?;
    // Everything but the (possibly huge) return value is small: copy it.
    let envelope = rec.full.iter().map(|(k, v)| (k.clone(), if k == "return" { Value::Null } else { v.clone() })).collect();
    Ok(Some(ReturnRow {
        req_nocache: rec.req.then(|| load.get("nocache").is_some_and(truthy)),
        id: rec.id.to_string(),
        fun: rec.fun_given.map(str::to_string),
        ret,
        retcode: load.get("retcode").and_then(Value::as_i64),
        success: load.get("success").and_then(Value::as_bool),
        out: load.get("out").and_then(Value::as_str).map(str::to_string),
        envelope,
        jid: rec.jid,
    }))
}

pub(super) fn insert_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO returns (jid, id, fun, ret, retcode, success, out, full_ret, stored_at) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(" ON CONFLICT (jid, id) DO NOTHING RETURNING jid, id");
    sql
}

pub(super) fn full_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| insert_sql(ROWS_PER_INSERT))
}

/// Salt keeps the first return of a minion for a job and ignores later ones: quietly when they
/// are the same (a retried send), loudly when they differ (a replay, or two minions sharing an id).
pub(super) fn log_duplicate(row: &ReturnRow, stored: (Option<Value>, Option<i64>, Option<bool>, Option<String>)) {
    if row.stored_fields() == stored {
        tracing::debug!(jid = row.jid(), id = %row.id, "duplicate return ignored (identical to the stored one)");
    } else {
        tracing::warn!(
            jid = row.jid(),
            id = %row.id,
            "a second, different return from minion {} for job {} was ignored; the first one is kept \
             (check the minion: this could be a replay or two minions with one id)",
            row.id,
            row.jid()
        );
    }
}

/// One minion's entry in `get_jid`, as Salt's local_cache gives it: `return`, then `retcode`,
/// `success` and `out` only when stored, in that order. `json_patch` drops the keys whose value
/// is NULL (an RFC 7396 merge patch) and appends the rest in order.
pub(super) const GET_JID_ENTRY: &str = "json_patch(
    iif(ret IS NULL, '{}', json_object('return', json(ret))),
    json_object('retcode', retcode,
                'success', json(CASE success WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
                'out', out))";

/// `get_fun`'s "full return": the stored envelope with the return value put back in its place.
pub(super) fn full_return(ret: Option<String>, envelope: &str) -> Value {
    let mut full: Map<String, Value> = serde_json::from_str(envelope).unwrap_or_default();
    if let Some(ret) = ret {
        full.insert("return".into(), serde_json::from_str(&ret).unwrap_or(Value::Null));
    }
    Value::Object(full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn prepare_splits_return_from_envelope() {
        let row = prepare(&load(json!({"id": "m1", "jid": "20240510093015123456", "return": {"a": 1},
                                        "retcode": 0, "success": true, "fun": "test.x", "out": "nested"})))
        .unwrap()
        .unwrap();
        assert_eq!(row.ret, r#"{"a":1}"#);
        assert_eq!(
            Value::Object(row.envelope.clone()),
            json!({"id": "m1", "jid": "20240510093015123456", "return": null,
            "retcode": 0, "success": true, "fun": "test.x", "out": "nested"})
        );
        assert_eq!(
            (row.retcode, row.success, row.out.as_deref(), row.fun.as_deref()),
            (Some(0), Some(true), Some("nested"), Some("test.x"))
        );
    }

    #[test]
    fn prepare_rejects_bad_loads_and_skips_nocache() {
        for bad in [
            json!({"jid": "20240510093015123456", "fun": "f", "return": 1}),
            json!({"id": "../etc", "jid": "20240510093015123456", "fun": "f", "return": 1}),
            json!({"id": "m1", "jid": "../../x", "fun": "f", "return": 1}),
            json!({"id": "m1", "jid": "20240510093015123456", "fun": "f"}),
        ] {
            assert!(prepare(&load(bad.clone())).is_err(), "{bad}");
        }
        assert!(prepare(&load(json!({"id": "m1", "jid": "nocache", "return": 1}))).unwrap().is_none());
        let req = prepare(&load(json!({"id": "m1", "jid": "req", "fun": "f", "return": 1, "nocache": true}))).unwrap().unwrap();
        assert!(salt_proto::jid::is_jid(&req.jid) && req.req_nocache == Some(true));
    }

    #[test]
    fn insert_sql_has_one_group_per_row() {
        let sql = insert_sql(3);
        assert_eq!(sql.matches("(?,?,?,?,?,?,?,?,?)").count(), 3);
        assert!(sql.ends_with("RETURNING jid, id"));
    }
}
