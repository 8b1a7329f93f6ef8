//! Where a returner finds its settings: Salt's `get_returner_options`, so the same config files
//! keep working.
//!
//! For a returner named `mysql` and an attribute `host`, in order:
//! 1. with `--return_config alternative`: `alternative.mysql: {host: ...}` (nested), then
//!    `alternative.mysql.host` (flat); a falsy value falls back to 2.;
//! 2. `mysql: {host: ...}` (nested), then `mysql.host` (flat);
//! 3. the returner's default, if it has one (a missing or empty value means "use the default");
//! 4. finally `--return_kwargs '{"host": ...}'` overrides any of the above by plain name.
//!
//! The PostgreSQL returners use the prefix `returner.pgjsonb` / `returner.postgres`.
//! Salt also looks in grains and pillar; we look in the config only (and say so in the README).

use serde_json::{Map, Value};

/// Where the lookup happens and what may override it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookup<'a> {
    /// The config of the process that runs the returner (minion or master).
    pub opts: Option<&'a Map<String, Value>>,
    /// `ret_config` from the job (`--return_config`); minion side only.
    pub ret_config: Option<&'a str>,
    /// `ret_kwargs` from the job (`--return_kwargs`); minion side only.
    pub ret_kwargs: Option<&'a Map<String, Value>>,
}

impl<'a> Lookup<'a> {
    pub fn new(opts: &'a Map<String, Value>) -> Lookup<'a> {
        Lookup { opts: Some(opts), ret_config: None, ret_kwargs: None }
    }

    /// `ret_config` and `ret_kwargs` as a minion-side return carries them.
    pub fn with_ret(mut self, ret: &'a Map<String, Value>) -> Lookup<'a> {
        self.ret_config = ret.get("ret_config").and_then(Value::as_str).filter(|s| !s.is_empty());
        self.ret_kwargs = ret.get("ret_kwargs").and_then(Value::as_object);
        self
    }

    /// The options for `virtualname`: each of `attrs` looked up as above, `defaults` filling
    /// what is missing. Keys absent everywhere are left out, as in Salt.
    pub fn options(&self, virtualname: &str, attrs: &[&str], defaults: &[(&str, Value)]) -> Map<String, Value> {
        let mut out = Map::new();
        for attr in attrs {
            let found = self
                .ret_config
                .and_then(|alt| self.fetch(&format!("{alt}.{virtualname}"), attr).filter(truthy))
                .or_else(|| self.fetch(virtualname, attr));
            let value = match found {
                Some(v) if !is_blank(&v) => Some(v),
                _ => defaults.iter().find(|(k, _)| k == attr).map(|(_, v)| v.clone()),
            };
            if let Some(v) = value {
                out.insert((*attr).to_string(), v);
            }
        }
        if let Some(kwargs) = self.ret_kwargs {
            for (k, v) in kwargs {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Salt's `*_profile` indirection on `options` (from [`Lookup::options`]): when
    /// `options[profile_key]` names a top-level config entry, each `attr` of `attrs` is taken
    /// from that entry's `<virtualname>.<attr>` key (`slack_profile: {slack.api_key: ...}`),
    /// where it has one. `--return_kwargs` still win, as in Salt. (Salt set an attr the profile
    /// lacks to `None`; here the attr found without the profile stays.)
    pub fn apply_profile(&self, virtualname: &str, options: &mut Map<String, Value>, profile_key: &str, attrs: &[&str]) {
        let Some(profile) = options.get(profile_key).and_then(Value::as_str) else { return };
        let Some(creds) = self.opts.and_then(|o| o.get(profile)).and_then(Value::as_object) else { return };
        for attr in attrs {
            let overridden = self.ret_kwargs.is_some_and(|k| k.contains_key(*attr));
            if let Some(value) = creds.get(&format!("{virtualname}.{attr}")).filter(|v| !is_blank(v)) {
                if !overridden {
                    options.insert((*attr).to_string(), value.clone());
                }
            }
        }
    }

    /// Nested `<prefix>: {attr: ...}` first, then flat `<prefix>.<attr>`.
    fn fetch(&self, prefix: &str, attr: &str) -> Option<Value> {
        let opts = self.opts?;
        opts.get(prefix)
            .and_then(Value::as_object)
            .and_then(|nested| nested.get(attr))
            .or_else(|| opts.get(&format!("{prefix}.{attr}")))
            .cloned()
    }
}

fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str() == Some("")
}

/// Python's truthiness of a JSON value (`if value:`).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(true) => true,
    }
}

/// Option values as strings (`port: 3306` and `port: "3306"` alike).
pub fn opt_str(options: &Map<String, Value>, key: &str) -> Option<String> {
    match options.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// An option that is set: Salt's docs say "set them to None" for unused options, and YAML
/// gives the string "None" (any case), so that and an empty value mean unset.
pub(crate) fn opt_set(options: &Map<String, Value>, key: &str) -> Option<String> {
    opt_str(options, key).filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("none"))
}

/// A master-wide switch (`archive_jobs`, `unique_jid`) from the process config: on only when
/// it is `true`.
pub(crate) fn master_flag(opts: Option<&Map<String, Value>>, key: &str) -> bool {
    opts.and_then(|o| o.get(key)).is_some_and(|v| v.as_bool() == Some(true))
}

/// `salt_events.master_id`: the master's `id`, or Salt's `<hostname>_master` when the config
/// has none.
pub(crate) fn master_id(opts: Option<&Map<String, Value>>) -> String {
    opts.and_then(|o| o.get("id")).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| format!("{}_master", hostname()))
}

/// This machine's host name (Python's `socket.gethostname()`), `localhost` when unknown.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A boolean option of `store`: YAML's booleans, or the strings and numbers that clearly mean
/// one (`"yes"`, `"False"`, `0`); unset or `None` is `default`; anything else is a clear error.
pub(crate) fn flag(store: &str, options: &Map<String, Value>, key: &str, default: bool) -> crate::Result<bool> {
    let bad = |shown: String| crate::ReturnerError::Invalid(format!("{store}: {key} must be true or false, not {shown}"));
    match options.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if matches!(n.as_i64(), Some(0 | 1)) => Ok(n.as_i64() == Some(1)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(default),
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(bad(format!("{s:?}"))),
        },
        Some(other) => Err(bad(other.to_string())),
    }
}

