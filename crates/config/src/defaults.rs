//! Salt's option defaults and option names (`salt/config/__init__.py`, 3007.x:
//! `DEFAULT_MASTER_OPTS`, `DEFAULT_MINION_OPTS`, `VALID_OPTS`), for a Linux install with
//! `salt.syspaths` at their defaults (`/etc/salt`, `/var/cache/salt`, `/var/run/salt`,
//! `/var/log/salt`, `/srv/...`).
//!
//! The tables are JSON text so they read like Salt's Python dicts. Values Salt computes at
//! run time are filled in by [`crate::Config`]: `user` (the effective user), the master `id`,
//! `ipc_write_buffer` (0 unless configured, as `apply_*_config` does).
//!
//! Our own keys (not Salt's):
//! * `max_frame_bytes` (both roles, default 64 MiB): the largest frame our transport accepts
//!   from a peer.
//! * `publish_ttl` (master, 300 s) and `publisher_returner_acl` (master): how long a publish stays
//!   valid, and who besides root may choose a returner.

use serde_json::{Map, Value};

use crate::Role;

/// Our transport's frame limit default, in bytes (64 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: u64 = 64 * 1024 * 1024;

/// Options that `apply_master_config` passes to `prepend_root_dir` (log-like keys are added
/// only when they are local paths, see [`LOG_PATH_OPTIONS_MASTER`]).
pub const ROOT_DIR_OPTIONS_MASTER: &[&str] = &[
    "pki_dir",
    "cachedir",
    "pidfile",
    "sock_dir",
    "extension_modules",
    "autosign_file",
    "autoreject_file",
    "token_dir",
    "syndic_dir",
    "sqlite_queue_dir",
    "autosign_grains_dir",
];
pub const LOG_PATH_OPTIONS_MASTER: &[&str] = &["log_file", "key_logfile", "ssh_log_file"];

/// Options that `apply_minion_config` passes to `prepend_root_dir`.
pub const ROOT_DIR_OPTIONS_MINION: &[&str] = &[
    "pki_dir",
    "cachedir",
    "sock_dir",
    "extension_modules",
    "pidfile",
];
pub const LOG_PATH_OPTIONS_MINION: &[&str] = &["log_file", "key_logfile"];

/// The defaults for `role`, in Salt's key order.
pub fn defaults(role: Role) -> Map<String, Value> {
    let text = match role {
        Role::Master => MASTER,
        Role::Minion => MINION,
    };
    let mut map: Map<String, Value> = serde_json::from_str(text).expect("defaults are valid JSON");
    map.insert(
        "max_frame_bytes".into(),
        Value::from(DEFAULT_MAX_FRAME_BYTES),
    );
    map
}

/// Every option name Salt knows (either role), for the "did you mean" check.
pub fn known_options() -> Vec<String> {
    let mut names: Vec<String> = defaults(Role::Master).into_iter().map(|(k, _)| k).collect();
    names.extend(defaults(Role::Minion).into_iter().map(|(k, _)| k));
    names.extend(OTHER_KNOWN.iter().map(|s| s.to_string()));
    names.sort();
    names.dedup();
    names
}

/// Option names Salt reads (from `VALID_OPTS` and the config code) that have no default.
const OTHER_KNOWN: &[&str] = &[
    "add_proxymodule_to_opts",
    "api_logfile",
    "api_pidfile",
    "append_domain",
    "autosign_grains",
    "beacons",
    "bootstrap_delay",
    "conf_file",
    "enable_lspci",
    "event_return_queue_max_seconds",
    "ext_pillar_first",
    "grains_refresh_pre_exec",
    "include",
    "ipc_write_buffer",
    "log_dir",
    "master_alive_interval",
    "mine_functions",
    "no_proxy",
    "pass_to_ext_pillars",
    "pillar",
    "proxy_always_alive",
    "proxy_deep_merge_pillar_in_opts",
    "proxy_keep_alive",
    "proxy_keep_alive_interval",
    "proxy_merge_grains_in_module",
    "proxy_merge_pillar_in_opts",
    "proxy_merge_pillar_in_opts_strategy",
    // Our own keys (see the README's Configuration).
    "publish_ttl",
    "publisher_returner_acl",
    "proxy_mines_pillar",
    "rest_timeout",
    "return",
    "saltenv",
    "ssh_minion_opts",
    "state_compress_ids",
    "state_output_pct",
    "syndic_dir",
    "syndic_master_port",
    "syndic_sock_dir",
    "syndic_user",
    "token_dir",
    "token_file",
    "master_uri",
    "environment",
    "id",
];

