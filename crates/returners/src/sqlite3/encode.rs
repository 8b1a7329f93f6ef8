//! Records as Salt's sqlite3 rows (pure: no I/O, unit-tested here): `full_ret` holds only the
//! return value, `fun_args` Python's `repr`, `date` Python's `str(datetime.now())`.

use serde_json::Value;

use crate::json::{dumps, dumps_map};
use crate::options::truthy;
use crate::record::ReturnRecord;
use crate::sql::listing::Dialect;
use crate::Load;

/// Bare names; `->` gives each listing field as JSON text.
pub(super) const CHUNK_DIALECT: Dialect = Dialect { quote: "", field: |load, path| format!("{load} -> '{path}'") };

/// One `salt_returns` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ReturnRow {
    pub fun: String,
    pub jid: String,
    pub id: String,
    pub fun_args: Option<String>,
    pub full_ret: String,
    pub success: String,
    /// A `req` return: save it as the load of the jid allocated for it.
    pub req_load: Option<String>,
}

impl ReturnRow {
    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }
}

/// Python's `str(datetime.now())`: microseconds only when non-zero.
pub(super) fn python_now() -> String {
    let now = chrono::Local::now().naive_local();
    if now.and_utc().timestamp_subsec_micros() == 0 {
        now.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        now.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// `ret.get("success", "")` as the sqlite3 module stores it in a TEXT column.
fn success_text(ret: &Load) -> String {
    match ret.get("success") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One return as a row. `Err` says why the store cannot take it.
pub(super) fn prepare_return(ret: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    Ok(Some(ReturnRow {
        fun: rec.fun()?.into(),
        id: rec.id.into(),
        // Salt: `str(ret["fun_args"]) if ret.get("fun_args") else None`.
        fun_args: ret.get("fun_args").filter(|a| truthy(a)).map(salt_output::pyrepr::repr),
        full_ret: dumps(rec.value),
        success: success_text(ret),
        req_load: rec.req.then(|| dumps_map(&rec.full)),
        jid: rec.jid,
    }))
}

/// The multi-row INSERT of `n` returns; a row goes in only if the same record is not stored.
pub(super) fn insert_returns_sql(n: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; n].join(", ");
    format!(
        "INSERT INTO salt_returns (fun, jid, id, fun_args, date, full_ret, success)
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7 FROM (VALUES {values}) v
         WHERE NOT EXISTS (SELECT 1 FROM salt_returns r
                           WHERE r.jid = v.column2 AND r.id = v.column3 AND r.fun IS v.column1
                             AND r.fun_args IS v.column4 AND r.full_ret = v.column6 AND r.success = v.column7)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::listing;
    use serde_json::json;

    #[test]
    fn columns_as_salt_writes_them() {
        let ret = json!({"success": true, "return": {"a": "héllo"}, "retcode": 0, "jid": "20261125003808100453",
                         "fun": "cmd.run", "fun_args": ["ls /", {"__kwarg__": true, "x": null}], "id": "minion1"});
        let row = prepare_return(ret.as_object().unwrap()).unwrap().unwrap();
        assert_eq!(row.full_ret, r#"{"a": "héllo"}"#);
        assert_eq!(row.fun_args.as_deref(), Some("['ls /', {'__kwarg__': True, 'x': None}]"));
        assert_eq!(row.success, "1");
        let ret = json!({"return": 3, "jid": "20261125003808100453", "fun": "cmd.retcode", "fun_args": [], "id": "m"});
        let row = prepare_return(ret.as_object().unwrap()).unwrap().unwrap();
        assert_eq!((row.fun_args, row.success.as_str()), (None, ""));
    }

    #[test]
    fn chunk_query_reads_fields_with_arrow() {
        let fields = "load -> '$.fun', load -> '$.tgt', load -> '$.tgt_type', load -> '$.user', load -> '$.arg', \
                      load -> '$.fun_args', load -> '$.metadata', load -> '$.kwargs.metadata'";
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, true, false),
            format!("SELECT jid, {fields} FROM jids WHERE jid >= ? AND (? IS NULL OR jid < ?) ORDER BY jid DESC LIMIT ?")
        );
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, false, true),
            format!("SELECT jid, {fields} FROM jids WHERE jid > ? AND (? IS NULL OR jid < ?) ORDER BY jid ASC LIMIT ?")
        );
    }

    #[test]
    fn date_is_python_str_of_now() {
        let d = python_now();
        assert!(chrono::NaiveDateTime::parse_from_str(&d, "%Y-%m-%d %H:%M:%S%.f").is_ok(), "{d}");
        assert!(d.len() == 19 || d.len() == 26, "{d}");
    }
}
