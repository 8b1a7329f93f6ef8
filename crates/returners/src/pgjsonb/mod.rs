//! `pgjsonb`: returns, loads and events in PostgreSQL `jsonb` columns (Salt's recommended
//! PostgreSQL returner, `salt/returners/pgjsonb.py`).
//!
//! Salt's tables and rows (see [`schema`]); a minion-side returner (`--return pgjsonb`), an
//! event returner and a full master job cache. What it shares with `postgres`, and where both
//! differ from Salt on purpose, is in `pg_common`. Specific to `jsonb`:
//! - `jsonb` keeps neither key order nor formatting: a load or return read back has its keys
//!   in `jsonb`'s order (shorter keys first), as Salt's pgjsonb gives them too;
//! - `jsonb` cannot hold the character U+0000: a return containing it is `Rejected` (Salt's
//!   pgjsonb fails on it as well); the `postgres` store keeps it.

pub mod config;
pub mod schema;

use crate::pg_common::{pg_returner, Columns, Flavor, PgStore};

pub use crate::pg_common::PgConfig;

static FLAVOR: Flavor = Flavor { name: Pgjsonb::NAME, columns: Columns::Jsonb, tables: schema::TABLES };

pub struct Pgjsonb {
    inner: PgStore,
}

impl Pgjsonb {
    pub const NAME: &'static str = "pgjsonb";
}

// `open`, `open_with`, `config`, `check`, `close` and the `Returner` calls, as for postgres.
pg_returner!(Pgjsonb);
