use super::*;
use serde_json::json;
use std::fs;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn master_defaults_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(Role::Master, dir.path()).unwrap();
    assert_eq!(cfg.role(), Role::Master);
    assert_eq!(cfg.str("interface"), Some("0.0.0.0"));
    assert_eq!(cfg.u64("ret_port"), Some(4506));
    assert_eq!(cfg.u64("publish_port"), Some(4505));
    assert_eq!(cfg.path("pki_dir"), Some(PathBuf::from("/etc/salt/pki/master")));
    assert_eq!(cfg.path("cachedir"), Some(PathBuf::from("/var/cache/salt/master")));
    assert_eq!(cfg.path("sock_dir"), Some(PathBuf::from("/var/run/salt/master")));
    assert_eq!(cfg.path("log_file"), Some(PathBuf::from("/var/log/salt/master")));
    assert_eq!(cfg.path("pidfile"), Some(PathBuf::from("/var/run/salt-master.pid")));
    assert_eq!(cfg.str("autosign_file"), Some("/etc/salt/autosign.conf"));
    assert_eq!(cfg.str("log_level"), Some("warning"));
    assert_eq!(cfg.get("log_level_logfile"), Some(&Value::Null));
    assert_eq!(cfg.bool("auto_accept"), Some(false));
    assert_eq!(cfg.u64("timeout"), Some(5));
    assert_eq!(cfg.u64("gather_job_timeout"), Some(10));
    assert_eq!(cfg.get("publisher_acl"), Some(&json!({})));
    assert_eq!(cfg.u64("keep_jobs_seconds"), Some(86400));
    assert_eq!(cfg.u64("keep_jobs"), Some(24));
    assert_eq!(cfg.u64("loop_interval"), Some(60));
    assert_eq!(cfg.bool("job_cache"), Some(true));
    assert_eq!(cfg.str("master_job_cache"), Some("local_cache"));
    assert_eq!(cfg.str("ext_job_cache"), Some(""));
    assert_eq!(cfg.str("event_return"), Some(""));
    assert_eq!(cfg.u64("event_return_queue"), Some(0));
    assert_eq!(cfg.str_list("event_return_whitelist"), Vec::<String>::new());
    assert_eq!(cfg.bool("unique_jid"), Some(false));
    assert_eq!(cfg.str("hash_type"), Some("sha256"));
    assert_eq!(cfg.bool("show_timeout"), Some(true));
    assert_eq!(cfg.bool("show_jid"), Some(false));
    assert_eq!(cfg.bool("cli_summary"), Some(false));
    assert_eq!(cfg.bool("minion_data_cache"), Some(true));
    assert_eq!(cfg.u64("max_event_size"), Some(1048576));
    assert_eq!(cfg.u64("max_frame_bytes"), Some(64 * 1024 * 1024));
    assert_eq!(cfg.str("token_dir"), Some("/var/cache/salt/master/tokens"));
    assert_eq!(cfg.str("user"), Some(paths::effective_user().as_str()));
    assert!(cfg.str("id").unwrap().ends_with("_master"));
    assert_eq!(cfg.path("conf_file"), Some(dir.path().join("master")));
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
}

#[test]
fn minion_defaults() {
    let cfg = Config::from_yaml_str(Role::Minion, "", "minion").unwrap();
    assert_eq!(cfg.str("master"), Some("salt"));
    assert_eq!(cfg.u64("master_port"), Some(4506));
    assert_eq!(cfg.get("id"), Some(&Value::Null));
    assert_eq!(cfg.str("pki_dir"), Some("/etc/salt/pki/minion"));
    assert_eq!(cfg.str("cachedir"), Some("/var/cache/salt/minion"));
    assert_eq!(cfg.str("sock_dir"), Some("/var/run/salt/minion"));
    assert_eq!(cfg.str("log_file"), Some("/var/log/salt/minion"));
    assert_eq!(cfg.str("pidfile"), Some("/var/run/salt-minion.pid"));
    assert_eq!(cfg.str("master_finger"), Some(""));
    assert_eq!(cfg.u64("acceptance_wait_time"), Some(10));
    assert_eq!(cfg.u64("acceptance_wait_time_max"), Some(0));
    assert_eq!(cfg.u64("random_reauth_delay"), Some(10));
    assert_eq!(cfg.u64("recon_default"), Some(1000));
    assert_eq!(cfg.u64("recon_max"), Some(10000));
    assert_eq!(cfg.bool("recon_randomize"), Some(true));
    assert_eq!(cfg.str_list("return"), Vec::<String>::new());
    assert_eq!(cfg.bool("cache_jobs"), Some(false));
    assert_eq!(cfg.u64("minion_jid_queue_hwm"), Some(100));
    assert_eq!(cfg.get("grains"), Some(&json!({})));
    assert_eq!(cfg.bool("multiprocessing"), Some(true));
    assert_eq!(cfg.str("hash_type"), Some("sha256"));
    assert!(cfg.get("token_dir").is_none());
}

