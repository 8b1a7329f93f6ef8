//! The `syslog` options. Salt's: `syslog.level` (`LOG_INFO`), `syslog.facility` (`LOG_USER`),
//! `syslog.tag` (default: the program's name, as Python's `syslog.openlog()` takes it from
//! `argv[0]`; at most 32 characters) and `syslog.options` (a list of `LOG_PID`, `LOG_CONS`,
//! `LOG_NDELAY`, `LOG_ODELAY`, `LOG_NOWAIT`, `LOG_PERROR`; only `LOG_PID` changes what is sent,
//! the others are about the C library's connection and are taken and ignored), by Python's
//! names. Ours, for a server elsewhere and for long returns: `syslog.transport` (`unix`, `udp`
//! or `tcp`), `syslog.socket` (`/dev/log`), `syslog.host` (`localhost`), `syslog.port` (514)
//! and `syslog.max_message_size` (8096 bytes, rsyslog's default limit; see [`super::encode`]).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::options::{opt_set, Lookup};
use crate::{Result, ReturnerError};

/// How long connecting, or sending one batch, may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

const ATTRS: [&str; 9] = ["level", "facility", "tag", "options", "transport", "socket", "host", "port", "max_message_size"];

/// Python's `syslog` levels.
const LEVELS: [(&str, u8); 8] = [
    ("LOG_EMERG", 0),
    ("LOG_ALERT", 1),
    ("LOG_CRIT", 2),
    ("LOG_ERR", 3),
    ("LOG_WARNING", 4),
    ("LOG_NOTICE", 5),
    ("LOG_INFO", 6),
    ("LOG_DEBUG", 7),
];

/// Python's `syslog` facilities on Linux (the code shifted, as `facility | level` wants it).
const FACILITIES: [(&str, u8); 19] = [
    ("LOG_KERN", 0),
    ("LOG_USER", 8),
    ("LOG_MAIL", 16),
    ("LOG_DAEMON", 24),
    ("LOG_AUTH", 32),
    ("LOG_SYSLOG", 40),
    ("LOG_LPR", 48),
    ("LOG_NEWS", 56),
    ("LOG_UUCP", 64),
    ("LOG_CRON", 72),
    ("LOG_AUTHPRIV", 80),
    ("LOG_LOCAL0", 128),
    ("LOG_LOCAL1", 136),
    ("LOG_LOCAL2", 144),
    ("LOG_LOCAL3", 152),
    ("LOG_LOCAL4", 160),
    ("LOG_LOCAL5", 168),
    ("LOG_LOCAL6", 176),
    ("LOG_LOCAL7", 184),
];

/// Python's `openlog` options.
const OPTIONS: [&str; 6] = ["LOG_PID", "LOG_CONS", "LOG_NDELAY", "LOG_ODELAY", "LOG_NOWAIT", "LOG_PERROR"];

/// The longest tag Salt takes.
pub const MAX_TAG_CHARS: usize = 32;
/// rsyslog's default `maxMessageSize`: longer messages are cut there.
pub const DEFAULT_MAX_MESSAGE: usize = 8096;
/// The smallest message size we take (RFC 5424's minimum a receiver must take).
pub const MIN_MAX_MESSAGE: usize = 480;
/// The most a UDP datagram carries over IPv4.
pub const MAX_UDP_MESSAGE: usize = 65_507;

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local datagram socket, as the C library's `syslog()` writes (`/dev/log`).
    Unix(PathBuf),
    Udp {
        host: String,
        port: u16,
    },
    /// Octet-counted frames (RFC 6587): `<length> <message>`.
    Tcp {
        host: String,
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// `facility | level`, as the message's `<PRI>`.
    pub pri: u8,
    pub tag: String,
    /// `LOG_PID`: the tag is followed by `[pid]`.
    pub with_pid: bool,
    pub target: Target,
    /// The longest message sent; a longer return goes in parts.
    pub max_message_size: usize,
}

