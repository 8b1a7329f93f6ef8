//! `postgres`: returns, loads and events as JSON text in PostgreSQL (`salt/returners/postgres.py`).
//!
//! Salt's tables and rows (see [`schema`]): the JSON text is byte for byte what Salt writes
//! (Python's `json.dumps`), so key order and formatting are kept, unlike `pgjsonb`. Salt's
//! module has no `clean_old_jobs` and a `get_fun` that cannot run on PostgreSQL (MySQL
//! backticks); this one has both. The rest it shares with `pgjsonb` (see `sql::pg`).

pub mod config;
pub mod schema;

use futures::FutureExt;

use crate::options::Lookup;
use crate::registry::{Entry, Schema, Store, JOB_CACHE_WITH_EVENTS, SALT_SQL_TABLES};
use crate::sql::pg::{Columns, Flavor};
use crate::Result;

pub use crate::sql::pg::{PgConfig, PgStore};

pub const NAME: &str = "postgres";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE_WITH_EVENTS,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(open(lookup)?))) }.boxed(),
    schema: Some(Schema { tables: SALT_SQL_TABLES, ddl: || schema::DDL.to_string() }),
};

static FLAVOR: Flavor = Flavor { name: NAME, entry: &ENTRY, columns: Columns::Text, tables: schema::TABLES };

/// Opens the store with the options `lookup` finds (see [`config`]). No connection is made
/// yet: [`crate::Sink::check`] makes one.
pub fn open(lookup: &Lookup<'_>) -> Result<PgStore> {
    open_with(config::config(lookup)?)
}

pub fn open_with(config: PgConfig) -> Result<PgStore> {
    PgStore::open_with(&FLAVOR, config)
}
