//! What the test suites share, as a dev-dependency only: one way to skip a test, a full disk
//! to test against, store servers a test starts for itself ([`Server`], see [`server`]), and a
//! stand-in HTTP server for services that cannot run here ([`StandIn`], see [`stand_in`]).
//!
//! # Skips
//!
//! A test that cannot run here (no database server, not root) calls [`skip`] (or
//! [`require_server`] for a server) and returns. The skip is made visible in a plain
//! `cargo test`, where libtest captures what a passing test prints: the line
//! `SKIPPED <test>: <reason>` is written straight to the terminal (`/dev/tty`, when there is
//! one), to stderr (shown with `--nocapture`), and appended to the file `SALTRS_SKIP_LOG`
//! names, if set (`.ci/run` prints that file at the end). Under `CI=true` a skip is a failure
//! (the panic message says why; the line still goes to `SALTRS_SKIP_LOG`).
//!
//! Only an unreachable server is a reason to skip. A server that answers but refuses the login,
//! lacks the database, or is misconfigured fails the test: [`require_server`] checks that the
//! address takes a TCP connection, and the test then treats every error from the server as a
//! failure.

use std::fmt::Display;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub mod server;
pub mod stand_in;
pub use server::{Kind, Server, ServerError};
pub use stand_in::StandIn;

/// The variable `.ci/run` sets to a file that collects one line per skipped test.
pub const SKIP_LOG_VAR: &str = "SALTRS_SKIP_LOG";

/// True under `CI=true`, where a skip is a failure.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current().name().filter(|n| *n != "main").unwrap_or("a test").to_string()
}

/// Skips the calling test for `reason` (say what is missing and what to do about it): reports
/// it where it is seen ([module docs](crate)), or panics under `CI=true`. The caller returns
/// after this.
pub fn skip(reason: impl Display) {
    skip_to(reason, true);
}

/// [`skip`], with or without the line on the terminal (this crate's own tests go without).
fn skip_to(reason: impl Display, terminal: bool) {
    let line = format!("SKIPPED {}: {reason}", test_name());
    // Listed even under CI, where it then fails, so `.ci/run`'s list names it.
    report(&line, terminal && !ci());
    if ci() {
        panic!("{line} (CI=true: a skip is a failure)");
    }
}

fn report(line: &str, terminal: bool) {
    // libtest captures stderr; the terminal itself is not captured.
    if terminal {
        if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
            let _ = writeln!(tty, "{line}");
        }
    }
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(SKIP_LOG_VAR).filter(|p| !p.is_empty()) {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        match file {
            Ok(mut f) => {
                let _ = writeln!(f, "{line}");
            }
            Err(e) => eprintln!("cannot append to {}: {e}", Path::new(&path).display()),
        }
    }
}

/// Whether a server listens on `host:port`: a TCP connection within 3 s. The error is why
/// not (refused, timed out, no such host).
pub fn reachable(host: &str, port: u16) -> std::io::Result<()> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

/// True when `service` listens on `host:port`; otherwise skips the test (a failure under
/// `CI=true`) with a message naming the address and `how`, what to set to point the tests at
/// another server (e.g. "SALTRS_TEST_MYSQL=mysql://root@HOST:PORT").
///
/// A true answer says only that the server takes connections: the test must then treat a
/// refused login or a missing database as a failure, never as a skip.
pub fn require_server(service: &str, host: &str, port: u16, how: &str) -> bool {
    // A Unix socket directory (PostgreSQL's `host=/run/postgresql`).
    if host.starts_with('/') {
        let socket = Path::new(host).join(format!(".s.PGSQL.{port}"));
        if socket.exists() {
            return true;
        }
        skip(format!("no {service} server: {} does not exist; start one (scripts/services.sh start) or set {how}", socket.display()));
        return false;
    }
    match reachable(host, port) {
        Ok(()) => true,
        Err(e) => {
            skip(format!(
                "no {service} server reachable at {host}:{port} ({e}); start one \
                 (scripts/services.sh start) or set {how}"
            ));
            false
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // No libc dependency: the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0")))
        .unwrap_or(false)
}

/// A small tmpfs mounted on a directory until dropped, to fill up: a full disk. Mounting needs
/// root; elsewhere [`Tmpfs::mount`] skips the test and returns `None`.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`256k`, `8m`) on `dir`, or skips the test.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).stdin(Stdio::null()).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                skip(format!(
                    "cannot mount a {size} tmpfs to fill ({}); run the tests as root to include this one",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(format!("cannot run mount ({e}); install it (util-linux's mount) and run as root"));
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes the file `name` on the tmpfs until the disk is full, and returns its path;
    /// removing it makes room again.
    pub fn fill(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: daemons or a runtime winding down may still hold files there for a moment.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_unreachable_and_an_open_one_reachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(reachable("127.0.0.1", port).is_ok());
        drop(listener);
        let err = reachable("127.0.0.1", port).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn the_skip_log_gets_one_line_per_skip_and_ci_panics() {
        // One test touches the environment, so the two halves cannot race each other.
        let dir = std::env::temp_dir().join(format!("saltrs-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skips");
        std::env::set_var(SKIP_LOG_VAR, &log);
        std::env::remove_var("CI");
        skip_to("needs a thing; set THING", false);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("SKIPPED tests::the_skip_log_gets_one_line_per_skip_and_ci_panics: needs a thing; set THING"), "{text}");
        std::env::set_var("CI", "true");
        let panicked = std::panic::catch_unwind(|| skip_to("nothing", false)).unwrap_err();
        let msg = panicked.downcast_ref::<String>().unwrap();
        assert!(msg.contains("CI=true: a skip is a failure"), "{msg}");
        std::env::remove_var("CI");
        std::env::remove_var(SKIP_LOG_VAR);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
