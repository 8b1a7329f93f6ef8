//! The `sqlite3` options, with Salt's names: `sqlite3.database` (the file) and
//! `sqlite3.timeout` (seconds to wait for a lock). Both are required, as in Salt, which has no
//! defaults for them; `alternative.sqlite3.*` and `--return_kwargs` work as for every returner.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Map;

use crate::options::{master_flag, opt_str, Lookup};
use crate::{Result, ReturnerError};

#[derive(Debug, Clone, PartialEq)]
pub struct Sqlite3Config {
    pub database: PathBuf,
    pub timeout: Duration,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl Sqlite3Config {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<Sqlite3Config> {
        let options = lookup.options(super::NAME, &["database", "timeout"], &[]);
        let required = |key: &str, o: &Map<String, serde_json::Value>| {
            opt_str(o, key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ReturnerError::Invalid(format!("sqlite3 config option \"sqlite3.{key}\" is missing")))
        };
        let database = PathBuf::from(required("database", &options)?);
        let timeout = required("timeout", &options)?;
        let secs = timeout
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| ReturnerError::Invalid(format!("sqlite3.timeout must be a positive number of seconds, not {timeout:?}")))?;
        let unique_jid = master_flag(lookup.opts, "unique_jid");
        Ok(Sqlite3Config { database, timeout: Duration::from_secs_f64(secs), unique_jid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn both_options_are_required() {
        let none = Map::new();
        let err = Sqlite3Config::from_lookup(&Lookup::new(&none)).unwrap_err().to_string();
        assert!(err.contains("\"sqlite3.database\" is missing"), "{err}");
        let no_timeout = map(json!({"sqlite3.database": "/tmp/salt.db"}));
        let err = Sqlite3Config::from_lookup(&Lookup::new(&no_timeout)).unwrap_err().to_string();
        assert!(err.contains("\"sqlite3.timeout\" is missing"), "{err}");
        let bad = map(json!({"sqlite3.database": "/tmp/salt.db", "sqlite3.timeout": "soon"}));
        assert!(Sqlite3Config::from_lookup(&Lookup::new(&bad)).unwrap_err().to_string().contains("positive number"));
    }

    #[test]
    fn values_alternative_and_kwargs() {
        let o = map(json!({"sqlite3": {"database": "/var/lib/salt/salt.db"}, "sqlite3.timeout": 5.0,
                           "alternative.sqlite3.database": "/tmp/alt.db"}));
        let c = Sqlite3Config::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.database.clone(), c.timeout), (PathBuf::from("/var/lib/salt/salt.db"), Duration::from_secs(5)));
        let ret = map(json!({"ret_config": "alternative"}));
        assert_eq!(Sqlite3Config::from_lookup(&Lookup::new(&o).with_ret(&ret)).unwrap().database, PathBuf::from("/tmp/alt.db"));
        let ret = map(json!({"ret_kwargs": {"database": "/tmp/kw.db", "timeout": "0.5"}}));
        let c = Sqlite3Config::from_lookup(&Lookup::new(&o).with_ret(&ret)).unwrap();
        assert_eq!((c.database, c.timeout), (PathBuf::from("/tmp/kw.db"), Duration::from_millis(500)));
    }
}
