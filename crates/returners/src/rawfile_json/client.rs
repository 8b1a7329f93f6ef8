//! The file: lines appended under an exclusive `flock` (Salt's `flopen`, so Salt's processes and
//! ours take turns), the path reopened when the file was rotated away, and each batch written
//! whole or not at all.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::recent::Recent;

/// How often the path may change under us between opening it and locking it before we give up
/// for this batch (logrotate renames once; more means something keeps moving it).
const MAX_REOPENS: usize = 4;

pub struct Appender {
    path: PathBuf,
    /// Open between batches; checked against the path before each write.
    file: Option<File>,
    /// The lines written lately: a batch the spool hands again is not written twice.
    recent: Recent,
}

/// A line to write: its fingerprint ([`crate::recent::fingerprint`]) and its text.
pub type Line = (u128, String);

impl Appender {
    pub fn new(path: PathBuf) -> Appender {
        Appender { path, file: None, recent: Recent::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file, creating it owner-only (it holds job data) when missing; an existing
    /// file keeps its mode. The directory is not created, as in Salt.
    fn open(&self) -> io::Result<File> {
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(&self.path)?;
        if file.metadata()?.len() == 0 {
            // A new file's name is on disk only once its directory is synced.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(file)
    }

    /// The open file, locked, and still the one at the path: after a rotation (renamed away,
    /// removed) the path is opened again, so the lines go to the new file. The caller puts it
    /// back in `self.file` when it is done with it.
    fn lock(&mut self) -> io::Result<File> {
        for _ in 0..MAX_REOPENS {
            let file = match self.file.take() {
                Some(file) => file,
                None => self.open()?,
            };
            file.lock()?;
            let ours = file.metadata()?;
            let current = match std::fs::metadata(&self.path) {
                Ok(at_path) => at_path.dev() == ours.dev() && at_path.ino() == ours.ino(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            if current {
                return Ok(file);
            }
            // Dropping the file closes it, which releases its lock.
        }
        Err(io::Error::other(format!("{} was replaced {MAX_REOPENS} times while opening it", self.path.display())))
    }

    /// Appends the lines not written lately, in one write, synced to disk before the lock is
    /// released. On any failure the file is cut back to where it was, so a retry writes the
    /// batch again with no torn or doubled line. Returns how many lines were written.
    pub fn append(&mut self, lines: &[Line]) -> io::Result<usize> {
        let fresh = self.recent.fresh(lines);
        if fresh.is_empty() {
            return Ok(0);
        }
        let text: Vec<u8> = match fresh.as_slice() {
            // A single (maybe 10 MB) line goes as it is.
            [(_, one)] => one.clone().into_bytes(),
            many => {
                let mut text = Vec::with_capacity(many.iter().map(|(_, l)| l.len()).sum());
                for (_, line) in many {
                    text.extend_from_slice(line.as_bytes());
                }
                text
            }
        };
        let mut file = self.lock()?;
        let written = file.metadata().map(|m| m.len()).and_then(|start| {
            let result = file.write_all(&text).and_then(|()| file.sync_data());
            if result.is_err() {
                let _ = file.set_len(start);
            }
            result
        });
        // On failure the file is dropped (closed, unlocked): opened again next time.
        written?;
        file.unlock()?;
        self.file = Some(file);
        for (print, _) in &fresh {
            self.recent.insert(*print);
        }
        Ok(fresh.len())
    }

    /// Opens the file (creating it when missing), so a missing directory or a denied write
    /// shows at start-up.
    pub fn check(&mut self) -> io::Result<()> {
        let file = self.lock()?;
        file.unlock()?;
        self.file = Some(file);
        Ok(())
    }
}