#[test]
fn file_values_override_defaults_and_unknown_keys_are_kept() {
    let yaml =
        "ret_port: 14506\nauto_accept: yes\nmysql.host: db1\nmysql:\n  port: 3307\nid: 1234\nreturn: [mysql, redis]\nhash_type: SHA512\n";
    let cfg = Config::from_yaml_str(Role::Master, yaml, "master").unwrap();
    assert_eq!(cfg.u64("ret_port"), Some(14506));
    assert_eq!(cfg.bool("auto_accept"), Some(true));
    assert_eq!(cfg.str("mysql.host"), Some("db1"));
    assert_eq!(cfg.get("mysql"), Some(&json!({"port": 3307})));
    // Salt: a numeric id is converted with str().
    assert_eq!(cfg.str("id"), Some("1234"));
    assert_eq!(cfg.str("return"), Some("mysql,redis"));
    assert_eq!(cfg.str_list("return"), vec!["mysql", "redis"]);
    assert_eq!(cfg.str("hash_type"), Some("sha512"));
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
}

#[test]
fn only_a_real_boolean_is_a_boolean() {
    // Salt would read `auto_accept: 1` and `y` (a string in PyYAML) as not-true; we refuse them.
    for yaml in ["auto_accept: 1\n", "open_mode: 'True'\n", "auto_accept: y\n"] {
        let err = Config::from_yaml_str(Role::Master, yaml, "m").unwrap_err();
        assert!(err.to_string().contains("expected a boolean (true or false)"), "{yaml}: {err}");
    }
    let cfg = Config::from_yaml_str(Role::Master, "auto_accept: on\nopen_mode: no\n", "m").unwrap();
    assert_eq!(cfg.bool("auto_accept"), Some(true));
    assert_eq!(cfg.bool("open_mode"), Some(false));
}

/// The message for `yaml` as the master file `path`.
fn bad_value(yaml: &str) -> String {
    let err = Config::from_yaml_str(Role::Master, yaml, "/etc/salt/master").unwrap_err();
    assert!(matches!(err, ConfigError::BadValue { .. }), "{yaml}: {err:?}");
    err.to_string()
}

#[test]
fn wrong_types_name_the_file_key_value_and_what_was_expected() {
    assert_eq!(
        bad_value("ret_port: abc\n"),
        "Error in configuration file: /etc/salt/master - invalid value for 'ret_port': 'abc'; \
         expected a port number from 1 to 65535"
    );
    assert_eq!(
        bad_value("master_job_cache: [mysql, pgjsonb]\n"),
        "Error in configuration file: /etc/salt/master - invalid value for 'master_job_cache': \
         [\"mysql\",\"pgjsonb\"]; expected one returner name, e.g. local_cache or mysql"
    );
    let msg = bad_value("keep_jobs_seconds: forever\n");
    assert!(msg.contains("'keep_jobs_seconds': 'forever'; expected a whole number from 0 to"), "{msg}");
    assert!(msg.ends_with("(seconds)"), "{msg}");
    let msg = bad_value("max_frame_bytes: 100\n");
    assert!(msg.contains("'max_frame_bytes': 100; expected a whole number from 65536 to 4294967295 (bytes)"), "{msg}");
}

#[test]
fn each_kind_refuses_what_it_should() {
    for yaml in [
        // Ports.
        "ret_port: 0",
        "ret_port: 70000",
        "publish_port: -1",
        "ret_port: 4506.5",
        "ret_port: ~",
        "ret_port: [4506]",
        "ret_port: true",
        // Times and counts.
        "timeout: -1",
        "timeout: 2.5",
        "timeout: five",
        "gather_job_timeout: {a: 1}",
        "keep_jobs_seconds: 99999999999999",
        "loop_interval: 0",
        "publish_ttl: 0",
        "keep_jobs: -24",
        "event_return_queue: -1",
        // Sizes.
        "max_frame_bytes: 65535",
        "max_frame_bytes: 8589934592",
        "max_frame_bytes: 64MiB",
        "max_event_size: 0",
        // Booleans.
        "unique_jid: 'yes'",
        "job_cache: 0",
        "show_jid: ~",
        "cli_summary: [true]",
        // Returner names.
        "master_job_cache: ''",
        "master_job_cache: 5",
        "master_job_cache: 'my sql'",
        "ext_job_cache: [mysql]",
        "event_return: {mysql: 1}",
        "event_return: [mysql, 3]",
        "event_return: 'mysql;drop'",
    ] {
        bad_value(&format!("{yaml}\n"));
    }
    let cfg = Config::from_yaml_str(Role::Minion, "return: [mysql, 3]\n", "/etc/salt/minion");
    assert!(cfg.unwrap_err().to_string().contains("'return'"));
}

