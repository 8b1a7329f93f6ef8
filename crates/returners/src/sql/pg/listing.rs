//! The chunks of `get_jids` over Salt's `jids` table.
//!
//! Salt's schema has no listing columns, only `jids(jid, load)`. A listing walks the primary
//! key in jid order, in chunks (keyset paging, see [`crate::paging::get_jids`]), and asks the
//! server for the few small fields of each load (`fun`, `tgt`, `user`, ...), never the whole
//! load: a runner job's load carries its whole result. A rare function is found by walking
//! every newer job: the price of Salt's schema.

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::Row;

use super::{Columns, PgStore};
use crate::paging::JobChunks;
use crate::{format, JobSummary, Result};

/// The load fields a listing needs, in the order the chunk query selects them.
const FIELDS: [&str; 7] = ["fun", "tgt", "tgt_type", "user", "arg", "fun_args", "metadata"];

/// One chunk of the walk: `$1` is the lower jid bound (inclusive for the first chunk, then
/// the last jid read), `$2` the exclusive upper one or NULL, `$3` the size.
fn chunk_sql(columns: Columns, oldest_first: bool, lo_inclusive: bool) -> String {
    // A `postgres` load is JSON text, read with the `json` type (no normalising). PostgreSQL
    // cannot de-escape `\u0000` into text, so a load holding one comes back whole instead
    // and is read here (a string with a literal `\u0000` in it takes that path too: slower,
    // still right).
    let (field, raw) = match columns {
        Columns::Jsonb => ("(load->{path})::text", "NULL::text"),
        Columns::Text => (
            "CASE WHEN strpos(load, '\\u0000') = 0 THEN (load::json->{path})::text END",
            "CASE WHEN strpos(load, '\\u0000') > 0 THEN load END",
        ),
    };
    let mut cols = String::from("jid");
    for f in FIELDS {
        cols.push_str(", ");
        cols.push_str(&field.replace("{path}", &format!("'{f}'")));
    }
    cols.push_str(", ");
    cols.push_str(&field.replace("{path}", "'kwargs'->'metadata'"));
    cols.push_str(", ");
    cols.push_str(raw);
    let order = if oldest_first { "ASC" } else { "DESC" };
    let lo = if lo_inclusive { ">=" } else { ">" };
    // No sentinel for "no upper bound": in a non-C collation a symbol may sort before digits.
    format!("SELECT {cols} FROM jids WHERE jid {lo} $1 AND ($2::text IS NULL OR jid < $2) ORDER BY jid {order} LIMIT $3")
}

/// A job from one chunk row: the small load rebuilt from its fields, then Salt's formatting.
fn summary(row: &sqlx::postgres::PgRow) -> std::result::Result<JobSummary, sqlx::Error> {
    let jid: String = row.try_get(0)?;
    if let Some(raw) = row.try_get::<Option<String>, _>(FIELDS.len() + 2)? {
        let load: Map<String, Value> = serde_json::from_str(&raw).unwrap_or_default();
        return Ok(format::summary_from_load(&jid, &load));
    }
    let mut load = Map::new();
    let parse = |i: usize| -> std::result::Result<Option<Value>, sqlx::Error> {
        let text: Option<String> = row.try_get(i)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    for (i, field) in FIELDS.iter().enumerate() {
        if let Some(v) = parse(i + 1)? {
            load.insert((*field).to_string(), v);
        }
    }
    if let Some(md) = parse(FIELDS.len() + 1)? {
        let mut kwargs = Map::new();
        kwargs.insert("metadata".into(), md);
        load.insert("kwargs".into(), Value::Object(kwargs));
    }
    Ok(format::summary_from_load(&jid, &load))
}

#[async_trait]
impl JobChunks for PgStore {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        // The statement is built from fixed fragments only; every value is bound.
        let sql = sqlx::AssertSqlSafe(chunk_sql(self.flavor.columns, oldest_first, lo_inclusive));
        let rows = sqlx::query(sql).bind(lo).bind(hi).bind(limit as i64).fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        rows.iter().map(|row| summary(row).map_err(|e| self.db_err(e))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{accepts, bounds, FIND_JOB};
    use crate::JobQuery;
    use serde_json::json;

    #[test]
    fn filters_follow_salt() {
        let job = |fun: &str, tgt: Value, md: Option<Value>| JobSummary {
            jid: "20240510093015123456".into(),
            fun: fun.into(),
            arg: vec![],
            tgt,
            tgt_type: "glob".into(),
            user: "root".into(),
            metadata: md,
            end_time: None,
        };
        let q = |f: fn(&mut JobQuery)| {
            let mut q = JobQuery::default();
            f(&mut q);
            q
        };
        assert!(accepts(&q(|q| q.functions = vec!["cmd.*".into()]), &job("cmd.run", json!("*"), None)));
        assert!(!accepts(&q(|q| q.functions = vec!["cmd.*".into()]), &job("test.ping", json!("*"), None)));
        assert!(accepts(&q(|q| q.functions = vec!["unknown-*".into()]), &job("", json!("*"), None)));
        assert!(!accepts(&q(|q| q.exclude_find_job = true), &job(FIND_JOB, json!("*"), None)));
        assert!(accepts(&q(|q| q.targets = vec!["web1".into()]), &job("f", json!(["db1", "web1"]), None)));
        assert!(!accepts(&q(|q| q.targets = vec!["web1".into()]), &job("f", json!("db*"), None)));
        assert!(accepts(&q(|q| q.targets = vec!["unknown-target".into()]), &job("f", Value::Null, None)));
        let md = q(|q| q.metadata = Some(json!({"env": "prod", "x": 1}).as_object().unwrap().clone()));
        assert!(accepts(&md, &job("f", json!("*"), Some(json!({"env": "prod"})))));
        assert!(!accepts(&md, &job("f", json!("*"), Some(json!({"env": "dev"})))));
        assert!(!accepts(&md, &job("f", json!("*"), None)));
    }

    #[test]
    fn chunk_reads_fields_not_loads() {
        let sql = chunk_sql(Columns::Text, false, true);
        assert!(sql.contains("CASE WHEN strpos(load, '\\u0000') = 0 THEN (load::json->'fun')::text END"), "{sql}");
        assert!(sql.contains("(load::json->'kwargs'->'metadata')::text"), "{sql}");
        assert!(sql.contains("CASE WHEN strpos(load, '\\u0000') > 0 THEN load END FROM jids"), "{sql}");
        assert!(sql.contains("WHERE jid >= $1 AND") && sql.ends_with("ORDER BY jid DESC LIMIT $3"), "{sql}");
        let sql = chunk_sql(Columns::Jsonb, true, false);
        assert!(sql.contains("(load->'tgt')::text") && sql.contains("WHERE jid > $1 AND"), "{sql}");
        assert!(sql.contains("ORDER BY jid ASC"), "{sql}");
        assert!(!sql.contains(" load,") && !sql.contains("SELECT load") && sql.contains("NULL::text FROM jids"), "{sql}");
    }

    #[test]
    fn end_bound_is_inclusive_to_the_microsecond() {
        let t = chrono::NaiveDateTime::parse_from_str("20240510093015123456", "%Y%m%d%H%M%S%6f").unwrap();
        let (lo, hi) = bounds(&JobQuery { start_time: Some(t), end_time: Some(t), ..Default::default() });
        assert_eq!((lo.as_str(), hi.as_deref()), ("20240510093015123456", Some("20240510093015123457")));
        assert_eq!(bounds(&JobQuery::default()), (String::new(), None));
    }
}
