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

use crate::options::Lookup;
use crate::pg_common::{pg_returner, Columns, Flavor, PgStore};
use crate::Result;

pub use crate::pg_common::PgConfig;

static FLAVOR: Flavor = Flavor {
    name: Pgjsonb::NAME,
    columns: Columns::Jsonb,
    tables: schema::TABLES,
};

pub struct Pgjsonb {
    inner: PgStore,
}

impl Pgjsonb {
    pub const NAME: &'static str = "pgjsonb";

    /// Opens the store with the options `lookup` finds (see [`config`]). No connection is made
    /// yet: see [`Pgjsonb::check`].
    pub async fn open(lookup: &Lookup<'_>) -> Result<Pgjsonb> {
        Self::open_with(config::config(lookup)?)
    }

    pub fn open_with(config: PgConfig) -> Result<Pgjsonb> {
        Ok(Pgjsonb {
            inner: PgStore::open(&FLAVOR, config)?,
        })
    }

    pub fn config(&self) -> &PgConfig {
        self.inner.config()
    }

    /// Connects and checks the tables: one clear error for a wrong password, an unknown
    /// database or a missing table. For start-up, before the store takes any return.
    pub async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.inner.close().await
    }
}

pg_returner!(Pgjsonb);
