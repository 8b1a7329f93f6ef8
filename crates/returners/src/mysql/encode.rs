//! Records as Salt's MySQL rows (pure: no I/O, unit-tested here).
//!
//! `salt_returns` gets `success` as `'1'`/`'0'`, `return` as `json.dumps(ret["return"])` and
//! `full_ret` as `json.dumps(ret)`, byte for byte as Salt writes them.
//!
//! Salt's schema says `CHARSET=utf8`, which MySQL reads as the 3-byte `utf8mb3`: a 4-byte
//! character (an emoji) makes the INSERT fail and Salt loses the return. For such a table we
//! write each character above U+FFFF as a JSON `\uD83D\uDE00` surrogate pair: the text stays
//! valid utf8mb3 and valid JSON, and decodes back to the same character.

use serde_json::Value;

use crate::json::{dumps, dumps_around_return};
use crate::record::ReturnRecord;
use crate::sql::listing::Dialect;
use crate::{Event, Load};

/// `mediumtext` holds at most 16 MiB - 1 bytes.
pub(super) const MEDIUMTEXT_MAX: usize = 16 * 1024 * 1024 - 1;
/// Backticked names; `JSON_EXTRACT` gives each listing field as JSON text.
pub(super) const CHUNK_DIALECT: Dialect = Dialect { quote: "`", field: |load, path| format!("JSON_EXTRACT({load}, '{path}')") };

/// One `salt_returns` row, as text. `full_ret` is `full_before + ret + full_after`.
#[derive(Debug, Clone)]
pub(super) struct ReturnRow {
    pub fun: String,
    pub jid: String,
    pub ret: String,
    pub id: String,
    pub success: String,
    pub full_before: String,
    pub full_after: String,
    /// For a `req` return (a job the minion started itself): save the return as the load of
    /// the jid allocated for it, as Salt's returner does.
    pub req_load: bool,
}

impl ReturnRow {
    pub fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    pub fn bytes(&self) -> usize {
        self.ret.len() + self.full_before.len() + self.full_after.len() + self.fun.len() + self.jid.len() + self.id.len()
    }

    pub fn full_ret(&self) -> String {
        format!("{}{}{}", self.full_before, self.ret, self.full_after)
    }

    /// For a utf8mb3 table.
    pub fn escaped(self) -> ReturnRow {
        ReturnRow {
            ret: escape_astral(self.ret),
            full_before: escape_astral(self.full_before),
            full_after: escape_astral(self.full_after),
            ..self
        }
    }
}

/// The `success` column: Salt binds `ret.get("success", False)` into a `varchar(10)` through
/// PyMySQL, which sends a bool as `1`/`0`.
fn success_text(ret: &Load) -> String {
    match ret.get("success") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => "0".into(),
        Some(Value::Bool(true)) => "1".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => dumps(other),
    }
}

/// One return as a row. `Err` says why the store cannot take it.
pub(super) fn prepare_return(ret: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = crate::sql::fun_column(rec.fun()?, rec.id)?;
    let id = rec.id;
    let (full_before, full_after) = dumps_around_return(&rec.full);
    let row = ReturnRow {
        fun: fun.into(),
        ret: dumps(rec.value),
        id: id.into(),
        success: success_text(ret),
        full_before,
        full_after,
        req_load: rec.req,
        jid: rec.jid,
    };
    if row.full_before.len() + row.ret.len() + row.full_after.len() > MEDIUMTEXT_MAX {
        return Err(format!("the return of {id} is larger than the 16 MiB a mediumtext column holds (salt_returns.full_ret)"));
    }
    Ok(Some(row))
}

/// `n` copies of `row` joined by `sep`.
pub(super) fn repeat(row: &str, sep: &str, n: usize) -> String {
    vec![row; n].join(sep)
}

/// The multi-row INSERT of `n` returns. The values form a derived table; a row goes in only
/// if no row with the same (jid, id, full_ret) is stored (byte comparison: the columns'
/// collation is case-insensitive). `full_ret` is put together by the server, so a big return
/// crosses the wire once.
pub(super) fn insert_returns_sql(n: usize) -> String {
    let first = "SELECT ? AS fun, ? AS jid, ? AS ret, ? AS id, ? AS success, ? AS pre, ? AS post";
    let rest = repeat(" UNION ALL SELECT ?, ?, ?, ?, ?, ?, ?", "", n.saturating_sub(1));
    format!(
        "INSERT INTO `salt_returns` (`fun`, `jid`, `return`, `id`, `success`, `full_ret`)
         SELECT v.fun, v.jid, v.ret, v.id, v.success, CONCAT(v.pre, v.ret, v.post)
         FROM ({first}{rest}) v
         WHERE NOT EXISTS (SELECT 1 FROM `salt_returns` r
                           WHERE r.jid = v.jid AND r.id = v.id
                             AND BINARY r.full_ret = BINARY CONCAT(v.pre, v.ret, v.post))"
    )
}

