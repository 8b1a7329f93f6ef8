//! Records as the PostgreSQL stores' rows, and their statements (pure: no I/O, unit-tested
//! here). The JSON text is Salt's (`json.dumps`); `success` is psycopg2's text of a bool.

use serde_json::Value;

use super::schema;
use crate::json::{dumps, dumps_around_return};
use crate::record::ReturnRecord;
use crate::registry::Entry;
use crate::{Event, Load};

/// How a store keeps JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    Jsonb,
    Text,
}

/// The fixed traits of one PostgreSQL returner.
#[derive(Debug)]
pub(crate) struct Flavor {
    pub name: &'static str,
    pub entry: &'static Entry,
    pub columns: Columns,
    /// Salt's DDL, table by table, in creation order.
    pub tables: &'static [schema::TableDdl],
}

impl Flavor {
    /// A JSON text expression (a bound parameter, say) as the column wants it.
    pub(super) fn as_json(&self, expr: &str) -> String {
        match self.columns {
            Columns::Jsonb => format!("{expr}::jsonb"),
            Columns::Text => expr.to_string(),
        }
    }

    /// A JSON column read back as text.
    pub(super) fn json_text(&self, column: &str) -> String {
        match self.columns {
            Columns::Jsonb => format!("{column}::text"),
            Columns::Text => column.to_string(),
        }
    }
}

/// The `success` column: Salt binds `ret.get("success", False)` into a `varchar(10)` through
/// psycopg2, which sends a bool as `true`/`false`, and PostgreSQL stores that text.
fn success_text(ret: &Load) -> String {
    match ret.get("success") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => "false".into(),
        Some(Value::Bool(true)) => "true".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => dumps(other),
    }
}

/// One `salt_returns` row, as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ReturnRow {
    pub fun: String,
    pub jid: String,
    pub ret: String,
    pub id: String,
    pub success: String,
    pub full_ret: String,
    /// For a `req` return (a job the minion started itself): the load to save under the jid
    /// allocated for it, as Salt's mysql returner does.
    pub req_load: Option<String>,
}

impl ReturnRow {
    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    pub fn bytes(&self) -> usize {
        self.ret.len() + self.full_ret.len() + self.req_load.as_ref().map_or(0, String::len)
    }
}

/// One return as a row. `Err` says why the store cannot take it.
pub(super) fn prepare_return(ret: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = crate::sql::fun_column(rec.fun()?, rec.id)?;
    let ret_text = dumps(rec.value);
    let (before, after) = dumps_around_return(&rec.full);
    let full_ret = format!("{before}{ret_text}{after}");
    Ok(Some(ReturnRow {
        fun: fun.into(),
        id: rec.id.into(),
        success: success_text(ret),
        req_load: rec.req.then(|| full_ret.clone()),
        jid: rec.jid,
        ret: ret_text,
        full_ret,
    }))
}