/// What the value of a known option must be. [`value_kinds`] is the one place that says which
/// option is which; [`check_value`] is the check [`crate::Config`] runs on every file it reads,
/// so a wrong type or an absurd value stops the daemon with a message naming the file, the
/// option, the value and what was expected, instead of a default quietly taking its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TCP port, 1 to 65535.
    Port,
    /// A whole number from `min` to `max` (seconds, milliseconds, counts, bytes: `unit` says
    /// which, for the message). As `Config::u64` reads it: an integer, an integral float
    /// (`5.0`) or a decimal string (`"5"`).
    Int {
        min: u64,
        max: u64,
        unit: &'static str,
    },
    /// A YAML boolean (`true`/`false`, `yes`/`no`, `on`/`off`; not `1`, not `y`).
    Bool,
    /// One returner name (`local_cache`, `mysql`, ...).
    Returner,
    /// No returner (`""`) or one returner name.
    OptionalReturner,
    /// Returner names: one name, a comma-separated string of names, or a YAML list of names;
    /// empty for none.
    Returners,
}

/// The longest time any option may say, in its own unit: a hundred years of seconds. Larger
/// values are typos, and would overflow a clock.
const MAX_TIME: u64 = 100 * 365 * 24 * 3600;

const SECONDS: Kind = Kind::Int {
    min: 0,
    max: MAX_TIME,
    unit: "seconds",
};
const SECONDS_AT_LEAST_1: Kind = Kind::Int {
    min: 1,
    max: MAX_TIME,
    unit: "seconds",
};
const MILLISECONDS: Kind = Kind::Int {
    min: 0,
    max: MAX_TIME,
    unit: "milliseconds",
};
const COUNT: Kind = Kind::Int {
    min: 0,
    max: u32::MAX as u64,
    unit: "",
};

/// The smallest `max_frame_bytes` we accept: below this even a job load or a key listing
/// does not fit, and every CLI call fails.
pub const MIN_MAX_FRAME_BYTES: u64 = 64 * 1024;

/// The typed options, with what each must be. Options not listed here are not checked (Salt
/// has hundreds we never read); every option our programs read as a number, a boolean or a
/// returner name is listed.
pub fn value_kinds() -> &'static [(&'static str, Kind)] {
    &[
        // Ports.
        ("ret_port", Kind::Port),
        ("publish_port", Kind::Port),
        ("master_port", Kind::Port),
        // Times.
        ("timeout", SECONDS),
        ("gather_job_timeout", SECONDS),
        ("keep_jobs_seconds", SECONDS),
        (
            "keep_jobs",
            Kind::Int {
                min: 0,
                max: MAX_TIME / 3600,
                unit: "hours",
            },
        ),
        ("loop_interval", SECONDS_AT_LEAST_1),
        ("publish_ttl", SECONDS_AT_LEAST_1),
        ("acceptance_wait_time", SECONDS),
        ("acceptance_wait_time_max", SECONDS),
        ("random_reauth_delay", SECONDS),
        ("return_retry_timer", SECONDS),
        ("return_retry_timer_max", SECONDS),
        ("event_return_queue_max_seconds", SECONDS),
        ("auth_timeout", SECONDS),
        ("recon_default", MILLISECONDS),
        ("recon_max", MILLISECONDS),
        // Counts and sizes.
        ("event_return_queue", COUNT),
        ("minion_jid_queue_hwm", COUNT),
        ("worker_threads", COUNT),
        ("max_open_files", COUNT),
        (
            "max_event_size",
            Kind::Int {
                min: 1,
                max: u32::MAX as u64,
                unit: "bytes",
            },
        ),
        (
            "max_frame_bytes",
            Kind::Int {
                min: MIN_MAX_FRAME_BYTES,
                // Frames carry a 32-bit length.
                max: u32::MAX as u64,
                unit: "bytes",
            },
        ),
        // Booleans.
        ("auto_accept", Kind::Bool),
        ("open_mode", Kind::Bool),
        ("unique_jid", Kind::Bool),
        ("show_jid", Kind::Bool),
        ("show_timeout", Kind::Bool),
        ("cli_summary", Kind::Bool),
        ("job_cache", Kind::Bool),
        ("job_cache_store_endtime", Kind::Bool),
        ("minion_data_cache", Kind::Bool),
        ("archive_jobs", Kind::Bool),
        ("cache_jobs", Kind::Bool),
        ("multiprocessing", Kind::Bool),
        ("recon_randomize", Kind::Bool),
        ("permissive_pki_access", Kind::Bool),
        // Returner names.
        ("master_job_cache", Kind::Returner),
        ("ext_job_cache", Kind::OptionalReturner),
        ("event_return", Kind::Returners),
        ("return", Kind::Returners),
    ]
}

