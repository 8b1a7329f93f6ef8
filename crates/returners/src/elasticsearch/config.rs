//! The `elasticsearch` options, with Salt's names and defaults, all under `elasticsearch`
//! (nested `elasticsearch: {...}` or flat `elasticsearch.<name>`, `alternative.` with
//! `--return_config`, `--return_kwargs`):
//!
//! - the connection, as Salt's `elasticsearch` execution module reads it: `host` (wins over
//!   `hosts`), `hosts` (default `127.0.0.1:9200`; a string or a list of `host`, `host:port`,
//!   `http[s]://[user:pass@]host[:port][/prefix]` or `{host, port, scheme, url_prefix}`),
//!   `use_ssl` (false: `https` for hosts without a scheme), `verify_certs` (true), `ca_certs`
//!   (unset: the system's roots; set: that bundle only, as Python's client does), `username` and
//!   `password` (basic auth when both are set), `timeout` (10 s), `proxies`
//!   (`{http: url, https: url}`, or a list of such maps as Salt's docs show);
//! - the returner: `index_date` (false), `number_of_shards` (1), `number_of_replicas` (0),
//!   `master_job_cache_index` (`salt-master-job-cache`), `master_event_index`
//!   (`salt-master-event-cache`), `functions_blacklist` ([]), `states_count`,
//!   `states_order_output`, `states_single_index` (false), `debug_returner_payload` (false);
//!   `doc_type`, `master_job_cache_doc_type` and `master_event_doc_type` are read and ignored
//!   (Elasticsearch 7 removed mapping types; every document is a `_doc`).
//!
//! Where Salt takes any value and fails later, a wrong value here is one clear error when the
//! store opens: a boolean that is not a boolean (Python would read the string `"False"` as
//! true), an index name Elasticsearch refuses, a CA file that cannot be read.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde_json::{json, Map, Value};

use crate::options::{flag, master_flag, opt_set, opt_str, Lookup};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

const ATTRS: [&str; 22] = [
    "hosts",
    "host",
    "username",
    "password",
    "use_ssl",
    "verify_certs",
    "ca_certs",
    "timeout",
    "proxies",
    "debug_returner_payload",
    "doc_type",
    "functions_blacklist",
    "index_date",
    "master_event_index",
    "master_event_doc_type",
    "master_job_cache_index",
    "master_job_cache_doc_type",
    "number_of_shards",
    "number_of_replicas",
    "states_order_output",
    "states_count",
    "states_single_index",
];

/// Salt's module connects here when no host is given.
const DEFAULT_HOST: &str = "127.0.0.1:9200";
/// The port of a host given without one (Python's client), except `https://` URLs (443).
const DEFAULT_PORT: u16 = 9200;
/// Salt's module's request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest name we add to an index option: `-returns` and `-v1`, or a date,
/// `-ordered` and `-v1`. Elasticsearch refuses names over 255 bytes.
const LONGEST_SUFFIX: usize = "-YYYY.MM.DD-ordered-v1".len() + "-returns".len();

/// Where the store's documents go and how they look: everything of the config that
/// [`super::encode`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Suffix `-YYYY.MM.DD` to the per-function and event indices.
    pub index_date: bool,
    pub number_of_shards: u32,
    pub number_of_replicas: u32,
    /// The jobs (one document per jid); the returns the job cache keeps go to
    /// `<master_job_cache_index>-returns`.
    pub master_job_cache_index: String,
    pub master_event_index: String,
    /// Functions whose returns get no per-function document.
    pub functions_blacklist: Vec<String>,
    pub states_count: bool,
    pub states_order_output: bool,
    pub states_single_index: bool,
}

impl Layout {
    /// The index (an alias) of the returns the job cache keeps.
    pub fn returns_index(&self) -> String {
        format!("{}-returns", self.master_job_cache_index)
    }
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            index_date: false,
            number_of_shards: 1,
            number_of_replicas: 0,
            master_job_cache_index: "salt-master-job-cache".into(),
            master_event_index: "salt-master-event-cache".into(),
            functions_blacklist: Vec::new(),
            states_count: false,
            states_order_output: false,
            states_single_index: false,
        }
    }
}

