//! The SQL family: what the four SQL stores (`mysql`, `pgjsonb`, `postgres`, `sqlite3`) share,
//! with what differs per database written as a dialect. No store imports another; they all
//! import from here.
//!
//! - `get_jids` is the store-neutral walk in [`crate::paging`];
//! - [`listing`]: the chunk query over Salt's `jids(jid, load)` table, with a [`listing::Dialect`]
//!   for how a database quotes names and reads a JSON field (MySQL, SQLite);
//! - [`pg`]: the PostgreSQL stores' shared implementation (`pgjsonb` and `postgres` are two of
//!   Salt's modules on one database, differing in their column types);
//! - [`rejects_record`]: which server errors are about the record rather than the server.

#[cfg(any(feature = "mysql", feature = "sqlite3"))]
pub(crate) mod listing;
#[cfg(feature = "postgres")]
pub(crate) mod pg;

/// Whether a server's SQLSTATE says the record is at fault (class 22, data exception; class
/// 23, constraint violation): the record is rejected for good, where any other failure is the
/// server's and worth retrying.
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub(crate) fn rejects_record(sqlstate: &str) -> bool {
    sqlstate.starts_with("22") || sqlstate.starts_with("23")
}
