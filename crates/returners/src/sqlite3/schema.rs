//! Salt's `sqlite3` schema, and the schema command.
//!
//! [`DDL`] is the schema Salt's documentation gives (`sqlite3 /usr/lib/salt/salt.db << EOF`).
//! The schema command ([`create`]) runs it with `IF NOT EXISTS`, so it never touches an
//! existing table. `TEXT KEY` is not an index in SQLite (it reads as a type name), so Salt's
//! `salt_returns` has no index at all; the command adds one on `(jid, id)` (only an index: the
//! columns and rows stay Salt's), which `get_jid` and the duplicate check need to stay fast.

use sqlx::SqlitePool;

pub const DDL: &str = "CREATE TABLE jids (
  jid TEXT PRIMARY KEY,
  load TEXT NOT NULL
  );

CREATE TABLE salt_returns (
  fun TEXT KEY,
  jid TEXT KEY,
  id TEXT KEY,
  fun_args TEXT,
  date TEXT NOT NULL,
  full_ret TEXT NOT NULL,
  success TEXT NOT NULL
  );
";

pub const TABLES: [&str; 2] = ["jids", "salt_returns"];

/// What the schema command runs (and prints).
pub fn create_sql() -> String {
    DDL.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ") + INDEX
}

const INDEX: &str = "\nCREATE INDEX IF NOT EXISTS salt_returns_jid_id ON salt_returns (jid, id);\n";

/// Creates the tables that are missing.
pub async fn create(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(create_sql())).execute(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_schema_is_salts_if_not_exists() {
        let sql = create_sql();
        assert_eq!(sql.matches("CREATE TABLE IF NOT EXISTS ").count(), 2);
        assert_eq!(sql.replace("IF NOT EXISTS ", "").replace(&INDEX.replace("IF NOT EXISTS ", ""), ""), DDL);
        assert!(sql.ends_with("ON salt_returns (jid, id);\n"));
    }
}
