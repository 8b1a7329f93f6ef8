//! Minion-side returners (`salt ... --return mysql`, the minion config's `return:`): once a
//! job's return is on its way to the master, each named returner gets Salt's minion-side record
//! through its own durable spool, so a database that is down or slow neither loses the record
//! nor holds up the next job.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use salt_proto::message::JobReturn;
use salt_returners::lazy::LazyStore;
use salt_returners::spool::{Record, Spool};
use salt_returners::Store;
use serde_json::{Map, Value};

pub struct MinionReturners {
    opts: Arc<Map<String, Value>>,
    spool_root: PathBuf,
    /// One spool per (returner, ret_config, ret_kwargs): each is its own destination.
    spools: Mutex<HashMap<String, Spool>>,
}

impl MinionReturners {
    pub fn new(opts: Arc<Map<String, Value>>, cachedir: PathBuf) -> MinionReturners {
        MinionReturners { opts, spool_root: cachedir.join("spool"), spools: Mutex::new(HashMap::new()) }
    }

    /// The returners a job goes to: those it names (`--return a,b`), then the config's `return:`.
    pub fn names(&self, publish_ret: &str) -> Vec<String> {
        let configured = match self.opts.get("return") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => String::new(),
        };
        let mut names: Vec<String> = Vec::new();
        for name in publish_ret.split(',').chain(configured.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// Queues the job's record for each returner it names.
    pub fn hand_over(&self, ret: &JobReturn, publish_ret: &str, kwargs: &Map<String, Value>) {
        let names = self.names(publish_ret);
        if names.is_empty() {
            return;
        }
        let ret_config = kwargs.get("ret_config").and_then(Value::as_str).filter(|s| !s.is_empty());
        let ret_kwargs = kwargs.get("ret_kwargs").and_then(Value::as_object);
        let record = minion_record(ret, ret_config, ret_kwargs);
        for name in names {
            match self.spool_for(&name, ret_config, ret_kwargs) {
                Ok(spool) => spool.push_nowait(vec![Record::Return { ret: record.clone() }]),
                Err(e) => tracing::error!("The return failed for job {}: cannot spool for returner '{name}': {e}", ret.jid),
            }
        }
    }

    /// At start-up: checks each returner of the config's `return:` and says in one line what is
    /// wrong with it (a wrong password, a missing table, an unknown name); the minion runs
    /// anyway and its records wait in the spool until the store works.
    pub async fn check_configured(&self) {
        for name in self.names("") {
            let spool = match self.spool_for(&name, None, None) {
                Ok(spool) => spool,
                Err(e) => {
                    tracing::error!("returner '{name}' for the minion's return setting cannot be used: {e}");
                    continue;
                }
            };
            salt_returners::health::check_at_start(spool.store().as_sink(), "the minion's return setting").await;
        }
    }

    fn spool_for(&self, name: &str, ret_config: Option<&str>, ret_kwargs: Option<&Map<String, Value>>) -> std::io::Result<Spool> {
        let key = format!(
            "{name}\0{}\0{}",
            ret_config.unwrap_or(""),
            ret_kwargs.map(|k| Value::Object(k.clone()).to_string()).unwrap_or_default()
        );
        let mut spools = self.spools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(spool) = spools.get(&key) {
            return Ok(spool.clone());
        }
        let dir = self.spool_root.join(spool_dir_name(name, &key));
        let store = LazyStore::new(name, (*self.opts).clone(), ret_config, ret_kwargs).map_err(std::io::Error::other)?;
        let spool = Spool::open(&dir, Store::Sink(Arc::new(store)))?;
        spools.insert(key, spool.clone());
        Ok(spool)
    }
}

/// `returner-<name>[-<hash of the job's returner options>]`; names are validated to keep the
/// directory inside the spool root.
fn spool_dir_name(name: &str, key: &str) -> String {
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if key == format!("{name}\0\0") {
        format!("returner-{safe}")
    } else {
        // FNV-1a: stable across runs, so a restart finds the same spool.
        let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        format!("returner-{safe}-{hash:016x}")
    }
}

/// What Salt's minion hands its returners: `success, return, retcode, jid, fun, fun_args, user,
/// id` (and `ret_config`/`ret_kwargs`, `metadata`, `out` when present). `ret_kwargs` may hold a
/// password: it chooses the destination but is stored redacted.
pub fn minion_record(ret: &JobReturn, ret_config: Option<&str>, ret_kwargs: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("success".into(), ret.success.into());
    m.insert("return".into(), ret.ret.clone());
    m.insert("retcode".into(), ret.retcode.into());
    m.insert("jid".into(), ret.jid.clone().into());
    m.insert("fun".into(), ret.fun.clone().into());
    m.insert("fun_args".into(), Value::Array(ret.fun_args.clone()));
    if let Some(user) = &ret.user {
        m.insert("user".into(), user.clone().into());
    }
    if let Some(out) = &ret.out {
        m.insert("out".into(), out.clone().into());
    }
    if let Some(md) = &ret.metadata {
        m.insert("metadata".into(), md.clone());
    }
    if let Some(rc) = ret_config {
        m.insert("ret_config".into(), rc.into());
    }
    if let Some(rk) = ret_kwargs {
        m.insert("ret_kwargs".into(), Value::Object(salt_returners::redact::redact_map(rk)));
    }
    m.insert("id".into(), ret.id.clone().into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_matches_salts_minion_side_full_ret() {
        let ret = JobReturn {
            id: "minion1".into(),
            jid: "20261125003807139737".into(),
            fun: "test.ping".into(),
            fun_args: vec![],
            ret: json!(true),
            retcode: 0,
            success: true,
            user: Some("root".into()),
            out: None,
            metadata: None,
        };
        let text = serde_json::to_string(&minion_record(&ret, None, None)).unwrap();
        assert_eq!(
            text,
            r#"{"success":true,"return":true,"retcode":0,"jid":"20261125003807139737","fun":"test.ping","fun_args":[],"user":"root","id":"minion1"}"#
        );
        let kw = json!({"pass": "hunter2", "db": "other"});
        let rec = minion_record(&ret, Some("alternative"), kw.as_object());
        assert_eq!(rec["ret_kwargs"], json!({"pass": salt_returners::redact::REDACTED, "db": "other"}));
    }

    #[test]
    fn names_merge_job_and_config() {
        let opts = json!({"return": "mysql,syslog"});
        let r = MinionReturners::new(Arc::new(opts.as_object().unwrap().clone()), PathBuf::from("/nonexistent"));
        assert_eq!(r.names("mysql,local_cache"), ["mysql", "local_cache", "syslog"]);
        assert_eq!(spool_dir_name("my/sql", "my/sql\0\0"), "returner-my_sql");
    }
}
