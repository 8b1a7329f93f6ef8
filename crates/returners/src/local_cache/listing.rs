//! `get_jids`: job listings read from the jid index, never from loads or returns.
//!
//! A listing walks `jobs` in jid order in chunks (keyset paging: each chunk starts after the
//! last jid seen) and stops as soon as `offset + limit` jobs have matched, so the first page
//! costs the same whatever the cache holds. A function filter is first resolved against the
//! small `functions` table; when it names a few functions, each is walked through the
//! `(fun, jid)` index and the walks are merged by jid, so a rare function is found without
//! scanning every job. Target and metadata filters need the job's fields and are applied in
//! Rust on the rows walked.

use std::collections::{HashSet, VecDeque};

use serde_json::{Map, Value};
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use super::client::db_err;
use crate::{JobQuery, JobSummary, Result};

/// Up to this many matching functions are walked through their own index and merged; more
/// than that and one walk over all jobs, filtering in Rust, is cheaper.
const MAX_MERGED_FUNCTIONS: usize = 16;
const MIN_CHUNK: usize = 64;
const MAX_CHUNK: usize = 4096;
const FIND_JOB: &str = "saltutil.find_job";

/// Salt filters on the formatted job, where an empty function shows as `unknown-function`.
fn shown_fun(fun: &str) -> &str {
    if fun.is_empty() {
        "unknown-function"
    } else {
        fun
    }
}

/// The listing columns of one job, still as stored.
struct JobRow {
    jid: String,
    fun: String,
    tgt: Option<String>,
    tgt_type: Option<String>,
    user: Option<String>,
    arg: Option<String>,
    metadata: Option<String>,
    endtime: Option<String>,
}

impl JobRow {
    fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<JobRow> {
        Ok(JobRow {
            jid: row.try_get("jid").map_err(db_err)?,
            fun: row.try_get::<Option<String>, _>("fun").map_err(db_err)?.unwrap_or_default(),
            tgt: row.try_get("tgt").map_err(db_err)?,
            tgt_type: row.try_get("tgt_type").map_err(db_err)?,
            user: row.try_get("user").map_err(db_err)?,
            arg: row.try_get("arg").map_err(db_err)?,
            metadata: row.try_get("metadata").map_err(db_err)?,
            endtime: row.try_get("endtime").map_err(db_err)?,
        })
    }

    fn into_summary(self) -> JobSummary {
        let parse = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
        JobSummary {
            arg: match parse(&self.arg) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            tgt: parse(&self.tgt).unwrap_or(Value::Null),
            metadata: parse(&self.metadata),
            tgt_type: self.tgt_type.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            end_time: self.endtime,
            fun: self.fun,
            jid: self.jid,
        }
    }
}

/// The filters that need a row's fields, compiled once per query.
struct RowFilter<'q> {
    /// When the function filter could not be pushed into the walk: the allowed functions.
    functions: Option<HashSet<String>>,
    exclude_find_job: bool,
    targets: &'q [String],
    metadata: Option<&'q Map<String, Value>>,
}

impl RowFilter<'_> {
    fn accepts(&self, row: &JobRow) -> bool {
        if self.exclude_find_job && row.fun == FIND_JOB {
            return false;
        }
        if let Some(funs) = &self.functions {
            if !funs.contains(&row.fun) {
                return false;
            }
        }
        if !self.targets.is_empty() {
            let tgt = row.tgt.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
            if !target_matches(tgt.as_ref(), self.targets) {
                return false;
            }
        }
        if let Some(wanted) = self.metadata {
            let md = row.metadata.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
            let Some(Value::Object(md)) = md else { return false };
            if !wanted.iter().any(|(k, v)| md.get(k) == Some(v)) {
                return false;
            }
        }
        true
    }
}

/// Salt's `search_target`: a glob matches a string target, or any id of a list target; a
/// missing target shows as `unknown-target`.
fn target_matches(tgt: Option<&Value>, globs: &[String]) -> bool {
    let any = |name: &str| globs.iter().any(|g| salt_targeting::fnmatch::fnmatch(name, g));
    match tgt {
        Some(Value::String(s)) if !s.is_empty() => any(s),
        Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).any(any),
        None | Some(Value::Null) | Some(Value::String(_)) => any("unknown-target"),
        Some(other) => any(&other.to_string()),
    }
}

/// One ordered walk over `jobs` (all of them, or one function's).
struct Walk {
    fun: Option<String>,
    buf: VecDeque<JobRow>,
    /// The last jid read; the next chunk starts after it.
    cursor: Option<String>,
    chunk: usize,
    done: bool,
}

/// The jid range of the query: `lo` inclusive, `hi` exclusive. Jids are fixed-width digit
/// strings, so string order is time order.
struct Bounds {
    lo: String,
    hi: String,
}

impl Bounds {
    fn of(q: &JobQuery) -> Bounds {
        let jid = |t: chrono::NaiveDateTime| salt_proto::jid::jid_at(t.and_utc());
        Bounds {
            lo: q.start_time.map(jid).unwrap_or_default(),
            // Inclusive end time: every jid of that microsecond, including `_<pid>` ones.
            hi: q.end_time.map(|t| jid(t + chrono::Duration::microseconds(1))).unwrap_or_else(|| "~".into()),
        }
    }
}

