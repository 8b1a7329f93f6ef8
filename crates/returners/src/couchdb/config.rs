//! The `couchdb` options, with Salt's names and defaults: `couchdb.url` (`http://salt:5984/`)
//! and `couchdb.db` (`salt`), looked up as for every returner (nested `couchdb: {...}`,
//! `alternative.couchdb.*` with `--return_config`, `--return_kwargs`). A login goes in the URL
//! (`http://user:password@host:5984/`), as basic auth; it is never shown. The master's
//! `unique_jid` comes from the process config.

use serde_json::json;

use crate::options::{master_flag, opt_set, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_URL: &str = "http://salt:5984/";
pub const DEFAULT_DB: &str = "salt";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouchDbConfig {
    /// The server, without the login, ending in `/`.
    pub url: reqwest::Url,
    pub username: Option<String>,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    pub db: String,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl CouchDbConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<CouchDbConfig> {
        let options = lookup.options(super::NAME, &["url", "db"], &[("url", json!(DEFAULT_URL)), ("db", json!(DEFAULT_DB))]);
        let url = opt_set(&options, "url").unwrap_or_else(|| DEFAULT_URL.into());
        let db = opt_set(&options, "db").unwrap_or_else(|| DEFAULT_DB.into());
        let mut config = CouchDbConfig::new(&url, &db)?;
        config.unique_jid = master_flag(lookup.opts, "unique_jid");
        Ok(config)
    }

    /// The server at `url` (its login taken out of it) and the database `db`.
    pub fn new(url: &str, db: &str) -> Result<CouchDbConfig> {
        let mut parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
            // The text may hold a password: say what is wrong without it.
            ReturnerError::Invalid(format!("couchdb.url is not a URL ({e})"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ReturnerError::Invalid(format!(
                "couchdb.url must be an http(s) URL of a server, not {}",
                crate::http::where_(&parsed)
            )));
        }
        let decode = |s: &str| percent_decode(s);
        let username = Some(decode(parsed.username())).filter(|u| !u.is_empty());
        let password = Secret::new(parsed.password().map(decode).unwrap_or_default());
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if !parsed.path().ends_with('/') {
            // Salt concatenates `url + db`: a URL without its slash was a broken config there.
            let path = format!("{}/", parsed.path());
            parsed.set_path(&path);
        }
        parsed.set_query(None);
        parsed.set_fragment(None);
        if !valid_db_name(db) {
            return Err(ReturnerError::Invalid(format!(
                "couchdb.db {db:?} is not a CouchDB database name (a lowercase letter, then lowercase letters, digits and _ $ ( ) + - /)"
            )));
        }
        Ok(CouchDbConfig { url: parsed, username, password, db: db.to_string(), unique_jid: false })
    }
}

/// CouchDB's rule for database names.
fn valid_db_name(db: &str) -> bool {
    let mut chars = db.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_$()+-/".contains(c))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn salts_defaults_and_lookup() {
        let c = CouchDbConfig::from_lookup(&Lookup::new(&Map::new())).unwrap();
        assert_eq!((c.url.as_str(), c.db.as_str(), c.username.as_deref()), ("http://salt:5984/", "salt", None));
        let o = map(json!({"couchdb": {"url": "https://couch.example.com:6984"}, "couchdb.db": "jobs",
                           "alternative.couchdb.db": "alt"}));
        let c = CouchDbConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.url.as_str(), c.db.as_str()), ("https://couch.example.com:6984/", "jobs"));
        let ret = map(json!({"ret_config": "alternative", "ret_kwargs": {"url": "http://other:5984/"}}));
        let c = CouchDbConfig::from_lookup(&Lookup::new(&o).with_ret(&ret)).unwrap();
        assert_eq!((c.url.as_str(), c.db.as_str()), ("http://other:5984/", "alt"));
    }

    #[test]
    fn the_login_comes_out_of_the_url() {
        let c = CouchDbConfig::new("http://salt:p%40ss%3Aw0rd@127.0.0.1:5984/couch/", "salt").unwrap();
        assert_eq!(c.url.as_str(), "http://127.0.0.1:5984/couch/");
        assert_eq!((c.username.as_deref(), c.password.expose()), (Some("salt"), "p@ss:w0rd"));
        assert!(!format!("{c:?}").contains("w0rd"));
    }

    #[test]
    fn bad_settings_are_named() {
        for (url, db, says) in [
            ("not a url", "salt", "not a URL"),
            ("ftp://host/", "salt", "http(s) URL"),
            ("http://h:5984/", "Salt", "database name"),
            ("http://h:5984/", "web1.example.com", "database name"),
            ("http://h:5984/", "", "database name"),
        ] {
            let err = CouchDbConfig::new(url, db).unwrap_err().to_string();
            assert!(err.contains(says), "{url} {db}: {err}");
        }
        assert!(CouchDbConfig::new("http://h:5984/", "salt_jobs-2/$(x)+").is_ok());
    }
}
