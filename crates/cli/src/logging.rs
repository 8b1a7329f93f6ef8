//! Logging with Salt's level names, to the console and to `log_file`.

use std::path::Path;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::prelude::*;

/// Salt's level names (`-l`, `log_level`) as tracing filters; unknown names are an error.
pub fn level(name: &str) -> Result<LevelFilter, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "all" | "garbage" | "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" | "profile" => LevelFilter::INFO,
        "warning" | "warn" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "quiet" => LevelFilter::OFF,
        other => {
            return Err(format!(
                "invalid log level {other:?}: choose from all, garbage, trace, debug, profile, info, warning, error, critical, quiet"
            ))
        }
    })
}

/// Console output on stderr at `console`, and, when given, `log_file` at `file_level`.
/// A log file that cannot be opened is reported on stderr and skipped, never fatal.
pub fn init(console: LevelFilter, log_file: Option<(&Path, LevelFilter)>) {
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr.with_max_level(tracing::Level::TRACE))
        .with_target(false)
        .with_filter(console);
    let file_layer = log_file.and_then(|(path, lvl)| {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false)
                    .with_target(true)
                    .with_filter(lvl),
            ),
            Err(e) => {
                eprintln!("[WARNING ] cannot open log file {}: {e}", path.display());
                None
            }
        }
    });
    let _ = tracing_subscriber::registry().with(console_layer).with(file_layer).try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn salt_level_names() {
        assert_eq!(super::level("warning").unwrap(), super::LevelFilter::WARN);
        assert_eq!(super::level("garbage").unwrap(), super::LevelFilter::TRACE);
        assert!(super::level("loud").unwrap_err().contains("invalid log level"));
    }
}
