//! `salt-master` and `salt-minion`: flags, config, logging, optional daemonising with a pid
//! file, then the library's `run` until SIGTERM or Ctrl-C.

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

    if flags.daemon {
        if let Err(e) = daemonize() {
            eprintln!("{name}: cannot daemonise: {e}");
            return 1;
        }
    }
    logging::init(if flags.daemon { tracing_subscriber::filter::LevelFilter::OFF } else { console }, log_file.as_deref().map(|p| (p, file_level)));
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(pid_file) = &pid_file {
        if let Err(e) = write_pid_file(pid_file) {
            tracing::error!("cannot write pid file {}: {e}", pid_file.display());
            if flags.daemon {
                return 1;
            }
        }
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match program {
            Program::Master => salt_master::run(config, shutdown_signal()).await,
            Program::Minion => salt_minion::run(config, shutdown_signal()).await,
        }
    });
    if let Some(pid_file) = &pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            if !flags.daemon {
                eprintln!("{name}: {e:#}");
            }
            1
        }
    }
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
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

fn write_pid_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
}

/// The classic double fork: detach from the terminal and the session, with stdio on /dev/null.
/// Must run before any thread (the tokio runtime) exists.
fn daemonize() -> std::io::Result<()> {
    // SAFETY: single-threaded at this point; fork/setsid/dup2 are used as documented.
    unsafe {
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
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
    }
    Ok(())
}
