//! The `smtp` options, with Salt's names and defaults (`smtp_return.py`), looked up as for every
//! returner (flat `smtp.*`, nested `smtp: {...}`, `alternative.smtp.*` with `--return_config`,
//! `--return_kwargs`):
//!
//! - `from`, `to` (a comma list, or a list), `host`: required;
//! - `port` (25), `username`, `password` (never shown), `tls` (false: STARTTLS when true);
//! - `subject` ("Email from Salt"), `fields` (a comma list of return keys whose values are
//!   added to the subject), `template` (a file, rendered with Jinja), `renderer` (`jinja`, the
//!   only one there is here);
//! - `gpgowner`: OpenPGP encryption, which this returner does not do: set, it is an error at
//!   start-up (Salt without python-gnupg sent the mail in clear, silently);
//! - ours: `ca_file`, a PEM file of the certificates to trust for STARTTLS instead of the
//!   system's (a relay with a private CA).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::options::{opt_set, opt_str, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_PORT: u16 = 25;
pub const DEFAULT_SUBJECT: &str = "Email from Salt";

const ATTRS: &[&str] =
    &["from", "to", "host", "port", "username", "password", "tls", "subject", "fields", "template", "renderer", "gpgowner", "ca_file"];

/// Where mail goes and how to log in: what smtp and highstate share.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    /// STARTTLS before anything else is said (Salt's `tls: True`).
    pub starttls: bool,
    pub username: Option<String>,
    /// Never shown: it prints redacted, and the server's answers are scrubbed of it.
    pub password: Secret,
    /// PEM certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub relay: RelayConfig,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub fields: Vec<String>,
    /// The template file's path and text (read at start-up), or Salt's default body.
    pub template: Option<(PathBuf, Arc<str>)>,
}

impl SmtpConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<SmtpConfig> {
        let o = lookup.options(super::NAME, ATTRS, &[]);
        let required =
            |key: &str| opt_set(&o, key).ok_or_else(|| ReturnerError::Invalid(format!("smtp.{key} is not set (it is required)")));
        if let Some(owner) = opt_set(&o, "gpgowner") {
            return Err(ReturnerError::Invalid(format!(
                "smtp.gpgowner is set ({owner}), but this returner does not encrypt mail with OpenPGP; unset it, or the mail would go in clear"
            )));
        }
        match opt_set(&o, "renderer").as_deref() {
            None | Some("jinja") => {}
            Some(other) => {
                return Err(ReturnerError::Invalid(format!(
                    "smtp.renderer {other:?} is not supported: templates are rendered with jinja only"
                )))
            }
        }
        let template = match opt_set(&o, "template") {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ReturnerError::Invalid(format!("smtp.template {path}: cannot read it: {e}")))?;
                super::encode::check_template(&text).map_err(|e| ReturnerError::Invalid(format!("smtp.template {path}: {e}")))?;
                Some((PathBuf::from(path), Arc::from(text)))
            }
        };
        let subject = opt_set(&o, "subject").unwrap_or_else(|| DEFAULT_SUBJECT.into());
        super::encode::check_template(&subject).map_err(|e| ReturnerError::Invalid(format!("smtp.subject: {e}")))?;
        let to = addresses(o.get("to"));
        if to.is_empty() {
            return Err(ReturnerError::Invalid("smtp.to is not set (it is required): a comma list of addresses".into()));
        }
        Ok(SmtpConfig {
            relay: RelayConfig::read(&o, "", &required("host")?)?,
            from: required("from")?,
            to,
            subject,
            fields: opt_str(&o, "fields").map(|f| comma_list(&f)).unwrap_or_default(),
            template,
        })
    }
}

