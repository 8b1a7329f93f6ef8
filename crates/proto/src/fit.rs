//! Making a return fit in a frame. A return larger than `max_frame_bytes` could never be sent;
//! rather than lose it, its longest texts are cut, each with a visible marker, and it keeps its
//! retcode and success, so the job still reports how it ended.

use serde::Serialize;
use serde_json::Value;

use crate::frame::{encode, FrameError};
use crate::message::JobReturn;

/// Room left in a frame for what the master adds around a return when it passes it on (the
/// event's tag, stamp and envelope), so the CLI and the job cache get it whole too.
pub const ENVELOPE_ROOM: usize = 64 * 1024;

/// What [`encode_return`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fitted {
    /// The return fitted as it was.
    Whole,
    /// Texts were cut: the encoded return went from `from` to `to` bytes.
    Cut { from: usize, to: usize },
}

/// Encodes `ret` as the minion sends it (`MinionMessage::Return`), once when it fits. A frame
/// over `max_frame - ENVELOPE_ROOM` bytes is cut to fit first: the longest strings first, each
/// ending in `... output truncated: N of M bytes`; if strings alone cannot make it fit (a huge
/// list of numbers), the whole return becomes that marker.
pub fn encode_return(ret: &mut JobReturn, max_frame: usize) -> Result<(Vec<u8>, Fitted), FrameError> {
    let budget = max_frame.saturating_sub(ENVELOPE_ROOM).max(1024);
    let whole = encode_frame(ret)?;
    let from = whole.len();
    if from <= budget {
        return Ok((whole, Fitted::Whole));
    }
    drop(whole);
    let mut excess = from - budget;
    let mut texts = strings_mut(&mut ret.ret);
    texts.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for text in texts {
        if excess == 0 {
            break;
        }
        let total = text.len();
        // The marker itself takes room; cut a little more than the excess.
        let keep = floor_char_boundary(text, total.saturating_sub(excess + 64));
        text.truncate(keep);
        text.push_str(&marker(keep, total));
        excess = excess.saturating_sub(total - text.len());
    }
    let mut bytes = encode_frame(ret)?;
    if bytes.len() > budget {
        let total = serde_json::to_string(&ret.ret).map(|s| s.len()).unwrap_or(from);
        ret.ret = Value::String(marker(0, total).trim_start().to_string());
        bytes = encode_frame(ret)?;
    }
    let to = bytes.len();
    Ok((bytes, Fitted::Cut { from, to }))
}

fn marker(kept: usize, total: usize) -> String {
    format!("\n... output truncated: {kept} of {total} bytes")
}

/// `MinionMessage::Return` by reference: the same bytes, without cloning the return.
#[derive(Serialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum ReturnFrame<'a> {
    Return(&'a JobReturn),
}

fn encode_frame(ret: &JobReturn) -> Result<Vec<u8>, FrameError> {
    encode(&ReturnFrame::Return(ret))
}

fn strings_mut(value: &mut Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
    out
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::decode;
    use crate::message::MinionMessage;
    use serde_json::json;

    fn ret(value: Value) -> JobReturn {
        JobReturn {
            id: "m1".into(),
            jid: "20261201150000000000".into(),
            fun: "cmd.run_all".into(),
            fun_args: vec![],
            ret: value,
            retcode: 3,
            success: false,
            user: None,
            out: None,
            metadata: None,
        }
    }

    #[test]
    fn a_return_that_fits_is_left_alone() {
        let mut r = ret(json!("small"));
        let (bytes, fitted) = encode_return(&mut r, 1 << 20).unwrap();
        assert_eq!(fitted, Fitted::Whole);
        assert_eq!(r.ret, json!("small"));
        // The bytes are those of the message itself.
        assert_eq!(bytes, encode(&MinionMessage::Return(r.clone())).unwrap());
        assert_eq!(decode::<MinionMessage>(&bytes).unwrap(), MinionMessage::Return(r));
    }

    #[test]
    fn the_longest_text_is_cut_with_a_marker_and_the_retcode_kept() {
        let max = 256 * 1024;
        let big = "é".repeat(200 * 1024); // 400 KiB of two-byte characters
        let mut r = ret(json!({"stdout": big, "stderr": "warning", "retcode": 3}));
        let (bytes, Fitted::Cut { from, to }) = encode_return(&mut r, max).unwrap() else { panic!("not cut") };
        assert!(from > max && to <= max - ENVELOPE_ROOM, "{from} -> {to}");
        assert_eq!(bytes, encode(&MinionMessage::Return(r.clone())).unwrap());
        let stdout = r.ret["stdout"].as_str().unwrap();
        assert!(stdout.starts_with("éé"));
        let (_, tail) = stdout.rsplit_once("\n... output truncated: ").unwrap();
        assert!(tail.ends_with(&format!(" of {} bytes", 400 * 1024)), "{tail}");
        assert_eq!((r.ret["stderr"].as_str(), r.retcode, r.success), (Some("warning"), 3, false));
    }

    #[test]
    fn a_return_of_no_long_text_is_replaced_by_the_marker() {
        let mut r = ret(Value::Array((0..100_000).map(Value::from).collect()));
        let (bytes, _) = encode_return(&mut r, 128 * 1024).unwrap();
        assert!(bytes.len() <= 64 * 1024);
        assert!(r.ret.as_str().unwrap().starts_with("... output truncated: 0 of "), "{}", r.ret);
    }
}
