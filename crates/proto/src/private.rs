//! Owner-only files and directories, for everything that holds job data: job caches, spools,
//! outboxes, proc files, logs. One place creates them, so no writer forgets the mode, and one
//! function tightens what an older version (or another umask) left readable.
//!
//! Explicit modes rather than a process-wide umask: the minion's jobs run the user's commands,
//! which must keep the umask they would have under Salt.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of a file that holds job data.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a directory that holds such files.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents owner-only; an existing `dir` is tightened.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    tighten(dir, DIR_MODE)
}

/// Options that create a file owner-only (an existing file keeps its mode; see [`tighten_tree`]).
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates (or truncates) `path` owner-only, for writing.
pub fn create(path: &Path) -> io::Result<File> {
    open_options().write(true).create(true).truncate(true).open(path)
}

/// Opens `path` for appending, creating it owner-only.
pub fn append(path: &Path) -> io::Result<File> {
    open_options().append(true).create(true).open(path)
}

/// Writes `bytes` to a new owner-only file at `path`.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    io::Write::write_all(&mut create(path)?, bytes)
}

/// Takes group and other bits off `dir` and everything in it (not following symlinks); a
/// missing `dir` is not an error. Returns how many entries were tightened.
pub fn tighten_tree(dir: &Path) -> io::Result<usize> {
    let mut tightened = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            if mode & 0o077 != 0 {
                tighten(&path, DIR_MODE)?;
                tightened += 1;
            }
            stack.extend(std::fs::read_dir(&path)?.filter_map(Result::ok).map(|e| e.path()));
        } else if meta.is_file() && mode & 0o077 != 0 {
            tighten(&path, mode & 0o700)?;
            tightened += 1;
        }
    }
    Ok(tightened)
}

fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_owner_only_and_old_files_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&dir)), (0o700, 0o700));
        write(&dir.join("f"), b"x").unwrap();
        append(&dir.join("g")).unwrap();
        assert_eq!((mode(&dir.join("f")), mode(&dir.join("g"))), (0o600, 0o600));

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.join("g"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(tighten_tree(&tmp.path().join("a")).unwrap(), 3);
        assert_eq!((mode(&dir), mode(&dir.join("f")), mode(&dir.join("g"))), (0o700, 0o600, 0o700));
        assert_eq!(tighten_tree(&tmp.path().join("missing")).unwrap(), 0);
    }
}
