//! `pgjsonb`: returns, loads and events in PostgreSQL `jsonb` columns (Salt's recommended
//! PostgreSQL returner, `salt/returners/pgjsonb.py`).
//!
//! Salt's tables and rows (see [`schema`]); a minion-side returner (`--return pgjsonb`), an
//! event returner and a full master job cache. What it shares with `postgres`, and where both
//! differ from Salt on purpose, is in `sql::pg`. Specific to `jsonb`:
//! - `jsonb` keeps neither key order nor formatting: a load or return read back has its keys
//!   in `jsonb`'s order (shorter keys first), as Salt's pgjsonb gives them too;
//! - `jsonb` cannot hold the character U+0000: a return containing it is `Rejected` (Salt's
//!   pgjsonb fails on it as well); the `postgres` store keeps it.

pub mod config;
pub mod schema;

use futures::FutureExt;

use crate::options::Lookup;
use crate::registry::{Entry, Schema, Store, JOB_CACHE_WITH_EVENTS, SALT_SQL_TABLES};
use crate::sql::pg::{Columns, Flavor};
use crate::Result;

pub use crate::sql::pg::{PgConfig, PgStore};

pub const NAME: &str = "pgjsonb";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE_WITH_EVENTS,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(open(lookup)?))) }.boxed(),
    schema: Some(Schema { tables: SALT_SQL_TABLES, ddl: || schema::DDL.to_string() }),
};

static FLAVOR: Flavor = Flavor { name: NAME, entry: &ENTRY, columns: Columns::Jsonb, tables: schema::TABLES };

/// Opens the store with the options `lookup` finds (see [`config`]). No connection is made
/// yet: [`crate::Sink::check`] makes one.
pub fn open(lookup: &Lookup<'_>) -> Result<PgStore> {
    open_with(config::config(lookup)?)
}

pub fn open_with(config: PgConfig) -> Result<PgStore> {
    PgStore::open_with(&FLAVOR, config)
}
