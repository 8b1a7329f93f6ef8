//! The master job cache seen through salt-run, the wait's Ctrl-C, and the event stream.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn jid_of(verbose_stdout: &str) -> String {
    verbose_stdout.lines().next().unwrap().trim_start_matches("Executing job with jid ").to_string()
}

#[test]
fn jobs_runner_reads_the_job_cache() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);

    let r = c.salt(&["-v", "minion1", "cmd.run", "echo hi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jid = jid_of(&r.stdout);
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.code, 0);
    // The cache is written behind the CLI: the return lands a moment after it was shown.
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = c.salt_run(&["jobs.lookup_jid", &jid]);
        if !r.stdout.is_empty() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((r.code, r.stdout.as_str()), (0, "minion1:\n    hi\n"), "{}", r.stderr);
    let r = c.salt_run(&["jobs.lookup_jid", &jid, "--out=json"]);
    assert_eq!(r.stdout, "{\n    \"minion1\": \"hi\"\n}\n");

    let r = c.salt_run(&["jobs.list_job", &jid]);
    let want = format!(
        "Arguments:\n    - echo hi\nFunction:\n    cmd.run\nMinions:\n    - minion1\nResult:\n    ----------\n    minion1:\n        ----------\n        retcode:\n            0\n        return:\n            hi\n        success:\n            True\nStartTime:\n    {}\nTarget:\n    minion1\nTarget-type:\n    glob\nUser:\n    root\njid:\n    {jid}\n",
        salt_proto::jid::jid_to_time(&jid)
    );
    assert_eq!(r.stdout, want);

    let r = c.salt_run(&["jobs.list_jobs", "--out=json"]);
    let jobs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(jobs[&jid]["Function"], "cmd.run");
    assert_eq!(jobs[&jid]["Arguments"], serde_json::json!(["echo hi"]));
    assert_eq!(jobs[&jid]["StartTime"], salt_proto::jid::jid_to_time(&jid));
    let r = c.salt_run(&["jobs.list_jobs", "search_function=test.*", "--out=json"]);
    let jobs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(jobs.as_object().unwrap().values().all(|j| j["Function"] == "test.ping"), "{jobs}");
    assert!(!jobs.as_object().unwrap().is_empty());
    let r = c.salt_run(&["jobs.list_jobs", "limit=1", "search_function=cmd.run", "--out=json"]);
    let jobs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(jobs.as_object().unwrap().keys().collect::<Vec<_>>(), vec![&jid]);

    let r = c.salt_run(&["jobs.exit_success", &jid, "--out=json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(), serde_json::json!({"minion1": true}));
    let r = c.salt_run(&["jobs.print_job", &jid, "--out=json"]);
    let printed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(printed[&jid]["Result"]["minion1"]["return"], "hi");
    let r = c.salt_run(&["jobs.last_run", "function=cmd.run", "--out=json"]);
    let last: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(last.get(&jid).is_some(), "{last}");

    // Unknown and invalid jids. An empty result prints nothing and exits 0, as in Salt (the
    // transcript's `rc=1` there was grep's; see its erratum).
    let r = c.salt_run(&["jobs.lookup_jid", "20000101000000000000"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    let r = c.salt_run(&["jobs.lookup_jid", "20000101000000000000", "--out=json"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "{}\n"));
    // Arguments the runner does not take: Salt's text and a non-zero exit.
    let r = c.salt_run(&["jobs.lookup_jid"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (1, "Passed invalid arguments: lookup_jid() missing 1 required positional argument: 'jid'\n"),
        "{}",
        r.stderr
    );
    let r = c.salt_run(&["jobs.list_jobs", "bogus=1"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.starts_with("Passed invalid arguments: "), "{}", r.stdout);
    let r = c.salt_run(&["jobs.lookup_jid", "../../etc/passwd"]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("invalid jid"), "{}{}", r.stdout, r.stderr);
    let r = c.salt_run(&["jobs.no_such_runner"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("'jobs.no_such_runner' is not available."), "{}", r.stdout);

    // Runner jobs are stored too, under the master's id.
    let r = c.salt_run(&["jobs.list_jobs", "search_function=runner.*", "--out=json"]);
    let jobs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let one = jobs.as_object().unwrap().values().next().expect("a runner job");
    assert!(one["Function"].as_str().unwrap().starts_with("runner.jobs."), "{one}");
    assert_eq!(one["Target-type"], "list");
}

#[test]
fn ctrl_c_prints_the_hint_and_the_job_finishes() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let mut child = Command::new(bin("salt"))
        .arg("-c")
        .arg(c.etc())
        .args(["minion1", "test.sleep", "2", "--show-jid"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The jid line means the job is published and the CLI waits: interrupt it then.
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
    let jid = first.trim_end().trim_start_matches("jid: ").to_string();
    assert_eq!(jid.len(), 20, "{first:?}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    // Salt 3008's order: the notice, then the jid and the hint.
    assert_eq!(
        stderr,
        format!("\nExiting gracefully on Ctrl-c\nThis job's jid is: {jid}\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}\n")
    );
    // The job goes on; its result lands in the job cache.
    c.wait_lookup(&jid, "minion1:\n    True\n", Duration::from_secs(10));
}

#[test]
fn manage_runners_and_the_event_stream() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1", "minion2"]);

    let mut events = EventWatch::start(&c);
    let r = c.salt(&["-v", "minion1", "test.ping"]);
    let jid = jid_of(&r.stdout);
    let prefix = format!("salt/job/{jid}/");
    let seen: Vec<(String, serde_json::Value)> =
        (0..3).map(|_| events.expect(|t| t.starts_with(&prefix), Duration::from_secs(10))).collect();
    let tags: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, [format!("salt/job/{jid}/new"), format!("salt/job/{jid}/publish"), format!("salt/job/{jid}/ret/minion1")]);
    let ret = &seen[2].1;
    assert_eq!(ret["return"], true);
    assert_eq!(ret["cmd"], "_return");
    assert!(ret["_stamp"].as_str().unwrap().ends_with("+00:00"));

    let r = c.salt_run(&["manage.up", "--out=json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(), serde_json::json!(["minion1", "minion2"]));
    c.stop_minion("minion2");
    let want = serde_json::json!({"down": ["minion2"], "up": ["minion1"]});
    let status = || serde_json::from_str::<serde_json::Value>(&c.salt_run(&["manage.status", "--out=json"]).stdout).unwrap();
    wait_for(|| status() == want, Duration::from_secs(10), "manage.status to show minion2 down");
    let r = c.salt_run(&["manage.down"]);
    assert_eq!(r.stdout, "- minion2\n");
    let r = c.salt_run(&["manage.present", "--out=json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(), serde_json::json!(["minion1"]));

    // `count=N` ends the stream after N matching events, with exit code 0.
    let mut counted = Command::new(bin("salt-run"))
        .arg("-c")
        .arg(c.etc())
        .args(["state.event", "salt/run/*/new", "count=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        c.salt_run(&["manage.present"]);
        if let Some(status) = counted.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = counted.kill();
            panic!("state.event count=1 never ended");
        }
    };
    assert_eq!(status.code(), Some(0));
    let lines: Vec<String> = BufReader::new(counted.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    assert!(lines.len() == 1 && lines[0].starts_with("salt/run/") && lines[0].contains("/new\t"), "{lines:?}");
}

#[test]
fn old_jobs_are_purged_but_long_running_ones_are_kept() {
    let mut c = Cluster::new("keep_jobs_seconds: 6\nloop_interval: 1\n");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["-v", "minion1", "test.ping"]);
    let quick = jid_of(&r.stdout);
    let r = c.salt(&["-v", "minion1", "test.sleep", "4", "-t", "15"]);
    assert_eq!(r.code, 0);
    let slow = jid_of(&r.stdout);
    // Once the quick job (all of it older than 6 s) is gone, the slow job's jid is older than
    // 6 s too, but its return is 4 s younger: it is kept whole. (The CLI had the return from
    // the event bus; the store gets it a moment later.)
    c.wait_lookup(&slow, "minion1:\n    True\n", Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    let job = loop {
        let r = c.salt_run(&["jobs.list_job", &quick, "--out=json"]);
        let job: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        if job.get("Error").is_some() || Instant::now() > deadline {
            break job;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["Error"], "Cannot contact returner or no job with this jid", "{job}");
    assert_eq!(job["Result"], serde_json::json!({}));
    let r = c.salt_run(&["jobs.lookup_jid", &slow]);
    assert_eq!(r.stdout, "minion1:\n    True\n", "the long-running job's return is kept");
    // lookup_jid answers without the load; list_job shows the load is kept too.
    let r = c.salt_run(&["jobs.list_job", &slow, "--out=json"]);
    let job: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(job.get("Error").is_none() && job["Function"] == "test.sleep", "the long-running job's load is kept: {job}");
}

#[test]
fn job_cache_off_stores_nothing() {
    let mut c = Cluster::new("job_cache: False\n");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["-v", "minion1", "test.ping"]);
    assert_eq!(r.code, 0);
    let r = c.salt_run(&["jobs.lookup_jid", &jid_of(&r.stdout)]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the job cache is off"), "{}", r.stdout);
    assert!(!c.root().join("var/cache/salt/master/job_cache.sqlite").exists());
}

#[test]
fn a_master_killed_while_returns_flow_loses_none() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let jids: Vec<String> = (0..20)
        .map(|i| {
            let r = c.salt(&["minion1", "cmd.run", &format!("sleep 1; echo job{i}"), "--async"]);
            r.stdout.trim().trim_start_matches("Executed command with job ID: ").to_string()
        })
        .collect();
    // kill -9 while the returns arrive (the first is stored); they are either on the master's
    // disk (acknowledged) or still held by the minion, which sends them again after it reconnects.
    c.wait_lookup(&jids[0], "minion1:\n    job0\n", Duration::from_secs(20));
    c.stop_master();
    c.start_master();
    c.wait_connected("minion1");
    for (i, jid) in jids.iter().enumerate() {
        c.wait_lookup(jid, &format!("minion1:\n    job{i}\n"), Duration::from_secs(20));
    }
}

#[test]
fn saltutil_runner_runs_on_the_masters_host_only() {
    let mut c = Cluster::new("");
    c.start_master();
    // minion2's config dir also holds the master's config: it runs "on the master's host".
    std::fs::create_dir_all(c.minion_etc("minion2")).unwrap();
    std::fs::copy(c.etc().join("master"), c.minion_etc("minion2").join("master")).unwrap();
    c.start_accepted(&["minion1", "minion2"]);
    let r = c.salt(&["minion2", "saltutil.runner", "manage.up", "--out", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(),
        serde_json::json!({"minion2": ["minion1", "minion2"]}),
        "{}",
        r.stderr
    );
    let r = c.salt(&["minion1", "saltutil.runner", "manage.up"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("saltutil.runner runs runners on the master's host"), "{}", r.stdout);
}

#[test]
fn a_return_survives_master_down_and_minion_killed() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["minion1", "cmd.run", "sleep 1; echo late", "--async"]);
    let jid = r.stdout.trim().trim_start_matches("Executed command with job ID: ").to_string();
    let (proc_file, kept) = (c.minion_cachedir("minion1").join("proc").join(&jid), c.minion_cachedir("minion1").join("outbox").join(&jid));
    wait_for(|| proc_file.exists() || kept.exists(), Duration::from_secs(20), "the minion to start the job");
    c.stop_master();
    // The job ends while the master is away, its return waiting in the outbox; then the minion
    // is killed -9 before it could send it.
    wait_for(|| kept.exists(), Duration::from_secs(20), "the job's return in the minion's outbox");
    c.stop_minion("minion1");
    c.start_master();
    c.start_minion("minion1", "");
    c.wait_connected("minion1");
    c.wait_lookup(&jid, "minion1:\n    late\n", Duration::from_secs(20));
}

#[test]
fn a_job_outlives_a_minion_restart_and_its_return_arrives() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["minion1", "cmd.run", "sleep 4; echo outlived", "--async"]);
    let jid = r.stdout.trim().trim_start_matches("Executed command with job ID: ").to_string();
    let proc_file = c.minion_cachedir("minion1").join("proc").join(&jid);
    wait_for(|| proc_file.exists(), Duration::from_secs(20), "the minion to start the job");
    // As in Salt, killing the minion leaves its job running; the next minion adopts it.
    c.stop_minion("minion1");
    c.start_minion("minion1", "");
    c.wait_connected("minion1");
    let r = c.salt(&["minion1", "saltutil.find_job", &jid, "--out=json"]);
    let found: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(found["minion1"]["jid"], jid.as_str(), "the restarted minion knows the job: {found}");
    c.wait_lookup(&jid, "minion1:\n    outlived\n", Duration::from_secs(30));
    wait_for(|| !proc_file.exists(), Duration::from_secs(5), "the adopted job's proc file to go");
    let kept = c.minion_cachedir("minion1").join("outbox").join(&jid);
    wait_for(|| !kept.exists(), Duration::from_secs(5), "the acknowledged return to leave the outbox");
}

#[test]
fn a_full_disk_on_the_master_loses_no_return() {
    let mut c = Cluster::new("");
    // The master's cachedir (job cache and spools) on a disk of its own, to fill.
    let cache = c.root().join("var/cache/salt/master");
    std::fs::create_dir_all(&cache).unwrap();
    let Some(disk) = Tmpfs::mount(&cache, "8m") else { return };
    c.start_master();
    c.start_minion("minion1", "return_retry_timer: 1\nreturn_retry_timer_max: 2");
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "minion1 pending");
    c.salt_key(&["-a", "minion1", "-y"]);
    c.wait_connected("minion1");
    let filler = disk.fill("filler");
    // What is left of the spool's last page may take a small record or two: ping until a
    // return does not fit. A larger return cannot fit after that.
    let failed = "cannot spool returns for the job cache";
    for _ in 0..20 {
        if c.master_log().contains(failed) {
            break;
        }
        c.salt(&["minion1", "test.ping"]);
    }
    assert!(c.master_log().contains(failed), "the disk never filled");
    let mut events = EventWatch::start(&c);
    let resends_before = c.minion_log("minion1").matches("sending them again").count();
    // The CLI still gets the return (from the event bus); the job cache cannot take it, so the
    // master does not acknowledge it and the minion keeps it.
    let r = c.salt(&["-v", "minion1", "cmd.run", "echo during"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.ends_with("minion1:\n    during\n"), "{}", r.stdout);
    let jid = jid_of(&r.stdout);
    // At least one resend has come and gone unacknowledged.
    wait_for(
        || c.minion_log("minion1").matches("sending them again").count() > resends_before,
        Duration::from_secs(15),
        "the minion to send the unacknowledged return again",
    );
    assert_eq!(c.salt_run(&["jobs.lookup_jid", &jid]).stdout, "", "nothing stored while the disk is full");
    let kept = c.minion_cachedir("minion1").join("outbox").join(&jid);
    assert!(kept.exists(), "the minion keeps the unacknowledged return");
    // Room again: the minion's next resend is stored, acknowledged and dropped from its outbox.
    std::fs::remove_file(filler).unwrap();
    c.wait_lookup(&jid, "minion1:\n    during\n", Duration::from_secs(20));
    wait_for(|| !kept.exists(), Duration::from_secs(10), "the acknowledged return to leave the outbox");
    let log = c.master_log();
    assert_eq!(log.matches(failed).count(), 1, "logged once, not per attempt:\n{log}");
    assert!(log.contains("returns are spooled for the job cache again"), "{log}");
    // Sent several times, the return fired one event.
    assert!(c.minion_log("minion1").contains("sending them again"));
    let tags = events.drain(Duration::from_millis(500));
    let tag = format!("salt/job/{jid}/ret/minion1");
    assert_eq!(tags.iter().filter(|t| **t == tag).count(), 1, "{tags:#?}");
}

#[test]
fn jobs_active_shows_running_jobs_and_where() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["minion1", "cmd.run", "sleep 30", "--async"]);
    let jid = r.stdout.trim().trim_start_matches("Executed command with job ID: ").to_string();
    let proc_file = c.minion_cachedir("minion1").join("proc").join(&jid);
    wait_for(|| proc_file.exists(), Duration::from_secs(10), "the job's proc file");
    let r = c.salt_run(&["jobs.active", "--out=json"]);
    let active: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let job = &active[&jid];
    assert_eq!(job["Function"], "cmd.run", "{active}");
    assert_eq!(job["Arguments"], serde_json::json!(["sleep 30"]));
    assert_eq!(job["Returned"], serde_json::json!([]));
    let pid = job["Running"][0]["minion1"].as_u64().expect("a pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let r = c.salt(&["minion1", "saltutil.kill_job", &jid]);
    assert_eq!(r.stdout, format!("minion1:\n    Signal 9 sent to job {jid} at pid {pid}\n"));
}

#[test]
fn a_long_wait_shows_progress_on_a_terminal_only() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    // On a terminal (tmux gives the CLI one), a wait over a second shows returned/expected.
    let session = format!("saltrs-progress-{}", std::process::id());
    let cmd = format!("{} -c {} minion1 test.sleep 3; sleep 30", bin("salt").display(), c.etc().display());
    let tmux = |args: &[&str]| std::process::Command::new("tmux").args(args).output().expect("tmux (apt-get install tmux)");
    assert!(tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "20", &cmd]).status.success());
    let capture = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).to_string();
    let (mut screen, mut after) = (String::new(), String::new());
    wait_for(
        || {
            screen = capture();
            screen.contains("[0/1 minions returned, ")
        },
        Duration::from_secs(10),
        "the progress line",
    );
    wait_for(
        || {
            after = capture();
            after.contains("minion1:\n    True")
        },
        Duration::from_secs(15),
        "the result",
    );
    tmux(&["kill-session", "-t", &session]);
    assert!(screen.contains("[0/1 minions returned, 1s]") || screen.contains("[0/1 minions returned, 2s]"), "{screen}");
    assert!(!after.contains("minions returned"), "the progress line is cleared: {after}");
    // In a pipe: only the result (the other tests compare whole outputs byte for byte).
    let r = c.salt(&["minion1", "test.sleep", "2"]);
    assert_eq!(r.stdout, "minion1:\n    True\n");
    assert_eq!(r.stderr, "");
}
