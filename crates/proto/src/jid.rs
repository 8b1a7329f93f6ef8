//! Job ids: Salt's 20-digit UTC timestamp `YYYYMMDDhhmmssffffff`, optionally followed by
//! `_<pid>` (`unique_jid`). Every jid that comes from a user or a peer goes through
//! [`validate_jid`] before it reaches a path or a query.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JidError {
    #[error("invalid jid {0:?}: a jid is 20 digits (YYYYMMDDhhmmssffffff), optionally followed by _<pid>")]
    Invalid(String),
}

/// Generates jids that never repeat within this process, even when asked twice in the same
/// microsecond or from concurrent tasks: a jid is the current UTC time, or the previous jid's
/// time plus one microsecond when the clock has not moved on (or went backwards).
#[derive(Debug, Default)]
pub struct JidGenerator {
    last: Mutex<Option<NaiveDateTime>>,
}

impl JidGenerator {
    pub const fn new() -> Self {
        JidGenerator { last: Mutex::new(None) }
    }

    /// A new jid; with `unique` (Salt's `unique_jid`) the process id is appended as `_<pid>`.
    pub fn next(&self, unique: bool) -> String {
        self.next_at(Utc::now().naive_utc(), unique)
    }

    fn next_at(&self, now: NaiveDateTime, unique: bool) -> String {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = match *last {
            Some(prev) if now <= prev => prev + chrono::Duration::microseconds(1),
            _ => now,
        };
        *last = Some(stamp);
        let jid = stamp.format("%Y%m%d%H%M%S%6f").to_string();
        if unique {
            format!("{jid}_{}", std::process::id())
        } else {
            jid
        }
    }
}

/// The process's one jid clock: every jid this process allocates comes from here, so two
/// parts of one process (the master's publish, a store's `prep_jid`, a `req` return) never hand
/// out the same jid.
static CLOCK: JidGenerator = JidGenerator::new();

/// A new jid from the process's clock; with `unique` (Salt's `unique_jid`), `_<pid>` appended.
pub fn new_jid(unique: bool) -> String {
    CLOCK.next(unique)
}

/// Salt's `is_jid`: 20 digits, or longer with `_` at index 20. We also bound the suffix to
/// digits (a pid) so a jid is always safe in a path.
pub fn validate_jid(jid: &str) -> Result<(), JidError> {
    let bytes = jid.as_bytes();
    let ok = bytes.len() >= 20
        && bytes.len() <= 40
        && bytes[..20].iter().all(u8::is_ascii_digit)
        && (bytes.len() == 20 || (bytes[20] == b'_' && bytes.len() > 21 && bytes[21..].iter().all(u8::is_ascii_digit)));
    if ok {
        Ok(())
    } else {
        let shown: String = jid.chars().take(64).collect();
        Err(JidError::Invalid(shown))
    }
}

pub fn is_jid(jid: &str) -> bool {
    validate_jid(jid).is_ok()
}

/// The time a jid encodes.
pub fn jid_datetime(jid: &str) -> Option<NaiveDateTime> {
    validate_jid(jid).ok()?;
    NaiveDateTime::parse_from_str(&jid[..20], "%Y%m%d%H%M%S%6f").ok()
}

/// Salt's `jid_to_time`: `"2024, May 10 09:30:15.123456"`, or `""` for a malformed jid.
pub fn jid_to_time(jid: &str) -> String {
    jid_datetime(jid).map(|t| t.format("%Y, %b %d %H:%M:%S%.6f").to_string()).unwrap_or_default()
}

/// The jid for an arbitrary moment; used by tests and by purge cut-offs.
pub fn jid_at(t: DateTime<Utc>) -> String {
    t.naive_utc().format("%Y%m%d%H%M%S%6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jids_are_20_digits_and_strictly_increasing() {
        let g = JidGenerator::new();
        let now = Utc::now().naive_utc();
        let a = g.next_at(now, false);
        let b = g.next_at(now, false);
        let c = g.next_at(now - chrono::Duration::seconds(5), false);
        assert_eq!(a.len(), 20);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(is_jid(&a));
    }

    #[test]
    fn unique_jid_appends_pid() {
        let j = JidGenerator::new().next(true);
        assert_eq!(&j[20..], format!("_{}", std::process::id()));
        assert!(is_jid(&j));
    }

    #[test]
    fn validation() {
        assert!(is_jid("20261125003800067893"));
        assert!(is_jid("20261125003800067893_123"));
        for bad in [
            "",
            "req",
            "2026112500380006789",
            "20261125003800067893_",
            "20261125003800067893x",
            "../../etc/passwd",
            "2026112500380006789a",
            "20261125003800067893_1/2",
        ] {
            assert!(!is_jid(bad), "{bad}");
        }
    }

    #[test]
    fn time_format_matches_salt() {
        assert_eq!(jid_to_time("20240510093015123456"), "2024, May 10 09:30:15.123456");
        assert_eq!(jid_to_time("nope"), "");
    }
}
