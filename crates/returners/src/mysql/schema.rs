//! Salt's `mysql` schema, and the schema command.
//!
//! [`DDL`] is the schema Salt's documentation gives, word for word (its `utf8` is MySQL's
//! 3-byte `utf8mb3`). The schema command ([`create_sql`], [`create`]) makes the same tables
//! with `utf8mb4`, and never drops an existing table. Tables made from [`DDL`] keep working:
//! the store detects their charset and stores 4-byte characters as JSON escapes there.

use sqlx::MySqlPool;

/// Salt's tables, as its documentation creates them.
pub const DDL: &str = "DROP TABLE IF EXISTS `jids`;
CREATE TABLE `jids` (
  `jid` varchar(255) NOT NULL,
  `load` mediumtext NOT NULL,
  UNIQUE KEY `jid` (`jid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

DROP TABLE IF EXISTS `salt_returns`;
CREATE TABLE `salt_returns` (
  `fun` varchar(50) NOT NULL,
  `jid` varchar(255) NOT NULL,
  `return` mediumtext NOT NULL,
  `id` varchar(255) NOT NULL,
  `success` varchar(10) NOT NULL,
  `full_ret` mediumtext NOT NULL,
  `alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  KEY `id` (`id`),
  KEY `jid` (`jid`),
  KEY `fun` (`fun`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

DROP TABLE IF EXISTS `salt_events`;
CREATE TABLE `salt_events` (
`id` BIGINT NOT NULL AUTO_INCREMENT,
`tag` varchar(255) NOT NULL,
`data` mediumtext NOT NULL,
`alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
`master_id` varchar(255) NOT NULL,
PRIMARY KEY (`id`),
KEY `tag` (`tag`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
";

/// What the schema command runs (and prints): [`DDL`] without the `DROP`s, with
/// `IF NOT EXISTS`, in `utf8mb4`.
pub fn create_sql() -> String {
    DDL.lines()
        .filter(|l| !l.starts_with("DROP TABLE"))
        .map(|l| l.replace("CREATE TABLE `", "CREATE TABLE IF NOT EXISTS `").replace("CHARSET=utf8;", "CHARSET=utf8mb4;"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_start()
        .to_string()
}

/// Splits SQL text into its statements (the DDL has no `;` inside a statement).
pub fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';').map(str::trim).filter(|s| !s.is_empty())
}

/// Creates the tables that are missing, in `utf8mb4`.
pub async fn create(pool: &MySqlPool) -> Result<(), sqlx::Error> {
    for stmt in statements(&create_sql()) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.to_string())).execute(pool).await?;
    }
    Ok(())
}

/// Runs [`DDL`] as Salt's users do (tests use it to get the seed's `utf8` tables).
pub async fn create_salt_ddl(pool: &MySqlPool) -> Result<(), sqlx::Error> {
    for stmt in statements(DDL) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.to_string())).execute(pool).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_schema_is_salts_in_utf8mb4_without_drops() {
        let sql = create_sql();
        assert!(!sql.contains("DROP"), "{sql}");
        assert_eq!(sql.matches("CREATE TABLE IF NOT EXISTS `").count(), 3);
        assert_eq!(sql.matches("DEFAULT CHARSET=utf8mb4;").count(), 3);
        assert!(!sql.contains("CHARSET=utf8;"));
        // Column for column what Salt has.
        let columns = |s: &str| s.lines().filter(|l| l.trim_start().starts_with('`')).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(columns(&sql), columns(DDL));
        assert_eq!(statements(&sql).count(), 3);
        assert_eq!(statements(DDL).count(), 6);
    }
}
