//! The walkthrough a new user follows, checked against what Salt prints.

use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn first_ping_and_everyday_commands() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_minion("minion1", "");
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "the pending key");

    let listed = c.salt_key(&["-L"]);
    assert_eq!(listed.stdout, "Accepted Keys:\nDenied Keys:\nUnaccepted Keys:\nminion1\nRejected Keys:\n");
    // A pending minion gets nothing.
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.code, 2, "{r:?}", r = (&r.stdout, &r.stderr));
    assert!(r.stdout.contains("No minions matched the target. No command was sent, no jid was assigned."));

    let accepted = c.salt_key(&["-a", "minion1", "-y"]);
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    c.wait_connected("minion1");

    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "minion1:\n    True\n"), "{}", r.stderr);

    let r = c.salt(&["*", "test.ping", "--out=json"]);
    assert_eq!(r.stdout, "{\n    \"minion1\": true\n}\n");

    let r = c.salt(&["-v", "*", "test.ping"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("Executing job with jid "), "{}", r.stdout);
    let jid = lines[0].trim_start_matches("Executing job with jid ");
    assert_eq!(jid.len(), 20);
    assert_eq!(lines[1], "-".repeat(lines[0].len()));
    assert_eq!(&lines[2..], ["", "minion1:", "    True"]);

    let r = c.salt(&["*", "cmd.run", "printf 'a\\nb\\n'"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "minion1:\n    a\n    b\n"));

    // YAML-parsed arguments: 'false' becomes False, as in Salt.
    let r = c.salt(&["*", "cmd.run", "false"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("False: command not found"), "{}", r.stdout);
    assert_eq!(r.stderr.trim_end(), "ERROR: Minions returned with non-zero exit code");

    let r = c.salt(&["*", "cmd.retcode", "exit 3"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, "minion1:\n    3\n"));

    let r = c.salt(&["*", "test.echo", "héllo wörld ✓"]);
    assert_eq!(r.stdout, "minion1:\n    héllo wörld ✓\n");

    let r = c.salt(&["*", "test.ping", "--show-jid"]);
    assert!(r.stdout.starts_with("jid: ") && r.stdout.ends_with("minion1:\n    True\n"), "{}", r.stdout);

    let r = c.salt(&["*", "test.ping", "--async"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("Executed command with job ID: "), "{}", r.stdout);

    let r = c.salt(&["nomatch*", "test.ping"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "No minions matched the target. No command was sent, no jid was assigned.\n");

    let r = c.salt(&["*", "no.such_function"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("'no.such_function' is not available."), "{}", r.stdout);

    let out_file = c.dir.path().join("out.json");
    let r = c.salt(&["*", "test.ping", "--out", "json", "--out-file", out_file.to_str().unwrap()]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "{\n    \"minion1\": true\n}\n");

    // salt-call --local runs here, printed under `local:`.
    let r = run(bin("salt-call"), &c.minion_etc("minion1"), &["--local", "test.ping"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "local:\n    True\n"), "{}", r.stderr);
}

#[test]
fn several_minions_targets_and_missing_ones() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1", "minion2", "web1"]);

    // --static prints one document (in arrival order, as Salt does).
    let r = c.salt(&["-L", "minion1,minion2", "test.ping", "--out", "json", "--static"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"minion1": true, "minion2": true}));
    assert_eq!(r.stdout.lines().count(), 4, "{}", r.stdout);

    let r = c.salt(&["-E", "minion[0-9]", "test.ping", "--out", "txt"]);
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["minion1: True", "minion2: True"]);

    let r = c.salt(&["-G", "id:web*", "test.ping", "--out", "txt"]);
    assert_eq!(r.stdout, "web1: True\n");

    let r = c.salt(&["-C", "web* or L@minion2", "test.ping", "--out", "txt", "--static"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("web1: True") && r.stdout.contains("minion2: True") && !r.stdout.contains("minion1"), "{}", r.stdout);

    // A long job does not hold up others.
    let r = c.salt(&["minion1", "cmd.run", "sleep 100", "--async"]);
    assert_eq!(r.code, 0);
    let started = Instant::now();
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.stdout, "minion1:\n    True\n");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A job that outlasts --timeout keeps the CLI waiting while find_job says it runs.
    let r = c.salt(&["minion2", "test.sleep", "3", "-t", "1"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "minion2:\n    True\n"), "{}", r.stderr);

    // A stopped minion: known to the master but not connected.
    c.stop_minion("web1");
    wait_for(|| c.salt_run(&["manage.down"]).stdout.contains("web1"), Duration::from_secs(10), "the master to see web1 gone");
    let started = Instant::now();
    let r = c.salt(&["web1", "test.ping"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "web1:\n    Minion did not return. [Not connected]\n");
    assert_eq!(r.stderr.trim_end(), "ERROR: Minions returned with non-zero exit code");
    assert!(started.elapsed() < Duration::from_secs(4), "no need to wait for a minion that cannot answer");

    let r = c.salt(&["web1", "test.ping", "--hide-timeout"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.trim_end(), "ERROR: No return received");

    // A frozen minion is connected but silent: [No response] after timeout + gather_job_timeout.
    let pid = c.minions.iter().find(|(id, _)| id == "minion2").unwrap().1 .0.id();
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let r = c.salt(&["minion2", "test.ping", "-t", "1", "--gather-job-timeout", "1", "--out", "json"]);
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let text = v["minion2"].as_str().unwrap();
    assert!(text.starts_with("Minion did not return. [No response]\nThe minions may not have all finished running"), "{text}");
    assert!(text.contains("\n\nsalt-run jobs.lookup_jid "), "{text}");
}

#[test]
fn broken_config_is_a_clear_error() {
    let c = Cluster::new("auto_accept: [unclosed");
    let r = run(bin("salt-master"), &c.etc(), &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("master") && r.stderr.contains("line"), "{}", r.stderr);
}

#[test]
fn daemonised_master_writes_its_pid_file() {
    let c = Cluster::new("");
    let r = run(bin("salt-master"), &c.etc(), &["-d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid_file = c.root().join("var/run/salt-master.pid");
    wait_for(|| pid_file.exists(), Duration::from_secs(10), "the pid file");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the daemon runs");
    let sock = c.root().join("var/run/salt/master/master.sock");
    wait_for(|| sock.exists(), Duration::from_secs(10), "the socket");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for(|| !pid_file.exists(), Duration::from_secs(10), "the pid file to be removed at shutdown");
}

#[test]
fn versions() {
    for program in ["salt", "salt-master", "salt-minion", "salt-call"] {
        let out = std::process::Command::new(bin(program)).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(&format!("{program} 3008.4 (Argon)")), "{text}");
    }
}

/// Issue 7 items 16 and 17, against what Salt 3008.4 printed for the same commands: a listed id
/// without a key is not waited for, comes last as not responding (also with --hide-timeout, not
/// with --static) and makes the exit code 1; a target that matches nothing still renders `{}`
/// through the chosen outputter.
#[test]
fn a_listed_id_without_a_key_is_reported_and_no_match_renders_empty() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let hint = |jid: &str| {
        format!("Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}")
    };
    let nested = |id: &str, text: &str| format!("{id}:\n{}", text.lines().map(|l| format!("    {l}\n")).collect::<String>());

    let started = Instant::now();
    let r = c.salt(&["-v", "-L", "minion1,ghost", "test.ping"]);
    assert!(started.elapsed() < Duration::from_secs(4), "no wait for an id that has no key");
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    let header = format!("Executing job with jid {jid}\n{}\n\n", "-".repeat(23 + jid.len()));
    assert_eq!(r.stdout, format!("{header}minion1:\n    True\n{}", nested("ghost", &hint(&jid))));
    assert_eq!((r.code, r.stderr.as_str()), (1, "ERROR: Minions returned with non-zero exit code\n"));

    // --out json: one document per minion, the missing id last.
    let r = c.salt(&["--show-jid", "-L", "ghost,minion1", "test.ping", "--out", "json"]);
    assert_eq!(r.code, 1);
    let (first, rest) = r.stdout.split_once('\n').unwrap();
    let jid = first.trim_start_matches("jid: ");
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(rest).into_iter().map(Result::unwrap).collect();
    assert_eq!(docs, [serde_json::json!({"minion1": true}), serde_json::json!({"ghost": hint(jid)})], "{}", r.stdout);

    // --hide-timeout does not hide it; --static leaves it out (and exits 0), as Salt 3008 does.
    let r = c.salt(&["--show-jid", "--hide-timeout", "-L", "minion1,ghost", "test.ping"]);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("jid: ").to_string();
    assert_eq!((r.code, r.stdout.as_str()), (1, format!("jid: {jid}\nminion1:\n    True\n{}", nested("ghost", &hint(&jid))).as_str()));
    let r = c.salt(&["--static", "-L", "minion1,ghost", "test.ping", "--out", "json"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "{\n    \"minion1\": true\n}\n"));

    // A target matching nothing: the message, then `{}` through the chosen outputter.
    let r = c.salt(&["nomatch*", "test.ping", "--out", "json"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (2, "No minions matched the target. No command was sent, no jid was assigned.\n{}\n", "ERROR: No return received\n")
    );
    let r = c.salt(&["-L", "ghost", "test.ping", "--out", "yaml"]);
    assert_eq!((r.code, r.stdout.as_str()), (2, "No minions matched the target. No command was sent, no jid was assigned.\n{}\n"));
    // The nested and txt outputters render `{}` as nothing at all.
    for out in ["nested", "txt"] {
        let r = c.salt(&["nomatch*", "test.ping", "--out", out]);
        assert_eq!((r.code, r.stdout.as_str()), (2, "No minions matched the target. No command was sent, no jid was assigned.\n"), "{out}");
    }
}

/// Issue 7 item 20: salt-call without --local says nothing at the default log level.
#[test]
fn salt_call_without_local_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("minion"), format!("id: caller\nroot_dir: {}\n", dir.path().join("root").display())).unwrap();
    let r = run(bin("salt-call"), dir.path(), &["test.ping"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "local:\n    True\n", ""));
}

/// Issue 7 item 19 and item 6 (the log): the console shows `[WARNING ] text` without colour
/// codes off a terminal; the log file has Salt's line format and is owner-only, an older
/// world-readable one tightened at start.
#[test]
fn console_and_log_file_lines_are_salts_and_the_log_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let c = Cluster::new("time_out: 5");
    let log = c.root().join("var/log/salt/master");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = std::process::Command::new(bin("salt-master"))
        .arg("-c")
        .arg(c.etc())
        .args(["-l", "warning"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let sock = c.root().join("var/run/salt/master/master.sock");
    wait_for(|| sock.exists(), Duration::from_secs(20), "the master's control socket");
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = format!("{}: unknown option 'time_out', did you mean 'timeout'?", c.etc().join("master").display());
    assert!(stderr.lines().any(|l| l == format!("[WARNING ] {warning}")), "{stderr:?}");
    assert!(!stderr.contains('\x1b'), "no colour into a pipe: {stderr:?}");

    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.ends_with(&warning)).unwrap_or_else(|| panic!("{text}"));
    // 2026-12-01 15:00:00,123 [salt_config...:NNN ][WARNING ][pid] text
    let shape: String = line[..23].chars().map(|ch| if ch.is_ascii_digit() { 'd' } else { ch }).collect();
    assert_eq!(shape, "dddd-dd-dd dd:dd:dd,ddd", "{line}");
    assert!(line[23..].starts_with(" ["), "{line}");
    assert!(line.contains(&format!("][WARNING ][{pid}] {warning}")), "{line}");
}

/// Issue 7 item 22: the differences from Salt that README.md lists as deliberate still hold.
#[test]
fn deliberate_differences_from_salt_hold() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);

    // --out quiet prints nothing (Salt 3008 falls back to nested with an error).
    let r = c.salt(&["minion1", "test.ping", "--out", "quiet"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));

    // --version names this project after the Salt version it follows.
    for program in ["salt", "salt-run", "salt-key", "salt-call", "salt-master", "salt-minion"] {
        let out = std::process::Command::new(bin(program)).arg("--version").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{program} 3008.4 (Argon) [saltrs {}]\n", env!("CARGO_PKG_VERSION")));
    }

    // jobs.exit_success reports False for a failed job (on local_cache here).
    let r = c.salt(&["-v", "minion1", "cmd.run", "exit 3"]);
    assert_eq!(r.code, 1);
    let jid = r.stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.salt_run(&["jobs.exit_success", &jid, "--out=json"]);
        if r.stdout.contains("minion1") || Instant::now() > deadline {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(),
                serde_json::json!({"minion1": false}),
                "{}",
                r.stderr
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // salt-run exits 1 when the runner fails (Salt 3008.4 exits 0).
    let r = c.salt_run(&["jobs.lookup_jid"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let r = c.salt_run(&["jobs.no_such_runner"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
}
