//! postgres's options, with Salt's names and defaults (`returner.postgres.<option>`):
//! `host` (`localhost`), `user` (`salt`), `passwd` (`salt`), `db` (`salt`), `port` (`5432`).
//! Salt's postgres returner has no SSL or timeout options; neither has this one (connections
//! use libpq's default `sslmode=prefer` and a 30 s connect bound). With the master's `id`,
//! `archive_jobs` and `unique_jid`.

use serde_json::json;

use crate::options::Lookup;
use crate::sql::pg::PgConfig;
use crate::Result;

/// Salt's prefix for these options (`returner.postgres.host`, ...).
pub const VIRTUALNAME: &str = "returner.postgres";

pub const ATTRS: [&str; 5] = ["host", "user", "passwd", "db", "port"];

/// The settings `lookup` gives postgres.
pub fn config(lookup: &Lookup<'_>) -> Result<PgConfig> {
    let defaults =
        [("host", json!("localhost")), ("user", json!("salt")), ("passwd", json!("salt")), ("db", json!("salt")), ("port", json!(5432))];
    let options = lookup.options(VIRTUALNAME, &ATTRS, &defaults);
    PgConfig::from_options(super::NAME, &options, "passwd", lookup.opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    #[test]
    fn passwd_is_the_password_and_other_stores_keys_are_ignored() {
        let opts: Map<String, Value> = json!({
            "returner.postgres.passwd": "s3cret", "returner.postgres.db": "jobs",
            "returner.pgjsonb.host": "not-mine", "returner.postgres.sslmode": "require",
        })
        .as_object()
        .unwrap()
        .clone();
        let c = config(&Lookup::new(&opts)).unwrap();
        assert_eq!((c.host.as_str(), c.password.expose(), c.db.as_str()), ("localhost", "s3cret", "jobs"));
        assert_eq!(c.sslmode, None, "not a postgres option in Salt");
    }
}
