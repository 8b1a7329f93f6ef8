//! `local`: what it prints, read back. The sink suite runs on a store printing into a buffer
//! (the same code as on standard output), whose lines are parsed back from Python's repr by the
//! small parser below; then the exact text of a return and of an event, and that stdout is
//! where it prints by default (a child process's output).

// A store that keeps no jobs uses the sink suite alone.
#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;

use std::io::Write;
use std::sync::{Arc, Mutex};

use salt_returners::local::Local;
use salt_returners::{Event, Load, Sink};
use serde_json::{json, Map, Number, Value};
use suite::sink::SinkBackend;

/// A buffer the store prints into, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("printed text is UTF-8")
    }
}

/// Python's repr of a dict, list, str, int, float, bool or None, back to JSON: enough to read
/// what `print(ret)` printed.
struct PyRepr<'a> {
    s: &'a str,
    at: usize,
}

impl PyRepr<'_> {
    fn parse(text: &str) -> Value {
        let mut p = PyRepr { s: text, at: 0 };
        let v = p.value();
        assert_eq!(p.at, p.s.len(), "trailing text after the value: {:.100}", &text[p.at..]);
        v
    }

    fn peek(&self) -> u8 {
        *self.s.as_bytes().get(self.at).unwrap_or_else(|| panic!("the text ends early"))
    }

    fn eat(&mut self, token: &str) -> bool {
        let hit = self.s[self.at..].starts_with(token);
        if hit {
            self.at += token.len();
        }
        hit
    }

    fn expect(&mut self, token: &str) {
        assert!(self.eat(token), "expected {token:?} at {}", self.at);
    }

    fn value(&mut self) -> Value {
        match self.peek() {
            b'{' => {
                self.at += 1;
                let mut map = Map::new();
                while !self.eat("}") {
                    if !map.is_empty() {
                        self.expect(", ");
                    }
                    let Value::String(key) = self.value() else { panic!("a non-string key") };
                    self.expect(": ");
                    map.insert(key, self.value());
                }
                Value::Object(map)
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                while !self.eat("]") {
                    if !items.is_empty() {
                        self.expect(", ");
                    }
                    items.push(self.value());
                }
                Value::Array(items)
            }
            b'\'' | b'"' => Value::String(self.string()),
            _ if self.eat("True") => Value::Bool(true),
            _ if self.eat("False") => Value::Bool(false),
            _ if self.eat("None") => Value::Null,
            _ => self.number(),
        }
    }

    fn string(&mut self) -> String {
        let quote = self.peek() as char;
        self.at += 1;
        let text = &self.s[self.at..];
        let mut chars = text.char_indices();
        let mut out = String::new();
        let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| {
            let digits: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
            char::from_u32(u32::from_str_radix(&digits, 16).unwrap()).unwrap()
        };
        loop {
            let (i, c) = chars.next().expect("an unterminated string");
            match c {
                c if c == quote => {
                    self.at += i + 1;
                    return out;
                }
                '\\' => {
                    let (_, e) = chars.next().unwrap();
                    out.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'x' => hex(&mut chars, 2),
                        'u' => hex(&mut chars, 4),
                        'U' => hex(&mut chars, 8),
                        other => other, // \\ \' \"
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Value {
        let start = self.at;
        while self.at < self.s.len() && matches!(self.s.as_bytes()[self.at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            self.at += 1;
        }
        let text = &self.s[start..self.at];
        match text.parse::<i64>() {
            Ok(n) => Value::Number(n.into()),
            Err(_) => Value::Number(Number::from_f64(text.parse().unwrap_or_else(|_| panic!("not a number: {text:?}"))).unwrap()),
        }
    }
}

/// Every line printed so far, parsed back.
fn printed(out: &Captured) -> Vec<Value> {
    out.text().lines().map(PyRepr::parse).collect()
}

async fn open_local() -> Option<SinkBackend> {
    let out = Captured::default();
    let store: Arc<dyn Sink> = Arc::new(Local::printing_to(out.clone()));
    let read: suite::sink::Reader = Box::new(move |jid, id| {
        let out = out.clone();
        Box::pin(async move {
            printed(&out).into_iter().filter(|l| l["jid"] == jid.as_str() && l["id"] == id.as_str()).map(|l| l["return"].clone()).collect()
        })
    });
    Some(SinkBackend::new(store, read, ()))
}

sink_conformance!(local, open_local);

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn a_return_and_an_event_print_as_salts_print() {
    let out = Captured::default();
    let store = Local::printing_to(out.clone());
    let ret = obj(json!({"success": true, "return": {"it's": "a \"quote\"", "n": [1, 2.5, 1e20, null]}, "retcode": 0,
                         "jid": "20261201120000000001", "fun": "test.echo", "fun_args": ["日本 😀"], "user": "root", "id": "web1"}));
    store.returner(&ret).await.unwrap();
    let ev = Event { tag: "salt/auth".into(), data: json!({"_stamp": "2026-12-01T12:00:00.000001", "act": "accept", "result": true}) };
    store.event_return(&[ev.clone(), Event { tag: "salt/key".into(), data: json!({}) }]).await.unwrap();
    assert_eq!(
        out.text(),
        "{'success': True, 'return': {\"it's\": 'a \"quote\"', 'n': [1, 2.5, 1e+20, None]}, 'retcode': 0, \
         'jid': '20261201120000000001', 'fun': 'test.echo', 'fun_args': ['日本 😀'], 'user': 'root', 'id': 'web1'}\n\
         [{'data': {'_stamp': '2026-12-01T12:00:00.000001', 'act': 'accept', 'result': True}, 'tag': 'salt/auth'}]\n\
         [{'data': {}, 'tag': 'salt/key'}]\n"
    );
    assert_eq!(printed(&out)[0], Value::Object(ret), "and it parses back, in the return's own order");
}

/// Python itself reads the printed line as the same dict (skipped without python3).
#[tokio::test]
async fn python_reads_the_line_back_as_the_return() {
    let out = Captured::default();
    let store = Local::printing_to(out.clone());
    let ret = obj(json!({"return": {"a\\b": "tab\there", "ctl": "\u{1}\u{7f}", "q": "'\"", "f": [0.1, -0.0001, 123456789.5]},
                         "jid": "20261201120000000001", "id": "web1"}));
    store.returner(&ret).await.unwrap();
    let script = "import ast,json,sys\nprint(json.dumps(ast.literal_eval(sys.stdin.read())))";
    let child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        saltrs_testkit::skip("python3 is needed to read the printed line back with Python");
        return;
    };
    child.stdin.take().unwrap().write_all(out.text().as_bytes()).unwrap();
    let got = child.wait_with_output().unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&got.stdout).unwrap(), Value::Object(ret));
}

/// By default it prints on the process's standard output: this test binary, run again as a
/// child that only prints, and its output read.
#[tokio::test]
async fn it_prints_on_standard_output() {
    if std::env::var_os("LOCAL_RETURNER_CHILD").is_some() {
        let opts = Map::new();
        let store = salt_returners::open_sink("local", &salt_returners::options::Lookup::new(&opts)).await.unwrap();
        store.returner(&obj(json!({"return": true, "jid": "20261201120000000001", "id": "child"}))).await.unwrap();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "it_prints_on_standard_output", "--nocapture", "--test-threads", "1"])
        .env("LOCAL_RETURNER_CHILD", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The test harness prints its own words on the same output, around the line.
    assert!(stdout.contains("{'return': True, 'jid': '20261201120000000001', 'id': 'child'}\n"), "{stdout}");
}
