//! Pure: a return to the mail Salt's smtp returner writes, and the mail text itself (shared
//! with highstate).
//!
//! Salt renders the subject and the body with Jinja, the return's keys as the variables; its
//! default body is `id`, `function`, `function args`, `jid` and `return` lines. Values print as
//! Python's `str()` shows them (`['echo hi']`, `True`, `None`) here too: the one formatter of
//! [`Renderer`] does it for every `{{ value }}`.

use std::sync::Arc;

use base64::Engine;
use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde_json::Value;

use salt_targeting::pystr::py_str;

use crate::notify;
use crate::Load;

/// The longest subject sent (more is cut, saying so): a field such as `return` can be huge.
pub(crate) const MAX_SUBJECT_BYTES: usize = 900;
/// SMTP's limit on a line, without its CRLF (RFC 5321 4.5.3.1.6): a body with a longer line
/// goes in base64.
const MAX_LINE: usize = 998;

/// Salt's Jinja: no autoescaping, an undefined value prints nothing, every other value as
/// Python's `str()` shows it.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(|out, _state, value| {
        if value.is_undefined() {
            return Ok(());
        }
        if let Some(text) = value.as_str() {
            return Ok(out.write_str(text)?);
        }
        let json = serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
        Ok(out.write_str(&py_str(&json))?)
    });
    env
}

/// Whether `text` is a template Jinja can compile (the error says where it is not).
pub(crate) fn check_template(text: &str) -> Result<(), String> {
    environment().template_from_str(text).map(drop).map_err(|e| e.to_string())
}

/// The subject and body templates of one store, compiled once.
pub(crate) struct Renderer {
    env: Environment<'static>,
    fields: Vec<String>,
    has_body: bool,
}

impl Renderer {
    /// `subject` (a template), the return keys added to it, and a body template (`None`:
    /// Salt's default lines). The texts were checked by [`check_template`].
    pub(crate) fn new(subject: &str, fields: &[String], body: Option<Arc<str>>) -> Result<Renderer, String> {
        let mut env = environment();
        env.add_template_owned("subject", subject.to_string()).map_err(|e| e.to_string())?;
        let has_body = body.is_some();
        if let Some(body) = body {
            env.add_template_owned("body", body.to_string()).map_err(|e| format!("the template: {e}"))?;
        }
        Ok(Renderer { env, fields: fields.to_vec(), has_body })
    }

    fn render(&self, name: &str, ret: &Load) -> Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| e.to_string())?;
        template.render(minijinja::Value::from_serialize(ret)).map_err(|e| format!("rendering the {name} failed: {e}"))
    }

    /// The subject template rendered, then the value of each of `fields` the return has
    /// (Salt's `subject += " {}".format(ret[field])`), on one line, cut to
    /// [`MAX_SUBJECT_BYTES`].
    pub(crate) fn subject(&self, ret: &Load) -> Result<String, String> {
        let mut subject = self.render("subject", ret)?;
        for field in &self.fields {
            if let Some(value) = ret.get(field) {
                subject.push(' ');
                subject.push_str(&py_str(value));
            }
        }
        Ok(one_line(&notify::cut(&subject, MAX_SUBJECT_BYTES)))
    }

    /// The body: the template rendered, or Salt's default lines.
    pub(crate) fn body(&self, ret: &Load) -> Result<String, String> {
        if self.has_body {
            self.render("body", ret)
        } else {
            Ok(notify::salt_lines(ret, "\n"))
        }
    }
}

/// A header value on one line (a line break in it would start another header).
fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A header's value as mail carries it: on one line; non-ASCII text as RFC 2047 encoded words
/// (UTF-8, base64), each within its 75 characters, folded onto lines of their own.
fn header_value(text: &str) -> String {
    let text = one_line(text);
    if text.is_ascii() {
        return text;
    }
    // 45 bytes of UTF-8 make 60 of base64: with `=?utf-8?b?` and `?=`, 72.
    let mut words = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(45);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(&rest.as_bytes()[..end])));
        rest = &rest[end..];
    }
    words.join("\r\n ")
}

/// The `Date` header's value, as Python's `email.utils.formatdate(localtime=True)` writes it.
pub(crate) fn date_now() -> String {
    chrono::Local::now().format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// A mail's text (CRLF lines, not yet dot-stuffed): `headers` in order, then the body.
///
/// A body of ASCII in short lines goes as it is, after `mime` headers only if given
/// (`Some("html")`: `text/html`, as highstate's `MIMEText` says). Any other body (UTF-8, a line
/// longer than SMTP takes) goes in base64 with the MIME headers that say so, `text/plain`
/// when `mime` is `None`: Salt sent such bodies raw, which smtplib refuses (non-ASCII) or
/// servers cut (long lines).
pub(crate) fn message(headers: &[(&str, &str)], mime: Option<&str>, body: &str) -> Vec<u8> {
    let body = body.replace("\r\n", "\n");
    let plain = body.is_ascii() && body.lines().all(|l| l.len() <= MAX_LINE);
    let mut out = String::with_capacity(body.len() * 4 / 3 + 512);
    for (name, value) in headers {
        out.push_str(&format!("{name}: {}\r\n", header_value(value)));
    }
    if mime.is_some() || !plain {
        let (subtype, charset) = (mime.unwrap_or("plain"), if body.is_ascii() { "us-ascii" } else { "utf-8" });
        out.push_str(&format!("MIME-Version: 1.0\r\nContent-Type: text/{subtype}; charset=\"{charset}\"\r\n"));
        out.push_str(if plain { "Content-Transfer-Encoding: 7bit\r\n" } else { "Content-Transfer-Encoding: base64\r\n" });
    }
    out.push_str("\r\n");
    if plain {
        out.push_str(&body.replace('\n', "\r\n"));
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(body.replace('\n', "\r\n"));
        for line in encoded.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push_str("\r\n");
        }
    }
    out.into_bytes()
}

