//! The chunks of `get_jids` over Salt's `jids(jid, load)` table; shared by `mysql` and `sqlite3`.
//!
//! Salt's schema has no listing columns. A listing walks the `jid` key in jid order, in chunks
//! (keyset paging, see [`crate::paging::get_jids`]), and asks the server only for the few small
//! fields of each load (`fun`, `tgt`, `user`, ...) — never the whole load, which for a runner
//! job carries its whole result. A rare function is found by walking every newer job: the
//! price of Salt's schema.

use serde_json::{Map, Value};

use crate::{format, JobSummary};

/// The load fields a listing reads, as JSON paths, in the order a chunk query selects them
/// after the jid. The last one is `kwargs.metadata`.
pub(crate) const FIELDS: [&str; 8] = ["$.fun", "$.tgt", "$.tgt_type", "$.user", "$.arg", "$.fun_args", "$.metadata", "$.kwargs.metadata"];

/// What differs between the stores' chunk queries: how an identifier is quoted and how a
/// field of the `load` column is read as JSON text.
pub(crate) struct Dialect {
    /// Put around `jid`, `jids` and `load` (MySQL's backtick; nothing for SQLite).
    pub quote: &'static str,
    /// The JSON text at `path` in `load` (already quoted).
    pub field: fn(load: &str, path: &str) -> String,
}

/// The chunk query of [`crate::paging::JobChunks::chunk`]: the jid and each of [`FIELDS`], with the values
/// bound in this order: `lo`, `hi`, `hi` again, the limit. Fixed fragments only; every value
/// is bound.
pub(crate) fn chunk_sql(dialect: &Dialect, lo_inclusive: bool, oldest_first: bool) -> String {
    let q = |name: &str| format!("{0}{name}{0}", dialect.quote);
    let (jid, load) = (q("jid"), q("load"));
    let cols: String = FIELDS.iter().map(|p| format!(", {}", (dialect.field)(&load, p))).collect();
    format!(
        "SELECT {jid}{cols} FROM {} WHERE {jid} {} ? AND (? IS NULL OR {jid} < ?) ORDER BY {jid} {} LIMIT ?",
        q("jids"),
        if lo_inclusive { ">=" } else { ">" },
        if oldest_first { "ASC" } else { "DESC" },
    )
}

/// The jobs of a chunk query's rows (see [`chunk_sql`]), whatever the driver.
pub(crate) fn summaries<R>(rows: &[R]) -> std::result::Result<Vec<JobSummary>, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            let jid: String = row.try_get(0)?;
            let fields = (1..=FIELDS.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(summary(&jid, &fields))
        })
        .collect()
}

/// A job from its jid and the JSON text of each of [`FIELDS`] (None: not in the load).
pub(crate) fn summary(jid: &str, fields: &[Option<String>]) -> JobSummary {
    let parse = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    let mut load = Map::new();
    for (path, text) in FIELDS.iter().zip(fields) {
        let Some(v) = parse(text) else { continue };
        if *path == "$.kwargs.metadata" {
            let mut kwargs = Map::new();
            kwargs.insert("metadata".into(), v);
            load.insert("kwargs".into(), Value::Object(kwargs));
        } else {
            load.insert(path.trim_start_matches("$.").to_string(), v);
        }
    }
    format::summary_from_load(jid, &load)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{accepts, bounds, FIND_JOB};
    use crate::JobQuery;
    use serde_json::json;

    #[test]
    fn summary_from_fields_and_filters() {
        let f = |v: Value| Some(v.to_string());
        let job = summary(
            "20240510093015123456",
            &[
                f(json!("cmd.run")),
                f(json!(["web1", "db1"])),
                f(json!("list")),
                f(json!("root")),
                f(json!(["ls"])),
                None,
                None,
                f(json!({"env": "prod"})),
            ],
        );
        assert_eq!((job.fun.as_str(), job.tgt_type.as_str(), job.user.as_str()), ("cmd.run", "list", "root"));
        assert_eq!(job.arg, vec![json!("ls")]);
        assert_eq!(job.metadata, Some(json!({"env": "prod"})));
        let q = |f: fn(&mut JobQuery)| {
            let mut q = JobQuery::default();
            f(&mut q);
            q
        };
        assert!(accepts(&q(|q| q.functions = vec!["cmd.*".into()]), &job));
        assert!(!accepts(&q(|q| q.functions = vec!["test.*".into()]), &job));
        assert!(accepts(&q(|q| q.targets = vec!["db1".into()]), &job));
        assert!(!accepts(&q(|q| q.targets = vec!["db2".into()]), &job));
        assert!(accepts(&q(|q| q.metadata = Some(json!({"env": "prod", "x": 1}).as_object().unwrap().clone())), &job));
        let empty = summary("20240510093015123456", &[None, None, None, None, None, None, None, None]);
        assert!(accepts(&q(|q| q.functions = vec!["unknown-*".into()]), &empty));
        assert!(accepts(&q(|q| q.targets = vec!["unknown-target".into()]), &empty));
        let find = summary("20240510093015123456", &[f(json!(FIND_JOB)), None, None, None, None, None, None, None]);
        assert!(!accepts(&q(|q| q.exclude_find_job = true), &find));
    }

    #[test]
    fn end_bound_is_inclusive_to_the_microsecond() {
        let t = chrono::NaiveDateTime::parse_from_str("20240510093015123456", "%Y%m%d%H%M%S%6f").unwrap();
        let (lo, hi) = bounds(&JobQuery { start_time: Some(t), end_time: Some(t), ..Default::default() });
        assert_eq!((lo.as_str(), hi.as_deref()), ("20240510093015123456", Some("20240510093015123457")));
    }
}
