//! Connection settings shared by the PostgreSQL returners. Each store reads its own option
//! names (`pass` for pgjsonb, `passwd` for postgres) and hands the values over here.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::options::{master_flag, master_id, opt_set, opt_str};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// How long a call waits for a connection when `connect_timeout` is not set. libpq (Salt)
/// waits forever; a returner that hangs forever would stall its spool, so we bound it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect, plus the master settings the job-cache calls need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    pub db: String,
    /// libpq's `connect_timeout` (pgjsonb only); `None`: [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// libpq's `sslmode`: disable, allow, prefer (the default), require, verify-ca, verify-full.
    pub sslmode: Option<String>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub sslrootcert: Option<PathBuf>,
    /// Accepted for Salt's sake, but refused at connect time: the driver has no CRL check,
    /// and silently ignoring a revocation list would be worse than an error.
    pub sslcrl: Option<PathBuf>,
    /// `salt_events.master_id`: the master's `id` (Salt's `<hostname>_master` by default).
    pub master_id: String,
    /// The master's `archive_jobs`: copy purged rows to `*_archive` tables first.
    pub archive_jobs: bool,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl PgConfig {
    /// From the options a store looked up (`options`, with Salt's defaults applied) and the
    /// config of the process (`opts`) for the master-wide keys. `pass_key` is the store's name
    /// for the password.
    pub(crate) fn from_options(
        store: &str,
        options: &Map<String, Value>,
        pass_key: &str,
        opts: Option<&Map<String, Value>>,
    ) -> Result<PgConfig> {
        let invalid = |what: String| ReturnerError::Invalid(format!("{store}: {what}"));
        let port = match opt_set(options, "port") {
            None => 5432,
            Some(p) => p.trim().parse::<u16>().map_err(|_| invalid(format!("port must be a number from 1 to 65535, not {p:?}")))?,
        };
        let connect_timeout = match opt_set(options, "connect_timeout") {
            None => None,
            Some(t) => {
                let secs = t.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0);
                let secs = secs.ok_or_else(|| invalid(format!("connect_timeout must be a number of seconds, not {t:?}")))?;
                // libpq: 0 means wait forever; we keep our bound instead.
                (secs > 0.0).then(|| Duration::from_secs_f64(secs))
            }
        };
        Ok(PgConfig {
            host: opt_set(options, "host").unwrap_or_else(|| "localhost".into()),
            port,
            user: opt_set(options, "user").unwrap_or_else(|| "salt".into()),
            password: Secret::new(opt_str(options, pass_key).unwrap_or_default()),
            db: opt_set(options, "db").unwrap_or_else(|| "salt".into()),
            connect_timeout,
            sslmode: opt_set(options, "sslmode"),
            sslcert: opt_set(options, "sslcert").map(PathBuf::from),
            sslkey: opt_set(options, "sslkey").map(PathBuf::from),
            sslrootcert: opt_set(options, "sslrootcert").map(PathBuf::from),
            sslcrl: opt_set(options, "sslcrl").map(PathBuf::from),
            master_id: master_id(opts),
            archive_jobs: master_flag(opts, "archive_jobs"),
            unique_jid: master_flag(opts, "unique_jid"),
        })
    }

    /// `host:port/db`, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.db)
    }

    /// The driver's options. Environment variables (`PGHOST`, `~/.pgpass`, ...) play no part:
    /// every value comes from the Salt config, as with psycopg2 given explicit arguments.
    pub(crate) fn connect_options(&self, store: &str) -> Result<PgConnectOptions> {
        if self.sslcrl.is_some() {
            return Err(ReturnerError::Invalid(format!(
                "{store}: sslcrl is not supported (the TLS library here cannot check a CRL); remove the option"
            )));
        }
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(&self.db)
            .application_name("salt-returner");
        if !self.password.is_empty() {
            o = o.password(self.password.expose());
        }
        if let Some(mode) = &self.sslmode {
            let mode: PgSslMode = mode.parse().map_err(|_| {
                ReturnerError::Invalid(format!(
                    "{store}: sslmode {mode:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ))
            })?;
            o = o.ssl_mode(mode);
        }
        if let Some(p) = &self.sslrootcert {
            o = o.ssl_root_cert(p);
        }
        if let Some(p) = &self.sslcert {
            o = o.ssl_client_cert(p);
        }
        if let Some(p) = &self.sslkey {
            o = o.ssl_client_key(p);
        }
        Ok(o)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_none_strings_and_master_keys() {
        let options = map(json!({"host": "db", "port": "5433", "user": "u", "pass": "hunter2", "db": "d",
                                 "sslmode": "None", "sslrootcert": "/ca.pem", "connect_timeout": 3}));
        let opts = map(json!({"id": "m_master", "archive_jobs": true}));
        let c = PgConfig::from_options("pgjsonb", &options, "pass", Some(&opts)).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.user.as_str(), c.db.as_str()), ("db", 5433, "u", "d"));
        assert_eq!(c.password.expose(), "hunter2");
        assert_eq!(c.sslmode, None);
        assert_eq!(c.sslrootcert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(c.master_id, "m_master");
        assert!(c.archive_jobs && !c.unique_jid);
        assert_eq!(c.target(), "db:5433/d");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_bad_values_are_named() {
        let options = map(json!({"pass": "hunter2-secret"}));
        let c = PgConfig::from_options("pgjsonb", &options, "pass", None).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(REDACTED));
        assert!(c.master_id.ends_with("_master"));

        let err = PgConfig::from_options("pgjsonb", &map(json!({"port": "fivefour"})), "pass", None).unwrap_err();
        assert_eq!(err.to_string(), "invalid argument: pgjsonb: port must be a number from 1 to 65535, not \"fivefour\"");
        let bad_mode = PgConfig::from_options("pgjsonb", &map(json!({"sslmode": "sometimes"})), "pass", None).unwrap();
        assert!(bad_mode.connect_options("pgjsonb").unwrap_err().to_string().contains("sslmode \"sometimes\""));
        let crl = PgConfig::from_options("pgjsonb", &map(json!({"sslcrl": "/crl.pem"})), "pass", None).unwrap();
        assert!(crl.connect_options("pgjsonb").unwrap_err().to_string().contains("sslcrl is not supported"));
    }
}
