//! Salt's configuration for the master and the minion, and Salt's CLI argument parsing.
//!
//! [`Config::load`] reproduces `salt.config.master_config` / `minion_config`: it reads
//! `CONFIG_DIR/master` (or `minion`), then the `default_include` files (`master.d/*.conf`,
//! sorted), then the `include` files, lays them over Salt's defaults with Salt's key names,
//! and applies `root_dir` to the path options as `salt.config.prepend_root_dir` does. Every
//! option, known or not, is kept, so returners can read their own flat (`mysql.host`) or
//! nested (`mysql: {host: ...}`) keys from [`Config::as_map`].
//!
//! YAML is read the way Salt's PyYAML loader reads it (see [`yaml`]): `yes`/`on`/`off` are
//! booleans, `y`/`n` are strings, `0755` is 755, duplicate keys are an error.
//!
//! [`args`] turns CLI argument strings into the publish `arg` list (`salt.utils.args`).
//!
//! Known differences from Salt, all deliberate:
//! * a broken included file is an error (Salt logs it and skips the file);
//! * an unreadable (not missing) main file is an error (Salt silently uses defaults);
//! * `conf_file` is set to the path looked at even when the file is missing;
//! * no `SALT_MASTER_CONFIG`/`SALT_CONFIG_DIR` variables, no `.template` copying, no `sdb://`,
//!   no `file_roots` glob expansion;
//! * a wrong type or an absurd value for a typed option (ports, times, counts, sizes,
//!   booleans, returner names: see `defaults::value_kinds`) is an error naming the file, the
//!   option, the value and what was expected (Salt's `_validate_opts` only logs a warning and
//!   then falls back or fails later);
//! * the minion `id` stays null when not configured: call [`guess_id`] (Salt uses the fqdn).

pub mod args;
mod defaults;
mod paths;
mod suggest;
pub mod yaml;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};

pub use defaults::{DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES};
pub use paths::guess_id;

/// Which daemon's configuration to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Master,
    Minion,
}

impl Role {
    /// The main config file name, also the prefix of the include directory (`master.d`).
    pub fn file_name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Minion => "minion",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// A configuration file that could not be used. The messages follow Salt's
/// "Error parsing configuration file: PATH - ..." wording.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Error parsing configuration file: {path} - {message} (line {line}, column {column})")]
    Yaml { path: String, message: String, line: usize, column: usize },
    /// The file parsed, but to a scalar or list instead of a mapping.
    #[error("Error parsing configuration file: {path} - conf should be a document, not <class '{python_type}'>.")]
    NotADocument { path: String, python_type: &'static str },
    #[error("Error reading configuration file: {path} - {source}")]
    Io { path: String, source: std::io::Error },
    #[error("Error parsing configuration file: {path} - invalid include glob '{pattern}': {message}")]
    BadInclude { path: String, pattern: String, message: String },
    /// A known option with a value of the wrong type, or out of its range.
    #[error("Error in configuration file: {path} - invalid value for '{key}': {value}; expected {expected}")]
    BadValue {
        path: String,
        key: String,
        /// The value as written (a string in quotes, anything else as compact JSON).
        value: String,
        expected: String,
    },
}

/// The merged options of one daemon.
#[derive(Debug, Clone)]
pub struct Config {
    role: Role,
    opts: Map<String, Value>,
    warnings: Vec<String>,
}

impl Config {
    /// Reads CONFIG_DIR/master (or minion), then CONFIG_DIR/master.d/*.conf (sorted), then the
    /// `include:` files, merges them over Salt's defaults, applies `root_dir` to the path
    /// options as Salt does, and collects warnings (an unknown key that looks like a typo of a
    /// known one, an `include` that matches nothing). A missing main file gives the defaults,
    /// as in Salt.
    pub fn load(role: Role, config_dir: &Path) -> Result<Config, ConfigError> {
        let main = config_dir.join(role.file_name());
        let mut warnings = Vec::new();
        let mut overrides = match read_conf_file(&main)? {
            Some(map) => {
                check_values(&map, &main.display().to_string())?;
                check_keys(&map, &main.display().to_string(), &mut warnings);
                map
            }
            None => Map::new(),
        };
        overrides.insert("conf_file".into(), Value::String(main.display().to_string()));

        // Salt: overrides.update(include_config(default_include)), then the same for `include`.
        // Each is a shallow update of the main file; files within one include merge deeply.
        let default_include =
            overrides.get("default_include").cloned().unwrap_or_else(|| defaults::defaults(role)["default_include"].clone());
        // Only the main file's `include` counts here; included files follow their own.
        let include = overrides.get("include").cloned();
        let mut chain = vec![file_identity(&main)];
        let included = include_config(&default_include, &main, false, &mut warnings, &mut chain)?;
        overrides.extend(included);
        if let Some(include) = include {
            let included = include_config(&include, &main, true, &mut warnings, &mut chain)?;
            overrides.extend(included);
        }
        Ok(Config::apply(role, overrides, warnings))
    }

