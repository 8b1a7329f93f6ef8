//! A return as syslog messages.
//!
//! Salt's message, as the C library's `syslog()` sends it: `<PRI>Mmm dd hh:mm:ss TAG: ` (local
//! time, the day padded with a space; `TAG[pid]: ` with `LOG_PID`; no host name) then Python's
//! `json.dumps(ret)`: the return's own key order, every character past ASCII escaped. No
//! trailing newline.
//!
//! # Long returns
//!
//! A receiver cuts longer messages at its limit (rsyslog's default `maxMessageSize` is 8096
//! bytes, the whole message counted). A message that would be longer than `max_message_size`
//! is sent as parts, each a message of at most that size with the same header and its text
//! starting with a marker:
//!
//! ```text
//! <14>Dec  1 21:40:00 salt-minion: [part 1/3 0191f3a2c4d5e6f7] {"success": true, "return": "xx...
//! <14>Dec  1 21:40:00 salt-minion: [part 2/3 0191f3a2c4d5e6f7] xxxxxxxx...
//! <14>Dec  1 21:40:00 salt-minion: [part 3/3 0191f3a2c4d5e6f7] ...x", "id": "web1"}
//! ```
//!
//! To put a return back together: take the messages whose text (after `TAG: `) starts with
//! `[part I/N ID] `, group them by `ID` (16 hex digits, new for each return), and join the text
//! after the marker's closing `] ` in the order of `I` from 1 to `N`: that is the return's JSON.
//! The JSON is ASCII, so a part ends on any byte; parts are sent in order, one return's after
//! another's.

use chrono::{DateTime, Local};

use crate::json::{dumps_map, ensure_ascii};
use crate::record::ReturnRecord;
use crate::Load;

/// A return ready to send: its key (jid, minion id; for [`crate::delivered::Delivered`]) and
/// its messages.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub key: (String, String),
    pub messages: Vec<Vec<u8>>,
}

/// The messages of a return (`Ok(None)`: a return not to be sent), cut at `max_bytes` each.
pub fn prepare_return(ret: &Load, header: &str, max_bytes: usize) -> Result<Option<Prepared>, String> {
    let Some(record) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let body = ensure_ascii(&dumps_map(&record.full)).into_owned();
    let key = (record.jid.clone(), record.id.to_string());
    Ok(Some(Prepared { key, messages: messages(header, &body, max_bytes, new_part_id) }))
}

/// `<PRI>Mmm dd hh:mm:ss TAG: ` or `... TAG[pid]: `.
pub fn header(pri: u8, at: DateTime<Local>, tag: &str, pid: Option<u32>) -> String {
    let stamp = at.format("%b %e %H:%M:%S");
    match pid {
        Some(pid) => format!("<{pri}>{stamp} {tag}[{pid}]: "),
        None => format!("<{pri}>{stamp} {tag}: "),
    }
}

/// `header` + `body` as one message when it fits in `max_bytes`, else as marked parts (see the
/// module doc), each at most `max_bytes`. `body` is ASCII.
pub fn messages(header: &str, body: &str, max_bytes: usize, part_id: impl FnOnce() -> String) -> Vec<Vec<u8>> {
    if header.len() + body.len() <= max_bytes {
        return vec![[header.as_bytes(), body.as_bytes()].concat()];
    }
    let id = part_id();
    // The marker's length depends on the count of parts, which depends on the room left.
    let mut count = 1;
    let room = loop {
        let marker = format!("[part {count}/{count} {id}] ").len();
        let room = max_bytes.saturating_sub(header.len() + marker).max(1);
        let need = body.len().div_ceil(room);
        if need <= count {
            break room;
        }
        count = need;
    };
    let mut out = Vec::with_capacity(count);
    let mut rest = body;
    for i in 1..=count {
        let mut end = rest.len().min(room);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        out.push(format!("{header}[part {i}/{count} {id}] {chunk}").into_bytes());
        rest = tail;
    }
    out
}