/// The kind of `key`'s value, when it is a typed option.
pub fn kind_of(key: &str) -> Option<Kind> {
    value_kinds()
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, kind)| *kind)
}

/// Checks one option's value against its kind. `Err` is what was expected, for the message.
/// Options that are not typed pass.
pub fn check_value(key: &str, value: &serde_json::Value) -> Result<(), String> {
    let Some(kind) = kind_of(key) else {
        return Ok(());
    };
    let ok = match kind {
        Kind::Port => whole_number(value).is_some_and(|n| (1..=65535).contains(&n)),
        Kind::Int { min, max, .. } => whole_number(value).is_some_and(|n| (min..=max).contains(&n)),
        Kind::Bool => value.is_boolean(),
        Kind::Returner => value.as_str().is_some_and(is_returner_name),
        Kind::OptionalReturner => value
            .as_str()
            .is_some_and(|s| s.is_empty() || is_returner_name(s)),
        Kind::Returners => match value {
            Value::Null => true,
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .all(|n| n.is_empty() || is_returner_name(n)),
            Value::Array(items) => items
                .iter()
                .all(|i| i.as_str().is_some_and(is_returner_name)),
            _ => false,
        },
    };
    if ok {
        Ok(())
    } else {
        Err(expected(kind))
    }
}

/// What a value of `kind` must be, in words.
fn expected(kind: Kind) -> String {
    match kind {
        Kind::Port => "a port number from 1 to 65535".into(),
        Kind::Int { min, max, unit } => {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" ({unit})")
            };
            format!("a whole number from {min} to {max}{unit}")
        }
        Kind::Bool => "a boolean (true or false)".into(),
        Kind::Returner => "one returner name, e.g. local_cache or mysql".into(),
        Kind::OptionalReturner => "one returner name, or '' for none".into(),
        Kind::Returners => {
            "a returner name, a comma-separated string or a list of returner names".into()
        }
    }
}

