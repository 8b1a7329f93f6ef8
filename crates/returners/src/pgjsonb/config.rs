//! pgjsonb's options, with Salt's names and defaults (`returner.pgjsonb.<option>`).
//!
//! | option | default |
//! |---|---|
//! | `host` | `localhost` (Salt's code; its docs say `salt`) |
//! | `user` / `pass` / `db` | `salt` |
//! | `port` | `5432` |
//! | `connect_timeout` | unset: 30 s (libpq would wait forever) |
//! | `sslmode`, `sslcert`, `sslkey`, `sslrootcert` | unset (`None`): libpq's `prefer` |
//! | `sslcrl` | unset; refused when set (no CRL support in the TLS library) |
//!
//! With the master's `id` (→ `salt_events.master_id`), `archive_jobs` and `unique_jid`.

use serde_json::json;

use crate::options::Lookup;
use crate::sql::pg::PgConfig;
use crate::Result;

/// Salt's prefix for these options (`returner.pgjsonb.host`, ...).
pub const VIRTUALNAME: &str = "returner.pgjsonb";

pub const ATTRS: [&str; 11] =
    ["host", "user", "pass", "db", "port", "connect_timeout", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl"];

/// The settings `lookup` gives pgjsonb.
pub fn config(lookup: &Lookup<'_>) -> Result<PgConfig> {
    let defaults =
        [("host", json!("localhost")), ("user", json!("salt")), ("pass", json!("salt")), ("db", json!("salt")), ("port", json!(5432))];
    let options = lookup.options(VIRTUALNAME, &ATTRS, &defaults);
    PgConfig::from_options(super::NAME, &options, "pass", lookup.opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_flat_nested_and_return_config() {
        let empty = Map::new();
        let c = config(&Lookup::new(&empty)).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.password.expose(), c.db.as_str()),
            ("localhost", 5432, "salt", "salt", "salt")
        );

        let opts = map(json!({
            "returner.pgjsonb.host": "db1", "returner.pgjsonb.port": "5433",
            "returner.pgjsonb": {"user": "nested"},
            // --return_config alternative: Salt's real key keeps the "returner." part.
            "alternative.returner.pgjsonb.db": "other_db",
            "alternative.returner.pgjsonb.pass": "alt-pass",
            "id": "m1_master",
        }));
        let c = config(&Lookup::new(&opts)).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.user.as_str(), c.db.as_str()), ("db1", 5433, "nested", "salt"));
        assert_eq!(c.master_id, "m1_master");

        let ret = map(json!({"ret_config": "alternative"}));
        let c = config(&Lookup::new(&opts).with_ret(&ret)).unwrap();
        assert_eq!((c.host.as_str(), c.db.as_str(), c.password.expose()), ("db1", "other_db", "alt-pass"));

        // --return_kwargs '{"db": "kw_db"}' overrides everything by plain name.
        let ret = map(json!({"ret_config": "alternative", "ret_kwargs": {"db": "kw_db", "port": 6000}}));
        let c = config(&Lookup::new(&opts).with_ret(&ret)).unwrap();
        assert_eq!((c.db.as_str(), c.port), ("kw_db", 6000));
    }
}
