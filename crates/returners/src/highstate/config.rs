//! The `highstate` options, with Salt's names and defaults (`highstate_return.py`), looked up
//! as for every returner: `highstate.*`, nested `highstate: {...}`, or `<name>.highstate` with
//! `--return_config <name>`, and `--return_kwargs`:
//!
//! - `report_everything` (false), `report_changes` (true), `report_failures` (true): when a
//!   report is made;
//! - `report_format`: `yaml` (the default), `json` or `html`;
//! - `report_delivery`: `file` (the default: `file_output`, default `/tmp/test.rpt`) or
//!   `smtp`: `smtp_sender`, `smtp_recipients` (a comma list), `smtp_server`, `smtp_port` (25),
//!   `smtp_tls`, `smtp_username`, `smtp_password`, `smtp_success_subject` ("Installation
//!   success"), `smtp_failure_subject` ("Installation failure"); ours: `smtp_ca_file`;
//! - `{grain}` in `file_output` and the subjects is the minion's grain (`{id}`, `{host}`);
//! - `success_function`, `failure_function` (a Salt function run for the report's `extra`):
//!   not supported here, an error at start-up.

use std::path::PathBuf;

use serde_json::Value;

use crate::options::{opt_set, Lookup};
use crate::smtp::config::{addresses, RelayConfig};
use crate::{Result, ReturnerError};

pub const DEFAULT_FILE_OUTPUT: &str = "/tmp/test.rpt";
pub const DEFAULT_SUCCESS_SUBJECT: &str = "Installation success";
pub const DEFAULT_FAILURE_SUBJECT: &str = "Installation failure";

const ATTRS: &[&str] = &[
    "report_everything",
    "report_changes",
    "report_failures",
    "failure_function",
    "success_function",
    "report_format",
    "report_delivery",
    "file_output",
    "smtp_sender",
    "smtp_recipients",
    "smtp_failure_subject",
    "smtp_success_subject",
    "smtp_server",
    "smtp_port",
    "smtp_tls",
    "smtp_username",
    "smtp_password",
    "smtp_ca_file",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Html,
}

impl Format {
    /// The MIME subtype Salt's `MIMEText(report, report_format)` gives the mail.
    pub fn subtype(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

/// Where the report goes.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A file, its name with `{grain}`s.
    File(String),
    Smtp(MailConfig),
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub relay: RelayConfig,
    pub sender: String,
    /// As given, for the `To` header.
    pub recipients_text: String,
    pub recipients: Vec<String>,
    pub success_subject: String,
    pub failure_subject: String,
}

#[derive(Debug, Clone)]
pub struct HighstateConfig {
    pub report_everything: bool,
    pub report_changes: bool,
    pub report_failures: bool,
    pub format: Format,
    pub delivery: Delivery,
}

impl HighstateConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<HighstateConfig> {
        let o = lookup.options(super::NAME, ATTRS, &[]);
        for key in ["success_function", "failure_function"] {
            if let Some(function) = opt_set(&o, key) {
                return Err(ReturnerError::Invalid(format!(
                    "highstate.{key} is set ({function}), but this returner cannot run a Salt function for the report; unset it"
                )));
            }
        }
        let flag = |key: &str, default: bool| o.get(key).map_or(default, is_true);
        let format = match opt_set(&o, "report_format").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("yaml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("html") => Format::Html,
            Some(other) => return Err(ReturnerError::Invalid(format!("highstate.report_format {other:?}: html, json or yaml"))),
        };
        let delivery = match opt_set(&o, "report_delivery").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("file") => Delivery::File(opt_set(&o, "file_output").unwrap_or_else(|| DEFAULT_FILE_OUTPUT.into())),
            Some("smtp") => {
                let required = |key: &str| {
                    opt_set(&o, key).ok_or_else(|| ReturnerError::Invalid(format!("highstate.{key} is not set (report_delivery is smtp)")))
                };
                let recipients_text = required("smtp_recipients")?;
                Delivery::Smtp(MailConfig {
                    relay: RelayConfig::read(&o, "smtp_", &required("smtp_server")?)?,
                    sender: required("smtp_sender")?,
                    recipients: addresses(Some(&Value::String(recipients_text.clone()))),
                    recipients_text,
                    success_subject: opt_set(&o, "smtp_success_subject").unwrap_or_else(|| DEFAULT_SUCCESS_SUBJECT.into()),
                    failure_subject: opt_set(&o, "smtp_failure_subject").unwrap_or_else(|| DEFAULT_FAILURE_SUBJECT.into()),
                })
            }
            Some(other) => return Err(ReturnerError::Invalid(format!("highstate.report_delivery {other:?}: file or smtp"))),
        };
        Ok(HighstateConfig {
            report_everything: flag("report_everything", false),
            report_changes: flag("report_changes", true),
            report_failures: flag("report_failures", true),
            format,
            delivery,
        })
    }

    /// The file the report goes to, if it goes to one.
    pub fn file_output(&self) -> Option<PathBuf> {
        match &self.delivery {
            Delivery::File(path) => Some(PathBuf::from(path)),
            Delivery::Smtp(_) => None,
        }
    }
}