impl RelayConfig {
    /// The relay at `host` with the options `<prefix>port`, `<prefix>tls`, `<prefix>username`,
    /// `<prefix>password` and `<prefix>ca_file` of `o` (smtp's have no prefix, highstate's
    /// `smtp_`).
    pub(crate) fn read(o: &Map<String, Value>, prefix: &str, host: &str) -> Result<RelayConfig> {
        let key = |k: &str| format!("{prefix}{k}");
        let port = match opt_set(o, &key("port")) {
            None => DEFAULT_PORT,
            // 0: smtplib's default (highstate's `smtp_port` defaults to it).
            Some(p) => match p.trim().parse::<u16>() {
                Ok(0) => DEFAULT_PORT,
                Ok(port) => port,
                Err(_) => return Err(ReturnerError::Invalid(format!("{}: {p:?} is not a port number", key("port")))),
            },
        };
        let username = opt_set(o, &key("username"));
        let password = Secret::new(opt_set(o, &key("password")).unwrap_or_default());
        Ok(RelayConfig {
            host: host.trim().to_string(),
            port,
            starttls: o.get(&key("tls")).is_some_and(is_true),
            username,
            password,
            ca_file: opt_set(o, &key("ca_file")).map(PathBuf::from),
        })
    }

    /// `host:port`, as errors name the relay.
    pub fn at(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Salt logs in when both are set.
    pub fn login(&self) -> Option<(&str, &Secret)> {
        self.username.as_deref().filter(|_| !self.password.is_empty()).map(|u| (u, &self.password))
    }
}

/// Salt tests `tls is True`: YAML's `true`. A string that says so counts too (a
/// `--return_kwargs` value is often one).
fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"),
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// `"a@x, b@y"` or `["a@x", "b@y"]`: the addresses, trimmed, empty ones left out.
pub(crate) fn addresses(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => comma_list(s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).flat_map(comma_list).collect(),
        _ => Vec::new(),
    }
}

fn comma_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> Result<SmtpConfig> {
        SmtpConfig::from_lookup(&Lookup::new(v.as_object().unwrap()))
    }

    #[test]
    fn salts_names_and_defaults() {
        let c = config(json!({"smtp.from": "salt@example.com", "smtp.to": "a@example.com, b@example.com", "smtp.host": "mail"})).unwrap();
        assert_eq!((c.relay.host.as_str(), c.relay.port, c.relay.starttls), ("mail", 25, false));
        assert_eq!(c.to, ["a@example.com", "b@example.com"]);
        assert_eq!((c.subject.as_str(), c.fields.len(), c.template.is_none()), ("Email from Salt", 0, true));
        assert!(c.relay.login().is_none());
        let c = config(json!({"smtp": {"from": "f@x", "to": ["t@x"], "host": "h", "port": "2525", "tls": true,
                                        "username": "u", "password": "hunter2", "fields": "id,fun"}}))
        .unwrap();
        assert_eq!((c.relay.port, c.relay.starttls, c.fields.clone()), (2525, true, vec!["id".to_string(), "fun".into()]));
        assert_eq!(c.relay.login().map(|(u, p)| (u, p.expose())), Some(("u", "hunter2")));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn what_cannot_work_is_said_at_start_up() {
        for (v, says) in [
            (json!({"smtp.to": "t@x", "smtp.host": "h"}), "smtp.from is not set"),
            (json!({"smtp.from": "f@x", "smtp.host": "h"}), "smtp.to is not set"),
            (json!({"smtp.from": "f@x", "smtp.to": "t@x"}), "smtp.host is not set"),
            (json!({"smtp.from": "f@x", "smtp.to": "t@x", "smtp.host": "h", "smtp.port": "smtp"}), "not a port"),
            (json!({"smtp.from": "f@x", "smtp.to": "t@x", "smtp.host": "h", "smtp.gpgowner": "root"}), "does not encrypt"),
            (json!({"smtp.from": "f@x", "smtp.to": "t@x", "smtp.host": "h", "smtp.renderer": "mako"}), "jinja only"),
            (json!({"smtp.from": "f@x", "smtp.to": "t@x", "smtp.host": "h", "smtp.template": "/nonexistent.j2"}), "cannot read"),
            (json!({"smtp.from": "f@x", "smtp.to": "t@x", "smtp.host": "h", "smtp.subject": "{% if %}"}), "smtp.subject"),
        ] {
            let err = config(v.clone()).unwrap_err().to_string();
            assert!(err.contains(says), "{v}: {err}");
        }
    }
}