/// A stable 64-bit key for an advisory lock on (jid, id) (FNV-1a).
pub(super) fn lock_key(jid: &str, id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in jid.bytes().chain([0u8]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// One `salt_events` row (tag, data) for an event.
pub(super) fn prepare_event(ev: &Event) -> std::result::Result<Option<(String, String)>, String> {
    crate::sql::event_row(ev).map(Some)
}

/// SQL that depends on the column types.
pub(super) struct Statements {
    pub insert_returns: String,
    pub insert_events: String,
    pub insert_load: String,
    pub get_load: String,
    pub get_jid: String,
    pub get_fun: String,
}

impl Statements {
    pub fn new(f: &Flavor) -> Statements {
        Statements {
            // clock_timestamp(), not now(): rows of one transaction get increasing times (unnest
            // yields the batch in order), which orders a minion's rows for get_jid.
            insert_returns: format!(
                "INSERT INTO salt_returns (fun, jid, return, id, success, full_ret, alter_time)
                 SELECT v.fun, v.jid, {ret}, v.id, v.success, {full}, clock_timestamp()
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                      AS v(fun, jid, ret, id, success, full_ret)
                 WHERE NOT EXISTS (SELECT 1 FROM salt_returns r
                                   WHERE r.jid = v.jid AND r.id = v.id AND r.full_ret = {full})",
                ret = f.as_json("v.ret"),
                full = f.as_json("v.full_ret"),
            ),
            insert_events: format!(
                "INSERT INTO salt_events (tag, data, master_id, alter_time)
                 SELECT v.tag, {data}, $3, clock_timestamp()
                 FROM unnest($1::text[], $2::text[]) AS v(tag, data)",
                data = f.as_json("v.data"),
            ),
            insert_load: format!("INSERT INTO jids (jid, load) VALUES ($1, {}) ON CONFLICT (jid) DO NOTHING", f.as_json("$2")),
            get_load: format!("SELECT {} FROM jids WHERE jid = $1", f.json_text("load")),
            // The first row stored for each minion (ctid breaks a tie of equal times).
            get_jid: format!(
                "SELECT DISTINCT ON (id) id, {} FROM salt_returns WHERE jid = $1 ORDER BY id, alter_time, ctid",
                f.json_text("full_ret")
            ),
            // Each minion's row of its latest job running `fun`.
            get_fun: format!(
                "SELECT DISTINCT ON (id) id, {} FROM salt_returns WHERE fun = $1 ORDER BY id, jid DESC, alter_time, ctid",
                f.json_text("full_ret")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::by_size;
    use crate::json::dumps_map;
    use crate::sql::pg::client::MAX_STATEMENT_BYTES;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rows_are_salts_text() {
        // The minion-side row of the transcript (`--return mysql`, salt 3008).
        let ret = obj(json!({"success": true, "return": "héllo wörld ✓", "retcode": 0, "jid": "20261125003811222381",
                             "fun": "test.echo", "fun_args": ["héllo wörld ✓"], "user": "root", "id": "minion1"}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert_eq!(row.ret, "\"héllo wörld ✓\"");
        assert_eq!(
            row.full_ret,
            r#"{"success": true, "return": "héllo wörld ✓", "retcode": 0, "jid": "20261125003811222381", "fun": "test.echo", "fun_args": ["héllo wörld ✓"], "user": "root", "id": "minion1"}"#
        );
        assert_eq!(row.success, "true");
        assert_eq!((row.fun.as_str(), row.jid.as_str(), row.id.as_str()), ("test.echo", "20261125003811222381", "minion1"));
        assert_eq!(row.req_load, None);
        // A runner job has no top-level success: Salt binds False.
        let runner = obj(json!({"id": "vm_master", "jid": "20261125003922712260", "fun": "runner.jobs.list_jobs", "return": {}}));
        assert_eq!(prepare_return(&runner).unwrap().unwrap().success, "false");
    }

    #[test]
    fn bad_returns_are_named_and_special_jids_handled() {
        let no_id = obj(json!({"jid": "20240510093015123456", "fun": "f", "return": 1}));
        assert_eq!(prepare_return(&no_id).unwrap_err(), "a return needs a string 'id'");
        let evil = obj(json!({"id": "../evil", "jid": "20240510093015123456", "fun": "f", "return": 1}));
        assert!(prepare_return(&evil).is_err());
        let bad_jid = obj(json!({"id": "m", "jid": "'; DROP TABLE jids; --", "fun": "f", "return": 1}));
        assert!(prepare_return(&bad_jid).is_err());
        let long_fun = obj(json!({"id": "m", "jid": "20240510093015123456", "fun": "x".repeat(51), "return": 1}));
        assert!(prepare_return(&long_fun).unwrap_err().contains("longer than 50"));
        let nocache = obj(json!({"id": "m", "jid": "nocache", "fun": "f", "return": 1}));
        assert_eq!(prepare_return(&nocache).unwrap(), None);
        let req = obj(json!({"id": "m", "jid": "req", "fun": "f", "return": 1}));
        let row = prepare_return(&req).unwrap().unwrap();
        assert!(salt_proto::jid::is_jid(&row.jid), "{}", row.jid);
        assert_eq!(row.full_ret, format!(r#"{{"id": "m", "jid": "{}", "fun": "f", "return": 1}}"#, row.jid));
        assert_eq!(row.req_load.as_deref(), Some(row.full_ret.as_str()));
    }

    #[test]
    fn settings_secrets_are_redacted_but_results_are_not() {
        let ret = obj(json!({"id": "m", "jid": "20240510093015123456", "fun": "f",
                             "return": {"password": "kept: it is the function's result"},
                             "ret_config": "alt", "ret_kwargs": {"pass": "hunter2", "db": "other"}}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert!(!row.full_ret.contains("hunter2"), "{}", row.full_ret);
        assert!(row.full_ret.contains(r#""ret_kwargs": {"pass": "**********", "db": "other"}"#), "{}", row.full_ret);
        assert!(row.full_ret.contains("kept: it is"));
        let load = obj(json!({"fun": "test.ping", "kwargs": {"ret_kwargs": {"pass": "hunter2"}, "show_jid": false}}));
        assert_eq!(dumps_map(&load), r#"{"fun": "test.ping", "kwargs": {"ret_kwargs": {"pass": "**********"}, "show_jid": false}}"#);
    }

    #[test]
    fn statements_split_by_size_and_lock_keys_are_stable() {
        let sizes = [MAX_STATEMENT_BYTES, 1, 1, MAX_STATEMENT_BYTES - 2, 5];
        let parts = by_size(&sizes, MAX_STATEMENT_BYTES, |n| *n);
        assert_eq!(parts, vec![&sizes[0..1], &sizes[1..4], &sizes[4..5]]);
        assert!(by_size(&[] as &[usize], MAX_STATEMENT_BYTES, |n| *n).is_empty());
        assert_eq!(lock_key("20240510093015123456", "m1"), lock_key("20240510093015123456", "m1"));
        assert_ne!(lock_key("2024051009301512345", "6m1"), lock_key("20240510093015123456", "m1"));
    }
}