/// A proxy for one scheme (`http`, `https`, or `all`), as Python's `requests` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub scheme: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticsearchConfig {
    /// Base URLs, tried in turn when one does not answer; never with credentials in them.
    pub hosts: Vec<Url>,
    pub username: String,
    /// Never shown: it prints redacted, and errors are scrubbed of it.
    pub password: Secret,
    pub verify_certs: bool,
    pub ca_certs: Option<PathBuf>,
    pub timeout: Duration,
    pub proxies: Vec<Proxy>,
    pub debug_returner_payload: bool,
    pub layout: Layout,
    /// The master's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl ElasticsearchConfig {
    /// The options `lookup` finds, with Salt's defaults.
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<ElasticsearchConfig> {
        let d = Layout::default();
        let defaults = [
            ("debug_returner_payload", json!(false)),
            ("functions_blacklist", json!([])),
            ("index_date", json!(false)),
            ("master_event_index", json!(d.master_event_index)),
            ("master_job_cache_index", json!(d.master_job_cache_index)),
            ("number_of_shards", json!(d.number_of_shards)),
            ("number_of_replicas", json!(d.number_of_replicas)),
            ("states_order_output", json!(false)),
            ("states_count", json!(false)),
            ("states_single_index", json!(false)),
        ];
        let o = lookup.options(super::NAME, &ATTRS, &defaults);
        let use_ssl = flag(super::NAME, &o, "use_ssl", false)?;
        // Salt's module: `host` first, `hosts` when `host` is empty.
        let given = o.get("host").filter(|v| crate::options::truthy(v)).or_else(|| o.get("hosts").filter(|v| crate::options::truthy(v)));
        let given = match given {
            None => vec![Value::String(DEFAULT_HOST.into())],
            Some(Value::Array(hosts)) => hosts.clone(),
            Some(one) => vec![one.clone()],
        };
        let (mut url_user, mut url_password) = (String::new(), String::new());
        let mut hosts = Vec::with_capacity(given.len());
        for host in &given {
            let mut url = parse_host(host, use_ssl)?;
            if !url.username().is_empty() && url_user.is_empty() {
                url_user = percent_decoded(url.username());
                url_password = url.password().map(percent_decoded).unwrap_or_default();
            }
            // Credentials travel as a header, never in a URL that an error could show.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            hosts.push(url);
        }
        let (username, password) = match (opt_set(&o, "username"), opt_str(&o, "password").filter(|p| !p.is_empty())) {
            (Some(user), Some(password)) => (user, Secret::new(password)),
            _ => (url_user, Secret::new(url_password)),
        };
        let layout = Layout {
            index_date: flag(super::NAME, &o, "index_date", false)?,
            number_of_shards: count(&o, "number_of_shards", d.number_of_shards, 1)?,
            number_of_replicas: count(&o, "number_of_replicas", d.number_of_replicas, 0)?,
            master_job_cache_index: index_name(&o, "master_job_cache_index", &d.master_job_cache_index)?,
            master_event_index: index_name(&o, "master_event_index", &d.master_event_index)?,
            functions_blacklist: strings(&o, "functions_blacklist")?,
            states_count: flag(super::NAME, &o, "states_count", false)?,
            states_order_output: flag(super::NAME, &o, "states_order_output", false)?,
            states_single_index: flag(super::NAME, &o, "states_single_index", false)?,
        };
        Ok(ElasticsearchConfig {
            hosts,
            username,
            password,
            verify_certs: flag(super::NAME, &o, "verify_certs", true)?,
            ca_certs: opt_set(&o, "ca_certs").map(PathBuf::from),
            timeout: seconds(&o, "timeout", DEFAULT_TIMEOUT)?,
            proxies: proxies(o.get("proxies"))?,
            debug_returner_payload: flag(super::NAME, &o, "debug_returner_payload", false)?,
            layout,
            unique_jid: master_flag(lookup.opts, "unique_jid"),
        })
    }

    /// The servers, for messages: `http://h1:9200, http://h2:9200`.
    pub fn target(&self) -> String {
        self.hosts.iter().map(crate::http::where_).collect::<Vec<_>>().join(", ")
    }
}

fn invalid(message: String) -> ReturnerError {
    ReturnerError::Invalid(format!("{}: {message}", super::NAME))
}

/// A whole number option of at least `min`.
fn count(o: &Map<String, Value>, key: &str, default: u32, min: u32) -> Result<u32> {
    match opt_set(o, key) {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| invalid(format!("{key} must be a whole number of at least {min}, not {s:?}"))),
    }
}

/// Seconds, whole or not, more than zero.
fn seconds(o: &Map<String, Value>, key: &str, default: Duration) -> Result<Duration> {
    match opt_set(o, key) {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n > 0.0 && *n < 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid(format!("{key} must be a number of seconds, not {s:?}"))),
    }
}

/// A list of strings; a lone string is a list of one (Salt would test substrings of it).
fn strings(o: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid(format!("{key} must be a list of names, not {v}"))))
            .collect(),
        Some(other) => Err(invalid(format!("{key} must be a list of names, not {other}"))),
    }
}

