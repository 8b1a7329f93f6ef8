//! Times given on the command line (`start_time`, `end_time`), parsed as leniently as Salt's
//! dateutil does for the forms people type. All times are UTC, like jids.

use chrono::{NaiveDate, NaiveDateTime};

const FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y, %b %d %H:%M:%S%.f", // Salt's StartTime
    "%Y %b %d %H:%M:%S%.f",
    "%b %d %Y %H:%M:%S%.f",
    "%d %b %Y %H:%M:%S%.f",
    "%Y%m%d%H%M%S%6f", // a jid
];

/// Parses a time, or says which forms are understood.
pub fn parse(text: &str) -> Result<NaiveDateTime, String> {
    let t = text.trim().trim_end_matches('Z');
    for f in FORMATS {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(dt);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%d %b %Y", "%b %d %Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
        }
    }
    Err(format!(
        "cannot read the time {text:?}: use e.g. '2026-11-25 00:39', '2026-11-25T00:39:16' or Salt's '2026, Nov 25 00:39:16.657727'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms() {
        let want = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().and_hms_micro_opt(0, 39, 16, 657727).unwrap();
        assert_eq!(parse("2026, Nov 25 00:39:16.657727").unwrap(), want);
        assert_eq!(parse("2026-11-25T00:39:16.657727").unwrap(), want);
        assert_eq!(parse("20261125003916657727").unwrap(), want);
        assert_eq!(parse("2026-11-25").unwrap(), NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().and_hms_opt(0, 0, 0).unwrap());
        assert!(parse("yesterday").unwrap_err().contains("cannot read the time"));
    }
}
