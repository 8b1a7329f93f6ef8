//! Jobs on the minion: each in its own process, recorded in `cachedir/proc/<jid>`, found and
//! killed with `saltutil.*` as in the transcript ("async cmd.run sleep 100" through
//! "saltutil.kill_job nonexistent jid").

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

fn proc_dir(c: &Cluster, id: &str) -> PathBuf {
    c.minion_root(id).join("var/cache/salt/minion/proc")
}

/// `salt ... --async` and the jid it printed.
fn start_async(c: &Cluster, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--async");
    let r = c.salt(&all);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let jid = r.stdout.trim().strip_prefix("Executed command with job ID: ").unwrap_or_else(|| panic!("{}", r.stdout)).to_string();
    assert_eq!(jid.len(), 20, "{jid}");
    jid
}

/// Pids of live processes whose argv is exactly `argv` (zombies have no cmdline).
fn processes(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read(e.path().join("cmdline")).ok()? == want).then_some(pid)
        })
        .collect()
}

/// How many live processes have `text` in their arguments.
fn processes_mentioning(text: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(text)))
        .count()
}

fn find_job_json(c: &Cluster, id: &str, jid: &str) -> Value {
    let r = c.salt(&[id, "saltutil.find_job", jid, "--out", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    serde_json::from_str::<Value>(&r.stdout).unwrap()[id].clone()
}

#[test]
fn find_and_kill_a_job_and_everything_it_started() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);

    let jid = start_async(&c, &["minion1", "cmd.run", "sleep 1000; echo hehe"]);
    let proc_file = proc_dir(&c, "minion1").join(&jid);
    wait_for(|| proc_file.exists(), Duration::from_secs(10), "the proc file");
    wait_for(|| !processes(&["sleep", "1000"]).is_empty(), Duration::from_secs(10), "the sleep to start");

    // find_job: the publish data plus the job process's pid, in Salt's order.
    let job = find_job_json(&c, "minion1", &jid);
    let keys: Vec<&String> = job.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["pid", "fun", "arg", "tgt", "jid", "ret", "tgt_type", "user", "resource_targets", "pure_resource_target", "minion_is_target"],
        "{job}"
    );
    let pid = job["pid"].as_u64().unwrap();
    let user = job["user"].as_str().unwrap().to_string();
    assert_eq!(
        (&job["fun"], &job["arg"], &job["tgt"], &job["jid"], &job["ret"], &job["tgt_type"]),
        (
            &Value::from("cmd.run"),
            &serde_json::json!(["sleep 1000; echo hehe"]),
            &Value::from("minion1"),
            &Value::from(jid.as_str()),
            &Value::from(""),
            &Value::from("glob")
        )
    );
    let minion_pid = c.minions[0].1 .0.id() as u64;
    assert_ne!(pid, minion_pid, "the job runs in a process of its own");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains(&format!("--run-job\0{jid}")), "{cmdline:?}");

    let r = c.salt(&["minion1", "saltutil.find_job", &jid]);
    assert_eq!(
        r.stdout,
        format!(
            "minion1:\n    ----------\n    arg:\n        - sleep 1000; echo hehe\n    fun:\n        cmd.run\n    jid:\n        {jid}\n    minion_is_target:\n        True\n    pid:\n        {pid}\n    pure_resource_target:\n        False\n    resource_targets:\n    ret:\n    tgt:\n        minion1\n    tgt_type:\n        glob\n    user:\n        {user}\n"
        )
    );
    let r = c.salt(&["minion1", "saltutil.running"]);
    assert_eq!(
        r.stdout,
        format!(
            "minion1:\n    |_\n      ----------\n      arg:\n          - sleep 1000; echo hehe\n      fun:\n          cmd.run\n      jid:\n          {jid}\n      minion_is_target:\n          True\n      pid:\n          {pid}\n      pure_resource_target:\n          False\n      resource_targets:\n      ret:\n      tgt:\n          minion1\n      tgt_type:\n          glob\n      user:\n          {user}\n"
        )
    );
    let r = c.salt(&["minion1", "saltutil.is_running", "cmd.*", "--out", "json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["minion1"][0]["jid"], Value::from(jid.as_str()));

    let r = c.salt(&["minion1", "saltutil.kill_job", &jid]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("minion1:\n    Signal 9 sent to job {jid} at pid {pid}\n")), "{}", r.stderr);

    // The whole tree is gone: no `sleep 1000` and no shell waiting to echo.
    wait_for(|| processes(&["sleep", "1000"]).is_empty(), Duration::from_secs(10), "the sleep to be killed");
    assert_eq!(processes_mentioning("sleep 1000; echo hehe"), 0, "the shell is gone too");
    wait_for(|| !proc_file.exists(), Duration::from_secs(10), "the proc file to be removed");

    let r = c.salt(&["minion1", "saltutil.find_job", &jid]);
    assert_eq!(r.stdout, "minion1:\n    ----------\n");
    let r = c.salt(&["minion1", "saltutil.find_job", "20000101000000000000"]);
    assert_eq!(r.stdout, "minion1:\n    ----------\n");
    let r = c.salt(&["minion1", "saltutil.kill_job", "20000101000000000000"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "minion1:\n"), "{}", r.stderr);

    // A jid that is not one is refused before it gets near a path.
    let r = c.salt(&["minion1", "saltutil.kill_job", "../../../etc", "--out", "json"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["minion1"].as_str().unwrap().starts_with("ERROR executing 'saltutil.kill_job': invalid jid \"../../../etc\""), "{v}");

    // A killed job has no return, and the minion goes on.
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.stdout, "minion1:\n    True\n");
    assert!(c.minion_log("minion1").contains(&format!("job {jid} was killed; it has no return")));
}