fn chunk_sql(oldest_first: bool, by_fun: bool, first: bool) -> String {
    let cols = "SELECT jid, fun, tgt, tgt_type, user, arg, metadata, endtime FROM jobs WHERE loaded = 1";
    let fun = if by_fun { " AND fun = ?4" } else { "" };
    // ?1 and ?2 are the range; ?3 the chunk size.
    let range = match (oldest_first, first) {
        (false, _) => "jid >= ?1 AND jid < ?2 ORDER BY jid DESC",
        (true, true) => "jid >= ?1 AND jid < ?2 ORDER BY jid ASC",
        (true, false) => "jid > ?1 AND jid < ?2 ORDER BY jid ASC",
    };
    format!("{cols}{fun} AND {range} LIMIT ?3")
}

impl Walk {
    fn new(fun: Option<String>, chunk: usize) -> Walk {
        Walk { fun, buf: VecDeque::new(), cursor: None, chunk, done: false }
    }

    async fn refill(&mut self, db: &SqlitePool, q: &JobQuery, bounds: &Bounds) -> Result<()> {
        let first = self.cursor.is_none();
        let sql = chunk_sql(q.oldest_first, self.fun.is_some(), first);
        let (a, b) = match (q.oldest_first, &self.cursor) {
            (false, None) => (bounds.lo.as_str(), bounds.hi.as_str()),
            (false, Some(c)) => (bounds.lo.as_str(), c.as_str()),
            (true, None) => (bounds.lo.as_str(), bounds.hi.as_str()),
            (true, Some(c)) => (c.as_str(), bounds.hi.as_str()),
        };
        // The SQL is built from fixed fragments only; every value is a bound parameter.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(a).bind(b).bind(self.chunk as i64);
        if let Some(fun) = &self.fun {
            query = query.bind(fun.as_str());
        }
        let rows = query.fetch_all(db).await.map_err(db_err)?;
        if rows.len() < self.chunk {
            self.done = true;
        }
        for row in &rows {
            self.buf.push_back(JobRow::from_row(row)?);
        }
        if let Some(last) = self.buf.back() {
            self.cursor = Some(last.jid.clone());
        }
        // Rows may be filtered out in Rust: read more at a time on the next visit.
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        Ok(())
    }
}

pub(super) async fn get_jids(db: &SqlitePool, q: &JobQuery) -> Result<Vec<JobSummary>> {
    let want = q.limit.map(|l| q.offset.saturating_add(l));
    if want == Some(0) {
        return Ok(Vec::new());
    }
    let chunk = want.unwrap_or(MAX_CHUNK).clamp(MIN_CHUNK, MAX_CHUNK);
    let metadata = q.metadata.as_ref().filter(|m| !m.is_empty());
    let mut filter = RowFilter { functions: None, exclude_find_job: q.exclude_find_job, targets: &q.targets, metadata };

    let mut walks = Vec::new();
    if q.functions.is_empty() {
        walks.push(Walk::new(None, chunk));
    } else {
        let known: Vec<String> = sqlx::query_scalar("SELECT fun FROM functions").fetch_all(db).await.map_err(db_err)?;
        let matching: Vec<String> = known
            .into_iter()
            .filter(|f| q.functions.iter().any(|g| salt_targeting::fnmatch::fnmatch(shown_fun(f), g)))
            .filter(|f| !(q.exclude_find_job && f == FIND_JOB))
            .collect();
        if matching.is_empty() {
            return Ok(Vec::new());
        }
        if matching.len() <= MAX_MERGED_FUNCTIONS {
            walks.extend(matching.into_iter().map(|f| Walk::new(Some(f), chunk)));
        } else {
            filter.functions = Some(matching.into_iter().collect());
            walks.push(Walk::new(None, chunk));
        }
    }

    let bounds = Bounds::of(q);
    let mut skipped = 0;
    let mut out = Vec::new();
    loop {
        for w in walks.iter_mut().filter(|w| w.buf.is_empty() && !w.done) {
            w.refill(db, q, &bounds).await?;
        }
        // The next job overall is the best head among the walks.
        let next = walks
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.buf.front().map(|r| (i, r.jid.as_str())))
            .reduce(|best, cur| {
                let better = if q.oldest_first { cur.1 < best.1 } else { cur.1 > best.1 };
                if better {
                    cur
                } else {
                    best
                }
            })
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        let row = walks[i].buf.pop_front().expect("head exists");
        if !filter.accepts(&row) {
            continue;
        }
        if skipped < q.offset {
            skipped += 1;
            continue;
        }
        out.push(row.into_summary());
        if Some(out.len() + q.offset) == want {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn target_globs_match_strings_and_lists() {
        let g = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(target_matches(Some(&json!("web*")), &g(&["web*"])));
        assert!(target_matches(Some(&json!("web1")), &g(&["db*", "web?"])));
        assert!(!target_matches(Some(&json!("web1")), &g(&["db*"])));
        assert!(target_matches(Some(&json!(["db1", "web1"])), &g(&["web1"])));
        assert!(!target_matches(Some(&json!(["db1", "db2"])), &g(&["web1"])));
        assert!(target_matches(None, &g(&["unknown-*"])));
    }

    #[test]
    fn end_bound_is_inclusive_to_the_microsecond() {
        let t = chrono::NaiveDateTime::parse_from_str("20240510093015123456", "%Y%m%d%H%M%S%6f").unwrap();
        let b = Bounds::of(&JobQuery { start_time: Some(t), end_time: Some(t), ..Default::default() });
        assert_eq!(b.lo, "20240510093015123456");
        assert_eq!(b.hi, "20240510093015123457");
        assert!("20240510093015123456_99" < b.hi.as_str());
        let open = Bounds::of(&JobQuery::default());
        assert!(open.lo.as_str() < "00000000000000000000" && "99999999999999999999" < open.hi.as_str());
    }
}
