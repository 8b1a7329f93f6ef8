//! `salt-swarm`: many real minion sessions in one process, against a real master.

use std::time::Duration;

use crate::harness::*;

fn sessions_up(c: &Cluster, n: usize, total: usize) {
    let line = format!("{n}/{total} sessions up");
    wait_for(|| c.swarm_stdout().contains(&line), Duration::from_secs(60), &line);
}

fn terminate(swarm: &mut Daemon) -> i32 {
    // SAFETY: kill takes a pid and a signal number.
    unsafe { libc::kill(swarm.0.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = swarm.0.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(std::time::Instant::now() < deadline, "the swarm did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_swarm_authenticates_answers_jobs_and_keeps_its_keys() {
    let mut c = Cluster::new("");
    c.start_master();
    let mut swarm = c.start_swarm(&["-m", "30", "--name", "sw", "--rand-os"]);
    let pre = c.master_pki().join("minions_pre");
    wait_for(|| std::fs::read_dir(&pre).map(|d| d.count()).unwrap_or(0) == 30, Duration::from_secs(30), "30 pending keys");
    let r = c.salt_key(&["-A", "-y"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    sessions_up(&c, 30, 30);

    // Every minion returns, through the real publish and return path.
    let r = c.salt(&["*", "test.ping", "--out", "json", "--static"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(all.len(), 30, "{}", r.stdout);
    assert!(all.keys().all(|id| id.starts_with("sw-")) && all.contains_key("sw-0") && all.contains_key("sw-29"));
    assert!(all.values().all(|v| v == &serde_json::Value::Bool(true)));

    // A job runs in the swarm process, and the target is each minion's own check: the grain
    // `--rand-os` gave decides who answers, by id as well.
    let r = c.salt(&["sw-1*", "cmd.run", "echo x", "--out", "json", "--static"]);
    let some: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(some.len(), 11, "sw-1 and sw-10 to sw-19: {}", r.stdout);
    assert!(some.values().all(|v| v == "x"), "{}", r.stdout);
    let debian = c.salt(&["-G", "os:Debian", "grains.item", "os", "--out", "json", "--static"]);
    let debian: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&debian.stdout).unwrap_or_default();
    assert!(!debian.is_empty() && debian.len() < 30, "{debian:?}");
    assert!(debian.values().all(|v| v["os"] == "Debian"), "{debian:?}");

    // SIGTERM stops every session and exits 0.
    assert_eq!(terminate(&mut swarm), 0);
    assert!(c.swarm_stdout().contains("stopped 30 minions"), "{}", c.swarm_stdout());

    // The next start reuses the keys: no new pending key, all back without an operator.
    let _swarm = c.start_swarm(&["-m", "30", "--name", "sw"]);
    sessions_up(&c, 30, 30);
    assert_eq!(std::fs::read_dir(&pre).unwrap().count(), 0);
    let r = c.salt(&["*", "test.ping", "--out", "json", "--static"]);
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(all.len(), 30, "{}", r.stdout);
}

/// A master whose descriptor limit allows fewer minions than dial in says how many it can hold
/// when it starts, turns the rest away with that reason (in their log, not a hang), and serves
/// the ones it holds.
#[test]
fn a_master_past_its_descriptor_limit_turns_minions_away_with_the_reason() {
    let mut c = Cluster::new("auto_accept: True");
    // 800 descriptors: 512 kept for the master's own files, 256 for connections authenticating.
    c.start_master_with_open_files(800);
    let _swarm = c.start_swarm(&["-m", "40", "--name", "big"]);
    sessions_up(&c, 32, 40);
    wait_for(|| c.swarm_log().contains("The Salt Master is full"), Duration::from_secs(30), "the minions' reason");
    let log = c.swarm_log();
    assert!(log.contains("the master holds 32 minions, all its open files limit allows"), "{log}");
    let master_log = c.master_log();
    assert!(master_log.contains("room for 32 minions"), "{master_log}");
    assert!(master_log.contains("minion(s) away: the master holds 32 minions"), "{master_log}");
    // Those it holds are served; still 32, none dropped for the others.
    let r = c.salt(&["*", "test.ping", "--out", "json", "--static", "-t", "3"]);
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let answered = all.values().filter(|v| **v == serde_json::Value::Bool(true)).count();
    assert_eq!(answered, 32, "{}", r.stdout);
    assert!(c.swarm_stdout().lines().last().unwrap_or_default().contains("32/40 sessions up"), "{}", c.swarm_stdout());
}

/// A swarm larger than its own descriptor limit allows says so and exits, rather than start
/// minions that could never connect.
#[test]
fn a_swarm_past_its_own_descriptor_limit_refuses_to_start() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("minion"), format!("master: 127.0.0.1\nroot_dir: {}\n", dir.path().display())).unwrap();
    let mut cmd = std::process::Command::new(bin("salt-swarm"));
    cmd.arg("-c").arg(dir.path()).args(["-m", "200"]);
    // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 100, rlim_max: 100 };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("200 minions need about 264 open files, and this process may have 100"), "{stderr}");
    assert!(!dir.path().join("swarm").exists(), "nothing started");
}

/// The minions of a swarm run the same jid side by side in one process: a job killed on one
/// is killed there only, and each of the others still finds its own running.
#[test]
fn a_job_killed_on_one_swarm_minion_runs_on_for_the_others() {
    let mut c = Cluster::new("auto_accept: True");
    c.start_master();
    let _swarm = c.start_swarm(&["-m", "3", "--name", "tw"]);
    sessions_up(&c, 3, 3);
    let r = c.salt(&["*", "cmd.run", "sleep 1005", "--async"]);
    let jid = r.stdout.trim().strip_prefix("Executed command with job ID: ").unwrap_or_else(|| panic!("{}", r.stdout)).to_string();
    let running = |id: &str| {
        let r = c.salt(&[id, "saltutil.find_job", &jid, "--out", "json"]);
        serde_json::from_str::<serde_json::Value>(&r.stdout).is_ok_and(|v| v[id]["jid"] == jid.as_str())
    };
    for id in ["tw-0", "tw-1", "tw-2"] {
        wait_for(|| running(id), Duration::from_secs(20), "the job on each minion");
    }
    let r = c.salt(&["tw-1", "saltutil.kill_job", &jid]);
    assert!(r.stdout.contains(&format!("Signal 9 sent to job {jid}")), "{}{}", r.stdout, r.stderr);
    wait_for(|| !running("tw-1"), Duration::from_secs(10), "the killed job to end");
    assert!(running("tw-0") && running("tw-2"), "the others' jobs run on");
    let r = c.salt(&["*", "saltutil.kill_job", &jid, "--out", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