#[test]
fn jobs_run_side_by_side_and_a_crash_stays_in_its_job() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);

    // Two long jobs at once, each in its own process.
    let first = start_async(&c, &["minion1", "cmd.run", "sleep 1001"]);
    let second = start_async(&c, &["minion1", "cmd.run", "sleep 1002"]);
    wait_for(
        || !processes(&["sleep", "1001"]).is_empty() && !processes(&["sleep", "1002"]).is_empty(),
        Duration::from_secs(10),
        "both jobs to run",
    );
    let r = c.salt(&["minion1", "saltutil.running", "--out", "json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let running = v["minion1"].as_array().unwrap();
    let jids: Vec<&str> = running.iter().map(|j| j["jid"].as_str().unwrap()).collect();
    assert_eq!(jids, [first.as_str(), second.as_str()]);
    assert_ne!(running[0]["pid"], running[1]["pid"]);

    // Crash a third job's process: its caller is told, the other jobs and the minion carry on.
    let crashing = std::thread::spawn({
        let etc = c.etc();
        move || run(bin("salt"), &etc, &["minion1", "cmd.run", "sleep 103", "-t", "20"])
    });
    wait_for(|| !processes(&["sleep", "103"]).is_empty(), Duration::from_secs(10), "the third job");
    let r = c.salt(&["minion1", "saltutil.is_running", "cmd.run", "--out", "json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let third = v["minion1"].as_array().unwrap().iter().find(|j| j["arg"][0] == "sleep 103").unwrap().clone();
    // SIGABRT, not SIGSEGV: Rust's stack-overflow handler swallows a SIGSEGV sent by kill().
    unsafe { libc::kill(third["pid"].as_i64().unwrap() as i32, libc::SIGABRT) };
    let r = crashing.join().unwrap();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        "minion1:\n    The minion function caused an exception: the job process crashed (SIGABRT)\n",
        "stderr: {}\nmaster log: {}\nminion log: {}",
        r.stderr,
        last_lines(&c.master_log(), 20),
        last_lines(&c.minion_log("minion1"), 20)
    );
    wait_for(|| processes(&["sleep", "103"]).is_empty(), Duration::from_secs(10), "the crashed job's sleep to be cleaned up");

    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.stdout, "minion1:\n    True\n");
    assert!(!processes(&["sleep", "1001"]).is_empty() && !processes(&["sleep", "1002"]).is_empty(), "the other jobs still run");

    let r = c.salt(&["minion1", "saltutil.kill_all_jobs"]);
    assert_eq!(
        r.stdout,
        format!(
            "minion1:\n    - Signal 9 sent to job {first} at pid {}\n    - Signal 9 sent to job {second} at pid {}\n",
            running[0]["pid"], running[1]["pid"]
        ),
        "{}",
        c.minion_log("minion1")
    );
    wait_for(
        || processes(&["sleep", "1001"]).is_empty() && processes(&["sleep", "1002"]).is_empty(),
        Duration::from_secs(10),
        "both jobs to be killed",
    );
    let r = c.salt(&["minion1", "saltutil.running"]);
    assert_eq!(r.stdout, "minion1:\n");
}

#[test]
fn stale_proc_files_are_removed_at_start() {
    let mut c = Cluster::new("");
    c.start_master();
    let dir = proc_dir(&c, "minion1");
    std::fs::create_dir_all(&dir).unwrap();
    // A job of a crashed minion whose pid now belongs to someone else (pid 1), a garbage
    // file and a half-written temporary one.
    let jid = "20000101000000000000";
    let mut reused = vec![0x82, 0xa3];
    reused.extend_from_slice(b"pid");
    reused.push(0x01);
    reused.push(0xa3);
    reused.extend_from_slice(b"jid");
    reused.push(0xb4);
    reused.extend_from_slice(jid.as_bytes());
    std::fs::write(dir.join(jid), &reused).unwrap();
    std::fs::write(dir.join("20000101000000000001"), b"\xc1 not msgpack").unwrap();
    std::fs::write(dir.join(".20000101000000000002.tmp"), b"half").unwrap();

    c.start_accepted(&["minion1"]);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
    let r = c.salt(&["minion1", "saltutil.find_job", jid]);
    assert_eq!(r.stdout, "minion1:\n    ----------\n");
}

#[test]
fn without_multiprocessing_jobs_are_tasks_and_kill_spares_the_minion() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_minion("minion1", "multiprocessing: False");
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "the pending key");
    assert_eq!(c.salt_key(&["-a", "minion1", "-y"]).code, 0);
    c.wait_connected("minion1");
    let minion_pid = c.minions[0].1 .0.id();

    let jid = start_async(&c, &["minion1", "cmd.run", "sleep 1004"]);
    wait_for(|| !processes(&["sleep", "1004"]).is_empty(), Duration::from_secs(10), "the job");
    let job = find_job_json(&c, "minion1", &jid);
    assert_eq!(job["pid"], Value::from(minion_pid), "threads mode: the minion's pid, as Salt shows");

    let r = c.salt(&["minion1", "saltutil.kill_job", &jid]);
    assert_eq!(r.stdout, format!("minion1:\n    Signal 9 sent to job {jid} at pid {minion_pid}\n"));
    wait_for(|| processes(&["sleep", "1004"]).is_empty(), Duration::from_secs(10), "the command to be killed");
    wait_for(|| !proc_dir(&c, "minion1").join(&jid).exists(), Duration::from_secs(10), "the proc file to go");
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.stdout, "minion1:\n    True\n", "the minion survived");
    assert_eq!(find_job_json(&c, "minion1", &jid), serde_json::json!({}));
}