/// A whole number as `Config::u64` reads it: a non-negative integer, an integral float, or a
/// decimal string.
fn whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A returner module name: letters, digits and `_` (Salt's module names).
fn is_returner_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const MINION: &str = r##"{
  "interface": "0.0.0.0",
  "master": "salt",
  "master_type": "str",
  "master_uri_format": "default",
  "source_interface_name": "",
  "source_address": "",
  "source_ret_port": 0,
  "source_publish_port": 0,
  "master_port": 4506,
  "master_finger": "",
  "master_shuffle": false,
  "master_alive_interval": 0,
  "master_failback": false,
  "master_failback_interval": 0,
  "verify_master_pubkey_sign": false,
  "sign_pub_messages": false,
  "always_verify_signature": false,
  "master_sign_key_name": "master_sign",
  "syndic_finger": "",
  "user": "root",
  "root_dir": "/",
  "pki_dir": "/etc/salt/pki/minion",
  "id": null,
  "id_function": {},
  "cachedir": "/var/cache/salt/minion",
  "append_minionid_config_dirs": [],
  "cache_jobs": false,
  "grains_blacklist": [],
  "grains_cache": false,
  "grains_cache_expiration": 300,
  "grains_deep_merge": false,
  "conf_file": "/etc/salt/minion",
  "sock_dir": "/var/run/salt/minion",
  "sock_pool_size": 1,
  "backup_mode": "",
  "renderer": "jinja|yaml",
  "renderer_whitelist": [],
  "renderer_blacklist": [],
  "random_startup_delay": 0,
  "failhard": false,
  "autoload_dynamic_modules": true,
  "saltenv": null,
  "lock_saltenv": false,
  "pillarenv": null,
  "pillarenv_from_saltenv": false,
  "pillar_opts": false,
  "pillar_source_merging_strategy": "smart",
  "pillar_merge_lists": false,
  "pillar_includes_override_sls": false,
  "pillar_cache": false,
  "pillar_cache_ttl": 3600,
  "pillar_cache_backend": "disk",
  "request_channel_timeout": 60,
  "request_channel_tries": 3,
  "gpg_cache": false,
  "gpg_cache_ttl": 86400,
  "gpg_cache_backend": "disk",
  "extension_modules": "/var/cache/salt/minion/extmods",
  "state_top": "top.sls",
  "state_top_saltenv": null,
  "startup_states": "",
  "sls_list": [],
  "start_event_grains": [],
  "top_file": "",
  "thoriumenv": null,
  "thorium_top": "top.sls",
  "thorium_interval": 0.5,
  "thorium_roots": {"base": ["/srv/thorium"]},
  "file_client": "remote",
  "local": false,
  "use_master_when_local": false,
  "file_roots": {"base": ["/srv/salt", "/srv/spm/salt"]},
  "top_file_merging_strategy": "merge",
  "env_order": [],
  "default_top": "base",
  "file_recv": false,
  "file_recv_max_size": 100,
  "file_ignore_regex": [],
  "file_ignore_glob": [],
  "fileserver_backend": ["roots"],
  "fileserver_followsymlinks": true,
  "fileserver_ignoresymlinks": false,
  "pillar_roots": {"base": ["/srv/pillar", "/srv/spm/pillar"]},
  "on_demand_ext_pillar": ["libvirt", "virtkey"],
  "decrypt_pillar": [],
  "decrypt_pillar_delimiter": ":",
  "decrypt_pillar_default": "gpg",
  "decrypt_pillar_renderers": ["gpg"],
  "gpg_decrypt_must_succeed": true,
  "roots_update_interval": 60,
  "gitfs_update_interval": 60,
  "git_pillar_update_interval": 60,
  "hgfs_update_interval": 60,
  "minionfs_update_interval": 60,
  "s3fs_update_interval": 60,
  "svnfs_update_interval": 60,
  "git_pillar_base": "master",
  "git_pillar_branch": "master",
  "git_pillar_env": "",
  "git_pillar_fallback": "",
  "git_pillar_root": "",
  "git_pillar_ssl_verify": true,
  "git_pillar_global_lock": true,
  "git_pillar_user": "",
  "git_pillar_password": "",
  "git_pillar_insecure_auth": false,
  "git_pillar_privkey": "",
  "git_pillar_pubkey": "",
  "git_pillar_passphrase": "",
  "git_pillar_refspecs": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
  "git_pillar_includes": true,
  "gitfs_remotes": [],
  "gitfs_mountpoint": "",
  "gitfs_root": "",
  "gitfs_base": "master",
  "gitfs_fallback": "",
  "gitfs_user": "",
  "gitfs_password": "",
  "gitfs_insecure_auth": false,
  "gitfs_privkey": "",
  "gitfs_pubkey": "",
  "gitfs_passphrase": "",
  "gitfs_saltenv_whitelist": [],
  "gitfs_saltenv_blacklist": [],
  "gitfs_global_lock": true,
  "gitfs_ssl_verify": true,
  "gitfs_saltenv": [],
  "gitfs_ref_types": ["branch", "tag", "sha"],
  "gitfs_refspecs": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
  "gitfs_disable_saltenv_mapping": false,
  "unique_jid": false,
  "hash_type": "sha256",
  "optimization_order": [0, 1, 2],
  "disable_modules": [],
  "disable_returners": [],
  "whitelist_modules": [],
  "module_dirs": [],
  "returner_dirs": [],
  "grains_dirs": [],
  "states_dirs": [],
  "render_dirs": [],
  "outputter_dirs": [],
  "utils_dirs": [],
  "publisher_acl": {},
  "publisher_acl_blacklist": {},
  "providers": {},
  "clean_dynamic_modules": true,
  "open_mode": false,
  "auto_accept": true,
  "autosign_timeout": 120,
  "multiprocessing": true,
  "process_count_max": -1,
  "mine_enabled": true,
  "mine_return_job": false,
  "mine_interval": 60,
  "ipc_mode": "ipc",
  "ipc_write_buffer": 0,
  "ipv6": null,
  "file_buffer_size": 262144,
  "tcp_pub_port": 4510,
  "tcp_pull_port": 4511,
  "tcp_authentication_retries": 5,
  "tcp_reconnect_backoff": 1,
  "log_file": "/var/log/salt/minion",
  "log_level": "warning",
  "log_level_logfile": null,
  "log_datefmt": "%H:%M:%S",
  "log_datefmt_logfile": "%Y-%m-%d %H:%M:%S",
  "log_fmt_console": "[%(levelname)-8s] %(message)s",
  "log_fmt_logfile": "%(asctime)s,%(msecs)03d [%(name)-17s:%(lineno)-4d][%(levelname)-8s][%(process)d] %(message)s",
  "log_fmt_jid": "[JID: %(jid)s]",
  "log_granular_levels": {},
  "log_rotate_max_bytes": 0,
  "log_rotate_backup_count": 0,
  "max_event_size": 1048576,
  "enable_legacy_startup_events": true,
  "test": false,
  "ext_job_cache": "",
  "cython_enable": false,
  "enable_fqdns_grains": false,
  "enable_gpu_grains": true,
  "enable_zip_modules": false,
  "state_verbose": true,
  "state_output": "full",
  "state_output_diff": false,
  "state_output_profile": true,
  "state_auto_order": true,
  "state_events": false,
  "state_aggregate": false,
  "state_queue": false,
  "snapper_states": false,
  "snapper_states_config": "root",
  "acceptance_wait_time": 10,
  "acceptance_wait_time_max": 0,
  "rejected_retry": false,
  "loop_interval": 1,
  "verify_env": true,
  "grains": {},
  "permissive_pki_access": false,
  "default_include": "minion.d/*.conf",
  "update_url": false,
  "update_restart_services": [],
  "retry_dns": 30,
  "retry_dns_count": null,
  "resolve_dns_fallback": true,
  "recon_max": 10000,
  "recon_default": 1000,
  "recon_randomize": true,
  "return_retry_timer": 5,
  "return_retry_timer_max": 10,
  "return_retry_tries": 3,
  "random_reauth_delay": 10,
  "winrepo_source_dir": "salt://win/repo-ng/",
  "winrepo_dir": "/srv/salt/win/repo",
  "winrepo_dir_ng": "/srv/salt/win/repo-ng",
  "winrepo_cachefile": "winrepo.p",
  "winrepo_cache_expire_max": 604800,
  "winrepo_cache_expire_min": 1800,
  "winrepo_remotes": ["https://github.com/saltstack/salt-winrepo.git"],
  "winrepo_remotes_ng": ["https://github.com/saltstack/salt-winrepo-ng.git"],
  "winrepo_branch": "master",
  "winrepo_fallback": "",
  "winrepo_ssl_verify": true,
  "winrepo_user": "",
  "winrepo_password": "",
  "winrepo_insecure_auth": false,
  "winrepo_privkey": "",
  "winrepo_pubkey": "",
  "winrepo_passphrase": "",
  "winrepo_refspecs": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
  "pidfile": "/var/run/salt-minion.pid",
  "range_server": "range:80",
  "reactor_refresh_interval": 60,
  "reactor_worker_threads": 10,
  "reactor_worker_hwm": 10000,
  "engines": [],
  "tcp_keepalive": true,
  "tcp_keepalive_idle": 300,
  "tcp_keepalive_cnt": -1,
  "tcp_keepalive_intvl": -1,
  "modules_max_memory": -1,
  "grains_refresh_every": 0,
  "minion_id_caching": true,
  "minion_id_lowercase": false,
  "minion_id_remove_domain": false,
  "keysize": 2048,
  "transport": "zeromq",
  "auth_timeout": 5,
  "auth_tries": 7,
  "master_tries": 1,
  "master_tops_first": false,
  "auth_safemode": false,
  "random_master": false,
  "cluster_mode": false,
  "restart_on_error": false,
  "ping_interval": 0,
  "username": null,
  "password": null,
  "zmq_filtering": false,
  "zmq_monitor": false,
  "cache_sreqs": true,
  "cmd_safe": true,
  "sudo_user": "",
  "http_connect_timeout": 20.0,
  "http_request_timeout": 3600.0,
  "http_max_body": 107374182400,
  "event_match_type": "startswith",
  "minion_restart_command": [],
  "pub_ret": true,
  "proxy_host": "",
  "proxy_username": "",
  "proxy_password": "",
  "proxy_port": 0,
  "minion_jid_queue_hwm": 100,
  "ssl": null,
  "multifunc_ordered": false,
  "beacons_before_connect": false,
  "scheduler_before_connect": false,
  "cache": "localfs",
  "salt_cp_chunk_size": 65536,
  "extmod_whitelist": {},
  "extmod_blacklist": {},
  "minion_sign_messages": false,
  "discovery": false,
  "schedule": {},
  "ssh_merge_pillar": true,
  "disabled_requisites": [],
  "global_state_conditions": null,
  "reactor_niceness": null,
  "fips_mode": false,
  "features": {},
  "return": ""
}"##;

