//! File descriptors: the master holds one per minion connection and one per CLI session, so it
//! raises its soft limit at start (Salt's `max_open_files`) and keeps one descriptor in reserve,
//! so that at the limit it can still accept a connection long enough to say why it must close it.

use std::fs::File;
use std::sync::Mutex;

/// Raises the soft `RLIMIT_NOFILE` towards `wanted` (never past the hard limit) and logs the
/// figure the process runs with; `wanted_by` names what asks for it (the master's
/// `max_open_files`, a swarm's size). Returns the soft limit in force.
pub fn raise_open_files_limit(wanted: u64, wanted_by: &str) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!("cannot read the open files limit: {}", std::io::Error::last_os_error());
        return 0;
    }
    let before: u64 = lim.rlim_cur;
    let hard: u64 = lim.rlim_max;
    let target = wanted.min(hard);
    if target > before {
        lim.rlim_cur = target;
        // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard one
        // needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            tracing::warn!("cannot raise the open files limit from {before} to {target}: {}", std::io::Error::last_os_error());
            return before;
        }
    }
    let now = target.max(before);
    if wanted > hard {
        tracing::warn!("{wanted_by} asks for {wanted} open files, but the hard limit is {hard}; raise the hard limit (LimitNOFILE) to hold more minions");
    }
    tracing::info!("open files limit: {now} ({wanted_by} asks for {wanted}, was {before})");
    now
}

/// True for the accept errors that mean "out of descriptors", for the process or the system.
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// One descriptor held back for the moment the limit is reached: given up to accept the
/// connection that is waiting (so it can be told, or at least closed, rather than left hanging
/// in the backlog while the accept loop spins), then taken again.
pub struct Reserve(Mutex<Option<File>>);

impl Reserve {
    pub fn new() -> Reserve {
        Reserve(Mutex::new(File::open("/dev/null").ok()))
    }

    /// Gives the reserved descriptor up, for the accept that follows.
    pub fn release(&self) {
        self.slot().take();
    }

    /// Reserves a descriptor again (once the one just accepted has been closed).
    pub fn restore(&self) {
        let mut slot = self.slot();
        if slot.is_none() {
            *slot = File::open("/dev/null").ok();
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
