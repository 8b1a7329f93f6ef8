//! `postgres`: returns, loads and events as JSON text in PostgreSQL (`salt/returners/postgres.py`).
//!
//! Salt's tables and rows (see [`schema`]): the JSON text is byte for byte what Salt writes
//! (Python's `json.dumps`), so key order and formatting are kept, unlike `pgjsonb`. Salt's
//! module has no `clean_old_jobs` and a `get_fun` that cannot run on PostgreSQL (MySQL
//! backticks); this one has both. The rest it shares with `pgjsonb` (see `pg_common`).

pub mod config;
pub mod schema;

use crate::options::Lookup;
use crate::pg_common::{pg_returner, Columns, Flavor, PgStore};
use crate::Result;

pub use crate::pg_common::PgConfig;

static FLAVOR: Flavor = Flavor {
    name: Postgres::NAME,
    columns: Columns::Text,
    tables: schema::TABLES,
};

pub struct Postgres {
    inner: PgStore,
}

impl Postgres {
    pub const NAME: &'static str = "postgres";

    /// Opens the store with the options `lookup` finds (see [`config`]). No connection is made
    /// yet: see [`Postgres::check`].
    pub async fn open(lookup: &Lookup<'_>) -> Result<Postgres> {
        Self::open_with(config::config(lookup)?)
    }

    pub fn open_with(config: PgConfig) -> Result<Postgres> {
        Ok(Postgres {
            inner: PgStore::open(&FLAVOR, config)?,
        })
    }

    pub fn config(&self) -> &PgConfig {
        self.inner.config()
    }

    /// Connects and checks the tables: one clear error for a wrong password, an unknown
    /// database or a missing table.
    pub async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.inner.close().await
    }
}

pg_returner!(Postgres);
