//! `highstate`: Salt's report of a state run (`salt/returners/highstate_return.py`): counts,
//! the job, each state with its result, changes and duration, as YAML, JSON or HTML tables
//! with inline styles, to a file or by mail (smtp's client, [`crate::smtp::client`]).
//!
//! As Salt: a report is made when `report_everything`, or something changed and
//! `report_changes`, or something failed and `report_failures` (a state whose `result` is not
//! true counts as failed, `None` of a test run included); states in `__run_num__` order;
//! `{grain}` in the file name and the subjects; the options are in [`config`].
//!
//! Where we differ from Salt, on purpose:
//! - `success_function` and `failure_function` (a Salt function's output in the report) are
//!   not supported: set, the store does not open.
//! - The report file is written whole and owner-only (0600, through a rename), not `/tmp`'s
//!   default mode; each return replaces it, as in Salt.
//! - A return that is not state results (a highstate that did not compile) makes a report with
//!   the return as text, failed when the job failed (Salt's raised an exception).
//! - HTML escapes keys too (Salt printed them raw). A mail has a `Date` header, its body is
//!   cut at 1 MiB saying so, and a non-ASCII one goes in base64.
//! - Grains: the process's `grains` when its config has them, else `id` (the return's),
//!   `host` (the short host name), `localhost`, `fqdn` and `nodename` (the host name).
//! - Mail failures are classified as smtp's; a report mailed is not mailed again when the
//!   same return comes again (the last 10,000 remembered).
//!
//! Its cargo feature, `highstate`, turns `smtp` on (the mail client) and adds a YAML writer.

pub mod config;
pub mod encode;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};

use salt_targeting::pystr::py_str;

pub use config::HighstateConfig;

use self::config::{Delivery, MailConfig};
use self::encode::{report, sprinkle, When};
use crate::batch::{prepare_all, Indexed};
use crate::delivered::Delivered;
use crate::notify;
use crate::options::Lookup;
use crate::record::{describe, ReturnRecord};
use crate::registry::{Entry, Store};
use crate::smtp::client::{Mail, Relay};
use crate::smtp::encode::{date_now, message};
use crate::smtp::MAX_BODY_BYTES;
use crate::{Capability, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "highstate";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Highstate::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Highstate {
    config: HighstateConfig,
    /// The relay, when reports go by mail.
    relay: Option<Relay>,
    /// The process's grains, if its config has them.
    grains: Map<String, Value>,
    delivered: Delivered,
}

/// A report ready to go.
struct Report {
    /// Where: the file (grains put in) or the subject of the mail.
    target: String,
    text: String,
    jid: String,
    id: String,
}

impl Highstate {
    pub fn open(lookup: &Lookup<'_>) -> Result<Highstate> {
        let grains = lookup.opts.and_then(|o| o.get("grains")).and_then(Value::as_object).cloned().unwrap_or_default();
        Self::open_with(HighstateConfig::from_lookup(lookup)?, grains)
    }

    pub fn open_with(config: HighstateConfig, grains: Map<String, Value>) -> Result<Highstate> {
        let relay = match &config.delivery {
            Delivery::Smtp(mail) => Some(Relay::new(mail.relay.clone())?),
            Delivery::File(_) => None,
        };
        Ok(Highstate { config, relay, grains, delivered: Delivered::default() })
    }

    /// Salt's `__grains__.get(name, '')` on the minion that returned `id`.
    fn grain(&self, name: &str, id: &str) -> String {
        if let Some(value) = self.grains.get(name) {
            return py_str(value);
        }
        let host = || std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        match name {
            "id" => id.to_string(),
            "host" => host().split('.').next().unwrap_or_default().to_string(),
            "localhost" | "fqdn" | "nodename" => host(),
            _ => String::new(),
        }
    }

    /// The report of `record`, if one is wanted.
    fn prepare(&self, record: &ReturnRecord<'_>) -> std::result::Result<Option<Report>, String> {
        let c = &self.config;
        let when = When { everything: c.report_everything, changes: c.report_changes, failures: c.report_failures };
        let (Some(report), failed) = report(&record.full, when) else { return Ok(None) };
        let text = encode::render(&report, c.format)?;
        let grain = |name: &str| self.grain(name, record.id);
        let target = match &c.delivery {
            Delivery::File(path) => sprinkle(path, grain),
            Delivery::Smtp(mail) => sprinkle(if failed { &mail.failure_subject } else { &mail.success_subject }, grain),
        };
        Ok(Some(Report { target, text, jid: record.jid.clone(), id: record.id.to_string() }))
    }

    async fn mail_all(&self, mail: &MailConfig, relay: &Relay, reports: Vec<Indexed<Report>>) -> Result<Vec<Rejection>> {
        let mut refused = Vec::new();
        let fresh: Vec<_> = reports.into_iter().filter(|r| !self.delivered.contains(&r.row.jid, &r.row.id)).collect();
        if fresh.is_empty() {
            return Ok(refused);
        }
        let mut session = relay.session().await?;
        for Indexed { index, row } in fresh {
            if self.delivered.contains(&row.jid, &row.id) {
                continue;
            }
            let date = date_now();
            let headers =
                [("From", mail.sender.as_str()), ("To", mail.recipients_text.as_str()), ("Date", &date), ("Subject", &row.target)];
            let text = message(&headers, Some(self.config.format.subtype()), &notify::cut(&row.text, MAX_BODY_BYTES));
            match session.send(&Mail { from: mail.sender.clone(), to: mail.recipients.clone(), text }).await {
                Ok(()) => self.delivered.insert(&row.jid, &row.id),
                Err(ReturnerError::Rejected(why)) => {
                    refused.push(Rejection { index, reason: format!("{}: {why}", describe(&row.id, &row.jid)) })
                }
                Err(e) => return Err(e),
            }
        }
        session.quit().await;
        Ok(refused)
    }
}

/// Writes `text` to `path` whole and owner-only: a file beside it, then renamed over it.
fn write_report(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_data()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[async_trait]
impl Sink for Highstate {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// By mail: connects and logs in. To a file: nothing to check before a report comes.
    async fn check(&self) -> Result<()> {
        if let Some(relay) = &self.relay {
            relay.session().await?.quit().await;
        }
        Ok(())
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (reports, mut rejected) = prepare_all(rets, |ret| {
            let Some(record) = ReturnRecord::parse(ret)? else { return Ok(None) };
            self.prepare(&record).map_err(|e| format!("{}: {e}", describe(record.id, &record.jid)))
        });
        match (&self.config.delivery, &self.relay) {
            (Delivery::Smtp(mail), Some(relay)) => rejected.extend(self.mail_all(mail, relay, reports).await?),
            _ => {
                for Indexed { row, .. } in reports {
                    let path = PathBuf::from(&row.target);
                    let written = tokio::task::spawn_blocking(move || write_report(&path, &row.text))
                        .await
                        .map_err(|e| ReturnerError::Unavailable(format!("highstate: writing the report failed: {e}")))?;
                    // A full disk or a missing directory: kept and retried, nothing lost.
                    written.map_err(|e| ReturnerError::Unavailable(format!("highstate: cannot write the report {}: {e}", row.target)))?;
                }
            }
        }
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }
}
