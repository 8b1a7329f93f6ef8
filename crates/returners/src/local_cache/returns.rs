//! Storing minion returns: a batch is one transaction, with multi-row INSERTs.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use sqlx::sqlite::Sqlite;
use sqlx::{Row, Transaction};

use super::{db_err, now_secs, LocalCache};
use crate::batch::prepare_all;
use crate::options::truthy;
use crate::record::ReturnRecord;
use crate::{Load, Rejection, Result, ReturnerError};

/// Rows per INSERT statement: 9 parameters each keeps a statement far below SQLite's limit of
/// 32766 bound parameters.
const ROWS_PER_INSERT: usize = 256;

/// One return, ready for the `returns` table.
struct ReturnRow {
    jid: String,
    /// A `req` return (a job the minion started itself, under a jid from the process's clock):
    /// its job row is made here, with the return's `nocache` flag.
    req_nocache: Option<bool>,
    id: String,
    fun: Option<String>,
    ret: String,
    retcode: Option<i64>,
    success: Option<bool>,
    out: Option<String>,
    /// The return load with `return` set to null (see the schema notes).
    envelope: Map<String, Value>,
}

impl ReturnRow {
    fn jid(&self) -> &str {
        &self.jid
    }

    /// What `get_jid` shows, for comparing a duplicate with the stored return.
    fn stored_fields(&self) -> (Option<Value>, Option<i64>, Option<bool>, Option<String>) {
        (serde_json::from_str(&self.ret).ok(), self.retcode, self.success, self.out.clone())
    }
}

/// One return as a row. `Err` says why the cache cannot take it.
fn prepare(load: &Load) -> std::result::Result<Option<ReturnRow>, String> {
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

fn insert_sql(rows: usize) -> String {
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

fn full_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| insert_sql(ROWS_PER_INSERT))
}

impl LocalCache {
    /// `returner_batch`: every valid return of the batch in one transaction; each invalid one
    /// is rejected alone.
    pub(super) async fn store_returns(&self, loads: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, rejected) = prepare_all(loads, prepare);
        if !rows.is_empty() {
            let mut tx = self.write_tx().await?;
            self.write_returns(&mut tx, rows.into_iter().map(|r| r.row).collect()).await?;
            tx.commit().await.map_err(db_err)?;
        }
        Ok(rejected)
    }

    async fn write_returns(&self, tx: &mut Transaction<'static, Sqlite>, mut rows: Vec<ReturnRow>) -> Result<()> {
        let now = now_secs();
        for row in &rows {
            if let Some(nocache) = row.req_nocache {
                sqlx::query("INSERT INTO jobs (jid, nocache, last_activity) VALUES (?1, ?2, ?3) ON CONFLICT (jid) DO NOTHING")
                    .bind(&row.jid)
                    .bind(nocache)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
        }

        // Touch each job (creating it if the return came before the publish), so purge sees
        // the activity, and learn which jobs asked not to be cached.
        let mut skip = HashSet::new();
        let mut seen = HashSet::new();
        for row in &rows {
            let jid = row.jid();
            if !seen.insert(jid) {
                continue;
            }
            let nocache: i64 = sqlx::query_scalar(
                "INSERT INTO jobs (jid, last_activity) VALUES (?1, ?2)
                 ON CONFLICT (jid) DO UPDATE SET last_activity = max(last_activity, excluded.last_activity)
                 RETURNING nocache",
            )
            .bind(jid)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?;
            if nocache != 0 {
                skip.insert(jid.to_string());
            }
        }
        rows.retain(|r| !skip.contains(r.jid()));

        // A (jid, id) twice in one batch: the first one counts, as it would across batches.
        let mut first: HashMap<(String, String), usize> = HashMap::new();
        let mut unique = Vec::with_capacity(rows.len());
        let mut repeats = Vec::new();
        for row in rows {
            match first.get(&(row.jid().to_string(), row.id.clone())) {
                Some(&i) => repeats.push((i, row)),
                None => {
                    first.insert((row.jid().to_string(), row.id.clone()), unique.len());
                    unique.push(row);
                }
            }
        }
        for (i, row) in &repeats {
            log_duplicate(row, unique[*i].stored_fields());
        }

        let mut inserted = HashSet::new();
        for chunk in unique.chunks(ROWS_PER_INSERT) {
            let sql = if chunk.len() == ROWS_PER_INSERT { full_insert_sql().to_string() } else { insert_sql(chunk.len()) };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                let full_ret = serde_json::to_string(&row.envelope).map_err(|e| ReturnerError::Rejected(e.to_string()))?;
                q = q
                    .bind(row.jid().to_string())
                    .bind(row.id.clone())
                    .bind(row.fun.clone())
                    .bind(row.ret.clone())
                    .bind(row.retcode)
                    .bind(row.success)
                    .bind(row.out.clone())
                    .bind(full_ret)
                    .bind(now);
            }
            for r in q.fetch_all(&mut **tx).await.map_err(db_err)? {
                let jid: String = r.try_get(0).map_err(db_err)?;
                let id: String = r.try_get(1).map_err(db_err)?;
                inserted.insert((jid, id));
            }
        }
        for row in unique.iter().filter(|r| !inserted.contains(&(r.jid().to_string(), r.id.clone()))) {
            let stored = sqlx::query("SELECT ret, retcode, success, out FROM returns WHERE jid = ?1 AND id = ?2")
                .bind(row.jid())
                .bind(&row.id)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_err)?;
            let ret: Option<String> = stored.try_get(0).map_err(db_err)?;
            let fields = (
                ret.and_then(|s| serde_json::from_str(&s).ok()),
                stored.try_get(1).map_err(db_err)?,
                stored.try_get(2).map_err(db_err)?,
                stored.try_get(3).map_err(db_err)?,
            );
            log_duplicate(row, fields);
        }
        Ok(())
    }
}

/// Salt keeps the first return of a minion for a job and ignores later ones: quietly when they
/// are the same (a retried send), loudly when they differ (a replay, or two minions sharing an id).
fn log_duplicate(row: &ReturnRow, stored: (Option<Value>, Option<i64>, Option<bool>, Option<String>)) {
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