#[test]
fn right_types_pass_in_every_spelling_config_reads() {
    let yaml = "ret_port: '14506'\npublish_port: 14505.0\ntimeout: 0\nkeep_jobs_seconds: 0\n\
                loop_interval: 1\nmax_frame_bytes: 65536\nunique_jid: yes\njob_cache: False\n\
                master_job_cache: local_cache\next_job_cache: ''\nevent_return: mysql, pgjsonb\n\
                return: [mysql, sqlite3]\nrecon_max: 5000\n";
    let cfg = Config::from_yaml_str(Role::Master, yaml, "m").unwrap();
    assert_eq!(cfg.u64("ret_port"), Some(14506));
    assert_eq!(cfg.u64("publish_port"), Some(14505));
    assert_eq!(cfg.u64("max_frame_bytes"), Some(65536));
    assert_eq!(cfg.str_list("event_return"), vec!["mysql", "pgjsonb"]);
    // An empty option is no returner.
    Config::from_yaml_str(Role::Master, "event_return: ''\nreturn: ~\n", "m").unwrap();
    // Options that are not typed are not checked.
    Config::from_yaml_str(Role::Master, "mysql.port: abc\nworker_threadz: x\n", "m").unwrap();
}

#[test]
fn a_bad_value_in_an_included_file_names_that_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "master", "ret_port: 14506\n");
    write(dir.path(), "master.d/10-port.conf", "ret_port: abc\n");
    let err = Config::load(Role::Master, dir.path()).unwrap_err().to_string();
    let conf = dir.path().join("master.d/10-port.conf");
    assert!(err.contains(&format!("{} - invalid value for 'ret_port'", conf.display())), "{err}");
    write(dir.path(), "master.d/10-port.conf", "ret_port: 14507\n");
    write(dir.path(), "master", "ret_port: abc\n");
    let err = Config::load(Role::Master, dir.path()).unwrap_err().to_string();
    let main = dir.path().join("master");
    assert!(err.contains(&format!("{} - invalid value for 'ret_port'", main.display())), "{err}");
}

#[test]
fn every_typed_default_passes_its_own_check() {
    for role in [Role::Master, Role::Minion] {
        for (key, value) in defaults::defaults(role) {
            assert_eq!(defaults::check_value(&key, &value), Ok(()), "{role} {key}");
        }
    }
}

#[test]
fn root_dir_is_prepended_to_path_options() {
    let yaml = "root_dir: /tmp/salt-root\npki_dir: /srv/pki\ncachedir: /tmp/salt-root/cache\nlog_file: udp://127.0.0.1:514\nkey_logfile: logs/key\n";
    let cfg = Config::from_yaml_str(Role::Master, yaml, "master").unwrap();
    assert_eq!(cfg.str("pki_dir"), Some("/tmp/salt-root/srv/pki"));
    // Already under root_dir: kept.
    assert_eq!(cfg.str("cachedir"), Some("/tmp/salt-root/cache"));
    // Defaults move under root_dir too.
    assert_eq!(cfg.str("sock_dir"), Some("/tmp/salt-root/var/run/salt/master"));
    assert_eq!(cfg.str("pidfile"), Some("/tmp/salt-root/var/run/salt-master.pid"));
    assert_eq!(cfg.str("autosign_file"), Some("/tmp/salt-root/etc/salt/autosign.conf"));
    // token_dir derives from the cachedir before prepending, then is prepended once.
    assert_eq!(cfg.str("token_dir"), Some("/tmp/salt-root/cache/tokens"));
    // Relative paths are relative to root_dir; URLs are left alone.
    assert_eq!(cfg.str("key_logfile"), Some("/tmp/salt-root/logs/key"));
    assert_eq!(cfg.str("log_file"), Some("udp://127.0.0.1:514"));
    // Options that are not paths are untouched.
    assert_eq!(cfg.str("interface"), Some("0.0.0.0"));
}