/// The ret a mail is made of: `event_return` passes each event's `data`, as Salt does; data
/// that is not a map cannot fill a template.
pub(crate) fn event_data(data: &Value) -> Result<Option<&Load>, String> {
    match data {
        Value::Object(map) if !map.is_empty() => Ok(Some(map)),
        // Salt sends nothing for an event whose data is empty.
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Object(_) => Ok(None),
        other => Err(format!("an event's data is not a map, so it cannot fill the mail's template: {}", py_str(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ret() -> Load {
        json!({"id": "web1", "fun": "cmd.run", "fun_args": ["echo hi"], "jid": "20261201120000000001",
               "return": {"ok": true, "n": null}, "retcode": 0})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn salts_default_body_and_subject_with_fields() {
        let r = Renderer::new("Email from Salt", &["id".into(), "fun".into(), "missing".into()], None).unwrap();
        assert_eq!(r.subject(&ret()).unwrap(), "Email from Salt web1 cmd.run");
        assert_eq!(
            r.body(&ret()).unwrap(),
            "id: web1\nfunction: cmd.run\nfunction args: ['echo hi']\njid: 20261201120000000001\nreturn: {'ok': True, 'n': None}\n"
        );
    }

    #[test]
    fn templates_see_the_return_and_print_values_as_python() {
        let body = "{{ id }} ran {{ fun }} {{ fun_args }}: {{ return }}; ok={{ return.ok }} {{ nothing }}|{{ return|tojson }}\n\
                    {% for k, v in return|items %}{{ k }}={{ v }};{% endfor %}";
        let r = Renderer::new("[{{ id }}] {{ fun }}", &["retcode".into()], Some(body.into())).unwrap();
        assert_eq!(r.subject(&ret()).unwrap(), "[web1] cmd.run 0");
        assert_eq!(
            r.body(&ret()).unwrap(),
            "web1 ran cmd.run ['echo hi']: {'ok': True, 'n': None}; ok=True |{\"ok\":true,\"n\":null}\nok=True;n=None;"
        );
        let bad = Renderer::new("s", &[], Some("{{ no_such_function() }}".into())).unwrap();
        assert!(bad.body(&ret()).unwrap_err().contains("rendering the body failed"));
        assert!(check_template("{% if %}").is_err());
    }

    #[test]
    fn a_subject_stays_on_one_line_and_within_bounds() {
        let mut r = ret();
        r.insert("fun".into(), json!("evil\r\nBcc: everyone@example.com"));
        r.insert("return".into(), json!("x".repeat(5000)));
        let s = Renderer::new("s", &["fun".into(), "return".into()], None).unwrap().subject(&r).unwrap();
        assert!(!s.contains('\n') && !s.contains('\r') && s.len() <= MAX_SUBJECT_BYTES, "{s}");
        assert!(s.starts_with("s evil Bcc: everyone@example.com xxx") && s.contains("[cut: "), "{s}");
    }

    #[test]
    fn ascii_mail_is_salts_plain_text_and_the_rest_is_base64() {
        let headers =
            [("From", "f@x"), ("To", "a@x, b@x"), ("Date", "Tue, 01 Dec 2026 12:00:00 +0000"), ("Subject", "Email from Salt web1")];
        let text = String::from_utf8(message(&headers, None, "id: web1\nreturn: True\n")).unwrap();
        assert_eq!(
            text,
            "From: f@x\r\nTo: a@x, b@x\r\nDate: Tue, 01 Dec 2026 12:00:00 +0000\r\nSubject: Email from Salt web1\r\n\r\nid: web1\r\nreturn: True\r\n"
        );
        let text = String::from_utf8(message(&[("Subject", "✓ 日本語")], None, "emoji 😀\n")).unwrap();
        assert!(text.starts_with("Subject: =?utf-8?b?4pyTIOaXpeacrOiqng==?=\r\nMIME-Version: 1.0\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZW1vamkg8J+YgA0K\r\n"),
            "{text}"
        );
        let long = format!("return: {}\n", "x".repeat(2000));
        let text = String::from_utf8(message(&[], None, &long)).unwrap();
        assert!(
            text.contains("charset=\"us-ascii\"\r\nContent-Transfer-Encoding: base64") && text.lines().all(|l| l.len() <= 76),
            "{text}"
        );
        let html = String::from_utf8(message(&[("Subject", "s")], Some("html"), "<html></html>\n")).unwrap();
        assert!(html.contains("Content-Type: text/html; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<html></html>\r\n"));
    }

    #[test]
    fn a_long_non_ascii_subject_is_folded_into_encoded_words() {
        let v = header_value(&"日本語".repeat(30));
        assert!(v.lines().all(|l| l.trim_start().len() <= 75 && l.trim_start().starts_with("=?utf-8?b?")), "{v}");
    }
}
