//! `postgres`: returns, loads and events as JSON text in PostgreSQL (`salt/returners/postgres.py`).
//!
//! Salt's tables and rows (see [`schema`]): the JSON text is byte for byte what Salt writes
//! (Python's `json.dumps`), so key order and formatting are kept, unlike `pgjsonb`. Salt's
//! module has no `clean_old_jobs` and a `get_fun` that cannot run on PostgreSQL (MySQL
//! backticks); this one has both. The rest it shares with `pgjsonb` (see `pg_common`).

pub mod config;
pub mod schema;

use crate::pg_common::{pg_returner, Columns, Flavor, PgStore};

pub use crate::pg_common::PgConfig;

static FLAVOR: Flavor = Flavor { name: Postgres::NAME, columns: Columns::Text, tables: schema::TABLES };

pub struct Postgres {
    inner: PgStore,
}

impl Postgres {
    pub const NAME: &'static str = "postgres";
}

// `open`, `open_with`, `config`, `check`, `close` and the `Returner` calls, as for pgjsonb.
pg_returner!(Postgres);