#[test]
fn minion_root_dir_and_log_dir() {
    let yaml = "root_dir: /r\nlog_dir: /logs\n";
    let cfg = Config::from_yaml_str(Role::Minion, yaml, "minion").unwrap();
    assert_eq!(cfg.str("pki_dir"), Some("/r/etc/salt/pki/minion"));
    assert_eq!(cfg.str("cachedir"), Some("/r/var/cache/salt/minion"));
    assert_eq!(cfg.str("extension_modules"), Some("/r/var/cache/salt/minion/extmods"));
    // log_dir relocates the default log file name; root_dir then applies.
    assert_eq!(cfg.str("log_file"), Some("/r/logs/minion"));
}

#[test]
fn long_sock_dir_falls_back_under_cachedir() {
    let yaml = "cachedir: /c\nsock_dir: /a/very/long/socket/directory/path\n";
    let cfg = Config::from_yaml_str(Role::Minion, yaml, "minion").unwrap();
    assert_eq!(cfg.str("sock_dir"), Some("/c/.salt-unix"));
}

#[test]
fn master_d_merges_in_sorted_order_over_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "master", "timeout: 7\nshow_jid: true\nfile_roots:\n  base: [/a]\n");
    write(dir.path(), "master.d/20-b.conf", "timeout: 9\nnodes: [x, y]\nnested: {b: 2}\n");
    write(dir.path(), "master.d/10-a.conf", "timeout: 8\ncli_summary: true\nnodes: [w, x]\nnested: {a: 1}\n");
    write(dir.path(), "master.d/ignored.txt", "timeout: 100\n");
    write(dir.path(), "master.d/.hidden.conf", "timeout: 101\n");
    let cfg = Config::load(Role::Master, dir.path()).unwrap();
    // 20-b.conf is read last and wins over 10-a.conf and the main file.
    assert_eq!(cfg.u64("timeout"), Some(9));
    assert_eq!(cfg.bool("show_jid"), Some(true));
    assert_eq!(cfg.bool("cli_summary"), Some(true));
    // Within master.d, dicts merge deeply and lists are unioned (dictupdate merge_lists).
    assert_eq!(cfg.get("nested"), Some(&json!({"a": 1, "b": 2})));
    assert_eq!(cfg.get("nodes"), Some(&json!(["w", "x", "y"])));
    assert_eq!(cfg.get("file_roots"), Some(&json!({"base": ["/a"]})));
}

#[test]
fn main_file_replaces_whole_values_from_defaults() {
    // The main file is a shallow update: file_roots from the file replaces the default dict.
    let cfg = Config::from_yaml_str(Role::Master, "file_roots:\n  dev: [/d]\n", "m").unwrap();
    assert_eq!(cfg.get("file_roots"), Some(&json!({"dev": ["/d"]})));
}

#[test]
fn include_option_and_custom_default_include() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "minion", "default_include: conf.d/*.yml\ninclude: [extra/one.conf, missing/*.conf]\nmaster: m0\n");
    write(dir.path(), "conf.d/a.yml", "master: m1\nmaster_port: 1\n");
    write(dir.path(), "minion.d/x.conf", "master: never\n");
    write(dir.path(), "extra/one.conf", "master: m2\ninclude: two.conf\n");
    write(dir.path(), "extra/two.conf", "cache_jobs: true\n");
    let cfg = Config::load(Role::Minion, dir.path()).unwrap();
    assert_eq!(cfg.str("master"), Some("m2"));
    assert_eq!(cfg.u64("master_port"), Some(1));
    assert_eq!(cfg.bool("cache_jobs"), Some(true));
    let missing = dir.path().join("missing/*.conf");
    assert_eq!(
        cfg.warnings(),
        [format!("Warning parsing configuration file: \"include\" path/glob '{}' matches no files", missing.display())]
    );
}

#[test]
fn typo_warnings() {
    let yaml = "auto_acept: true\nret_prot: 1\nmysql.hots: x\nredis:\n  hots: x\nmy_own_thing: 1\n";
    let cfg = Config::from_yaml_str(Role::Master, yaml, "/etc/salt/master").unwrap();
    assert_eq!(
        cfg.warnings(),
        [
            "/etc/salt/master: unknown option 'auto_acept', did you mean 'auto_accept'?",
            "/etc/salt/master: unknown option 'ret_prot', did you mean 'ret_port'?",
        ]
    );
    // The unknown keys are still kept.
    assert_eq!(cfg.bool("auto_acept"), Some(true));
    assert_eq!(cfg.bool("auto_accept"), Some(false));
}

#[test]
fn typo_warning_names_the_included_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "master.d/a.conf", "timout: 3\n");
    let cfg = Config::load(Role::Master, dir.path()).unwrap();
    let file = dir.path().join("master.d/a.conf");
    assert_eq!(cfg.warnings(), [format!("{}: unknown option 'timout', did you mean 'timeout'?", file.display())]);
}

