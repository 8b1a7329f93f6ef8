//! What the tests of the message returners (telegram, pushover, hipchat) share: reading Salt's
//! text of a return (`id: ...`, `function: ...`, `function args: ...`, `jid: ...`,
//! `return: ...` lines) back to the `return` value.

use serde_json::{Map, Number, Value};

/// The `return` values of the messages in `texts` that are the return of `id` for `jid`, in
/// order. A message that says it was cut gives its whole text (as the sink suite expects).
pub fn returns_in(texts: impl IntoIterator<Item = String>, jid: &str, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for text in texts {
        let Some(rest) = text.strip_prefix(&format!("id: {id}\r\n")) else { continue };
        let jid_line = format!("\r\njid: {jid}\r\nreturn: ");
        let Some(at) = rest.find(&jid_line) else { continue };
        if text.contains("\n[cut: ") {
            out.push(Value::String(text.clone()));
            continue;
        }
        let shown = &rest[at + jid_line.len()..];
        let shown = shown.strip_suffix("\r\n").unwrap_or(shown);
        out.push(python_value(shown));
    }
    out
}

/// The value Python's `str()` or `pprint.pformat` showed as `shown`: a literal (a dict, a
/// list, a quoted string, a number, `True`, `False`, `None`), else the text itself (`str()` of
/// a string is the string).
pub fn python_value(shown: &str) -> Value {
    let mut p = Parser { s: shown.as_bytes(), at: 0 };
    match p.value() {
        Some(v) if p.end() => v,
        _ => Value::String(shown.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn end(&mut self) -> bool {
        self.skip_space();
        self.at == self.s.len()
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.s[self.at..].starts_with(token.as_bytes()) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.s.get(self.at).copied()
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut map = Map::new();
                if self.eat("}") {
                    return Some(Value::Object(map));
                }
                loop {
                    let Value::String(key) = self.value()? else { return None };
                    if !self.eat(":") {
                        return None;
                    }
                    map.insert(key, self.value()?);
                    if self.eat("}") {
                        return Some(Value::Object(map));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat("]") {
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.eat("]") {
                        return Some(Value::Array(items));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            // pprint wraps a long string in parentheses, split into adjacent literals.
            b'(' => {
                self.at += 1;
                let v = self.value()?;
                self.eat(")").then_some(v)
            }
            b'\'' | b'"' => {
                let mut text = self.string()?;
                while matches!(self.peek(), Some(b'\'' | b'"')) {
                    text.push_str(&self.string()?);
                }
                Some(Value::String(text))
            }
            _ if self.eat("True") => Some(Value::Bool(true)),
            _ if self.eat("False") => Some(Value::Bool(false)),
            _ if self.eat("None") => Some(Value::Null),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while self.at < self.s.len() && (self.s[self.at].is_ascii_alphanumeric() || b"+-.".contains(&self.s[self.at])) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        if let Ok(n) = text.parse::<i64>() {
            return Some(Value::Number(n.into()));
        }
        text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
    }

    /// A quoted literal with Python's escapes.
    fn string(&mut self) -> Option<String> {
        let quote = self.s[self.at];
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.at)?;
            self.at += 1;
            match b {
                b if b == quote => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.at)?;
                    self.at += 1;
                    let hex = |p: &mut Self, n: usize| -> Option<char> {
                        let digits = std::str::from_utf8(p.s.get(p.at..p.at + n)?).ok()?;
                        p.at += n;
                        char::from_u32(u32::from_str_radix(digits, 16).ok()?)
                    };
                    let c = match e {
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'\\' => '\\',
                        b'\'' => '\'',
                        b'"' => '"',
                        b'x' => hex(self, 2)?,
                        b'u' => hex(self, 4)?,
                        b'U' => hex(self, 8)?,
                        _ => return None,
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                b => out.push(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals_read_back() {
        assert_eq!(python_value("{'a': [None, True, 1.5, -7], 'b\\'c': \"it's\"}"), json!({"a": [null, true, 1.5, -7], "b'c": "it's"}));
        assert_eq!(python_value("up 3 days"), json!("up 3 days"));
        assert_eq!(python_value("('aaa '\n 'bbb')"), json!("aaa bbb"));
        assert_eq!(python_value("{'x': '\\x00\\n😀'}"), json!({"x": "\u{0}\n😀"}));
        let text = "id: m1\r\nfunction: f\r\nfunction args: []\r\njid: 1\r\nreturn: {'n': 1}\r\n".to_string();
        assert_eq!(returns_in([text.clone(), text], "1", "m1"), [json!({"n": 1}), json!({"n": 1})]);
    }
}
