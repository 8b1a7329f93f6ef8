//! `salt-master` and `salt-minion`: flags, config, logging, optional daemonising with a pid
//! file, then the library's `run` until SIGTERM or Ctrl-C.
//!
//! The pid file is also the "one instance" lock: a daemon holds an exclusive `flock` on it for
//! as long as it runs, so a second one started with the same config is refused, as Salt
//! refuses it (`An instance is already running. Exiting`, exit 1), before it forks, binds or
//! touches the file. The lock dies with the process (even under `kill -9`), so a stale pid file
//! never blocks a restart, and only the holder of the lock ever removes the file.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use clap::Parser;
use salt_config::Role;

use crate::logging;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Master,
    Minion,
}

#[derive(Parser, Debug)]
#[command(disable_version_flag = true)]
struct Flags {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Run in the background, writing a pid file.
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Pid file when daemonised (default: the config's `pidfile`).
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Console logging level: all, garbage, trace, debug, profile, info, warning, error, critical, quiet.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Log file path (default: the config's `log_file`).
    #[arg(long = "log-file")]
    log_file: Option<PathBuf>,
    /// Log file level (default: the config's `log_level_logfile`, else `log_level`).
    #[arg(long = "log-file-level")]
    log_file_level: Option<String>,
    /// Show the program's version number and exit.
    #[arg(long = "version")]
    version: bool,
}

pub fn main(program: Program, argv: Vec<String>) -> i32 {
    // The minion re-executes itself to run each job in its own process.
    if program == Program::Minion && argv.get(1).map(String::as_str) == Some(salt_minion::job_process::RUN_JOB_ARG) {
        return salt_minion::job_process::main();
    }
    let (name, role) = match program {
        Program::Master => ("salt-master", Role::Master),
        Program::Minion => ("salt-minion", Role::Minion),
    };
    let flags = match crate::common::parse_or_version(name, argv, |f: &Flags| f.version) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let config = match crate::common::load_config(name, role, &flags.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let console_name = flags.log_level.clone().or_else(|| config.str("log_level").map(str::to_string)).unwrap_or_else(|| "warning".into());
    let file_name = flags
        .log_file_level
        .clone()
        .or_else(|| config.str("log_level_logfile").map(str::to_string))
        .unwrap_or_else(|| console_name.clone());
    let (console, file_level) = match (logging::level(&console_name), logging::level(&file_name)) {
        (Ok(c), Ok(f)) => (c, f),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{name}: {e}");
            return 2;
        }
    };
    let log_file = flags.log_file.clone().or_else(|| config.path("log_file"));
    let pid_file = flags.pid_file.clone().or_else(|| config.path("pidfile"));

    // Taken before forking: a second instance is told so on its terminal and exits non-zero.
    let mut pid_lock = None;
    if let Some(path) = &pid_file {
        match PidFile::lock(path) {
            Ok(lock) => pid_lock = Some(lock),
            Err(PidFileError::Running(holder)) => {
                let holder = holder.map(|p| format!("pid {p}")).unwrap_or_else(|| "another process".into());
                eprintln!("{name}: An instance is already running. Exiting ({holder} holds the lock on {})", path.display());
                return 1;
            }
            Err(PidFileError::Io(e)) => {
                eprintln!("{name}: cannot open pid file {}: {e}", path.display());
                if flags.daemon {
                    return 1;
                }
            }
        }
    }

    // In the daemon: the pipe that tells the waiting `salt-master -d` how the start went.
    let mut ready = Ready(None);
    if flags.daemon {
        match daemonize() {
            Ok(fd) => ready = Ready(Some(File::from(fd))),
            Err(e) => {
                eprintln!("{name}: cannot daemonise: {e}");
                return 1;
            }
        }
    }
    logging::init(
        if flags.daemon { tracing_subscriber::filter::LevelFilter::OFF } else { console },
        log_file.as_deref().map(|p| (p, file_level)),
    );
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(lock) = &mut pid_lock {
        if let Err(e) = lock.write_pid() {
            tracing::error!("cannot write pid file {}: {e}", lock.path.display());
            if flags.daemon {
                ready.failed(&format!("{name}: cannot write pid file {}: {e}", lock.path.display()));
                return 1;
            }
        }
    }
    // A minion is started once its pid file is written (it dials out; nothing to bind).
    if program == Program::Minion {
        ready.ok();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        match program {
            Program::Master => run_master(config, &mut ready).await,
            Program::Minion => salt_minion::run(config, shutdown_signal()).await,
        }
    });
    // Removes the pid file, then releases the lock.
    drop(pid_lock);
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            if flags.daemon {
                // The waiting `-d` prints it, if it is still waiting (a start that failed).
                ready.failed(&format!("{name}: {e:#}"));
            } else {
                eprintln!("{name}: {e:#}");
            }
            1
        }
    }
}

