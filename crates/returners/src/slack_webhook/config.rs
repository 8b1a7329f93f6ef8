//! The `slack_webhook` options, with Salt's names and defaults, looked up as for every returner
//! (flat, nested, `alternative.`, `--return_kwargs`): `webhook` (required: the part after
//! `https://hooks.slack.com/services/`, or a whole URL; never shown), `success_title`
//! (`{id} | Succeeded`), `failure_title` (`{id} | Failed`), `author_icon` (empty),
//! `show_tasks` (false). Ours: `api_url` (`https://hooks.slack.com/services/`), the base the
//! webhook is joined to.

use serde_json::json;

use crate::options::{flag, opt_set, opt_str, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_API_URL: &str = "https://hooks.slack.com/services/";
pub const DEFAULT_SUCCESS_TITLE: &str = "{id} | Succeeded";
pub const DEFAULT_FAILURE_TITLE: &str = "{id} | Failed";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackWebhookConfig {
    /// The webhook's whole URL (`api_url` joined with `webhook`); a secret, as the webhook is.
    pub url: Secret,
    pub success_title: String,
    pub failure_title: String,
    pub author_icon: String,
    pub show_tasks: bool,
}

impl SlackWebhookConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<SlackWebhookConfig> {
        let name = super::NAME;
        let o = lookup.options(
            name,
            &["webhook", "success_title", "failure_title", "author_icon", "show_tasks", "api_url"],
            &[
                ("success_title", json!(DEFAULT_SUCCESS_TITLE)),
                ("failure_title", json!(DEFAULT_FAILURE_TITLE)),
                ("author_icon", json!("")),
                ("api_url", json!(DEFAULT_API_URL)),
            ],
        );
        let webhook = opt_set(&o, "webhook")
            .ok_or_else(|| ReturnerError::Invalid(format!("{name}: {name}.webhook is not set (the part after {DEFAULT_API_URL})")))?;
        let base = crate::http::base_url(name, "api_url", &opt_set(&o, "api_url").unwrap_or_else(|| DEFAULT_API_URL.into()))?;
        // As Salt's urljoin: a path goes under the base, a whole URL replaces it.
        let url = base.join(webhook.trim().trim_start_matches('/')).map_err(|_| {
            ReturnerError::Invalid(format!("{name}: {name}.webhook does not make a URL with {}", crate::http::where_(&base)))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReturnerError::Invalid(format!("{name}: {name}.webhook must be an http(s) URL or the part after the base")));
        }
        Ok(SlackWebhookConfig {
            url: Secret::new(url.as_str()),
            success_title: opt_str(&o, "success_title").unwrap_or_else(|| DEFAULT_SUCCESS_TITLE.into()),
            failure_title: opt_str(&o, "failure_title").unwrap_or_else(|| DEFAULT_FAILURE_TITLE.into()),
            author_icon: opt_str(&o, "author_icon").unwrap_or_default(),
            show_tasks: flag(name, &o, "show_tasks", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn config(v: Value) -> Result<SlackWebhookConfig> {
        let o: Map<String, Value> = v.as_object().unwrap().clone();
        SlackWebhookConfig::from_lookup(&Lookup::new(&o))
    }

    #[test]
    fn salts_options_and_the_url() {
        let c = config(json!({"slack_webhook.webhook": "T000/B000/XXXX"})).unwrap();
        assert_eq!(c.url.expose(), "https://hooks.slack.com/services/T000/B000/XXXX");
        assert_eq!(
            (c.success_title.as_str(), c.failure_title.as_str(), c.author_icon.as_str(), c.show_tasks),
            (DEFAULT_SUCCESS_TITLE, DEFAULT_FAILURE_TITLE, "", false)
        );
        assert!(!format!("{c:?}").contains("XXXX"));
        let c = config(json!({"slack_webhook": {"webhook": "T1/B1/Y", "api_url": "http://127.0.0.1:8080/services", "show_tasks": true}}))
            .unwrap();
        assert_eq!((c.url.expose(), c.show_tasks), ("http://127.0.0.1:8080/services/T1/B1/Y", true));
        let c = config(json!({"slack_webhook": {"webhook": "https://hooks.example.com/x/y"}})).unwrap();
        assert_eq!(c.url.expose(), "https://hooks.example.com/x/y");
        assert!(config(json!({})).unwrap_err().to_string().contains("webhook is not set"));
    }
}
