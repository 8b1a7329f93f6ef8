//! Python's `repr()`/`str()` of JSON-shaped data.
//!
//! Salt's outputters are Python: `raw` prints `str(data)`, `txt` prints
//! `str(value)`, `nested` prints `repr(number)`, and `pprint` is built on
//! `repr`. This module is the one place that knows how Python spells
//! `True`/`None`, quotes and escapes strings, and prints floats, so every
//! outputter agrees byte for byte.

use serde_json::{Map, Number, Value};

/// `repr(value)` for a JSON value as Python would print the decoded object:
/// dicts keep insertion order (Python dicts do), `{'k': 1}`, `[1, 2]`.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, false);
    out
}

/// `repr(value)` with dict keys sorted, as `pprint`'s `_safe_repr` does.
pub(crate) fn repr_sorted(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, true);
    out
}

/// `str(value)`: like `repr` except that a top-level string is printed bare.
pub fn str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

fn write_repr(out: &mut String, value: &Value, sort_keys: bool) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&repr_number(n)),
        Value::String(s) => out.push_str(&repr_str(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, sort_keys);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in entries(map, sort_keys).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&repr_str(k));
                out.push_str(": ");
                write_repr(out, v, sort_keys);
            }
            out.push('}');
        }
    }
}

/// A map's entries in insertion order, or sorted by key (Python sorts `str`
/// by code point, which is the same order as Rust's byte-wise `str` order).
pub(crate) fn entries(map: &Map<String, Value>, sort: bool) -> Vec<(&String, &Value)> {
    let mut items: Vec<_> = map.iter().collect();
    if sort {
        items.sort_by(|a, b| a.0.cmp(b.0));
    }
    items
}

/// `repr(number)`: integers as digits, floats as Python's shortest repr.
pub fn repr_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        repr_float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// `repr(float)`: the shortest round-tripping digits, in fixed notation when
/// the decimal exponent is in Python's window (`1e-4 <= |x| < 1e16`),
/// otherwise `1e+16` / `1.5e-05` style; fixed notation always has a `.`.
pub fn repr_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's
    // repr, only laid out differently: "d.ddde<exp>".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Python's `decpt`: the value is 0.<digits> * 10**decpt.
    let decpt = exp + 1;
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-decpt) as usize));
        out.push_str(&digits);
    } else {
        let decpt = decpt as usize;
        if digits.len() <= decpt {
            out.push_str(&digits);
            out.push_str(&"0".repeat(decpt - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt]);
            out.push('.');
            out.push_str(&digits[decpt..]);
        }
    }
    out
}

/// `repr(str)`: single quotes unless the text has `'` and no `"`; escapes
/// backslash, the quote, `\t\n\r`, other control characters as `\xNN`, and
/// non-printable non-ASCII as `\xNN`/`\uNNNN`/`\UNNNNNNNN`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if is_printable(c) => out.push(c),
            c => {
                let cp = c as u32;
                if cp <= 0xff {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one non-ASCII character: false for the
/// categories Cc, Cf, Zs, Zl, Zp, Co and noncharacters. Unassigned code
/// points (category Cn) would need Unicode tables; they count as printable.
fn is_printable(c: char) -> bool {
    let cp = c as u32;
    let not_printable = matches!(cp,
        // Cc
        0x80..=0x9f
        // Zs (space itself is ASCII and printable), Zl, Zp
        | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
        // Cf
        | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890 | 0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        // Co
        | 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd
        // noncharacters (Cn)
        | 0xfdd0..=0xfdef
    ) || (cp & 0xfffe) == 0xfffe;
    !not_printable
}

/// Python's `str.isspace()`, which `str.rstrip()` and `str.split()` use.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c as u32,
        0x09..=0x0d | 0x1c..=0x20 | 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a
        | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000)
}

/// Python's `str.rstrip()` with no argument.
pub(crate) fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

/// Python's `str.splitlines()`: splits on every line boundary Python knows
/// (`\r\n` counts once) and drops the final empty piece, so `""` has no
/// lines and `"a\n"` has one.
pub(crate) fn splitlines(s: &str) -> Vec<&str> {
    splitlines_keepends(s).into_iter().map(strip_one_terminator).collect()
}

/// Python's `str.splitlines(True)`: the lines with their terminators.
pub(crate) fn splitlines_keepends(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if is_line_boundary(c) {
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = iter.peek() {
                    end = j + 1;
                    iter.next();
                }
            }
            lines.push(&s[start..end]);
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

fn strip_one_terminator(line: &str) -> &str {
    if let Some(rest) = line.strip_suffix("\r\n") {
        return rest;
    }
    match line.chars().next_back() {
        Some(c) if is_line_boundary(c) => &line[..line.len() - c.len_utf8()],
        _ => line,
    }
}

fn is_line_boundary(c: char) -> bool {
    matches!(c as u32, 0x0a..=0x0d | 0x1c..=0x1e | 0x85 | 0x2028 | 0x2029)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (100.0, "100.0"),
            (0.30000000000000004, "0.30000000000000004"),
            (-0.0, "-0.0"),
            (2.675, "2.675"),
        ];
        for (x, want) in cases {
            assert_eq!(repr_float(x), want, "repr({x:?})");
        }
    }

    #[test]
    fn strings_are_quoted_and_escaped_like_python() {
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(repr_str("a\nb\tc\\"), "'a\\nb\\tc\\\\'");
        assert_eq!(repr_str("\x00\x1b\x7f"), "'\\x00\\x1b\\x7f'");
        assert_eq!(repr_str("héllo ✓ 😀"), "'héllo ✓ 😀'");
        assert_eq!(repr_str("\u{a0}\u{200b}\u{85}"), "'\\xa0\\u200b\\x85'");
    }

    #[test]
    fn values_repr_like_python_objects() {
        let v = json!({"minion1": true, "b": [1, 2.5, null, "x"], "c": {}});
        assert_eq!(repr(&v), "{'minion1': True, 'b': [1, 2.5, None, 'x'], 'c': {}}");
        assert_eq!(repr_sorted(&v), "{'b': [1, 2.5, None, 'x'], 'c': {}, 'minion1': True}");
        assert_eq!(str(&json!("bare")), "bare");
        assert_eq!(str(&json!(false)), "False");
    }

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("a\n"), vec!["a"]);
        assert_eq!(splitlines("a\n\nb"), vec!["a", "", "b"]);
        assert_eq!(splitlines("a\r\nb\rc\x0bd"), vec!["a", "b", "c", "d"]);
        assert_eq!(splitlines_keepends("a\r\nb"), vec!["a\r\n", "b"]);
    }

    #[test]
    fn rstrip_uses_python_whitespace() {
        assert_eq!(rstrip("x \n\t\x1c"), "x");
        assert_eq!(rstrip("x\u{3000}"), "x");
        assert_eq!(rstrip("x\x1b[0;0m"), "x\x1b[0;0m");
    }
}
