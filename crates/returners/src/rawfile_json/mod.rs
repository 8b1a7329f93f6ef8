//! `rawfile_json`: every return and event as one JSON line in a file (Salt's
//! `salt/returners/rawfile_json.py`), for `--return rawfile_json` on a minion and
//! `event_return: rawfile_json` on a master.
//!
//! As Salt: the file is `rawfile_json.filename` (default `/var/log/salt/events`, see [`config`]);
//! a return is the line `json.dumps(ret)`, in the return's own key order; `event_return` writes
//! one line per event, `json.dumps({"data": ..., "tag": ...})` (see [`encode`]); lines are
//! appended under an exclusive `flock` (Salt's `flopen`), so Salt's processes, ours and a
//! reader that takes the same lock see whole lines only; the directory is not created (a
//! missing one is a clear error, and the records wait in the spool until it exists).
//!
//! Where we differ from Salt, on purpose:
//! - The file is reopened when it was rotated (renamed or removed: its device and inode no
//!   longer those at the path); Salt opened it for every write. A `copytruncate` needs nothing:
//!   lines are appended at the end, wherever that is now.
//! - A new file is created owner-only (0600: returns are job data); Salt's got the umask's mode.
//! - A batch is one write, synced to disk (`fdatasync`) before the spool is told it is stored,
//!   so a power cut cannot lose a line the spool has let go of; Salt did not sync. A failed
//!   write (a full disk) is cut back off the file and retried later by the spool: no torn line,
//!   nothing lost, nothing twice (a batch handed again is not written again, see
//!   [`crate::recent`]).
//! - A return without an id or with a bad jid is refused (to the spool's dead-letter file);
//!   `nocache` returns are not written; a top-level `_stamp` is left out, and the secret values
//!   of `ret_kwargs` are redacted.

pub mod client;
pub mod config;
pub mod encode;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;

pub use config::RawfileJsonConfig;

use self::client::{Appender, Line};
use crate::batch::prepare_all;
use crate::options::Lookup;
use crate::recent::fingerprint;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "rawfile_json";

/// Salt's rawfile_json calls.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(RawfileJson::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct RawfileJson {
    file: Arc<Mutex<Appender>>,
}

impl RawfileJson {
    /// Opens the store with the options `lookup` finds; the file is opened at the first write.
    pub fn open(lookup: &Lookup<'_>) -> Result<RawfileJson> {
        Ok(Self::open_with(RawfileJsonConfig::from_lookup(lookup)?))
    }

    pub fn open_with(config: RawfileJsonConfig) -> RawfileJson {
        RawfileJson { file: Arc::new(Mutex::new(Appender::new(config.filename))) }
    }

    /// Runs `f` on the file in a blocking thread (a write of 10 MB, an `fdatasync`).
    async fn with_file<T: Send + 'static>(&self, f: impl FnOnce(&mut Appender) -> std::io::Result<T> + Send + 'static) -> Result<T> {
        let file = self.file.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut file).map_err(|e| unavailable(file.path(), &e))
        })
        .await;
        outcome.map_err(|e| ReturnerError::Unavailable(format!("rawfile_json: the write stopped: {e}")))?
    }

    async fn append(&self, lines: Vec<Line>) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.with_file(move |file| file.append(&lines)).await?;
        Ok(())
    }
}

/// A file that cannot be written is never the record's fault: the spool keeps it and tries
/// again, and the message says what to fix.
fn unavailable(path: &std::path::Path, e: &std::io::Error) -> ReturnerError {
    use std::io::ErrorKind;
    let hint = match e.kind() {
        ErrorKind::StorageFull => "; the disk is full: the records wait in the spool until there is room".to_string(),
        ErrorKind::NotFound => match path.parent() {
            Some(dir) if !dir.exists() => {
                format!("; its directory {} does not exist (create it: the records wait in the spool meanwhile)", dir.display())
            }
            _ => String::new(),
        },
        ErrorKind::PermissionDenied => "; the records wait in the spool until it can be written".to_string(),
        _ => String::new(),
    };
    ReturnerError::Unavailable(format!("rawfile_json: cannot write {}: {e}{hint}", path.display()))
}

#[async_trait]
impl Sink for RawfileJson {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Opens the file (creating it when missing): a missing directory or a denied write shows
    /// at start-up.
    async fn check(&self) -> Result<()> {
        self.with_file(|file| file.check()).await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, rejected) = prepare_all(rets, encode::return_line);
        self.append(rows.into_iter().map(|r| (fingerprint(&r.row), r.row)).collect()).await?;
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let lines = events.iter().map(encode::event_line).map(|line| (fingerprint(&line), line)).collect();
        self.append(lines).await?;
        Ok(Vec::new())
    }
}
