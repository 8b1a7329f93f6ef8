//! The `mattermost` options, with Salt's names, looked up as for every returner (flat, nested,
//! `alternative.`, `--return_kwargs`): `api_url` (required: the server, e.g.
//! `https://mattermost.example.com`; the base URL the tests point at a stand-in), `hook`
//! (required: the incoming webhook's id; never shown), `channel` and `username` (sent when
//! set, overriding the hook's own).

use crate::options::{opt_set, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MattermostConfig {
    /// `<api_url>/hooks/<hook>`: a secret, as the hook is.
    pub url: Secret,
    pub channel: Option<String>,
    pub username: Option<String>,
}

impl MattermostConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<MattermostConfig> {
        let name = super::NAME;
        let o = lookup.options(name, &["channel", "username", "hook", "api_url"], &[]);
        let missing = |key: &str, what: &str| ReturnerError::Invalid(format!("{name}: {name}.{key} is not set ({what})"));
        let hook = opt_set(&o, "hook").ok_or_else(|| missing("hook", "the incoming webhook's id"))?;
        let api_url = opt_set(&o, "api_url").ok_or_else(|| missing("api_url", "the Mattermost server's URL"))?;
        let base = crate::http::base_url(name, "api_url", &api_url)?;
        let hook = hook.trim();
        if hook.is_empty() || hook.contains(['/', '?', '#']) {
            return Err(ReturnerError::Invalid(format!("{name}: {name}.hook must be the webhook's id alone")));
        }
        // Salt's urljoin(api_url, "/hooks/"): the hooks live at the server's root.
        let url = base.join(&format!("/hooks/{hook}")).map_err(|_| ReturnerError::Invalid(format!("{name}: {name}.hook makes no URL")))?;
        Ok(MattermostConfig { url: Secret::new(url.as_str()), channel: opt_set(&o, "channel"), username: opt_set(&o, "username") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn config(v: Value) -> Result<MattermostConfig> {
        let o: Map<String, Value> = v.as_object().unwrap().clone();
        MattermostConfig::from_lookup(&Lookup::new(&o))
    }

    #[test]
    fn salts_options_and_the_url() {
        let c = config(
            json!({"mattermost": {"hook": "3tdgo8restnxiykdx88wqtxryr", "api_url": "https://mm.example.com/x", "channel": "town-square"}}),
        )
        .unwrap();
        assert_eq!(c.url.expose(), "https://mm.example.com/hooks/3tdgo8restnxiykdx88wqtxryr");
        assert_eq!((c.channel.as_deref(), c.username.as_deref()), (Some("town-square"), None));
        assert!(!format!("{c:?}").contains("3tdgo8"));
        assert!(config(json!({"mattermost.api_url": "https://mm"})).unwrap_err().to_string().contains("hook is not set"));
        assert!(config(json!({"mattermost.hook": "h"})).unwrap_err().to_string().contains("api_url is not set"));
        assert!(config(json!({"mattermost.hook": "a/b", "mattermost.api_url": "https://mm"})).is_err());
    }
}
