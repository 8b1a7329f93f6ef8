//! The start every CLI program shares: flags and `--version`, console logging, config, the
//! printer for the output flags, runtime — each failure turned into the message and exit code
//! Salt's tools use.

use std::path::Path;

use salt_config::{Config, Role};

use crate::output::{OutputFlags, Printer};

/// Parses the flags; `--help` and `--version`-style exits and usage errors become an exit code.
pub(crate) fn parse<F: clap::Parser>(argv: Vec<String>) -> Result<F, i32> {
    F::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            2
        } else {
            0
        }
    })
}

/// Parses the flags as [`parse`] does, then answers `--version` (`asked_version` reads it from
/// the flags) with the version line and exit code 0.
pub(crate) fn parse_or_version<F: clap::Parser>(program: &str, argv: Vec<String>, asked_version: fn(&F) -> bool) -> Result<F, i32> {
    let flags = parse(argv)?;
    if asked_version(&flags) {
        println!("{}", salt_proto::version_line(program));
        return Err(0);
    }
    Ok(flags)
}

/// Console logging at Salt's level name `log_level`, then the `role` config from `config_dir`.
pub(crate) fn setup(program: &str, log_level: &str, role: Role, config_dir: &Path) -> Result<Config, i32> {
    let level = crate::logging::level(log_level).map_err(|e| {
        eprintln!("{program}: error: {e}");
        2
    })?;
    crate::logging::init(level, None);
    load_config(program, role, config_dir)
}

/// The `role` config from `config_dir`.
pub(crate) fn load_config(program: &str, role: Role, config_dir: &Path) -> Result<Config, i32> {
    Config::load(role, config_dir).map_err(|e| {
        eprintln!("{program}: {e}");
        2
    })
}

/// The printer for the output flags; an unknown `--out` is a usage error.
pub(crate) fn printer(program: &str, flags: OutputFlags) -> Result<Printer, i32> {
    Printer::new(flags).map_err(|e| {
        eprintln!("{program}: error: {e}");
        2
    })
}

/// A tokio runtime: one thread for the CLI's I/O, or a pool where functions run.
pub(crate) fn runtime(program: &str, multi_thread: bool) -> Result<tokio::runtime::Runtime, i32> {
    let mut builder =
        if multi_thread { tokio::runtime::Builder::new_multi_thread() } else { tokio::runtime::Builder::new_current_thread() };
    builder.enable_all().build().map_err(|e| {
        eprintln!("{program}: cannot start: {e}");
        1
    })
}
