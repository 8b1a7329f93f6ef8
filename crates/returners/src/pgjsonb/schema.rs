//! pgjsonb's tables: Salt's documented schema (`salt/returners/pgjsonb.py`), verbatim.
//!
//! [`DDL`] is what Salt's docs tell a user to run (less its `CREATE DATABASE` line: the
//! database is the user's). Run as a whole it drops and recreates the tables, as Salt's
//! script does; `create_schema` instead runs only the blocks of tables that are missing, so it is
//! safe on a live database and leaves an existing schema untouched.

macro_rules! jids_ddl {
    () => {
        "DROP TABLE IF EXISTS jids;
CREATE TABLE jids (
   jid varchar(255) NOT NULL primary key,
   load jsonb NOT NULL
);
CREATE INDEX idx_jids_jsonb on jids
       USING gin (load)
       WITH (fastupdate=on);
"
    };
}

macro_rules! salt_returns_ddl {
    () => {
        "DROP TABLE IF EXISTS salt_returns;
CREATE TABLE salt_returns (
  fun varchar(50) NOT NULL,
  jid varchar(255) NOT NULL,
  return jsonb NOT NULL,
  id varchar(255) NOT NULL,
  success varchar(10) NOT NULL,
  full_ret jsonb NOT NULL,
  alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW());

CREATE INDEX idx_salt_returns_id ON salt_returns (id);
CREATE INDEX idx_salt_returns_jid ON salt_returns (jid);
CREATE INDEX idx_salt_returns_fun ON salt_returns (fun);
CREATE INDEX idx_salt_returns_return ON salt_returns
    USING gin (return) with (fastupdate=on);
CREATE INDEX idx_salt_returns_full_ret ON salt_returns
    USING gin (full_ret) with (fastupdate=on);
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
    data jsonb NOT NULL,
    alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    master_id varchar(255) NOT NULL);

CREATE INDEX idx_salt_events_tag on
    salt_events (tag);
CREATE INDEX idx_salt_events_data ON salt_events
    USING gin (data) with (fastupdate=on);
"
    };
}

/// Salt's pgjsonb schema, to print for a user or a DBA.
pub const DDL: &str = concat!(jids_ddl!(), "\n", salt_returns_ddl!(), "\n", salt_events_ddl!());

/// The same, table by table, for `create_schema`.
pub(crate) const TABLES: &[(&str, &str)] =
    &[("jids", jids_ddl!()), ("salt_returns", salt_returns_ddl!()), ("salt_events", salt_events_ddl!())];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_is_salts() {
        assert!(DDL.starts_with(
            "DROP TABLE IF EXISTS jids;\nCREATE TABLE jids (\n   jid varchar(255) NOT NULL primary key,\n   load jsonb NOT NULL\n);"
        ));
        assert!(DDL.contains("  success varchar(10) NOT NULL,\n  full_ret jsonb NOT NULL,\n"));
        assert!(DDL.contains("id BIGINT NOT NULL UNIQUE DEFAULT nextval('seq_salt_events_id'),"));
        assert_eq!(DDL.matches("CREATE TABLE").count(), 3);
        assert_eq!(DDL.matches("USING gin").count(), 4);
        assert_eq!(TABLES.iter().map(|(t, _)| *t).collect::<Vec<_>>(), ["jids", "salt_returns", "salt_events"]);
    }
}
