//! Returns and events as carbon metrics (Salt's metric names and walk), and carbon's two wire
//! formats: plaintext lines and pickles.
//!
//! Salt's walk (`_walk`): a dict adds `.<key>` to the path for each entry; a list adds
//! `.<str(item)>` for each item and walks the item (so `[1, 2.5]` gives `path.1` = 1 and
//! `path.2.5` = 2.5); anything else is a metric if Python's `float()` takes it: numbers,
//! booleans (1 and 0), numeric text (`" 12 "`, `"1e3"`, `"1_000"`). What `float()` refuses
//! (other text, `null`) refuses the return, or is left out with `skip_on_error`.
//!
//! Names are Salt's, but a part taken from the data (a key, a list item, the minion id, an
//! event tag) cannot break carbon's protocol or its tree of files: whitespace and control
//! characters become `_` (carbon's plaintext line is split on whitespace, so Salt's metric was
//! lost) and `/` becomes `.` (carbon's file path: the same file Salt's name ended in, under a
//! name graphite-web can query).

use std::borrow::Cow;

use chrono::{NaiveDateTime, Utc};
use salt_targeting::pystr::{py_repr, py_str};
use serde_json::Value;

use super::config::Mode;
use crate::record::{describe, ReturnRecord};
use crate::{Event, Load};

/// The longest metric name sent: Linux's `PATH_MAX`, which carbon's file for it cannot exceed
/// (a longer plaintext line, past 16 KiB, would make carbon drop the connection and with it the
/// rest of the batch).
pub const MAX_NAME_BYTES: usize = 4096;
/// The largest pickle message: under carbon's default `PICKLE_RECEIVER_MAX_LENGTH` (1 MiB), past
/// which it drops the connection. A batch takes as many messages as it needs.
pub const MAX_PICKLE_BYTES: usize = 1_000_000;

/// One datapoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Seconds since the epoch.
    pub timestamp: i64,
}

/// The metrics of a return, or why it is refused (`Ok(None)`: a return not to be stored).
///
/// The timestamp is the job's (its jid's time), not the moment of sending: a return the spool
/// delivers after an outage lands at its job's time, and delivering it twice writes the same
/// datapoints again.
pub fn return_metrics(ret: &Load, pattern: &str, skip_on_error: bool) -> Result<Option<Vec<Metric>>, String> {
    let Some(record) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = record.fun()?;
    let timestamp = jid_timestamp(&record.jid).unwrap_or_else(now);
    let base = metric_base(pattern, fun, record.id);
    let mut metrics = Vec::new();
    walk(&base, record.value, timestamp, skip_on_error, &mut metrics).map_err(|why| {
        format!("carbon: {}: {why} (with carbon.skip_on_error: True only the numbers are sent)", describe(record.id, &record.jid))
    })?;
    Ok(Some(metrics))
}

/// The metrics of an event, as Salt's `event_return`: the walk of `data["data"]` under the tag,
/// values that are not numbers left out. The time is the event's `_stamp`, else now.
pub fn event_metrics(event: &Event) -> Result<Vec<Metric>, String> {
    let Some(data) = event.data.get("data") else { return Ok(Vec::new()) };
    let timestamp = event.data.get("_stamp").and_then(Value::as_str).and_then(stamp_timestamp).unwrap_or_else(now);
    let mut metrics = Vec::new();
    walk(&name_part(&event.tag), data, timestamp, true, &mut metrics).map_err(|why| format!("carbon: the event {}: {why}", event.tag))?;
    Ok(metrics)
}

/// Salt's metric base: `metric_base_pattern` with `[module]`, `[function]` and `[minion_id]`
/// (its dots as `_`), except for `virt.*` functions, whose metrics are the function's alone
/// (a VM's metrics stay where they are when it moves to another host).
pub fn metric_base(pattern: &str, fun: &str, id: &str) -> String {
    if fun.starts_with("virt.") {
        return name_part(fun).into_owned();
    }
    let (module, function) = fun.split_once('.').unwrap_or((fun, ""));
    let minion_id = id.replace('.', "_");
    pattern
        .replace("[module]", &name_part(module))
        .replace("[function]", &name_part(function))
        .replace("[minion_id]", &name_part(&minion_id))
}

/// A part of a metric name taken from the data: whitespace and control characters as `_`, `/`
/// as `.` (see the module doc).
pub fn name_part(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '/' => '.',
                c if c.is_whitespace() || c.is_control() => '_',
                c => c,
            })
            .collect(),
    )
}