/// The daemon's end of the pipe its `-d` caller waits on: one byte `1` when started, or `E`
/// and the error when the start failed (the caller prints it and exits 1). Either is sent
/// once; later calls do nothing.
struct Ready(Option<File>);

impl Ready {
    fn ok(&mut self) {
        if let Some(mut pipe) = self.0.take() {
            let _ = pipe.write_all(b"1");
        }
    }

    fn failed(&mut self, message: &str) {
        if let Some(mut pipe) = self.0.take() {
            let _ = pipe.write_all(format!("E{message}").as_bytes());
        }
    }
}

/// Runs the master. A daemonised one tells its caller it started once its control socket is
/// new (the socket is made after the minion port is bound), so `salt-master -d` on a port
/// already in use exits 1 with the bind error on the terminal instead of 0.
async fn run_master(config: salt_config::Config, ready: &mut Ready) -> anyhow::Result<()> {
    let socket = salt_config::master_control_socket(&config);
    let id = |path: &Path| std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let stale = id(&socket);
    let run = salt_master::run(config, shutdown_signal());
    tokio::pin!(run);
    if ready.0.is_some() {
        // A master that takes longer than this to bind is reported as started.
        let give_up = tokio::time::sleep(std::time::Duration::from_secs(30));
        tokio::pin!(give_up);
        loop {
            tokio::select! {
                result = &mut run => return result,
                _ = &mut give_up => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                    if id(&socket).is_some_and(|now| Some(now) != stale) {
                        break;
                    }
                }
            }
        }
        ready.ok();
    }
    run.await
}

/// SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The pid file, held under an exclusive `flock` from before the fork until the process ends.
/// The descriptor is close-on-exec, so job processes (which outlive the minion) never inherit
/// the lock; a forked child (the daemon) does, which is what keeps it across `daemonize`.
struct PidFile {
    file: File,
    path: PathBuf,
}

enum PidFileError {
    /// Another process holds the lock: the pid it wrote, if readable.
    Running(Option<u32>),
    Io(std::io::Error),
}

impl PidFile {
    /// Opens (creating it and its directory) and locks `path`, without changing what is in it.
    fn lock(path: &Path) -> Result<PidFile, PidFileError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(PidFileError::Io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(PidFileError::Io)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(PidFileError::Running(text.trim().parse().ok()));
            }
            return Err(PidFileError::Io(err));
        }
        Ok(PidFile { file, path: path.to_path_buf() })
    }

    /// Replaces the file's content with this process's pid (call after daemonising).
    fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        self.file.sync_data()
    }
}

impl Drop for PidFile {
    /// Removes the file while still holding the lock, and only if the path is still our file
    /// (not one someone put in its place).
    fn drop(&mut self) {
        let same = match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The classic double fork: detach from the terminal and the session, with stdio on /dev/null.
/// Must run before any thread (the tokio runtime) exists.
///
/// The process that called it waits (it does not return) until the daemon says, on the
/// returned pipe, that it started ([`Ready`]: its pid file is written, and a master is
/// listening); it then exits 0. When the daemon reports an error, or ends without a word, it
/// prints the error and exits 1. So `salt-master -d && cat PIDFILE` never reads an empty
/// file, and a master that cannot bind is not reported as started.
fn daemonize() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: single-threaded at this point; pipe/fork/setsid/dup2 are used as documented.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let (read_end, write_end) = (fds[0], fds[1]);
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {}
            _ => {
                libc::close(write_end);
                // Everything the daemon sends, until it closes its end (or dies).
                let mut message = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) {
                        n if n > 0 => message.extend_from_slice(&buf[..n as usize]),
                        -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                        _ => break,
                    }
                    if message.first() == Some(&b'1') {
                        libc::_exit(0);
                    }
                }
                if let Some(text) = message.strip_prefix(b"E") {
                    let mut text = text.to_vec();
                    text.push(b'\n');
                    libc::write(2, text.as_ptr().cast(), text.len());
                }
                libc::_exit(1);
            }
        }
        libc::close(read_end);
        if libc::setsid() == -1 {
            return Err(std::io::Error::last_os_error());
        }
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if devnull >= 0 {
            libc::dup2(devnull, 0);
            libc::dup2(devnull, 1);
            libc::dup2(devnull, 2);
            if devnull > 2 {
                libc::close(devnull);
            }
        }
        Ok(std::os::fd::OwnedFd::from_raw_fd(write_end))
    }
}