    /// Builds a config from one YAML text as if it were the main file (no includes are read).
    /// `source_name` names the text in errors and warnings.
    pub fn from_yaml_str(role: Role, yaml: &str, source_name: &str) -> Result<Config, ConfigError> {
        let overrides = parse_conf(yaml, source_name)?;
        check_values(&overrides, source_name)?;
        let mut warnings = Vec::new();
        check_keys(&overrides, source_name, &mut warnings);
        Ok(Config::apply(role, overrides, warnings))
    }

    /// Salt's `apply_master_config` / `apply_minion_config`: defaults, then the overrides,
    /// then the derived options and `root_dir`.
    fn apply(role: Role, mut overrides: Map<String, Value>, warnings: Vec<String>) -> Config {
        let mut opts = defaults::defaults(role);
        opts.insert("user".into(), Value::String(paths::effective_user()));
        adjust_log_file_override(&mut overrides, &opts["log_file"].clone());
        let overrode_ipc_buffer = overrides.contains_key("ipc_write_buffer");
        opts.extend(overrides);
        if !overrode_ipc_buffer {
            opts.insert("ipc_write_buffer".into(), Value::from(0));
        }

        // A socket path must fit in sun_path: Salt falls back to a short one under cachedir.
        if let (Some(sock), Some(cache)) = (str_of(&opts, "sock_dir"), str_of(&opts, "cachedir")) {
            if sock.chars().count() > cache.chars().count() + 10 {
                let short = paths::join(&cache, ".salt-unix");
                opts.insert("sock_dir".into(), Value::String(short));
            }
        }
        if let Some(cache) = str_of(&opts, "cachedir") {
            if role == Role::Master {
                opts.insert("token_dir".into(), Value::String(paths::join(&cache, "tokens")));
                opts.insert("syndic_dir".into(), Value::String(paths::join(&cache, "syndics")));
            }
            if !truthy(opts.get("extension_modules")) {
                opts.insert("extension_modules".into(), Value::String(paths::join(&cache, "extmods")));
            }
        }
        if role == Role::Master && !truthy(opts.get("id")) {
            let root = str_of(&opts, "root_dir").unwrap_or_else(|| "/".into());
            opts.insert("id".into(), Value::String(format!("{}_master", guess_id(Path::new(&root)))));
        }

        let (root_opts, log_opts) = match role {
            Role::Master => (defaults::ROOT_DIR_OPTIONS_MASTER, defaults::LOG_PATH_OPTIONS_MASTER),
            Role::Minion => (defaults::ROOT_DIR_OPTIONS_MINION, defaults::LOG_PATH_OPTIONS_MINION),
        };
        // Log settings may be syslog URLs ("udp://host:514"), which are not paths.
        let mut keys: Vec<&str> = root_opts.to_vec();
        keys.extend(log_opts.iter().filter(|k| str_of(&opts, k).is_some_and(|v| !paths::has_url_scheme(&v))));
        paths::prepend_root_dir(&mut opts, &keys);

        // Only a real `true` enables these.
        opts.insert("open_mode".into(), Value::Bool(opts.get("open_mode") == Some(&Value::Bool(true))));
        if role == Role::Master {
            opts.insert("auto_accept".into(), Value::Bool(opts.get("auto_accept") == Some(&Value::Bool(true))));
            if opts.get("nodegroups").is_none_or(Value::is_null) {
                opts.insert("nodegroups".into(), Value::Object(Map::new()));
            }
        }
        if let Some(hash) = str_of(&opts, "hash_type") {
            opts.insert("hash_type".into(), Value::String(hash.to_lowercase()));
        }
        // `return` may be a list; Salt stores it comma-joined.
        if let Some(Value::Array(items)) = opts.get("return") {
            let joined = items.iter().map(python_str).collect::<Vec<_>>().join(",");
            opts.insert("return".into(), Value::String(joined));
        }
        Config { role, opts, warnings }
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Any option, including ones Salt does not know (returner settings).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.opts.get(key)
    }