impl SyslogConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<SyslogConfig> {
        let defaults = [("level", json!("LOG_INFO")), ("facility", json!("LOG_USER")), ("options", json!([]))];
        let options = lookup.options(super::NAME, &ATTRS, &defaults);
        let invalid = |what: String| ReturnerError::Invalid(format!("syslog: {what}"));
        let name_in = |key: &str, table: &[(&str, u8)]| -> Result<u8> {
            let given = opt_set(&options, key).unwrap_or_default();
            table.iter().find(|(n, _)| *n == given).map(|(_, v)| *v).ok_or_else(|| {
                let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                invalid(format!("syslog.{key} {given:?} is not one of {}", names.join(", ")))
            })
        };
        let level = name_in("level", &LEVELS)?;
        let facility = name_in("facility", &FACILITIES)?;
        let listed = match options.get("options") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(one)) => vec![Value::String(one.clone())],
            Some(other) => return Err(invalid(format!("syslog.options is a list of option names, not {other}"))),
        };
        let mut with_pid = false;
        for option in &listed {
            match option.as_str() {
                Some("LOG_PID") => with_pid = true,
                Some(o) if OPTIONS.contains(&o) => {}
                _ => return Err(invalid(format!("syslog.options: {option} is not one of {}", OPTIONS.join(", ")))),
            }
        }
        let tag = match options.get("tag") {
            None | Some(Value::Null) => program_name(),
            Some(Value::String(t)) if t.chars().count() <= MAX_TAG_CHARS => t.clone(),
            Some(Value::String(t)) => return Err(invalid(format!("syslog.tag {t:?} is longer than {MAX_TAG_CHARS} characters"))),
            Some(other) => return Err(invalid(format!("syslog.tag must be text, not {other}"))),
        };
        let host = opt_set(&options, "host").unwrap_or_else(|| "localhost".into());
        let port = match opt_set(&options, "port") {
            None => 514,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(format!("syslog.port must be a number from 1 to 65535, not {p:?}")))?,
        };
        let target = match opt_set(&options, "transport").unwrap_or_default().trim().to_ascii_lowercase().as_str() {
            "" | "unix" => Target::Unix(PathBuf::from(opt_set(&options, "socket").unwrap_or_else(|| "/dev/log".into()))),
            "udp" => Target::Udp { host, port },
            "tcp" => Target::Tcp { host, port },
            other => return Err(invalid(format!("syslog.transport is unix, udp or tcp, not {other:?}"))),
        };
        let max_message_size = match opt_set(&options, "max_message_size") {
            None => DEFAULT_MAX_MESSAGE,
            Some(m) => m.trim().parse::<usize>().ok().filter(|m| *m >= MIN_MAX_MESSAGE).ok_or_else(|| {
                invalid(format!("syslog.max_message_size must be a number of bytes, at least {MIN_MAX_MESSAGE}, not {m:?}"))
            })?,
        };
        if matches!(target, Target::Udp { .. }) && max_message_size > MAX_UDP_MESSAGE {
            return Err(invalid(format!(
                "syslog.max_message_size {max_message_size} is more than a UDP datagram holds ({MAX_UDP_MESSAGE})"
            )));
        }
        Ok(SyslogConfig { pri: pri(facility, level), tag, with_pid, target, max_message_size })
    }

    /// Where messages go, for messages.
    pub fn server(&self) -> String {
        match &self.target {
            Target::Unix(path) => format!("syslog at {}", path.display()),
            Target::Udp { host, port } => format!("syslog at udp://{host}:{port}"),
            Target::Tcp { host, port } => format!("syslog at tcp://{host}:{port}"),
        }
    }
}

/// The message's priority, as the C library's `syslog()` makes it: a program cannot log as the
/// kernel, so facility `LOG_KERN` (0) becomes the default, `LOG_USER`.
fn pri(facility: u8, level: u8) -> u8 {
    let facility = if facility == 0 { 8 } else { facility };
    facility | level
}

/// Python's default `ident`: the file name of `argv[0]`.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "salt-minion".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: Value) -> Result<SyslogConfig> {
        SyslogConfig::from_lookup(&Lookup::new(v.as_object().unwrap()))
    }

    #[test]
    fn salt_defaults() {
        let c = config(json!({})).unwrap();
        assert_eq!((c.pri, c.with_pid, c.max_message_size), (14, false, 8096));
        assert_eq!(c.target, Target::Unix("/dev/log".into()));
        assert_eq!(c.tag, program_name());
        assert_eq!(c.server(), "syslog at /dev/log");
    }

    #[test]
    fn salt_options_flat_and_nested() {
        let c = config(
            json!({"syslog.level": "LOG_ERR", "syslog.facility": "LOG_DAEMON", "syslog.tag": "mysalt", "syslog.options": ["LOG_PID"]}),
        )
        .unwrap();
        assert_eq!((c.pri, c.tag.as_str(), c.with_pid), (27, "mysalt", true));
        let c = config(json!({"syslog": {"level": "LOG_DEBUG", "facility": "LOG_LOCAL7", "options": ["LOG_CONS", "LOG_NDELAY"]}})).unwrap();
        assert_eq!((c.pri, c.with_pid), (191, false));
        assert_eq!(config(json!({"syslog.facility": "LOG_KERN", "syslog.level": "LOG_EMERG"})).unwrap().pri, 8);
    }

    #[test]
    fn transports() {
        let c = config(json!({"syslog.transport": "udp", "syslog.host": "logs", "syslog.port": 1514})).unwrap();
        assert_eq!(c.target, Target::Udp { host: "logs".into(), port: 1514 });
        assert_eq!(config(json!({"syslog.transport": "TCP"})).unwrap().target, Target::Tcp { host: "localhost".into(), port: 514 });
        assert_eq!(config(json!({"syslog.socket": "/run/x.sock"})).unwrap().target, Target::Unix("/run/x.sock".into()));
    }

    #[test]
    fn bad_options_are_clear_errors() {
        for (opts, why) in [
            (json!({"syslog.level": "LOG_WARN"}), "syslog.level \"LOG_WARN\" is not one of LOG_EMERG"),
            (json!({"syslog.facility": "user"}), "syslog.facility \"user\" is not one of"),
            (json!({"syslog.options": ["LOG_PID", "PID"]}), "\"PID\" is not one of LOG_PID"),
            (json!({"syslog.tag": "x".repeat(33)}), "longer than 32 characters"),
            (json!({"syslog.tag": 5}), "must be text"),
            (json!({"syslog.transport": "relp"}), "unix, udp or tcp"),
            (json!({"syslog.max_message_size": 100}), "at least 480"),
            (json!({"syslog.transport": "udp", "syslog.max_message_size": 70000}), "more than a UDP datagram holds"),
        ] {
            let err = config(opts).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
