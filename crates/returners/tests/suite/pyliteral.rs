//! Reads back what Python's `repr()`, `str()` of a container, or `pprint.pformat` wrote (the
//! `return:` line of Salt's notification text), as JSON: for the tests of the stores that send
//! a return as text. Dicts, lists, tuples, strings (both quotes, escapes, adjacent literals as
//! pformat splits long ones), numbers, `True`, `False`, `None`.

use serde_json::{Map, Number, Value};

/// The value `text` shows, or where it cannot be read.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser { s: text.as_bytes(), at: 0, text };
    let v = p.value()?;
    p.skip_ws();
    if p.at != p.s.len() {
        return Err(format!("trailing text at {}: {:?}", p.at, &text[p.at..text.len().min(p.at + 40)]));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", b as char, self.at))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek().ok_or("unexpected end")? {
            b'{' => {
                self.at += 1;
                let mut map = Map::new();
                while self.peek() != Some(b'}') {
                    let key = match self.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.expect(b':')?;
                    map.insert(key, self.value()?);
                    if self.peek() == Some(b',') {
                        self.at += 1;
                    }
                }
                self.at += 1;
                Ok(Value::Object(map))
            }
            open @ (b'[' | b'(') => {
                self.at += 1;
                let close = if open == b'[' { b']' } else { b')' };
                let mut items = Vec::new();
                let mut comma = false;
                while self.peek() != Some(close) {
                    items.push(self.value()?);
                    comma = self.peek() == Some(b',');
                    if comma {
                        self.at += 1;
                    }
                }
                self.at += 1;
                // `('aaa' 'bbb')`: pformat's parentheses around a split string.
                if open == b'(' && items.len() == 1 && !comma && items[0].is_string() {
                    return Ok(items.pop().unwrap());
                }
                Ok(Value::Array(items))
            }
            b'\'' | b'"' => {
                let mut s = self.string()?;
                while matches!(self.peek(), Some(b'\'' | b'"')) {
                    s.push_str(&self.string()?);
                }
                Ok(Value::String(s))
            }
            _ => {
                let start = self.at;
                while self.at < self.s.len() && !b",:]})\r\n ".contains(&self.s[self.at]) {
                    self.at += 1;
                }
                let word = &self.text[start..self.at];
                match word {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::Null),
                    _ => {
                        if let Ok(n) = word.parse::<i64>() {
                            Ok(Value::Number(n.into()))
                        } else if let Ok(n) = word.parse::<u64>() {
                            Ok(Value::Number(n.into()))
                        } else {
                            word.parse::<f64>()
                                .ok()
                                .and_then(Number::from_f64)
                                .map(Value::Number)
                                .ok_or_else(|| format!("cannot read {word:?} at {start}"))
                        }
                    }
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.at];
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let c = rest.chars().next().ok_or("an unterminated string")?;
            self.at += c.len_utf8();
            match c {
                c if c as u32 == quote as u32 => return Ok(out),
                '\\' => {
                    let e = self.text[self.at..].chars().next().ok_or("an unterminated escape")?;
                    self.at += e.len_utf8();
                    let mut hex = |n: usize| -> Result<char, String> {
                        let h = self.text.get(self.at..self.at + n).ok_or("a short escape")?;
                        self.at += n;
                        u32::from_str_radix(h, 16).ok().and_then(char::from_u32).ok_or_else(|| format!("a bad escape {h}"))
                    };
                    out.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'x' => hex(2)?,
                        'u' => hex(4)?,
                        'U' => hex(8)?,
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }
}

#[test]
fn reads_back_pythons_text() {
    let v = parse("{'a': [True, None, 1.5, -7], 'b': ('aaa'\n 'bbb'), \"it's\": 'x\\'y\\\\z\\n\\xe9', 'e': '😀'}").unwrap();
    assert_eq!(v, serde_json::json!({"a": [true, null, 1.5, -7], "b": "aaabbb", "it's": "x'y\\z\né", "e": "😀"}));
}
