//! What the mail tests (smtp, highstate) share: the messages an aiosmtpd server saved
//! (saltrs-testkit's `Kind::Smtp`), read with Python's own `email` package (MIME, base64,
//! RFC 2047), and a test CA for STARTTLS.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Reads the files given, prints a JSON map of path to message: the headers (decoded), the
/// body (decoded, LF lines), the raw text, and Salt's default body lines parsed, `return` with
/// `ast.literal_eval` (its Python repr) unless the body was cut.
const READ_MAIL: &str = r#"
import ast, email, json, sys
from email import policy
out = {}
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    msg = email.message_from_bytes(raw, policy=policy.default)
    body = msg.get_content().replace('\r\n', '\n')
    fields, rest = {}, body
    for label in ('id', 'function', 'function args', 'jid'):
        line, _, after = rest.partition('\n')
        if line.startswith(label + ': '):
            fields[label] = line[len(label) + 2:]
            rest = after
    ret, has_return = None, False
    if rest.startswith('return: ') and '\n[cut: ' not in body:
        try:
            ret, has_return = ast.literal_eval(rest[len('return: '):].rstrip('\n')), True
        except Exception:
            pass
    meta = json.load(open(path[:-len('.eml')] + '.json'))
    out[path] = {'headers': [[k, str(v)] for k, v in msg.items()], 'body': body, 'raw': raw.decode('utf-8', 'replace'),
                 'fields': fields, 'return': ret, 'has_return': has_return, 'meta': meta}
json.dump(out, sys.stdout)
"#;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its number: the order the server took them in.
    pub n: u64,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub raw: String,
    /// Salt's default lines (`id`, `function`, `function args`, `jid`) when the body has them.
    pub fields: HashMap<String, String>,
    /// The `return` line's value, when it was Python's repr of one and not cut.
    pub ret: Option<Value>,
    /// The envelope and session: `mail_from`, `rcpt_tos`, `tls`, `login`.
    pub meta: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or_default()
    }
}

/// A server's maildir, each message parsed once.
#[derive(Clone)]
pub struct Mailbox {
    dir: PathBuf,
    parsed: Arc<Mutex<HashMap<u64, Received>>>,
}

impl Mailbox {
    pub fn new(dir: PathBuf) -> Mailbox {
        Mailbox { dir, parsed: Default::default() }
    }

    /// Every message so far, in the order the server took them.
    pub fn all(&self) -> Vec<Received> {
        let mut parsed = self.parsed.lock().unwrap();
        let new: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name.strip_suffix(".eml")?.parse::<u64>().ok()?;
                (!parsed.contains_key(&n)).then(|| (n, e.path()))
            })
            .collect();
        if !new.is_empty() {
            let python = std::env::var("SALTRS_AIOSMTPD_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
            let out = Command::new(python).arg("-c").arg(READ_MAIL).args(new.iter().map(|(_, p)| p)).output().unwrap();
            assert!(out.status.success(), "reading the mail failed: {}", String::from_utf8_lossy(&out.stderr));
            let map: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
            for (n, path) in new {
                let m = &map[path.to_str().unwrap()];
                let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
                parsed.insert(
                    n,
                    Received {
                        n,
                        headers: m["headers"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|h| (h[0].as_str().unwrap().to_string(), h[1].as_str().unwrap().to_string()))
                            .collect(),
                        body: text("body"),
                        raw: text("raw"),
                        fields: m["fields"]
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                            .collect(),
                        ret: m["has_return"].as_bool().unwrap().then(|| m["return"].clone()),
                        meta: m["meta"].clone(),
                    },
                );
            }
        }
        let mut all: Vec<Received> = parsed.values().cloned().collect();
        all.sort_by_key(|m| m.n);
        all
    }

    /// What the sink suite reads: the `return` of each mail for (jid, id), or the body of one
    /// that was cut.
    pub fn returns(&self, jid: &str, id: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|m| m.fields.get("jid").map(String::as_str) == Some(jid) && m.fields.get("id").map(String::as_str) == Some(id))
            .map(|m| m.ret.clone().unwrap_or(Value::String(m.body.clone())))
            .collect()
    }
}

/// An aiosmtpd server started with `args`, or `None` after a skip when it is not installed.
pub fn smtp_server(args: &[String]) -> Option<saltrs_testkit::Server> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    saltrs_testkit::Server::with_args(saltrs_testkit::Kind::Smtp, &args)
}

/// A self-signed certificate for 127.0.0.1 and localhost, and the files the server reads.
pub struct Tls {
    dir: tempfile::TempDir,
}

impl Tls {
    pub fn new() -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), signing_key.serialize_pem()).unwrap();
        Tls { dir }
    }

    /// The certificate, as the store's `ca_file`.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    /// The server's arguments: STARTTLS with this certificate, and these logins required.
    pub fn server_args(&self, users: &[(&str, &str)]) -> Vec<String> {
        let file = self.dir.path().join("users");
        std::fs::write(&file, users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect::<String>()).unwrap();
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        vec!["--tls-cert".into(), path("cert.pem"), "--tls-key".into(), path("key.pem"), "--users".into(), file.display().to_string()]
    }
}

/// The mail server as the sink suite drives it: stopped and started, and told to refuse the
/// next mail with `reply` (whose words `saltrs-test-refusal` the dead letter must hold).
pub struct Relay {
    pub server: crate::suite::sink::ServerService,
    pub reply: &'static str,
}

#[async_trait::async_trait]
impl crate::suite::sink::ServiceControl for Relay {
    async fn down(&self) {
        self.server.down().await
    }
    async fn up(&self) {
        self.server.up().await
    }
    async fn refuse_next(&self) -> Option<String> {
        self.server.0.lock().unwrap().smtp_refuse_next(self.reply).unwrap();
        Some("saltrs-test-refusal".into())
    }
}
