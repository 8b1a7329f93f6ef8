//! Making a return fit in a frame. A return larger than `max_frame_bytes` could never be sent;
//! rather than lose it, its longest texts are cut, each with a visible marker, and it keeps its
//! retcode and success, so the job still reports how it ended.

use serde_json::Value;

use crate::frame::{encode, FrameError};
use crate::message::{JobReturn, MinionMessage};

/// Room left in a frame for what the master adds around a return when it passes it on (the
/// event's tag, stamp and envelope), so the CLI and the job cache get it whole too.
pub const ENVELOPE_ROOM: usize = 64 * 1024;

/// What [`fit_return`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fitted {
    /// The return fitted as it was.
    Whole,
    /// Texts were cut: the encoded return went from `from` to `to` bytes.
    Cut { from: usize, to: usize },
}

/// Cuts `ret` until its frame is at most `max_frame - ENVELOPE_ROOM` bytes: the longest strings
/// first, each ending in `... output truncated: N of M bytes`; if strings alone cannot make it
/// fit (a huge list of numbers), the whole return becomes that marker.
pub fn fit_return(ret: &mut JobReturn, max_frame: usize) -> Result<Fitted, FrameError> {
    let budget = max_frame.saturating_sub(ENVELOPE_ROOM).max(1024);
    let from = frame_len(ret)?;
    if from <= budget {
        return Ok(Fitted::Whole);
    }
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
    if frame_len(ret)? > budget {
        let total = serde_json::to_string(&ret.ret).map(|s| s.len()).unwrap_or(from);
        ret.ret = Value::String(marker(0, total).trim_start().to_string());
    }
    Ok(Fitted::Cut { from, to: frame_len(ret)? })
}

fn marker(kept: usize, total: usize) -> String {
    format!("\n... output truncated: {kept} of {total} bytes")
}

fn frame_len(ret: &JobReturn) -> Result<usize, FrameError> {
    // Encoded as it is sent; the clone is cheap next to the encoding of a return this large.
    encode(&MinionMessage::Return(ret.clone())).map(|b| b.len())
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
        assert_eq!(fit_return(&mut r, 1 << 20).unwrap(), Fitted::Whole);
        assert_eq!(r.ret, json!("small"));
    }

    #[test]
    fn the_longest_text_is_cut_with_a_marker_and_the_retcode_kept() {
        let max = 256 * 1024;
        let big = "é".repeat(200 * 1024); // 400 KiB of two-byte characters
        let mut r = ret(json!({"stdout": big, "stderr": "warning", "retcode": 3}));
        let Fitted::Cut { from, to } = fit_return(&mut r, max).unwrap() else { panic!("not cut") };
        assert!(from > max && to <= max - ENVELOPE_ROOM, "{from} -> {to}");
        let stdout = r.ret["stdout"].as_str().unwrap();
        assert!(stdout.starts_with("éé"));
        let (_, tail) = stdout.rsplit_once("\n... output truncated: ").unwrap();
        assert!(tail.ends_with(&format!(" of {} bytes", 400 * 1024)), "{tail}");
        assert_eq!((r.ret["stderr"].as_str(), r.retcode, r.success), (Some("warning"), 3, false));
    }

    #[test]
    fn a_return_of_no_long_text_is_replaced_by_the_marker() {
        let mut r = ret(Value::Array((0..100_000).map(Value::from).collect()));
        fit_return(&mut r, 128 * 1024).unwrap();
        assert!(r.ret.as_str().unwrap().starts_with("... output truncated: 0 of "), "{}", r.ret);
    }
}