/// Salt's `_walk`: appends the metrics of `value` under `path`; `Err` names the first value
/// that is not a number, unless `skip` leaves such values out.
pub fn walk(path: &str, value: &Value, timestamp: i64, skip: bool, out: &mut Vec<Metric>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (key, val) in map {
                walk(&format!("{path}.{}", name_part(key)), val, timestamp, skip, out)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                walk(&format!("{path}.{}", name_part(&py_str(item))), item, timestamp, skip, out)?;
            }
            Ok(())
        }
        leaf => {
            let refused = match py_float(leaf) {
                Some(_) if path.len() > MAX_NAME_BYTES => {
                    format!("the metric name {}... is longer than {MAX_NAME_BYTES} bytes", cut(path, 100))
                }
                Some(value) => {
                    out.push(Metric { name: path.to_string(), value, timestamp });
                    return Ok(());
                }
                None => format!("{} at {} is not a number", cut(&py_repr(leaf), 100), cut(path, 300)),
            };
            if skip {
                tracing::debug!("carbon: left out: {refused}");
                Ok(())
            } else {
                Err(refused)
            }
        }
    }
}

/// The first `max` bytes of `text` (on a character boundary), for messages.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Python's `float(value)` for a JSON leaf, when it is a finite number (carbon drops NaN, and
/// neither NaN nor infinity is a datapoint worth keeping).
pub fn py_float(value: &Value) -> Option<f64> {
    let f = match value {
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            // Python takes `_` between digits only; Rust takes none.
            let bytes = s.as_bytes();
            let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
            if bytes.iter().enumerate().any(|(i, b)| *b == b'_' && !(i > 0 && digit(i - 1) && digit(i + 1))) {
                return None;
            }
            s.replace('_', "").parse::<f64>().ok()?
        }
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// Seconds since the epoch of a jid's time (UTC).
pub fn jid_timestamp(jid: &str) -> Option<i64> {
    salt_proto::jid::jid_datetime(jid).map(|t| t.and_utc().timestamp())
}

/// An event's `_stamp` (`2024-05-10T09:30:00.123456`, UTC) in seconds since the epoch.
fn stamp_timestamp(stamp: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc().timestamp())
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// What goes down the connection for `metrics`.
pub fn payload(mode: Mode, metrics: &[Metric]) -> Vec<u8> {
    match mode {
        Mode::Text => text(metrics),
        Mode::Pickle => pickles(metrics, MAX_PICKLE_BYTES),
    }
}

/// Carbon's plaintext protocol, as Salt writes it: `name value timestamp\n` with Python's
/// `str()` of the float value.
pub fn text(metrics: &[Metric]) -> Vec<u8> {
    let mut out = String::new();
    for m in metrics {
        out.push_str(&m.name);
        out.push(' ');
        out.push_str(&py_repr(&Value::from(m.value)));
        out.push(' ');
        out.push_str(&m.timestamp.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// Carbon's pickle protocol: messages of at most `max_bytes`, each a 4-byte big-endian length
/// and a pickle (protocol 2) of `[(name, (timestamp, value)), ...]`.
pub fn pickles(metrics: &[Metric], max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < metrics.len() {
        let mut end = start;
        let mut size = PICKLE_OVERHEAD;
        while end < metrics.len() && (end == start || size + pickled_size(&metrics[end]) <= max_bytes) {
            size += pickled_size(&metrics[end]);
            end += 1;
        }
        let body = pickle(&metrics[start..end]);
        out.extend_from_slice(&u32::try_from(body.len()).expect("a pickle message is under 4 GiB").to_be_bytes());
        out.extend_from_slice(&body);
        start = end;
    }
    out
}

// The pickle opcodes used (Python's `pickle.py` names them).
const PROTO: u8 = 0x80;
const EMPTY_LIST: u8 = b']';
const MARK: u8 = b'(';
const APPENDS: u8 = b'e';
const BINUNICODE: u8 = b'X';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const TUPLE2: u8 = 0x86;
const STOP: u8 = b'.';

/// `PROTO 2`, `EMPTY_LIST`, `MARK` ... `APPENDS`, `STOP`.
const PICKLE_OVERHEAD: usize = 6;

/// The bytes one metric takes in a pickle (the most: a timestamp as `LONG1` of 8 bytes).
fn pickled_size(m: &Metric) -> usize {
    // X len name, LONG1 n bytes, G f64, TUPLE2, TUPLE2
    5 + m.name.len() + 10 + 9 + 2
}

/// `pickle.dumps([(name, (timestamp, value)), ...], protocol=2)` (without the memo, which
/// unpickling does not need).
pub fn pickle(metrics: &[Metric]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PICKLE_OVERHEAD + metrics.iter().map(pickled_size).sum::<usize>());
    out.extend_from_slice(&[PROTO, 2, EMPTY_LIST, MARK]);
    for m in metrics {
        out.push(BINUNICODE);
        out.extend_from_slice(&u32::try_from(m.name.len()).expect("a metric name is short").to_le_bytes());
        out.extend_from_slice(m.name.as_bytes());
        match i32::try_from(m.timestamp) {
            Ok(small) => {
                out.push(BININT);
                out.extend_from_slice(&small.to_le_bytes());
            }
            Err(_) => {
                // Little-endian two's complement, as short as keeps the sign.
                let mut bytes = m.timestamp.to_le_bytes().to_vec();
                while bytes.len() > 1 {
                    let (last, prev) = (bytes[bytes.len() - 1], bytes[bytes.len() - 2]);
                    if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                        bytes.pop();
                    } else {
                        break;
                    }
                }
                out.push(LONG1);
                out.push(bytes.len() as u8);
                out.extend_from_slice(&bytes);
            }
        }
        out.push(BINFLOAT);
        out.extend_from_slice(&m.value.to_be_bytes());
        out.push(TUPLE2);
        out.push(TUPLE2);
    }
    out.extend_from_slice(&[APPENDS, STOP]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn walked(value: Value, skip: bool) -> Result<Vec<(String, f64)>, String> {
        let mut out = Vec::new();
        walk("test.arg.m1", &value, 1, skip, &mut out)?;
        Ok(out.into_iter().map(|m| (m.name, m.value)).collect())
    }

    fn names(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn walks_as_salt_does() {
        let got = walked(json!({"a": 1, "b": {"c": 2.5, "d": true}, "e": [1, 2.5, false], "f": " 12 ", "g": "1_000"}), false).unwrap();
        let want = names(&[
            ("test.arg.m1.a", 1.0),
            ("test.arg.m1.b.c", 2.5),
            ("test.arg.m1.b.d", 1.0),
            ("test.arg.m1.e.1", 1.0),
            ("test.arg.m1.e.2.5", 2.5),
            ("test.arg.m1.e.False", 0.0),
            ("test.arg.m1.f", 12.0),
            ("test.arg.m1.g", 1000.0),
        ]);
        assert_eq!(got, want);
        assert_eq!(walked(json!(true), false).unwrap(), names(&[("test.arg.m1", 1.0)]));
        assert_eq!(walked(json!({}), false).unwrap(), []);
        // A list item that is a dict: Salt puts its str() in the path, then walks it.
        assert_eq!(walked(json!([{"x": 3}]), false).unwrap(), names(&[("test.arg.m1.{'x':_3}.x", 3.0)]));
    }

    #[test]
    fn a_value_that_is_not_a_number_refuses_or_is_skipped() {
        let err = walked(json!({"n": 1, "out": "up 3 days"}), false).unwrap_err();
        assert_eq!(err, "'up 3 days' at test.arg.m1.out is not a number");
        assert_eq!(
            walked(json!({"n": 1, "out": "up 3 days", "none": null, "nan": "nan", "u": "1__0"}), true).unwrap(),
            names(&[("test.arg.m1.n", 1.0)])
        );
        let long = "k".repeat(MAX_NAME_BYTES);
        assert!(walked(json!({ long: 1 }), false).unwrap_err().contains("is longer than 4096 bytes"));
    }

    #[test]
    fn names_from_the_data_cannot_break_the_line_or_the_tree() {
        let got = walked(json!({"a b": 1, "x/y": 2, "tab\there": 3}), false).unwrap();
        assert_eq!(got, names(&[("test.arg.m1.a_b", 1.0), ("test.arg.m1.x.y", 2.0), ("test.arg.m1.tab_here", 3.0)]));
        assert_eq!(name_part("salt/job/1/ret/m 1"), "salt.job.1.ret.m_1");
    }

    #[test]
    fn metric_bases() {
        let p = super::super::config::DEFAULT_PATTERN;
        assert_eq!(metric_base(p, "test.ping", "web1.example.com"), "test.ping.web1_example_com");
        assert_eq!(metric_base("carbon.[minion_id].[module].[function]", "disk.usage", "m1"), "carbon.m1.disk.usage");
        // Salt's default pattern is `fun.id` for a function with more dots too.
        assert_eq!(metric_base(p, "a.b.c", "m1"), "a.b.c.m1");
        assert_eq!(metric_base(p, "virt.vm_info", "host1"), "virt.vm_info");
    }

    #[test]
    fn return_and_event_metrics() {
        let ret = json!({"id": "m.1", "jid": "20240510093000123456", "fun": "status.loadavg", "return": {"1-min": 0.5, "os": "Linux"}});
        let err = return_metrics(ret.as_object().unwrap(), super::super::config::DEFAULT_PATTERN, false).unwrap_err();
        assert!(
            err.starts_with("carbon: return of m.1 for 20240510093000123456: 'Linux' at status.loadavg.m_1.os is not a number"),
            "{err}"
        );
        let got = return_metrics(ret.as_object().unwrap(), super::super::config::DEFAULT_PATTERN, true).unwrap().unwrap();
        assert_eq!(got, [Metric { name: "status.loadavg.m_1.1-min".into(), value: 0.5, timestamp: 1715333400 }]);
        let nocache = json!({"id": "m1", "jid": "nocache", "fun": "f", "return": 1});
        assert_eq!(return_metrics(nocache.as_object().unwrap(), "x", false), Ok(None));

        let event =
            Event { tag: "my/event".into(), data: json!({"data": {"temp": 21, "where": "hall"}, "_stamp": "2024-05-10T09:30:00.5"}) };
        assert_eq!(event_metrics(&event).unwrap(), [Metric { name: "my.event.temp".into(), value: 21.0, timestamp: 1715333400 }]);
        assert_eq!(event_metrics(&Event { tag: "t".into(), data: json!({"x": 1}) }).unwrap(), []);
    }

    #[test]
    fn plaintext_lines_as_salt_writes_them() {
        let m = |name: &str, value: f64| Metric { name: name.into(), value, timestamp: 1715333400 };
        let text = text(&[m("a.b", 4242.0), m("a.c", 0.25), m("a.d", 1e16)]);
        assert_eq!(String::from_utf8(text).unwrap(), "a.b 4242.0 1715333400\na.c 0.25 1715333400\na.d 1e+16 1715333400\n");
    }

    #[test]
    fn pickle_bytes() {
        let m = Metric { name: "a.b".into(), value: 1.5, timestamp: 1715333400 };
        let mut want = vec![0x80, 2, b']', b'(', b'X', 3, 0, 0, 0, b'a', b'.', b'b', b'J'];
        want.extend_from_slice(&1715333400i32.to_le_bytes());
        want.push(b'G');
        want.extend_from_slice(&1.5f64.to_be_bytes());
        want.extend_from_slice(&[0x86, 0x86, b'e', b'.']);
        assert_eq!(pickle(std::slice::from_ref(&m)), want);
        // After 2038: LONG1 with the bytes the sign needs.
        let late = pickle(&[Metric { timestamp: 1 << 31, ..m.clone() }]);
        assert_eq!(&late[12..19], &[LONG1, 5, 0, 0, 0, 0x80, 0]);
        let framed = pickles(std::slice::from_ref(&m), MAX_PICKLE_BYTES);
        assert_eq!(&framed[..4], &(want.len() as u32).to_be_bytes());
        assert_eq!(&framed[4..], &want[..]);
    }

    #[test]
    fn pickles_are_split_below_the_limit() {
        let metrics: Vec<Metric> = (0..100).map(|n| Metric { name: format!("metric.{n:03}"), value: n as f64, timestamp: 1 }).collect();
        let bytes = pickles(&metrics, 500);
        let (mut at, mut messages) = (0, Vec::new());
        while at < bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            assert!(len <= 500, "{len}");
            messages.push(&bytes[at + 4..at + 4 + len]);
            at += 4 + len;
        }
        assert_eq!(at, bytes.len());
        assert!(messages.len() > 1);
        // Each message holds whole metrics: the same bytes as pickling its run alone.
        let (mut from, mut joined) = (0, Vec::new());
        for body in &messages {
            let n = (from..=metrics.len()).find(|&to| pickle(&metrics[from..to]).len() == body.len()).unwrap();
            assert_eq!(pickle(&metrics[from..n]), *body);
            joined.extend_from_slice(&metrics[from..n]);
            from = n;
        }
        assert_eq!(joined, metrics);
    }
}