/// Salt's `get_keep_jobs_seconds` on a process config: `keep_jobs_seconds`, unless it is still
/// the default (86400) and the deprecated `keep_jobs` (hours, default 24) was changed. `None`
/// when the config has neither (a minion's). Numbers may be written as text.
pub fn keep_jobs_seconds(opts: Option<&Map<String, Value>>) -> Option<u64> {
    let opts = opts?;
    let number = |key: &str| opts.get(key).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())));
    match (number("keep_jobs_seconds"), number("keep_jobs")) {
        (Some(86400) | None, Some(hours)) if hours != 24 => Some(hours * 3600),
        (None, Some(hours)) => Some(hours * 3600),
        (seconds, _) => seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn flat_nested_alternative_kwargs_and_defaults() {
        let o = opts(json!({
            "mysql.host": "flat-host",
            "mysql": {"user": "nested-user"},
            "alternative.mysql.host": "alt-host",
            "alternative.mysql": {"db": "alt-db"},
            "mysql.pass": "",
        }));
        let attrs = ["host", "user", "pass", "db", "port"];
        let defaults = [("host", json!("salt")), ("pass", json!("salt")), ("port", json!(3306))];

        let plain = Lookup::new(&o).options("mysql", &attrs, &defaults);
        assert_eq!(Value::Object(plain), json!({"host": "flat-host", "user": "nested-user", "pass": "salt", "port": 3306}));

        let ret = opts(json!({"ret_config": "alternative", "ret_kwargs": {"port": 3307}}));
        let alt = Lookup::new(&o).with_ret(&ret).options("mysql", &attrs, &defaults);
        assert_eq!(Value::Object(alt), json!({"host": "alt-host", "user": "nested-user", "pass": "salt", "db": "alt-db", "port": 3307}));
    }

    #[test]
    fn a_profile_gives_its_attrs_and_kwargs_still_win() {
        let o = opts(json!({"slack": {"profile": "team", "api_key": "plain"}, "team": {"slack.api_key": "from-profile"}}));
        let lookup = Lookup::new(&o);
        let mut found = lookup.options("slack", &["profile", "api_key"], &[]);
        lookup.apply_profile("slack", &mut found, "profile", &["api_key", "from_jid"]);
        assert_eq!(found["api_key"], "from-profile");
        assert!(!found.contains_key("from_jid"));
        let ret = opts(json!({"ret_kwargs": {"api_key": "kwarg"}}));
        let lookup = Lookup::new(&o).with_ret(&ret);
        let mut found = lookup.options("slack", &["profile", "api_key"], &[]);
        lookup.apply_profile("slack", &mut found, "profile", &["api_key"]);
        assert_eq!(found["api_key"], "kwarg");
    }

    #[test]
    fn nested_wins_over_flat_as_in_salt() {
        let o = opts(json!({"mysql": {"host": "nested"}, "mysql.host": "flat"}));
        assert_eq!(Lookup::new(&o).options("mysql", &["host"], &[])["host"], "nested");
    }
}