/// A new id for the parts of one return: 16 hex digits, the time in microseconds and a count.
fn new_part_id() -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let micros = chrono::Utc::now().timestamp_micros() as u64 & 0xffff_ffff_ffff;
    format!("{micros:012x}{:04x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Puts returns back together from message texts (what follows `TAG: `), as the module doc says;
/// a whole message stands for itself. For tests and tools: what a reader does.
pub fn reassemble<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut whole = Vec::new();
    let mut open: Vec<(String, usize, Vec<Option<String>>, usize)> = Vec::new(); // id, count, parts, place
    for text in texts {
        let Some((i, n, id, chunk)) = part(text) else {
            whole.push(Some(text.to_string()));
            continue;
        };
        let at = match open.iter().position(|(oid, on, ..)| *oid == id && *on == n) {
            Some(at) => at,
            None => {
                whole.push(None);
                open.push((id.to_string(), n, vec![None; n], whole.len() - 1));
                open.len() - 1
            }
        };
        if let Some(slot) = open[at].2.get_mut(i - 1) {
            slot.get_or_insert_with(|| chunk.to_string());
        }
        if open[at].2.iter().all(Option::is_some) {
            let (_, _, parts, place) = open.remove(at);
            whole[place] = Some(parts.into_iter().flatten().collect());
        }
    }
    whole.into_iter().flatten().collect()
}

/// `[part I/N ID] chunk` as (I, N, ID, chunk).
fn part(text: &str) -> Option<(usize, usize, &str, &str)> {
    let rest = text.strip_prefix("[part ")?;
    let (marker, chunk) = rest.split_once("] ")?;
    let (counts, id) = marker.split_once(' ')?;
    let (i, n) = counts.split_once('/')?;
    let (i, n): (usize, usize) = (i.parse().ok()?, n.parse().ok()?);
    (i >= 1 && i <= n && id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((i, n, id, chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn text_of(message: &[u8], header: &str) -> String {
        String::from_utf8(message.to_vec()).unwrap().strip_prefix(header).unwrap().to_string()
    }

    #[test]
    fn salts_message() {
        let at = Local.with_ymd_and_hms(2026, 12, 1, 9, 5, 7).unwrap();
        assert_eq!(header(14, at, "salt-minion", None), "<14>Dec  1 09:05:07 salt-minion: ");
        assert_eq!(header(27, at, "mysalt", Some(42)), "<27>Dec  1 09:05:07 mysalt[42]: ");
        let ret =
            json!({"fun_args": ["é"], "jid": "20240510093000000001", "return": {"😀": true}, "id": "m1", "ret_kwargs": {"password": "s3"}});
        let p = prepare_return(ret.as_object().unwrap(), "<14>Dec  1 09:05:07 t: ", 8096).unwrap().unwrap();
        assert_eq!(p.messages.len(), 1);
        let text = text_of(&p.messages[0], "<14>Dec  1 09:05:07 t: ");
        assert!(text.starts_with(r#"{"fun_args": ["\u00e9"], "jid": "20240510093000000001", "return": {"\ud83d\ude00": true}, "id": "m1", "ret_kwargs": {"password": ""#), "{text}");
        assert!(!text.contains("s3"), "{text}");
        let nocache = json!({"jid": "nocache", "id": "m1", "return": 1});
        assert!(prepare_return(nocache.as_object().unwrap(), "h", 8096).unwrap().is_none());
    }

    #[test]
    fn long_returns_go_in_parts_that_fit_and_come_back_whole() {
        let header = "<14>Dec  1 09:05:07 salt-minion[12345]: ";
        let body = format!("{{\"return\": \"{}\"}}", "x".repeat(100_000));
        let parts = messages(header, &body, 8096, || "0123456789abcdef".into());
        assert_eq!(parts.len(), 13);
        assert!(parts.iter().all(|m| m.len() <= 8096));
        assert_eq!(parts[11].len(), 8096, "full parts use all the room");
        let texts: Vec<String> = parts.iter().map(|m| text_of(m, header)).collect();
        assert!(texts[0].starts_with("[part 1/13 0123456789abcdef] {\"return\": \"xxx"), "{}", &texts[0][..60]);
        assert!(texts[12].starts_with("[part 13/13 0123456789abcdef] x"));
        // Shuffled, and between other messages: the same return, where its first part came.
        let mut mixed: Vec<&str> = texts.iter().map(String::as_str).rev().collect();
        mixed.insert(3, "{\"short\": 1}");
        assert_eq!(reassemble(mixed), vec![body.clone(), "{\"short\": 1}".to_string()]);
        // One that fits is sent alone, unmarked.
        assert_eq!(messages(header, "{}", 8096, || unreachable!()), vec![format!("{header}{{}}").into_bytes()]);
        // At the limit: one message; a byte over: two parts.
        let fits = "y".repeat(8096 - header.len());
        assert_eq!(messages(header, &fits, 8096, || unreachable!()).len(), 1);
        assert_eq!(messages(header, &format!("{fits}y"), 8096, || "0123456789abcdef".into()).len(), 2);
    }

    #[test]
    fn part_ids_differ() {
        assert_ne!(new_part_id(), new_part_id());
        assert_eq!(new_part_id().len(), 16);
    }
}