const MASTER: &str = r##"{
  "interface": "0.0.0.0",
  "publish_port": 4505,
  "zmq_backlog": 1000,
  "pub_hwm": 1000,
  "auth_mode": 1,
  "user": "root",
  "worker_threads": 5,
  "sock_dir": "/var/run/salt/master",
  "sock_pool_size": 1,
  "ret_port": 4506,
  "timeout": 5,
  "keep_jobs": 24,
  "keep_jobs_seconds": 86400,
  "archive_jobs": false,
  "root_dir": "/",
  "pki_dir": "/etc/salt/pki/master",
  "key_cache": "",
  "cachedir": "/var/cache/salt/master",
  "file_roots": {"base": ["/srv/salt", "/srv/spm/salt"]},
  "master_roots": {"base": ["/srv/salt-master"]},
  "pillar_roots": {"base": ["/srv/pillar", "/srv/spm/pillar"]},
  "on_demand_ext_pillar": ["libvirt", "virtkey"],
  "decrypt_pillar": [],
  "decrypt_pillar_delimiter": ":",
  "decrypt_pillar_default": "gpg",
  "decrypt_pillar_renderers": ["gpg"],
  "gpg_decrypt_must_succeed": true,
  "thoriumenv": null,
  "thorium_top": "top.sls",
  "thorium_interval": 0.5,
  "thorium_roots": {"base": ["/srv/thorium"]},
  "top_file_merging_strategy": "merge",
  "env_order": [],
  "saltenv": null,
  "lock_saltenv": false,
  "pillarenv": null,
  "default_top": "base",
  "file_client": "local",
  "local": true,
  "roots_update_interval": 60,
  "gitfs_update_interval": 60,
  "git_pillar_update_interval": 60,
  "hgfs_update_interval": 60,
  "minionfs_update_interval": 60,
  "s3fs_update_interval": 60,
  "svnfs_update_interval": 60,
  "git_pillar_base": "master",
  "git_pillar_branch": "master",
  "git_pillar_env": "",
  "git_pillar_fallback": "",
  "git_pillar_root": "",
  "git_pillar_ssl_verify": true,
  "git_pillar_global_lock": true,
  "git_pillar_user": "",
  "git_pillar_password": "",
  "git_pillar_insecure_auth": false,
  "git_pillar_privkey": "",
  "git_pillar_pubkey": "",
  "git_pillar_passphrase": "",
  "git_pillar_refspecs": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
  "git_pillar_includes": true,
  "git_pillar_verify_config": true,
  "gitfs_remotes": [],
  "gitfs_mountpoint": "",
  "gitfs_root": "",
  "gitfs_base": "master",
  "gitfs_fallback": "",
  "gitfs_user": "",
  "gitfs_password": "",
  "gitfs_insecure_auth": false,
  "gitfs_privkey": "",
  "gitfs_pubkey": "",
  "gitfs_passphrase": "",
  "gitfs_saltenv_whitelist": [],
  "gitfs_saltenv_blacklist": [],
  "gitfs_global_lock": true,
  "gitfs_ssl_verify": true,
  "gitfs_saltenv": [],
  "gitfs_ref_types": ["branch", "tag", "sha"],
  "gitfs_refspecs": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
  "gitfs_disable_saltenv_mapping": false,
  "hgfs_remotes": [],
  "hgfs_mountpoint": "",
  "hgfs_root": "",
  "hgfs_base": "default",
  "hgfs_branch_method": "branches",
  "hgfs_saltenv_whitelist": [],
  "hgfs_saltenv_blacklist": [],
  "show_timeout": true,
  "show_jid": false,
  "unique_jid": false,
  "svnfs_remotes": [],
  "svnfs_mountpoint": "",
  "svnfs_root": "",
  "svnfs_trunk": "trunk",
  "svnfs_branches": "branches",
  "svnfs_tags": "tags",
  "svnfs_saltenv_whitelist": [],
  "svnfs_saltenv_blacklist": [],
  "max_event_size": 1048576,
  "master_stats": false,
  "master_stats_event_iter": 60,
  "minionfs_env": "base",
  "minionfs_mountpoint": "",
  "minionfs_whitelist": [],
  "minionfs_blacklist": [],
  "ext_pillar": [],
  "pillar_version": 2,
  "pillar_opts": false,
  "pillar_safe_render_error": true,
  "pillar_source_merging_strategy": "smart",
  "pillar_merge_lists": false,
  "pillar_includes_override_sls": false,
  "pillar_cache": false,
  "pillar_cache_ttl": 3600,
  "pillar_cache_backend": "disk",
  "gpg_cache": false,
  "gpg_cache_ttl": 86400,
  "gpg_cache_backend": "disk",
  "ping_on_rotate": false,
  "peer": {},
  "preserve_minion_cache": false,
  "syndic_master": "masterofmasters",
  "syndic_failover": "random",
  "syndic_forward_all_events": false,
  "syndic_log_file": "/var/log/salt/syndic",
  "syndic_pidfile": "/var/run/salt-syndic.pid",
  "outputter_dirs": [],
  "runner_dirs": [],
  "utils_dirs": [],
  "client_acl_verify": true,
  "publisher_acl": {},
  "publisher_acl_blacklist": {},
  "sudo_acl": false,
  "external_auth": {},
  "token_expire": 43200,
  "token_expire_user_override": false,
  "permissive_acl": false,
  "keep_acl_in_token": false,
  "eauth_acl_module": "",
  "eauth_tokens": "localfs",
  "extension_modules": "/var/cache/salt/master/extmods",
  "module_dirs": [],
  "file_recv": false,
  "file_recv_max_size": 100,
  "file_buffer_size": 1048576,
  "file_ignore_regex": [],
  "file_ignore_glob": [],
  "fileserver_backend": ["roots"],
  "fileserver_followsymlinks": true,
  "fileserver_ignoresymlinks": false,
  "fileserver_verify_config": true,
  "max_open_files": 100000,
  "hash_type": "sha256",
  "optimization_order": [0, 1, 2],
  "conf_file": "/etc/salt/master",
  "open_mode": false,
  "auto_accept": false,
  "autosign_timeout": 120,
  "autosign_file": "/etc/salt/autosign.conf",
  "autoreject_file": "/etc/salt/autoreject.conf",
  "autosign_grains_dir": "/etc/salt/autosign_grains",
  "renderer": "jinja|yaml",
  "renderer_whitelist": [],
  "renderer_blacklist": [],
  "failhard": false,
  "state_top": "top.sls",
  "state_top_saltenv": null,
  "master_tops": {},
  "master_tops_first": false,
  "order_masters": false,
  "job_cache": true,
  "ext_job_cache": "",
  "master_job_cache": "local_cache",
  "job_cache_store_endtime": false,
  "minion_data_cache": true,
  "enforce_mine_cache": false,
  "ipc_mode": "ipc",
  "ipc_write_buffer": 0,
  "req_server_niceness": null,
  "pub_server_niceness": null,
  "fileserver_update_niceness": null,
  "mworker_niceness": null,
  "mworker_queue_niceness": null,
  "maintenance_niceness": null,
  "event_return_niceness": null,
  "event_publisher_niceness": null,
  "reactor_niceness": null,
  "ipv6": null,
  "tcp_master_pub_port": 4512,
  "tcp_master_pull_port": 4513,
  "tcp_master_publish_pull": 4514,
  "tcp_master_workers": 4515,
  "log_file": "/var/log/salt/master",
  "log_level": "warning",
  "log_level_logfile": null,
  "log_datefmt": "%H:%M:%S",
  "log_datefmt_logfile": "%Y-%m-%d %H:%M:%S",
  "log_fmt_console": "[%(levelname)-8s] %(message)s",
  "log_fmt_logfile": "%(asctime)s,%(msecs)03d [%(name)-17s:%(lineno)-4d][%(levelname)-8s][%(process)d] %(message)s",
  "log_fmt_jid": "[JID: %(jid)s]",
  "log_granular_levels": {},
  "log_rotate_max_bytes": 0,
  "log_rotate_backup_count": 0,
  "pidfile": "/var/run/salt-master.pid",
  "publish_session": 86400,
  "range_server": "range:80",
  "reactor": [],
  "reactor_refresh_interval": 60,
  "reactor_worker_threads": 10,
  "reactor_worker_hwm": 10000,
  "engines": [],
  "event_return": "",
  "event_return_queue": 0,
  "event_return_whitelist": [],
  "event_return_blacklist": [],
  "event_match_type": "startswith",
  "runner_returns": true,
  "serial": "msgpack",
  "test": false,
  "state_verbose": true,
  "state_output": "full",
  "state_output_diff": false,
  "state_output_profile": true,
  "state_auto_order": true,
  "state_events": false,
  "state_aggregate": false,
  "search": "",
  "loop_interval": 60,
  "nodegroups": {},
  "ssh_list_nodegroups": {},
  "ssh_use_home_key": false,
  "cython_enable": false,
  "enable_gpu_grains": false,
  "key_logfile": "/var/log/salt/key",
  "verify_env": true,
  "permissive_pki_access": false,
  "key_pass": null,
  "cluster_key_pass": null,
  "signing_key_pass": null,
  "default_include": "master.d/*.conf",
  "winrepo_dir": "/srv/salt/win/repo",
  "winrepo_dir_ng": "/srv/salt/win/repo-ng",
  "winrepo_cachefile": "winrepo.p",
  "winrepo_remotes": ["https://github.com/saltstack/salt-winrepo.git"],
  "winrepo_remotes_ng": ["https://github.com/saltstack/salt-winrepo-ng.git"],
  "winrepo_branch": "master",
  "winrepo_fallback": "",
  "winrepo_ssl_verify": true,
  "winrepo_user": "",
  "winrepo_password": "",
  "winrepo_insecure_auth": false,
  "winrepo_privkey": "",
  "winrepo_pubkey": "",
  "winrepo_passphrase": "",
  "winrepo_refspecs": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
  "syndic_wait": 5,
  "jinja_env": {},
  "jinja_sls_env": {},
  "jinja_lstrip_blocks": false,
  "jinja_trim_blocks": false,
  "tcp_keepalive": true,
  "tcp_keepalive_idle": 300,
  "tcp_keepalive_cnt": -1,
  "tcp_keepalive_intvl": -1,
  "sign_pub_messages": true,
  "keysize": 2048,
  "transport": "zeromq",
  "gather_job_timeout": 10,
  "syndic_event_forward_timeout": 0.5,
  "syndic_jid_forward_cache_hwm": 100,
  "regen_thin": false,
  "ssh_passwd": "",
  "ssh_priv_passwd": "",
  "ssh_port": "22",
  "ssh_sudo": false,
  "ssh_sudo_user": "",
  "ssh_timeout": 60,
  "ssh_user": "root",
  "ssh_scan_ports": "22",
  "ssh_scan_timeout": 0.01,
  "ssh_identities_only": false,
  "ssh_log_file": "/var/log/salt/ssh",
  "ssh_config_file": "~/.ssh/config",
  "cluster_mode": false,
  "sqlite_queue_dir": "/var/cache/salt/master/queues",
  "queue_dirs": [],
  "cli_summary": false,
  "max_minions": 0,
  "master_sign_key_name": "master_sign",
  "master_sign_pubkey": false,
  "master_pubkey_signature": "master_pubkey_signature",
  "master_use_pubkey_signature": false,
  "zmq_filtering": false,
  "zmq_monitor": false,
  "con_cache": false,
  "rotate_aes_key": true,
  "cache_sreqs": true,
  "dummy_pub": false,
  "http_connect_timeout": 20.0,
  "http_request_timeout": 3600.0,
  "http_max_body": 107374182400,
  "cache": "localfs",
  "memcache_expire_seconds": 0,
  "memcache_max_items": 1024,
  "memcache_full_cleanup": false,
  "memcache_debug": false,
  "thin_extra_mods": "",
  "min_extra_mods": "",
  "ssl": null,
  "extmod_whitelist": {},
  "extmod_blacklist": {},
  "clean_dynamic_modules": true,
  "django_auth_path": "",
  "django_auth_settings": "",
  "allow_minion_key_revoke": true,
  "salt_cp_chunk_size": 98304,
  "require_minion_sign_messages": false,
  "drop_messages_signature_fail": false,
  "discovery": false,
  "schedule": {},
  "auth_events": true,
  "minion_data_cache_events": true,
  "enable_ssh_minions": false,
  "netapi_allow_raw_shell": false,
  "fips_mode": false,
  "detect_remote_minions": false,
  "remote_minions_port": 22,
  "pass_variable_prefix": "",
  "pass_strict_fetch": false,
  "pass_gnupghome": "",
  "pass_dir": "",
  "netapi_enable_clients": [],
  "maintenance_interval": 3600,
  "fileserver_interval": 3600,
  "cluster_id": null,
  "cluster_peers": [],
  "cluster_pki_dir": null,
  "features": {},
  "id": null
}"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_and_hold_the_documented_defaults() {
        let master = defaults(Role::Master);
        assert_eq!(master["ret_port"], 4506);
        assert_eq!(master["publish_port"], 4505);
        assert_eq!(master["master_job_cache"], "local_cache");
        assert_eq!(master["keep_jobs_seconds"], 86400);
        assert_eq!(master["max_frame_bytes"], 64 * 1024 * 1024);
        let minion = defaults(Role::Minion);
        assert_eq!(minion["master"], "salt");
        assert_eq!(minion["recon_randomize"], true);
        assert_eq!(minion["default_include"], "minion.d/*.conf");
    }

    #[test]
    fn known_options_cover_both_roles_and_extras() {
        let known = known_options();
        for key in [
            "auto_accept",
            "master_finger",
            "return",
            "include",
            "max_frame_bytes",
        ] {
            assert!(known.iter().any(|k| k == key), "{key}");
        }
    }
}