/// One `salt_events` row (tag, data) for an event; `mb4`: the table takes 4-byte characters.
pub(super) fn prepare_event(ev: &Event, mb4: bool) -> std::result::Result<Option<(String, String)>, String> {
    let (tag, data) = crate::sql::event_row(ev)?;
    let (tag, data) = if mb4 { (tag, data) } else { (escape_astral(tag), escape_astral(data)) };
    if data.len() > MEDIUMTEXT_MAX {
        return Err(format!("event {tag}: data larger than the 16 MiB a mediumtext column holds"));
    }
    Ok(Some((tag, data)))
}

/// The multi-row INSERT of `n` events.
pub(super) fn insert_events_sql(n: usize) -> String {
    format!("INSERT INTO `salt_events` (`tag`, `data`, `master_id`) VALUES {}", repeat("(?, ?, ?)", ", ", n))
}

/// Whether text holds a character a utf8mb3 column refuses.
pub(super) fn has_astral(s: &str) -> bool {
    // Only 4-byte UTF-8 sequences start with a byte of 0xF0 or more.
    s.bytes().any(|b| b >= 0xF0)
}

/// JSON text with every character above U+FFFF written as a `\uXXXX\uXXXX` surrogate pair.
/// Only valid on JSON text (outside strings, JSON is ASCII).
pub(super) fn escape_astral(s: String) -> String {
    if !has_astral(&s) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if (c as u32) > 0xFFFF {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::by_size;
    use crate::sql::listing;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rows_as_salt_writes_them() {
        let ret = obj(json!({"success": true, "return": "bin\nboot", "retcode": 0, "jid": "20261125003808100453",
                             "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert_eq!(
            (row.fun.as_str(), row.jid.as_str(), row.id.as_str(), row.success.as_str()),
            ("cmd.run", "20261125003808100453", "minion1", "1")
        );
        assert_eq!(row.ret, r#""bin\nboot""#);
        assert_eq!(
            row.full_ret(),
            r#"{"success": true, "return": "bin\nboot", "retcode": 0, "jid": "20261125003808100453", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}"#
        );
        let mut failed = ret.clone();
        failed.insert("success".into(), json!(false));
        assert_eq!(prepare_return(&failed).unwrap().unwrap().success, "0");
        failed.remove("success");
        assert_eq!(prepare_return(&failed).unwrap().unwrap().success, "0");
    }

    #[test]
    fn req_nocache_and_bad_returns() {
        let mut ret = obj(json!({"return": true, "jid": "req", "fun": "test.ping", "id": "m1"}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert!(salt_proto::jid::is_jid(&row.jid) && row.req_load);
        assert!(row.full_ret().contains(&format!(r#""jid": "{}""#, row.jid)));
        ret.insert("jid".into(), json!("nocache"));
        assert!(prepare_return(&ret).unwrap().is_none());
        ret.insert("jid".into(), json!("../x"));
        assert!(prepare_return(&ret).is_err());
        let long_fun = obj(json!({"return": true, "jid": "20261125003808100453", "fun": "x".repeat(51), "id": "m1"}));
        assert!(prepare_return(&long_fun).unwrap_err().contains("longer than 50"));
        let huge = obj(json!({"return": "x".repeat(MEDIUMTEXT_MAX), "jid": "20261125003808100453", "fun": "f", "id": "m1"}));
        assert!(prepare_return(&huge).unwrap_err().contains("16 MiB"));
    }

    #[test]
    fn chunk_query_reads_fields_with_json_extract() {
        let fields = "JSON_EXTRACT(`load`, '$.fun'), JSON_EXTRACT(`load`, '$.tgt'), JSON_EXTRACT(`load`, '$.tgt_type'), \
                      JSON_EXTRACT(`load`, '$.user'), JSON_EXTRACT(`load`, '$.arg'), JSON_EXTRACT(`load`, '$.fun_args'), \
                      JSON_EXTRACT(`load`, '$.metadata'), JSON_EXTRACT(`load`, '$.kwargs.metadata')";
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, true, false),
            format!("SELECT `jid`, {fields} FROM `jids` WHERE `jid` >= ? AND (? IS NULL OR `jid` < ?) ORDER BY `jid` DESC LIMIT ?")
        );
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, false, true),
            format!("SELECT `jid`, {fields} FROM `jids` WHERE `jid` > ? AND (? IS NULL OR `jid` < ?) ORDER BY `jid` ASC LIMIT ?")
        );
    }

    #[test]
    fn statements_and_chunks() {
        let sql = insert_returns_sql(3);
        assert_eq!(sql.matches('?').count(), 21);
        assert_eq!(sql.matches("UNION ALL").count(), 2);
        let sizes = [3 * 1024 * 1024, 2 * 1024 * 1024, 10, 20 * 1024 * 1024, 1];
        let chunks = by_size(&sizes, crate::mysql::client::MAX_STATEMENT_BYTES, |n| *n);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [1, 2, 1, 1]);
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        let text = dumps(&json!({"k": "smile 😀 ✓"}));
        let escaped = escape_astral(text.clone());
        assert_eq!(escaped, r#"{"k": "smile \ud83d\ude00 ✓"}"#);
        assert!(!has_astral(&escaped) && has_astral(&text));
        assert_eq!(serde_json::from_str::<Value>(&escaped).unwrap(), json!({"k": "smile 😀 ✓"}));
        assert_eq!(escape_astral("plain ✓".into()), "plain ✓");
    }
}
