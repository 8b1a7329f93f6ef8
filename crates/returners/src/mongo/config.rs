//! The MongoDB options, with Salt's names and defaults. Both returners read them under the
//! prefix `mongo` (Salt's `mongo_return` also uses `mongo` as its options' virtual name):
//! `mongo.host` (unset: `localhost`, as pymongo connects with `host=None`), `mongo.port`
//! (27017), `mongo.db` (`salt`), `mongo.user` and `mongo.password` (unset: no login),
//! `mongo.indexes` (false), and for `mongo` only `mongo.uri` (a connection string, instead of
//! host and port). As in Salt, `mongo.uri` together with `mongo.host` is an error.
//!
//! Where we differ: a URI without a database uses `mongo.db` (pymongo's `get_database()`
//! raised "No default database defined"). `mongo_return` logs in to `mongo.db` (Salt's
//! `mdb.authenticate`, which pymongo 4 removed, so Salt's login there no longer works), `mongo`
//! to `admin` (pymongo's default), unless a URI says `authSource`.

use std::time::Duration;

use mongodb::options::{ClientOptions, Credential, ServerAddress};
use serde_json::json;

use crate::options::{opt_set, opt_str, truthy, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// How long an operation waits to reach a server (connect, pick a primary). pymongo waits 30 s;
/// a returner that waits longer only stalls its spool, which retries anyway.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Salt's own options of each returner (`mongo_return` has no `uri`).
const ATTRS: [&str; 7] = ["host", "port", "db", "user", "password", "indexes", "uri"];
const RETURN_ATTRS: [&str; 6] = ["host", "port", "db", "user", "password", "indexes"];

pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_PORT: u16 = 27017;
pub const DEFAULT_DB: &str = "salt";

/// Which of Salt's two modules the options are read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `mongo_future_return` (`mongo`): reads `mongo.uri`; logs in to `admin`.
    Future,
    /// `mongo_return`: no `uri`; logs in to the database itself.
    Return,
}

/// Where the server is: host and port, or a connection string.
#[derive(Clone, PartialEq, Eq)]
pub enum Address {
    HostPort {
        host: String,
        port: u16,
    },
    /// `mongo.uri`; it may hold a password, so it never prints.
    Uri(Secret),
}

#[derive(Clone, PartialEq, Eq)]
pub struct MongoConfig {
    pub address: Address,
    pub db: String,
    pub user: Option<String>,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    /// `mongo.indexes`: create Salt's indexes (and ours, see `super::client`).
    pub indexes: bool,
    pub flavour: Flavour,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl std::fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoConfig")
            .field("target", &self.target())
            .field("user", &self.user)
            .field("password", &self.password)
            .field("indexes", &self.indexes)
            .field("flavour", &self.flavour)
            .finish()
    }
}

impl MongoConfig {
    /// The options `lookup` finds (`mongo.*`, `mongo: {...}`, `alternative.mongo.*` with
    /// `--return_config`, `--return_kwargs`), with Salt's defaults.
    pub fn from_lookup(lookup: &Lookup<'_>, flavour: Flavour) -> Result<MongoConfig> {
        let attrs: &[&str] = match flavour {
            Flavour::Future => &ATTRS,
            Flavour::Return => &RETURN_ATTRS,
        };
        // config.option's DEFAULTS (salt/modules/config.py): mongo.db and mongo.port.
        let defaults = [("db", json!(DEFAULT_DB)), ("port", json!(DEFAULT_PORT))];
        let options = lookup.options("mongo", attrs, &defaults);
        let invalid = |what: String| ReturnerError::Invalid(format!("mongo: {what}"));
        let host = opt_set(&options, "host");
        let address = match (opt_set(&options, "uri"), host) {
            (Some(_), Some(_)) => {
                return Err(invalid("expects either uri or host configuration; both were provided".into()));
            }
            (Some(uri), None) => {
                if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
                    return Err(invalid("uri must start with mongodb:// or mongodb+srv://".into()));
                }
                Address::Uri(Secret::new(uri))
            }
            (None, host) => {
                let port = match opt_set(&options, "port") {
                    None => DEFAULT_PORT,
                    Some(p) => p
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| invalid(format!("port must be a number from 1 to 65535, not {p:?}")))?,
                };
                Address::HostPort { host: host.unwrap_or_else(|| DEFAULT_HOST.into()), port }
            }
        };
        Ok(MongoConfig {
            address,
            db: opt_set(&options, "db").unwrap_or_else(|| DEFAULT_DB.into()),
            user: opt_set(&options, "user"),
            // A password may legitimately be "None"; only a missing one is empty.
            password: Secret::new(opt_str(&options, "password").unwrap_or_default()),
            // Python's truthiness, as Salt's `if indexes:`.
            indexes: options.get("indexes").is_some_and(truthy),
            flavour,
            unique_jid: crate::options::master_flag(lookup.opts, "unique_jid"),
        })
    }

    /// `host:port/db` (or the URI's hosts), for messages; never a password.
    pub fn target(&self) -> String {
        match &self.address {
            Address::HostPort { host, port } => format!("{host}:{port}/{}", self.db),
            Address::Uri(uri) => uri_hosts(uri.expose()),
        }
    }

    /// Removes the password and the URI from `message` (a driver's error).
    pub fn scrub(&self, message: &str) -> String {
        let message = self.password.scrub(message);
        match &self.address {
            Address::Uri(uri) => uri.scrub(&message),
            Address::HostPort { .. } => message,
        }
    }

    /// The driver's options. Nothing connects yet: the client connects on first use.
    pub(crate) async fn client_options(&self) -> Result<ClientOptions> {
        let mut options = match &self.address {
            Address::HostPort { host, port } => {
                let mut o = ClientOptions::default();
                o.hosts = vec![ServerAddress::Tcp { host: host.clone(), port: Some(*port) }];
                o
            }
            // A mongodb+srv:// URI is resolved here (DNS): a failure is worth a retry.
            Address::Uri(uri) => ClientOptions::parse(uri.expose()).await.map_err(|e| {
                ReturnerError::Unavailable(format!("mongo: cannot use mongo.uri ({}): {}", self.target(), self.scrub(&e.to_string())))
            })?,
        };
        if let Some(user) = &self.user {
            if options.credential.is_none() {
                let source = match self.flavour {
                    Flavour::Future => None,
                    Flavour::Return => Some(self.db.clone()),
                };
                let password = (!self.password.is_empty()).then(|| self.password.expose().to_string());
                options.credential = Some(Credential::builder().username(user.clone()).password(password).source(source).build());
            }
        }
        options.connect_timeout = Some(CONNECT_TIMEOUT);
        options.server_selection_timeout = Some(CONNECT_TIMEOUT);
        options.app_name = Some("saltrs".into());
        Ok(options)
    }
}