    /// Overrides an option (CLI flags). Derived options are not recomputed.
    pub fn set(&mut self, key: &str, value: Value) {
        self.opts.insert(key.to_owned(), value);
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.opts.get(key)?.as_str()
    }

    /// A non-negative integer option. Also accepts what Salt's `int(opts[key])` accepts from
    /// YAML: an integral float (`5.0`) or a decimal string (`"4506"`).
    pub fn u64(&self, key: &str) -> Option<u64> {
        match self.opts.get(key)? {
            Value::Number(n) => {
                n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64))
            }
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A boolean option; only real YAML booleans count (`auto_accept: 1` is not true in Salt).
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.opts.get(key)?.as_bool()
    }

    /// A path option (`pki_dir`, `cachedir`, `sock_dir`, `log_file`, `pidfile`, ...), already
    /// under `root_dir` where Salt applies it.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.str(key).map(PathBuf::from)
    }

    /// A list option given as a YAML list or as a comma-separated string (`return: a,b`).
    /// Items are trimmed; empty items are dropped; a missing/null option is empty.
    pub fn str_list(&self, key: &str) -> Vec<String> {
        match self.opts.get(key) {
            Some(Value::Array(items)) => items.iter().map(python_str).filter(|s| !s.is_empty()).collect(),
            Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![python_str(other)],
        }
    }

    /// All options, for code that reads nested or dotted keys itself (returners).
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.opts
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

/// `salt.config._read_conf_file`: `Ok(None)` when the file does not exist.
fn read_conf_file(path: &Path) -> Result<Option<Map<String, Value>>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigError::Io { path: path.display().to_string(), source }),
    };
    parse_conf(&text, &path.display().to_string()).map(Some)
}

/// Parses one config text: a mapping, or nothing (an empty or falsy document is `{}`, as
/// Salt's `safe_load(...) or {}`). A numeric `id` becomes a string.
fn parse_conf(text: &str, path: &str) -> Result<Map<String, Value>, ConfigError> {
    let value =
        yaml::load(text).map_err(|e| ConfigError::Yaml { path: path.to_owned(), message: e.message, line: e.line, column: e.column })?;
    let mut map = match value {
        Value::Object(map) => map,
        falsy if !truthy(Some(&falsy)) => Map::new(),
        Value::String(_) => return Err(not_a_document(path, "str")),
        Value::Array(_) => return Err(not_a_document(path, "list")),
        Value::Bool(_) => return Err(not_a_document(path, "bool")),
        Value::Number(n) => return Err(not_a_document(path, if n.is_f64() { "float" } else { "int" })),
        Value::Null => unreachable!("null is falsy"),
    };
    if let Some(id) = map.get("id") {
        if !id.is_string() {
            let id = python_str(id);
            map.insert("id".into(), Value::String(id));
        }
    }
    Ok(map)
}

fn not_a_document(path: &str, python_type: &'static str) -> ConfigError {
    ConfigError::NotADocument { path: path.to_owned(), python_type }
}

/// `salt.config.include_config`: each pattern (relative ones are relative to the directory
/// of `orig_path`, `~` is expanded) is globbed and its files read in sorted order; files
/// merge deeply into each other (lists are unioned); a file's own `include` is followed.
///
/// `chain` holds the files whose includes are being read (the main file first): a file that
/// includes one of them again is an error. Salt recurses until Python's recursion limit; we
/// recursed until the stack overflowed and the process died (found by salt-fuzz with
/// `include: master` in the master file).
fn include_config(
    include: &Value,
    orig_path: &Path,
    verbose: bool,
    warnings: &mut Vec<String>,
    chain: &mut Vec<PathBuf>,
) -> Result<Map<String, Value>, ConfigError> {
    let patterns: Vec<String> = match include {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Array(items) => items.iter().map(python_str).collect(),
        _ => return Ok(Map::new()),
    };
    let base = orig_path.parent().unwrap_or(Path::new("."));
    let mut configuration = Map::new();
    for pattern in patterns {
        let pattern = paths::expand_user(&pattern);
        let full = if Path::new(&pattern).is_absolute() { PathBuf::from(&pattern) } else { base.join(&pattern) };
        let matches = paths::glob(&full).map_err(|message| ConfigError::BadInclude {
            path: orig_path.display().to_string(),
            pattern: pattern.clone(),
            message,
        })?;
        if matches.is_empty() && verbose {
            warnings.push(format!("Warning parsing configuration file: \"include\" path/glob '{}' matches no files", full.display()));
        }
        for file in matches {
            let identity = file_identity(&file);
            if chain.contains(&identity) {
                return Err(ConfigError::BadInclude {
                    path: orig_path.display().to_string(),
                    pattern: pattern.clone(),
                    message: format!("{} is already being included (an include cycle)", file.display()),
                });
            }
            let Some(mut opts) = read_conf_file(&file)? else {
                continue;
            };
            check_values(&opts, &file.display().to_string())?;
            check_keys(&opts, &file.display().to_string(), warnings);
            if let Some(nested) = opts.get("include").cloned() {
                chain.push(identity);
                let nested = include_config(&nested, &file, verbose, warnings, chain);
                chain.pop();
                opts.extend(nested?);
            }
            dict_update(&mut configuration, opts);
        }
    }
    Ok(configuration)
}