/// An index name option, checked against Elasticsearch's rules (with room for our suffixes).
fn index_name(o: &Map<String, Value>, key: &str, default: &str) -> Result<String> {
    let name = opt_set(o, key).unwrap_or_else(|| default.to_string());
    let bad_char = name.chars().find(|c| c.is_ascii_uppercase() || r#"\/*?"<>| ,#:"#.contains(*c) || c.is_whitespace());
    if let Some(c) = bad_char {
        return Err(invalid(format!("{key} {name:?}: an index name is lowercase, without {c:?}")));
    }
    if name.starts_with(['-', '_', '+', '.']) || name.len() + LONGEST_SUFFIX > 255 {
        return Err(invalid(format!(
            "{key} {name:?}: an index name starts with a letter or digit and has at most {} bytes here",
            255 - LONGEST_SUFFIX
        )));
    }
    Ok(name)
}

/// One entry of `hosts` as a base URL, as Python's client reads it.
fn parse_host(host: &Value, use_ssl: bool) -> Result<Url> {
    let default_scheme = if use_ssl { "https" } else { "http" };
    let text = match host {
        Value::String(s) => s.trim().to_string(),
        // Python's client also takes `{host, port, scheme, url_prefix}` (`use_ssl` for scheme).
        Value::Object(m) => {
            let name = m.get("host").and_then(Value::as_str).ok_or_else(|| invalid(format!("a host needs a 'host': {host}")))?;
            let scheme = match (m.get("scheme").and_then(Value::as_str), m.get("use_ssl")) {
                (Some(s), _) => s.to_string(),
                (None, Some(Value::Bool(true))) => "https".into(),
                _ => default_scheme.into(),
            };
            let port = match m.get("port") {
                Some(p) => format!(":{}", p.as_u64().map(|n| n.to_string()).or_else(|| p.as_str().map(str::to_string)).unwrap_or_default()),
                None => String::new(),
            };
            let prefix = m.get("url_prefix").and_then(Value::as_str).unwrap_or_default().trim_matches('/');
            let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
            format!("{scheme}://{name}{port}{prefix}")
        }
        other => return Err(invalid(format!("a host is a string like \"es1:9200\", not {other}"))),
    };
    let with_scheme = if text.contains("://") { text.clone() } else { format!("{default_scheme}://{text}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| invalid(format!("host {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("host {text:?}: only http:// and https:// servers")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!("host {text:?}: a host has no query or fragment")));
    }
    // Python's client: port 9200 unless one is given, or 443 for an `https://` URL.
    let port_given = has_port(&with_scheme) || text.contains("://") && url.scheme() == "https";
    if !port_given {
        let _ = url.set_port(Some(DEFAULT_PORT));
    }
    // A path prefix (a proxy's `/es`) ends in `/` so that API paths go under it.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Whether the authority of `url` names a port (the URL parser drops a scheme's default one).
fn has_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let after_brackets = host_port.rsplit(']').next().unwrap_or_default();
    after_brackets.contains(':')
}

fn percent_decoded(s: &str) -> String {
    // The userinfo of a URL is percent-encoded ASCII.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `proxies` as `requests` takes it (`{http: url, https: url}`), or as a list of such maps
/// (the shape Salt's docs show).
fn proxies(value: Option<&Value>) -> Result<Vec<Proxy>> {
    let maps: Vec<&Map<String, Value>> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => vec![m],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_object().ok_or_else(|| invalid(format!("proxies: each entry maps a scheme to a URL, not {v}"))))
            .collect::<Result<_>>()?,
        Some(other) => return Err(invalid(format!("proxies maps a scheme to a URL, not {other}"))),
    };
    let mut out = Vec::new();
    for (scheme, url) in maps.into_iter().flatten() {
        let url = url.as_str().ok_or_else(|| invalid(format!("proxies: the {scheme} proxy is a URL, not {url}")))?;
        if !matches!(scheme.as_str(), "http" | "https" | "all") {
            return Err(invalid(format!("proxies: the schemes are http, https and all, not {scheme:?}")));
        }
        out.push(Proxy { scheme: scheme.clone(), url: url.to_string() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;

    fn config(v: Value) -> Result<ElasticsearchConfig> {
        ElasticsearchConfig::from_lookup(&Lookup::new(v.as_object().unwrap()))
    }

    fn hosts(c: &ElasticsearchConfig) -> Vec<&str> {
        c.hosts.iter().map(Url::as_str).collect()
    }

    #[test]
    fn salt_defaults() {
        let c = config(json!({})).unwrap();
        assert_eq!(hosts(&c), ["http://127.0.0.1:9200/"]);
        assert_eq!((c.username.as_str(), c.password.expose()), ("", ""));
        assert!(c.verify_certs && c.ca_certs.is_none() && c.proxies.is_empty() && !c.debug_returner_payload);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.layout, Layout::default());
        assert_eq!(c.layout.returns_index(), "salt-master-job-cache-returns");
    }

    #[test]
    fn host_forms_as_pythons_client_reads_them() {
        let c = config(json!({"elasticsearch": {"hosts": ["es1", "es2:9201", "https://es3", "http://es4:80/prefix",
            {"host": "es5", "port": 9300, "scheme": "https", "url_prefix": "/x/"}, "[::1]:9200"]}}))
        .unwrap();
        assert_eq!(
            hosts(&c),
            ["http://es1:9200/", "http://es2:9201/", "https://es3/", "http://es4/prefix/", "https://es5:9300/x/", "http://[::1]:9200/"]
        );
        // `host` wins over `hosts`; `use_ssl` picks https for bare hosts.
        let c = config(json!({"elasticsearch.host": "one:9200", "elasticsearch.hosts": ["two"], "elasticsearch.use_ssl": true})).unwrap();
        assert_eq!(hosts(&c), ["https://one:9200/"]);
        for bad in
            [json!({"elasticsearch.hosts": ["ftp://x"]}), json!({"elasticsearch.hosts": [7]}), json!({"elasticsearch.host": "http://"})]
        {
            assert!(config(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_never_stay_in_a_url() {
        let c = config(json!({"elasticsearch": {"hosts": ["https://salt:p%40ss@es1:9243"]}})).unwrap();
        assert_eq!(hosts(&c), ["https://es1:9243/"]);
        assert_eq!((c.username.as_str(), c.password.expose()), ("salt", "p@ss"));
        // Configured ones win, and only as a pair (Salt: `if username and password`).
        let c = config(json!({"elasticsearch": {"hosts": ["https://a:b@es1"], "username": "u", "password": "hunter2"}})).unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "hunter2"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && shown.contains(REDACTED), "{shown}");
        let c = config(json!({"elasticsearch": {"username": "u"}})).unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("", ""));
    }

    #[test]
    fn returner_options_flat_nested_alternative_and_kwargs() {
        let opts = json!({
            "elasticsearch": {"index_date": true, "number_of_shards": 5, "functions_blacklist": ["test.ping", "saltutil.find_job"]},
            "elasticsearch.number_of_replicas": "1",
            "elasticsearch.states_count": "yes",
            "alternative.elasticsearch": {"master_job_cache_index": "alt-jobs", "host": "alt:9200"},
        });
        let c = config(opts.clone()).unwrap();
        assert!(c.layout.index_date && c.layout.states_count && !c.layout.states_order_output);
        assert_eq!((c.layout.number_of_shards, c.layout.number_of_replicas), (5, 1));
        assert_eq!(c.layout.functions_blacklist, ["test.ping", "saltutil.find_job"]);
        let ret = json!({"ret_config": "alternative", "ret_kwargs": {"index_date": false, "timeout": 2.5}});
        let c = ElasticsearchConfig::from_lookup(&Lookup::new(opts.as_object().unwrap()).with_ret(ret.as_object().unwrap())).unwrap();
        assert_eq!(c.layout.master_job_cache_index, "alt-jobs");
        assert_eq!(hosts(&c), ["http://alt:9200/"]);
        assert!(!c.layout.index_date);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        // A lone string is a list of one.
        let c = config(json!({"elasticsearch.functions_blacklist": "test.ping"})).unwrap();
        assert_eq!(c.layout.functions_blacklist, ["test.ping"]);
    }

    #[test]
    fn wrong_values_are_one_clear_error() {
        for (bad, why) in [
            (json!({"elasticsearch.index_date": "Flase"}), "index_date must be true or false"),
            (json!({"elasticsearch.number_of_shards": 0}), "number_of_shards must be a whole number of at least 1"),
            (json!({"elasticsearch.timeout": "soon"}), "timeout must be a number of seconds"),
            (json!({"elasticsearch.master_job_cache_index": "Salt-Jobs"}), "lowercase"),
            (json!({"elasticsearch.master_event_index": "_events"}), "starts with a letter"),
            (json!({"elasticsearch.functions_blacklist": [1]}), "list of names"),
            (json!({"elasticsearch.proxies": {"ftp": "http://p:3128"}}), "schemes are http, https and all"),
        ] {
            let err = config(bad.clone()).unwrap_err().to_string();
            assert!(err.starts_with("invalid argument: elasticsearch: ") && err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn proxies_as_a_map_or_as_salts_docs_show_them() {
        let c = config(json!({"elasticsearch": {"proxies": [{"http": "http://proxy:3128"}, {"https": "http://proxy:1080"}]}})).unwrap();
        assert_eq!(
            c.proxies,
            [
                Proxy { scheme: "http".into(), url: "http://proxy:3128".into() },
                Proxy { scheme: "https".into(), url: "http://proxy:1080".into() }
            ]
        );
        let c = config(json!({"elasticsearch": {"proxies": {"all": "http://proxy:3128"}}})).unwrap();
        assert_eq!(c.proxies.len(), 1);
    }
}
