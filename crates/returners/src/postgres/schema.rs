//! postgres's tables: Salt's documented schema (`salt/returners/postgres.py`), verbatim.
//!
//! [`DDL`] is what Salt's docs tell a user to run inside `psql` (less the role and database
//! creation: those are the user's). Run as a whole it drops and recreates the tables, as
//! Salt's script does; `create_schema` runs only the blocks of tables that are missing.

macro_rules! jids_ddl {
    () => {
        "DROP TABLE IF EXISTS jids;
CREATE TABLE jids (
  jid   varchar(20) PRIMARY KEY,
  load  text NOT NULL
);
"
    };
}

macro_rules! salt_returns_ddl {
    () => {
        "DROP TABLE IF EXISTS salt_returns;
CREATE TABLE salt_returns (
  fun       varchar(50) NOT NULL,
  jid       varchar(255) NOT NULL,
  return    text NOT NULL,
  full_ret  text,
  id        varchar(255) NOT NULL,
  success   varchar(10) NOT NULL,
  alter_time   TIMESTAMP WITH TIME ZONE DEFAULT now()
);

CREATE INDEX idx_salt_returns_id ON salt_returns (id);
CREATE INDEX idx_salt_returns_jid ON salt_returns (jid);
CREATE INDEX idx_salt_returns_fun ON salt_returns (fun);
CREATE INDEX idx_salt_returns_updated ON salt_returns (alter_time);
"
    };
}

macro_rules! salt_events_ddl {
    () => {
        "DROP TABLE IF EXISTS salt_events;
DROP SEQUENCE IF EXISTS seq_salt_events_id;
CREATE SEQUENCE seq_salt_events_id;
CREATE TABLE salt_events (
    id BIGINT NOT NULL UNIQUE DEFAULT nextval('seq_salt_events_id'),
    tag varchar(255) NOT NULL,
    data text NOT NULL,
    alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    master_id varchar(255) NOT NULL
);

CREATE INDEX idx_salt_events_tag on salt_events (tag);
"
    };
}

/// Salt's postgres schema, to print for a user or a DBA.
pub const DDL: &str = concat!(jids_ddl!(), "\n", salt_returns_ddl!(), "\n", salt_events_ddl!());

/// The same, table by table, for `create_schema`.
pub(crate) const TABLES: &[(&str, &str)] =
    &[("jids", jids_ddl!()), ("salt_returns", salt_returns_ddl!()), ("salt_events", salt_events_ddl!())];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_is_salts() {
        assert!(DDL.contains("CREATE TABLE jids (\n  jid   varchar(20) PRIMARY KEY,\n  load  text NOT NULL\n);"));
        assert!(DDL.contains("  return    text NOT NULL,\n  full_ret  text,\n"));
        assert!(DDL.contains("    data text NOT NULL,\n"));
        assert!(!DDL.contains("jsonb"));
        assert_eq!(DDL.matches("CREATE TABLE").count(), 3);
    }
}
