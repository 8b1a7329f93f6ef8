//! The `mysql` options, with Salt's names and defaults: `mysql.host` (`salt`), `mysql.user`
//! (`salt`), `mysql.pass` (`salt`), `mysql.db` (`salt`), `mysql.port` (3306), `mysql.ssl_ca`,
//! `mysql.ssl_cert`, `mysql.ssl_key` (unset), and `mysql.unix_socket` (unset: we connect over
//! TCP unless it is given). As in Salt, the string `None` (any case) means unset. The master's
//! `id`, `archive_jobs` and `unique_jid` come from the process config.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

use crate::options::{master_flag, master_id, opt_set, opt_str, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// How long a call waits for a connection. PyMySQL waits 10 s to connect; a returner that hangs
/// longer would only stall its spool.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const ATTRS: [&str; 9] = ["host", "user", "pass", "db", "port", "ssl_ca", "ssl_cert", "ssl_key", "unix_socket"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    pub db: String,
    pub ssl_ca: Option<PathBuf>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub unix_socket: Option<PathBuf>,
    /// `salt_events.master_id`: the master's `id` (Salt's `<hostname>_master` by default).
    pub master_id: String,
    /// The master's `archive_jobs`: copy purged rows to `*_archive` tables first.
    pub archive_jobs: bool,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl MySqlConfig {
    /// The options `lookup` finds (`mysql.*`, `mysql: {...}`, `alternative.mysql.*` with
    /// `--return_config`, `--return_kwargs`), with Salt's defaults.
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<MySqlConfig> {
        let defaults =
            [("host", json!("salt")), ("user", json!("salt")), ("pass", json!("salt")), ("db", json!("salt")), ("port", json!(3306))];
        let options = lookup.options(super::NAME, &ATTRS, &defaults);
        let port = match opt_set(&options, "port") {
            None => 3306,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ReturnerError::Invalid(format!("mysql: port must be a number from 1 to 65535, not {p:?}")))?,
        };
        Ok(MySqlConfig {
            host: opt_set(&options, "host").unwrap_or_else(|| "salt".into()),
            port,
            user: opt_set(&options, "user").unwrap_or_else(|| "salt".into()),
            // A password may legitimately be "None"; only a missing one is empty.
            password: Secret::new(opt_str(&options, "pass").unwrap_or_default()),
            db: opt_set(&options, "db").unwrap_or_else(|| "salt".into()),
            ssl_ca: opt_set(&options, "ssl_ca").map(PathBuf::from),
            ssl_cert: opt_set(&options, "ssl_cert").map(PathBuf::from),
            ssl_key: opt_set(&options, "ssl_key").map(PathBuf::from),
            unix_socket: opt_set(&options, "unix_socket").map(PathBuf::from),
            master_id: master_id(lookup.opts),
            archive_jobs: master_flag(lookup.opts, "archive_jobs"),
            unique_jid: master_flag(lookup.opts, "unique_jid"),
        })
    }

    /// `host:port/db`, for messages.
    pub fn target(&self) -> String {
        match &self.unix_socket {
            Some(sock) => format!("{}/{}", sock.display(), self.db),
            None => format!("{}:{}/{}", self.host, self.port, self.db),
        }
    }

    /// The driver's options: charset utf8mb4 on the connection, whatever the tables use, so a
    /// 4-byte character reaches the server intact (see `super::text` for utf8mb3 tables).
    /// SSL as Salt's `ssl` dict: any of `ssl_ca`/`ssl_cert`/`ssl_key` set turns TLS on, and a
    /// CA means the server certificate is verified against it.
    pub(crate) fn connect_options(&self) -> MySqlConnectOptions {
        let mut o = MySqlConnectOptions::new().host(&self.host).port(self.port).username(&self.user).database(&self.db).charset("utf8mb4");
        if !self.password.is_empty() {
            o = o.password(self.password.expose());
        }
        if let Some(sock) = &self.unix_socket {
            o = o.socket(sock);
        }
        let ssl = self.ssl_ca.is_some() || self.ssl_cert.is_some() || self.ssl_key.is_some();
        o = o.ssl_mode(match (ssl, &self.ssl_ca) {
            (false, _) => MySqlSslMode::Disabled,
            (true, Some(_)) => MySqlSslMode::VerifyCa,
            (true, None) => MySqlSslMode::Required,
        });
        if let Some(p) = &self.ssl_ca {
            o = o.ssl_ca(p);
        }
        if let Some(p) = &self.ssl_cert {
            o = o.ssl_client_cert(p);
        }
        if let Some(p) = &self.ssl_key {
            o = o.ssl_client_key(p);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;
    use serde_json::{Map, Value};

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn salt_defaults() {
        let opts = Map::new();
        let c = MySqlConfig::from_lookup(&Lookup::new(&opts)).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.user.as_str(), c.password.expose(), c.db.as_str()), ("salt", 3306, "salt", "salt", "salt"));
        assert_eq!((c.ssl_ca.clone(), c.ssl_cert.clone(), c.ssl_key.clone(), c.unix_socket.clone()), (None, None, None, None));
        assert!(!c.archive_jobs && !c.unique_jid);
        assert!(c.master_id.ends_with("_master"));
    }

    #[test]
    fn none_strings_port_strings_and_master_keys() {
        let opts = map(json!({"mysql.host": "db", "mysql.port": "3307", "mysql.pass": "hunter2",
                              "mysql": {"ssl_ca": "None", "ssl_cert": "/c.pem", "ssl_key": "NONE"},
                              "id": "m_master", "archive_jobs": true}));
        let c = MySqlConfig::from_lookup(&Lookup::new(&opts)).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("db", 3307));
        assert_eq!(c.ssl_ca, None);
        assert_eq!(c.ssl_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(c.ssl_key, None);
        assert_eq!(c.master_id, "m_master");
        assert!(c.archive_jobs);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && shown.contains(REDACTED), "{shown}");
        let bad = map(json!({"mysql.port": "33o6"}));
        let err = MySqlConfig::from_lookup(&Lookup::new(&bad)).unwrap_err().to_string();
        assert!(err.contains("port must be a number"), "{err}");
    }

    #[test]
    fn ssl_options_turn_tls_on() {
        let mode = |v: Value| MySqlConfig::from_lookup(&Lookup::new(&map(v))).unwrap().connect_options().get_ssl_mode();
        assert!(matches!(mode(json!({})), MySqlSslMode::Disabled));
        assert!(matches!(mode(json!({"mysql.ssl_ca": "None", "mysql.ssl_cert": "none"})), MySqlSslMode::Disabled));
        assert!(matches!(mode(json!({"mysql.ssl_ca": "/etc/pki/ca.pem"})), MySqlSslMode::VerifyCa));
        assert!(matches!(mode(json!({"mysql.ssl_cert": "/c.crt", "mysql.ssl_key": "/c.key"})), MySqlSslMode::Required));
        let opts = MySqlConfig::from_lookup(&Lookup::new(&map(json!({})))).unwrap().connect_options();
        assert_eq!(opts.get_charset(), "utf8mb4");
    }

    #[test]
    fn return_config_and_return_kwargs_pick_another_database() {
        let opts =
            map(json!({"mysql.db": "salt", "mysql.host": "db1", "alternative.mysql.db": "alt", "alternative.mysql": {"user": "alt_user"}}));
        let ret = map(json!({"ret_config": "alternative"}));
        let c = MySqlConfig::from_lookup(&Lookup::new(&opts).with_ret(&ret)).unwrap();
        assert_eq!((c.db.as_str(), c.user.as_str(), c.host.as_str()), ("alt", "alt_user", "db1"));
        let ret = map(json!({"ret_config": "alternative", "ret_kwargs": {"db": "other", "port": 3310}}));
        let c = MySqlConfig::from_lookup(&Lookup::new(&opts).with_ret(&ret)).unwrap();
        assert_eq!((c.db.as_str(), c.port, c.user.as_str()), ("other", 3310, "alt_user"));
    }
}