/// A flag: YAML's booleans, or text that says so.
fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"),
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn config(v: Value, ret: Option<Value>) -> Result<HighstateConfig> {
        let o = v.as_object().unwrap().clone();
        let ret: Option<Map<String, Value>> = ret.map(|r| r.as_object().unwrap().clone());
        let lookup = Lookup::new(&o);
        match &ret {
            Some(ret) => HighstateConfig::from_lookup(&lookup.with_ret(ret)),
            None => HighstateConfig::from_lookup(&lookup),
        }
    }

    #[test]
    fn salts_defaults() {
        let c = config(json!({}), None).unwrap();
        assert_eq!((c.report_everything, c.report_changes, c.report_failures, c.format), (false, true, true, Format::Yaml));
        assert_eq!(c.file_output(), Some(PathBuf::from("/tmp/test.rpt")));
    }

    #[test]
    fn an_alternative_configuration_by_return_config() {
        let o = json!({"highstate": {"report_format": "json"},
                       "simple.highstate": {"report_everything": true, "report_format": "html", "report_delivery": "smtp",
                                            "smtp_server": "mail", "smtp_port": 2525, "smtp_tls": true, "smtp_sender": "salt@x",
                                            "smtp_recipients": "a@x, b@x", "smtp_success_subject": "ok {id} on {host}",
                                            "smtp_password": "pw", "smtp_username": "u"}});
        let c = config(o.clone(), Some(json!({"ret_config": "simple"}))).unwrap();
        assert!(c.report_everything);
        assert_eq!(c.format, Format::Html);
        let Delivery::Smtp(mail) = &c.delivery else { panic!("{c:?}") };
        assert_eq!((mail.relay.host.as_str(), mail.relay.port, mail.relay.starttls), ("mail", 2525, true));
        assert_eq!(mail.recipients, ["a@x", "b@x"]);
        assert_eq!((mail.success_subject.as_str(), mail.failure_subject.as_str()), ("ok {id} on {host}", "Installation failure"));
        assert!(!format!("{c:?}").contains("\"pw\""));
        assert_eq!(config(o, None).unwrap().format, Format::Json);
    }

    #[test]
    fn what_cannot_work_is_said_at_start_up() {
        for (v, says) in [
            (json!({"highstate.failure_function": "pillar.items"}), "cannot run a Salt function"),
            (json!({"highstate.report_format": "xml"}), "html, json or yaml"),
            (json!({"highstate.report_delivery": "pigeon"}), "file or smtp"),
            (json!({"highstate.report_delivery": "smtp", "highstate.smtp_server": "h", "highstate.smtp_sender": "s"}), "smtp_recipients"),
        ] {
            let err = config(v.clone(), None).unwrap_err().to_string();
            assert!(err.contains(says), "{v}: {err}");
        }
    }
}