/// The hosts of a connection string, without the user, password, database and options.
fn uri_hosts(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hosts = rest.split(['/', '?']).next().unwrap_or_default();
    let scheme = uri.split_once("://").map_or("mongodb", |(s, _)| s);
    format!("{scheme}://{hosts}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;
    use serde_json::{Map, Value};

    fn config(v: Value, flavour: Flavour) -> Result<MongoConfig> {
        let opts: Map<String, Value> = v.as_object().unwrap().clone();
        MongoConfig::from_lookup(&Lookup::new(&opts), flavour)
    }

    #[test]
    fn salt_defaults() {
        let c = config(json!({}), Flavour::Future).unwrap();
        assert!(c.address == Address::HostPort { host: "localhost".into(), port: 27017 });
        assert_eq!((c.db.as_str(), c.user.as_deref(), c.password.expose(), c.indexes), ("salt", None, "", false));
        assert_eq!(c.target(), "localhost:27017/salt");
    }

    #[test]
    fn flat_nested_alternative_and_kwargs() {
        let opts = json!({"mongo.host": "db1", "mongo": {"port": "27018", "user": "salt"}, "mongo.password": "hunter2",
                          "alternative.mongo.db": "alt", "mongo.indexes": true});
        let c = config(opts.clone(), Flavour::Future).unwrap();
        assert_eq!(c.target(), "db1:27018/salt");
        assert_eq!((c.user.as_deref(), c.password.expose(), c.indexes), (Some("salt"), "hunter2", true));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && shown.contains(REDACTED), "{shown}");

        let opts: Map<String, Value> = opts.as_object().unwrap().clone();
        let ret = json!({"ret_config": "alternative", "ret_kwargs": {"port": 27019}});
        let c = MongoConfig::from_lookup(&Lookup::new(&opts).with_ret(ret.as_object().unwrap()), Flavour::Return).unwrap();
        assert_eq!(c.target(), "db1:27019/alt");
    }

    #[test]
    fn uri_is_mongo_futures_alone_and_never_printed() {
        let uri = "mongodb://salt:hunter2@db1:27017,db2:2500/jobs?replicaSet=rs0";
        let c = config(json!({"mongo.uri": uri}), Flavour::Future).unwrap();
        assert_eq!(c.target(), "mongodb://db1:27017,db2:2500");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!c.scrub(&format!("cannot parse {uri}")).contains("hunter2"));
        // mongo_return has no uri option: it connects to host and port.
        let c = config(json!({"mongo.uri": uri}), Flavour::Return).unwrap();
        assert_eq!(c.target(), "localhost:27017/salt");
        // Salt's rule: not both.
        let err = config(json!({"mongo.uri": uri, "mongo.host": "db1"}), Flavour::Future).unwrap_err().to_string();
        assert!(err.contains("either uri or host"), "{err}");
        let err = config(json!({"mongo.uri": "db1:27017"}), Flavour::Future).unwrap_err().to_string();
        assert!(err.contains("mongodb://"), "{err}");
    }

    #[test]
    fn bad_port_and_falsy_indexes() {
        let err = config(json!({"mongo.port": "27o17"}), Flavour::Future).unwrap_err().to_string();
        assert!(err.contains("port must be a number"), "{err}");
        for off in [json!(false), json!(""), json!(0), json!(null)] {
            assert!(!config(json!({"mongo.indexes": off}), Flavour::Future).unwrap().indexes, "{off}");
        }
        assert!(config(json!({"mongo": {"indexes": "true"}}), Flavour::Future).unwrap().indexes);
    }

    #[tokio::test]
    async fn driver_options() {
        let c = config(json!({"mongo.user": "salt", "mongo.password": "pw", "mongo.db": "jobs"}), Flavour::Return).unwrap();
        let o = c.client_options().await.unwrap();
        let cred = o.credential.unwrap();
        assert_eq!((cred.username.as_deref(), cred.source.as_deref()), (Some("salt"), Some("jobs")));
        assert_eq!(o.server_selection_timeout, Some(CONNECT_TIMEOUT));
        let c = config(json!({"mongo.user": "salt", "mongo.password": "pw"}), Flavour::Future).unwrap();
        assert_eq!(c.client_options().await.unwrap().credential.unwrap().source, None);
    }
}
