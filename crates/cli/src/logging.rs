//! Logging with Salt's level names and Salt's line formats, to the console and to `log_file`.
//!
//! - Console (stderr), Salt's default `log_fmt_console` `[%(levelname)-8s] %(message)s`:
//!   `[WARNING ] text`. The level is coloured only when stderr is a terminal, so a pipe or a
//!   file never gets escape codes.
//! - `log_file`, Salt's default `log_fmt_logfile`
//!   `%(asctime)s,%(msecs)03d [%(name)-17s:%(lineno)-4d][%(levelname)-8s][%(process)d] %(message)s`:
//!   `2026-12-01 15:00:00,123 [salt_master::minions:134 ][WARNING ][4242] text`, in local time
//!   as Salt writes it, with the Rust module in place of Salt's logger name. The file is
//!   owner-only (0600): it is created so, and an existing one is tightened at start, since a
//!   log can hold job data.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

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
    // SAFETY: isatty has no preconditions.
    let color = unsafe { libc::isatty(2) == 1 };
    let console_layer =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(ConsoleFormat { color }).with_filter(console);
    let file_layer = log_file.and_then(|(path, lvl)| match open_log_file(path) {
        Ok(file) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .event_format(FileFormat)
                .with_filter(lvl),
        ),
        Err(e) => {
            eprintln!("[WARNING ] cannot open log file {}: {e}", path.display());
            None
        }
    });
    let _ = tracing_subscriber::registry().with(console_layer).with(file_layer).try_init();
}

/// Opens `path` for appending, owner-only: a new file is created with mode 0600 and an existing
/// one that others could read or write is tightened to 0600.
pub fn open_log_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    // `mode` applies only to a file this call created; an older one keeps its bits.
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Salt's name for a level (`logging.WARNING` is "WARNING").
pub fn salt_level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARNING",
        Level::ERROR => "ERROR",
    }
}

/// The console format, `[LEVEL   ] message`.
pub struct ConsoleFormat {
    /// Colour the level name (only for a terminal).
    pub color: bool,
}

impl<S, N> FormatEvent<S, N> for ConsoleFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let fields = Fields::of(event);
        let level = *event.metadata().level();
        let name = salt_level_name(&level);
        if self.color {
            let color = match level {
                Level::ERROR => "\x1b[0;31m",
                Level::WARN => "\x1b[1;33m",
                Level::INFO => "\x1b[0;32m",
                Level::DEBUG => "\x1b[0;36m",
                Level::TRACE => "\x1b[0;35m",
            };
            writeln!(writer, "[{color}{name:<8}\x1b[0m] {}", fields.text)
        } else {
            writeln!(writer, "[{name:<8}] {}", fields.text)
        }
    }
}

/// The log file format, `date time,ms [module:line][LEVEL   ][pid] message`.
pub struct FileFormat;

impl<S, N> FormatEvent<S, N> for FileFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let fields = Fields::of(event);
        let meta = event.metadata();
        let target = fields.log_target.as_deref().unwrap_or(meta.target());
        let line = meta.line().map(u64::from).or(fields.log_line).map(|l| l.to_string()).unwrap_or_default();
        writeln!(
            writer,
            "{} [{target:<17}:{line:<4}][{:<8}][{}] {}",
            local_timestamp(),
            salt_level_name(meta.level()),
            std::process::id(),
            fields.text
        )
    }
}

/// An event's message, followed by its other fields as ` key=value`; the `log.*` fields that
/// records bridged from the `log` crate carry are kept apart (target and line) or dropped.
#[derive(Default)]
struct Fields {
    text: String,
    extra: String,
    log_target: Option<String>,
    log_line: Option<u64>,
}

impl Fields {
    fn of(event: &Event<'_>) -> Fields {
        let mut f = Fields::default();
        event.record(&mut f);
        f.text.push_str(&f.extra);
        f
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.text.push_str(value),
            "log.target" => self.log_target = Some(value.to_string()),
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.extra, " {name}={value}");
            }
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "log.line" => self.log_line = Some(value),
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.extra, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.text, "{value:?}");
            }
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.extra, " {name}={value:?}");
            }
        }
    }
}

/// Now in local time as Salt's log file shows it: `2026-12-01 15:00:00,123`.
fn local_timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return format!("{secs},{:03}", now.subsec_millis());
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn salt_level_names() {
        assert_eq!(super::level("warning").unwrap(), super::LevelFilter::WARN);
        assert_eq!(super::level("garbage").unwrap(), super::LevelFilter::TRACE);
        assert!(super::level("loud").unwrap_err().contains("invalid log level"));
    }

    /// What a subscriber with `format` writes for the events `emit` sends.
    fn capture<F>(format: F, emit: impl FnOnce()) -> String
    where
        F: FormatEvent<tracing_subscriber::Registry, tracing_subscriber::fmt::format::DefaultFields> + Send + Sync + 'static,
    {
        #[derive(Clone)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf(Arc::new(Mutex::new(Vec::new())));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer().with_writer(move || writer.clone()).event_format(format).with_filter(LevelFilter::TRACE),
        );
        tracing::subscriber::with_default(subscriber, emit);
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn console_lines_are_salts_and_plain_off_a_terminal() {
        let out = capture(ConsoleFormat { color: false }, || {
            tracing::warn!("the job cache is {}", "slow");
            tracing::error!(minion = "m1", "gone");
            tracing::info!("hello");
            tracing::debug!("details");
        });
        assert_eq!(out, "[WARNING ] the job cache is slow\n[ERROR   ] gone minion=m1\n[INFO    ] hello\n[DEBUG   ] details\n");
        assert!(!out.contains('\x1b'));
        let coloured = capture(ConsoleFormat { color: true }, || tracing::warn!("careful"));
        assert_eq!(coloured, "[\x1b[1;33mWARNING \x1b[0m] careful\n");
    }

    #[test]
    fn log_file_lines_are_salts() {
        let out = capture(FileFormat, || tracing::warn!("disk full"));
        // 2026-12-01 15:00:00,123 [saltrs::logging::tests:NNN ][WARNING ][pid] disk full
        let (stamp, rest) = out.split_at(23);
        let shape: String = stamp.chars().map(|c| if c.is_ascii_digit() { 'd' } else { c }).collect();
        assert_eq!(shape, "dddd-dd-dd dd:dd:dd,ddd");
        let (place, rest) = rest.strip_prefix(" [").unwrap().split_once(']').unwrap();
        let (module, line) = place.rsplit_once(':').unwrap();
        assert_eq!(module, "saltrs::logging::tests");
        assert_eq!(line.len(), 4, "{line:?}");
        assert!(line.trim_end().parse::<u32>().is_ok(), "{line:?}");
        assert_eq!(rest, format!("[WARNING ][{}] disk full\n", std::process::id()));
    }

    #[test]
    fn log_file_is_owner_only_new_or_old() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("log/salt/master");
        let f = open_log_file(&new).unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);

        let old = dir.path().join("minion");
        std::fs::write(&old, "earlier line\n").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        let mut f = open_log_file(&old).unwrap();
        assert_eq!(std::fs::metadata(&old).unwrap().permissions().mode() & 0o777, 0o600);
        std::io::Write::write_all(&mut f, b"later line\n").unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "earlier line\nlater line\n", "appended, not truncated");
    }
}
