//! `local`: prints every return and event (Salt's `salt/returners/local.py`, "used to test the
//! returner interface"), on the standard output of the daemon that runs it: the minion's for
//! `--return local`, the master's for `event_return: local`.
//!
//! As Salt: a return prints as `print(ret)` does, the dict's Python repr in the return's own
//! key order (`{'success': True, 'return': True, ..., 'id': 'web1'}`), see [`encode`]; an event
//! as `print(events)` for the one-event list Salt's master hands `event_return` by default
//! (`[{'data': {...}, 'tag': 'salt/...'}]`). It has no options.
//!
//! Where we differ from Salt, on purpose:
//! - Each event prints as a list of one, whatever the master's `event_return_queue`: Salt
//!   printed the queued list on one line, so its lines depended on the batching.
//! - A batch the spool hands again is not printed twice ([`crate::recent`]); a return without
//!   an id or with a bad jid is refused (to the spool's dead-letter file), a `nocache` one not
//!   printed, and the secret values of `ret_kwargs` are redacted.
//! - A closed standard output refuses the records (they go to the spool's dead-letter file);
//!   Salt's `print` raised and the return was lost.

pub mod client;
pub mod encode;

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;

use self::client::Printer;
use crate::batch::prepare_all;
use crate::options::Lookup;
use crate::recent::fingerprint;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "local";

/// Salt's local calls.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Local::open(lookup)))) }.boxed(),
    schema: None,
};

pub struct Local {
    printer: Arc<Mutex<Printer>>,
}

impl Local {
    /// Prints on the process's standard output (`local` has no options).
    pub fn open(_lookup: &Lookup<'_>) -> Local {
        Local::printing_to(std::io::stdout())
    }

    /// Prints to `out` (a test's buffer or file).
    pub fn printing_to(out: impl Write + Send + 'static) -> Local {
        Local { printer: Arc::new(Mutex::new(Printer::new(Box::new(out)))) }
    }

    async fn print(&self, lines: Vec<(u128, String)>) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let printer = self.printer.clone();
        // A blocking thread: a 10 MB line to a slow terminal or a full pipe must not hold up
        // the runtime.
        let outcome = tokio::task::spawn_blocking(move || printer.lock().unwrap_or_else(|e| e.into_inner()).print(&lines)).await;
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(ReturnerError::Rejected(format!("local: the standard output is closed, nothing can be printed: {e}")))
            }
            Ok(Err(e)) => Err(ReturnerError::Unavailable(format!("local: cannot print: {e}"))),
            Err(e) => Err(ReturnerError::Unavailable(format!("local: the print stopped: {e}"))),
        }
    }
}

#[async_trait]
impl Sink for Local {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, rejected) = prepare_all(rets, encode::return_line);
        self.print(rows.into_iter().map(|r| (fingerprint(&r.row), r.row)).collect()).await?;
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        self.print(events.iter().map(encode::event_line).map(|line| (fingerprint(&line), line)).collect()).await?;
        Ok(Vec::new())
    }
}
