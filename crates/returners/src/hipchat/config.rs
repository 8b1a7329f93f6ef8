//! The `hipchat` options, with Salt's names: `hipchat.room_id`, `hipchat.api_key`,
//! `hipchat.api_version` (`v1` or `v2`; `1` and `2` too) and `hipchat.from_name` (required for
//! v1), `hipchat.api_url` (default [`DEFAULT_API_URL`]; a bare host as Salt took it, or a URL;
//! `hipchat.url` is read when `api_url` is not set, the name Salt's docs also give), `color`
//! (default `yellow`), `notify` (default false) and `profile`: the name of a map in the config
//! whose `hipchat.<option>` keys replace these ([`Lookup::apply_profile`]). Looked up
//! as for every returner (nested `hipchat: {...}`, `alternative.hipchat.*` with
//! `--return_config`, `--return_kwargs`).
//!
//! HipChat's cloud service is gone: the same options reach a self-hosted server that speaks its
//! API (HipChat Server, Data Center, or a bridge), by `api_url`.

use serde_json::{json, Value};

use crate::options::{opt_set, truthy, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

pub const DEFAULT_API_URL: &str = "https://api.hipchat.com";
/// HipChat's message colours.
pub const COLORS: &[&str] = &["yellow", "green", "red", "purple", "gray", "random"];

const ATTRS: &[&str] = &["room_id", "api_key", "api_version", "api_url", "url", "from_name", "color", "notify", "profile"];
/// What a profile may set (Salt's `profile_attrs` meant these; it read `api_version` from the
/// profile's `api_key`, and `from_jid`, which nothing used).
const PROFILE_ATTRS: &[&str] = &["api_key", "api_version", "api_url", "url", "from_name"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `POST /v1/rooms/message?format=json&auth_token=<key>`, a form.
    V1,
    /// `POST /v2/room/<room>/notification`, `Authorization: Bearer <key>`, JSON.
    V2,
}

#[derive(Debug, Clone)]
pub struct HipchatConfig {
    /// The room's id or name.
    pub room_id: String,
    /// Never shown: v1 sends it in the query string, so no URL is shown either.
    pub api_key: Secret,
    pub api_version: ApiVersion,
    pub from_name: Option<String>,
    /// The colour of a successful return's message (a failed one is `red`, as in Salt).
    pub color: String,
    pub notify: bool,
    /// The server, ending in `/`.
    pub api_url: reqwest::Url,
}

impl HipchatConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<HipchatConfig> {
        let defaults = [("color", json!("yellow")), ("notify", json!(false))];
        let mut options = lookup.options(super::NAME, ATTRS, &defaults);
        lookup.apply_profile(super::NAME, &mut options, "profile", PROFILE_ATTRS);
        let invalid = |why: String| ReturnerError::Invalid(why);
        // Salt logged "hipchat.room_id not defined in salt config" and sent nothing.
        let required =
            |key: &str| opt_set(&options, key).ok_or_else(|| invalid(format!("hipchat.{key} is not set: the hipchat returner needs it")));
        let room_id = required("room_id")?;
        let api_key = Secret::new(required("api_key")?);
        let api_version = match required("api_version")?.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" => ApiVersion::V1,
            "v2" | "2" => ApiVersion::V2,
            other => return Err(invalid(format!("hipchat.api_version must be v1 or v2, not {other:?}"))),
        };
        let from_name = opt_set(&options, "from_name");
        if api_version == ApiVersion::V1 && from_name.is_none() {
            return Err(invalid("hipchat.from_name is not set: HipChat's v1 API needs it".into()));
        }
        let color = opt_set(&options, "color").unwrap_or_else(|| "yellow".into()).to_ascii_lowercase();
        if !COLORS.contains(&color.as_str()) {
            return Err(invalid(format!("hipchat.color must be one of {}, not {color:?}", COLORS.join(", "))));
        }
        let notify = options.get("notify").is_some_and(|v| match v {
            Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"),
            other => truthy(other),
        });
        let server = opt_set(&options, "api_url").or_else(|| opt_set(&options, "url")).unwrap_or_else(|| DEFAULT_API_URL.into());
        // Salt took a host (`api.hipchat.com`) and put `https://` in front.
        let server = if server.contains("://") { server } else { format!("https://{server}") };
        let api_url = crate::http::base_url(super::NAME, "api_url", &server)?;
        Ok(HipchatConfig { room_id, api_key, api_version, from_name, color, notify, api_url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn config(v: Value) -> Result<HipchatConfig> {
        HipchatConfig::from_lookup(&Lookup::new(v.as_object().unwrap()))
    }

    #[test]
    fn salts_names_defaults_and_hosts() {
        let c =
            config(json!({"hipchat": {"room_id": "Ops", "api_key": "k3y", "api_version": "v1", "from_name": "salt@example.com"}})).unwrap();
        assert_eq!((c.room_id.as_str(), c.api_version, c.color.as_str(), c.notify), ("Ops", ApiVersion::V1, "yellow", false));
        assert_eq!(c.api_url.as_str(), "https://api.hipchat.com/");
        assert!(!format!("{c:?}").contains("k3y"));
        let c = config(
            json!({"hipchat.room_id": 42, "hipchat.api_key": "k", "hipchat.api_version": 2, "hipchat.api_url": "hipchat.example.com",
                              "hipchat.color": "Green", "hipchat.notify": "True"}),
        )
        .unwrap();
        assert_eq!((c.room_id.as_str(), c.api_version, c.color.as_str(), c.notify), ("42", ApiVersion::V2, "green", true));
        assert_eq!(c.api_url.as_str(), "https://hipchat.example.com/");
        let c = config(
            json!({"hipchat.room_id": 1, "hipchat.api_key": "k", "hipchat.api_version": "v2", "hipchat.url": "http://127.0.0.1:8080/hc"}),
        )
        .unwrap();
        assert_eq!(c.api_url.as_str(), "http://127.0.0.1:8080/hc/");
    }

    #[test]
    fn a_profile_as_salts_docs_show_it() {
        let mut o = Map::new();
        o.insert("hipchat".into(), json!({"profile": "hipchat_profile", "room_id": "RoomName"}));
        o.insert(
            "hipchat_profile".into(),
            json!({"hipchat.api_key": "k", "hipchat.api_version": "v1", "hipchat.from_name": "user@email.com"}),
        );
        let c = HipchatConfig::from_lookup(&Lookup::new(&o)).unwrap();
        assert_eq!((c.api_key.expose(), c.api_version, c.from_name.as_deref()), ("k", ApiVersion::V1, Some("user@email.com")));
    }

    #[test]
    fn what_is_missing_or_wrong_is_named() {
        for (v, says) in [
            (json!({"hipchat.api_key": "k", "hipchat.api_version": "v2"}), "hipchat.room_id is not set"),
            (json!({"hipchat.room_id": "r", "hipchat.api_version": "v2"}), "hipchat.api_key is not set"),
            (json!({"hipchat.room_id": "r", "hipchat.api_key": "k"}), "hipchat.api_version is not set"),
            (json!({"hipchat.room_id": "r", "hipchat.api_key": "k", "hipchat.api_version": "v3"}), "v1 or v2"),
            (json!({"hipchat.room_id": "r", "hipchat.api_key": "k", "hipchat.api_version": "v1"}), "from_name is not set"),
            (
                json!({"hipchat.room_id": "r", "hipchat.api_key": "k", "hipchat.api_version": "v2", "hipchat.color": "blue"}),
                "hipchat.color",
            ),
        ] {
            let err = config(v.clone()).unwrap_err().to_string();
            assert!(err.contains(says), "{v}: {err}");
        }
    }
}