#[test]
fn broken_yaml_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "master", "interface: 0.0.0.0\nret_port: 4506\n  publish_port: 4505\n");
    let err = Config::load(Role::Master, dir.path()).unwrap_err();
    let text = err.to_string();
    let file = dir.path().join("master").display().to_string();
    assert!(text.starts_with(&format!("Error parsing configuration file: {file} - ")), "{text}");
    assert!(text.contains("(line 3, column"), "{text}");
    match err {
        ConfigError::Yaml { line, .. } => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn broken_include_is_an_error_too() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "minion", "master: m\n");
    write(dir.path(), "minion.d/bad.conf", "a: [1, 2\n");
    let err = Config::load(Role::Minion, dir.path()).unwrap_err();
    assert!(err.to_string().contains("bad.conf"), "{err}");
}

/// Found by salt-fuzz (config target): `include: master` in the master file recursed until
/// the stack overflowed and the process died. An include cycle is now an error naming it.
#[test]
fn include_cycles_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "master",
        "include: master
",
    );
    let err = Config::load(Role::Master, dir.path()).unwrap_err();
    assert!(err.to_string().contains("include cycle"), "{err}");

    // Through two files, and through master.d.
    write(
        dir.path(),
        "master",
        "include: a.conf
",
    );
    write(
        dir.path(),
        "a.conf",
        "x: 1
include: b.conf
",
    );
    write(
        dir.path(),
        "b.conf",
        "y: 2
include: ./a.conf
",
    );
    let err = Config::load(Role::Master, dir.path()).unwrap_err();
    assert!(err.to_string().contains("a.conf is already being included"), "{err}");
    write(
        dir.path(),
        "master",
        "z: 3
",
    );
    write(
        dir.path(),
        "master.d/self.conf",
        "include: self.conf
",
    );
    let err = Config::load(Role::Master, dir.path()).unwrap_err();
    assert!(err.to_string().contains("include cycle"), "{err}");

    // The same file included twice, but not inside itself, is fine.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "master",
        "include: [a.conf, b.conf]
",
    );
    write(
        dir.path(),
        "a.conf",
        "include: c.conf
",
    );
    write(
        dir.path(),
        "b.conf",
        "include: c.conf
",
    );
    write(
        dir.path(),
        "c.conf",
        "c: 1
",
    );
    let cfg = Config::load(Role::Master, dir.path()).unwrap();
    assert_eq!(cfg.u64("c"), Some(1));
}

#[test]
fn duplicate_keys_are_an_error() {
    let err = Config::from_yaml_str(Role::Master, "timeout: 1\ntimeout: 2\n", "master").unwrap_err();
    assert_eq!(err.to_string(), "Error parsing configuration file: master - found conflicting ID 'timeout' (line 2, column 1)");
}

#[test]
fn non_mapping_documents() {
    let err = Config::from_yaml_str(Role::Master, "just a string\n", "master").unwrap_err();
    assert_eq!(err.to_string(), "Error parsing configuration file: master - conf should be a document, not <class 'str'>.");
    assert!(Config::from_yaml_str(Role::Master, "- a\n", "m").is_err());
    // Falsy documents count as empty (`safe_load(...) or {}`).
    for empty in ["", "~\n", "false\n", "[]\n", "0\n"] {
        assert!(Config::from_yaml_str(Role::Master, empty, "m").is_ok(), "{empty:?}");
    }
}

#[test]
fn accessors() {
    let yaml = "a: 5.0\nb: '42'\nc: -1\nd: [x, 2, ' y ']\ne: 'p, q,,r'\nf: 1.5\n";
    let mut cfg = Config::from_yaml_str(Role::Minion, yaml, "m").unwrap();
    assert_eq!(cfg.u64("a"), Some(5));
    assert_eq!(cfg.u64("b"), Some(42));
    assert_eq!(cfg.u64("c"), None);
    assert_eq!(cfg.u64("f"), None);
    assert_eq!(cfg.str_list("d"), vec!["x", "2", " y "]);
    assert_eq!(cfg.str_list("e"), vec!["p", "q", "r"]);
    assert_eq!(cfg.str_list("nope"), Vec::<String>::new());
    assert_eq!(cfg.bool("a"), None);
    cfg.set("timeout", json!(30));
    assert_eq!(cfg.u64("timeout"), Some(30));
    assert_eq!(cfg.as_map()["timeout"], 30);
}

#[test]
fn unreadable_main_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be cannot be read.
    fs::create_dir(dir.path().join("master")).unwrap();
    assert!(matches!(Config::load(Role::Master, dir.path()), Err(ConfigError::Io { .. })));
}
