//! Creating and checking a PostgreSQL returner's tables from its Salt DDL.
//!
//! Each store's DDL is Salt's documented script, one block per table, each block starting
//! with Salt's own `DROP ... IF EXISTS`. Creating runs only the blocks of tables that are
//! missing, so those drops never touch data, and an existing schema (one Salt made, say) is
//! left exactly as it is.

use super::PgStore;
use crate::Result;

/// One table of a store's schema: its name and its DDL block.
pub(crate) type TableDdl = (&'static str, &'static str);

impl PgStore {
    /// The store's tables that do not exist (in the connection's search path).
    pub(crate) async fn missing_tables(&self) -> Result<Vec<&'static str>> {
        missing(&self.pool, self.flavor.tables).await.map_err(|e| self.db_err(e))
    }

    /// Creates the missing tables in one transaction; returns their names.
    pub(crate) async fn create_missing_tables(&self) -> Result<Vec<&'static str>> {
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        // Two creators at once would both see the table missing: serialise them.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('salt-returner-schema'))")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?;
        let missing = missing(&mut *tx, self.flavor.tables).await.map_err(|e| self.db_err(e))?;
        for (table, ddl) in self.flavor.tables {
            if missing.contains(table) {
                sqlx::raw_sql(*ddl).execute(&mut *tx).await.map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().await.map_err(|e| self.db_err(e))?;
        Ok(missing)
    }
}

async fn missing<'e, E>(db: E, tables: &'static [TableDdl]) -> std::result::Result<Vec<&'static str>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let names: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
    let absent: Vec<String> =
        sqlx::query_scalar("SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL").bind(&names).fetch_all(db).await?;
    Ok(names.into_iter().filter(|n| absent.iter().any(|a| a == n)).collect())
}
