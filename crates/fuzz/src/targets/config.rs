//! The whole config load path from a file's text: `Config::from_yaml_str` for the master and
//! the minion (parse, "did you mean" key checks, Salt's defaults, derived options, `root_dir`),
//! the accessors the daemons use, and, for one input in 32, `Config::load` from a real config
//! directory (the file written to disk, `master.d/*.conf` and `include` followed).

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::OnceLock;

use salt_config::{master_control_socket, yaml, Config, Role};
use serde_json::Value;

use super::yaml::YAML_NEST;
use super::{text, Target};
use crate::rng::Rng;

pub static TARGET: Target = Target {
    name: "config",
    about: "Config::from_yaml_str / Config::load for master and minion, and the accessors",
    seeds,
    dict: CONFIG_DICT,
    nest: YAML_NEST,
    generate,
    run,
    max_len: 64 * 1024,
};

static CONFIG_DICT: &[&[u8]] = &[
    b"root_dir: ",
    b"interface: ",
    b"ret_port: ",
    b"pki_dir: ",
    b"cachedir: ",
    b"sock_dir: ",
    b"log_file: ",
    b"log_dir: ",
    b"log_level: ",
    b"id: ",
    b"master: ",
    b"master_port: ",
    b"auto_accept: ",
    b"open_mode: ",
    b"timeout: ",
    b"include: ",
    b"default_include: ",
    b"publisher_acl:\n  alice:\n    - test.*\n",
    b"return: ",
    b"return: [a, b]",
    b"nodegroups: ",
    b"hash_type: ",
    b"ipc_write_buffer: ",
    b"extension_modules: ",
    b"max_frame_bytes: ",
    b"keep_jobs_seconds: ",
    b"mysql.host: ",
    b"mysql: {host: x}",
    b"udp://host:514",
    b"file:///dev/log",
    b"/",
    b"~",
    b"..",
    b"*.conf",
    b"master.d/*.conf",
    b"retport: ",
    b"cachdir: ",
];

const KEYS: &[&str] = &[
    "root_dir",
    "interface",
    "ret_port",
    "pki_dir",
    "cachedir",
    "sock_dir",
    "log_file",
    "log_dir",
    "log_level",
    "id",
    "master",
    "master_port",
    "auto_accept",
    "open_mode",
    "timeout",
    "include",
    "default_include",
    "return",
    "nodegroups",
    "hash_type",
    "ipc_write_buffer",
    "extension_modules",
    "max_frame_bytes",
    "publish_ttl",
    "keep_jobs",
    "mysql.host",
    "user",
    "retport",
    "cachdir",
    "unknown_key",
    "master_job_cache",
    "event_return",
];

const VALUES: &[&str] = &[
    "/srv/salt",
    "relative/dir",
    "''",
    "~",
    "4506",
    "abc",
    "-1",
    "18446744073709551616",
    "5.0",
    "yes",
    "[]",
    "{}",
    "[a, b]",
    "{x: 1}",
    "udp://host:514",
    "master.d/*.conf",
    "extra.conf",
    "[extra.conf, '*.conf']",
    "'[unclosed'",
    "SHA256",
    "null",
    "1:30",
    "0755",
    "/var/log/salt/master",
    "x",
    "~/salt",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "",
        "interface: 127.0.0.1\nret_port: 4506\nauto_accept: True\nroot_dir: /tmp/salt\n",
        "id: minion1\nmaster: 127.0.0.1\nmaster_port: 4506\nmaster_finger: 'ab:cd'\nreturn: [mysql, sqlite3]\n",
        "mysql.host: db\nmysql:\n  host: db2\n  port: 3307\nreturner:\n  pgjsonb:\n    host: pg\n",
        "log_dir: /var/log/x\nlog_file: udp://host:514\nsock_dir: /a/very/long/socket/directory/path/that/exceeds\n",
        "publisher_acl:\n  alice:\n    - test.*\n    - cmd.run\nnodegroups:\n  web: 'G@role:web'\n",
        "include: extra.conf\ndefault_include: master.d/*.conf\nretport: 1\ncachdir: /x\n",
        "id: 12\nhash_type: SHA256\nopen_mode: yes\nkeep_jobs: 24\nmax_frame_bytes: 1048576\n",
        "- a list\n- is not a document\n",
        "just a string",
        "base: &b {x: 1}\nother:\n  <<: *b\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    seeds.push(b"ret_port: [unclosed\n".to_vec());
    seeds
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..rng.skewed(10) {
        out.push_str(rng.pick::<&str>(KEYS));
        out.push_str(": ");
        out.push_str(rng.pick::<&str>(VALUES));
        out.push('\n');
    }
    out.into_bytes()
}

/// A private config directory with a `master.d`/`minion.d` include and an `extra.conf`.
fn config_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("salt-fuzz-config-{}", std::process::id()));
        for sub in ["master.d", "minion.d"] {
            std::fs::create_dir_all(dir.join(sub)).expect("temp config dir");
            std::fs::write(dir.join(sub).join("10-extra.conf"), "extra_key: 1\nlist: [a, b]\nnested: {x: {y: 1}}\n")
                .expect("temp config file");
        }
        std::fs::write(dir.join("extra.conf"), "list: [c]\nnested: {x: {z: 2}}\nretport: 3\n").expect("temp config file");
        dir
    })
}

/// Removes the directory `config_dir` made, at the end of a run.
pub fn cleanup() {
    let dir = std::env::temp_dir().join(format!("salt-fuzz-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}

/// Include patterns that stay inside the private config directory (a fuzzed `include: /dev/*`
/// would read devices, which is what the user asked for, not a bug).
fn includes_stay_local(src: &str) -> bool {
    let Ok(Value::Object(map)) = yaml::load(src) else {
        return true;
    };
    let local = |s: &str| !(s.starts_with('/') || s.starts_with('~') || s.contains("..") || s.contains('\0'));
    ["include", "default_include"].iter().all(|k| match map.get(*k) {
        Some(Value::String(s)) => local(s),
        Some(Value::Array(items)) => items.iter().all(|i| i.as_str().is_none_or(local)),
        _ => true,
    })
}

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn exercise(config: &Config) {
    let _ = config.warnings();
    for key in ["ret_port", "master_port", "timeout", "max_frame_bytes", "publish_ttl", "keep_jobs_seconds"] {
        let _ = config.u64(key);
    }
    for key in ["return", "publisher_acl", "event_return", "master"] {
        let _ = config.str_list(key);
    }
    for key in ["pki_dir", "cachedir", "sock_dir", "log_file"] {
        let _ = config.path(key);
    }
    let _ = config.bool("auto_accept");
    let _ = master_control_socket(config);
    assert!(config.get("conf_file").is_some() || config.get("root_dir").is_some());
}

fn run(input: &[u8]) -> bool {
    let src = text(input);
    let n = COUNT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    // The roles take turns, which halves the cost; the master also computes its id.
    let role = if n.is_multiple_of(2) { Role::Master } else { Role::Minion };
    let ok = match Config::from_yaml_str(role, &src, "fuzz") {
        Ok(config) => {
            exercise(&config);
            true
        }
        Err(_) => false,
    };
    if n % 64 < 2 && includes_stay_local(&src) {
        let dir = config_dir();
        std::fs::write(dir.join(role.file_name()), input).expect("write the config file");
        if let Ok(config) = Config::load(role, dir) {
            exercise(&config);
        }
    }
    ok
}