/// A file's canonical path (so `./master`, `master` and a symlink to it are one file), or
/// the path itself when it cannot be resolved.
fn file_identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `salt.utils.dictupdate.update(dest, upd, recursive_update=True, merge_lists=True)`.
fn dict_update(dest: &mut Map<String, Value>, upd: Map<String, Value>) {
    // Salt skips the recursion when the two share no key; the result is the same.
    for (key, value) in upd {
        match (dest.get_mut(&key), value) {
            (Some(Value::Object(d)), Value::Object(u)) => dict_update(d, u),
            (Some(Value::Array(d)), Value::Array(u)) => {
                for item in u {
                    if !d.contains(&item) {
                        d.push(item);
                    }
                }
            }
            (_, value) => {
                dest.insert(key, value);
            }
        }
    }
}

/// `salt.config._adjust_log_file_override`: `log_dir` relocates a relative `log_file`, or
/// the default log file's name when `log_file` is not set.
fn adjust_log_file_override(overrides: &mut Map<String, Value>, default_log_file: &Value) {
    let Some(log_dir) = str_of(overrides, "log_dir").filter(|d| !d.is_empty()) else {
        return;
    };
    match str_of(overrides, "log_file").filter(|f| !f.is_empty()) {
        Some(file) if Path::new(&file).is_absolute() => {}
        Some(file) => {
            overrides.insert("log_file".into(), Value::String(paths::join(&log_dir, &file)));
        }
        None => {
            let default = default_log_file.as_str().unwrap_or_default();
            let name = Path::new(default).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            overrides.insert("log_file".into(), Value::String(paths::join(&log_dir, &name)));
        }
    }
}

/// Adds a "did you mean" warning for each top-level key of `map` that Salt does not know and
/// that is close to one it does. Dotted keys (`mysql.host`) and mapping values (`mysql:
/// {...}`) are returner/module settings and are never flagged.
fn check_keys(map: &Map<String, Value>, source: &str, warnings: &mut Vec<String>) {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| defaults::known_options().into_iter().collect());
    for (key, value) in map {
        if known.contains(key) || key.contains('.') || value.is_object() {
            continue;
        }
        if let Some(suggestion) = suggest::closest(key, known.iter().map(String::as_str)) {
            warnings.push(format!("{source}: unknown option '{key}', did you mean '{suggestion}'?"));
        }
    }
}

/// The first option of `map` whose value is of the wrong type or out of range for a known
/// option ([`defaults::value_kinds`]), as an error naming the file `source`.
fn check_values(map: &Map<String, Value>, source: &str) -> Result<(), ConfigError> {
    for (key, value) in map {
        if let Err(expected) = defaults::check_value(key, value) {
            let value = match value {
                Value::String(s) => format!("'{s}'"),
                other => other.to_string(),
            };
            return Err(ConfigError::BadValue { path: source.to_owned(), key: key.clone(), value, expected });
        }
    }
    Ok(())
}

fn str_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)?.as_str().map(str::to_owned)
}

/// Python truthiness of a YAML value.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Python's `str()` of a YAML scalar (`True`, `None`, `12`), used where Salt calls `str()`.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;

/// The master's local control socket (`sock_dir/master.sock`), where `salt`, `salt-run` and
/// `saltutil.runner` reach the master.
pub fn master_control_socket(config: &Config) -> PathBuf {
    config.path("sock_dir").unwrap_or_else(|| PathBuf::from("/var/run/salt/master")).join("master.sock")
}
