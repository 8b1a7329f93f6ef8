//! `salt -b`: batches as Salt 3008 runs them, one jid for every slice, the job cache holding every
//! slice's minions, `--batch-wait`, Salt's progress text, and a jid no one else may reuse.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use salt_proto::frame::{read_frame, write_frame};
use salt_proto::message::{ClientReply, ClientRequest, PublishRequest};
use serde_json::Value;

use crate::harness::*;

const FIVE: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

/// The slices a batch printed (`Executing run on ['m1', 'm2']`), in order.
fn slices(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Executing run on [")?.strip_suffix(']'))
        .map(|list| list.split(", ").map(|id| id.trim_matches('\'').to_string()).collect())
        .collect()
}

/// Every `jid:` block's value; a batch prints one per return, all the same.
fn jids(stdout: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    lines.windows(2).filter(|w| w[0] == "jid:").map(|w| w[1].trim().to_string()).collect()
}

/// Waits until the job cache has `want` returns for `jid`; returns them.
fn lookup_all(c: &Cluster, jid: &str, want: usize) -> serde_json::Map<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.salt_run(&["jobs.lookup_jid", jid, "--out", "json"]);
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&r.stdout) {
            if m.len() == want {
                return m;
            }
        }
        assert!(Instant::now() < deadline, "job {jid}: {want} returns wanted, the job cache has {}{}", r.stdout, r.stderr);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn minions_of(c: &Cluster, jid: &str) -> Vec<String> {
    let r = c.salt_run(&["jobs.list_job", jid, "--out", "json"]);
    let job: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
    let mut ids: Vec<String> = job["Minions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn batches_share_one_jid_and_the_job_cache_lists_every_slice() {
    let _heavy = heavy();
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&FIVE);

    // -b 2: two at a time, each return frees a place; every return under one jid.
    let r = c.salt(&["-b", "2", "*", "test.ping"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("\nExecuting run on ['m1', 'm2']\n\n"), "{}", r.stdout);
    let sent = slices(&r.stdout);
    assert!(sent.iter().all(|s| !s.is_empty() && s.len() <= 2), "{sent:?}");
    assert_eq!(sent.concat(), FIVE, "each minion once, in order: {sent:?}");
    let jid = {
        let all = jids(&r.stdout);
        assert_eq!(all.len(), 1, "one jid for the whole batch: {}", r.stdout);
        all.into_iter().next().unwrap()
    };
    // Salt's shape of one return: jid, the minion, retcode (nested sorts the keys).
    for id in FIVE {
        let block = format!("jid:\n    {jid}\n{id}:\n    True\nretcode:\n    0\n");
        assert!(r.stdout.contains(&block), "{block:?} not in {}", r.stdout);
    }
    assert_eq!(minions_of(&c, &jid), FIVE, "list_job shows every slice's minions");
    let returns = lookup_all(&c, &jid, 5);
    assert!(returns.values().all(|v| *v == Value::Bool(true)), "{returns:?}");

    // -b 40% of five is two; --batch-wait 1 keeps a place empty a second after each return,
    // so the five run in three rounds: at least two seconds.
    let started = Instant::now();
    let r = c.salt(&["--batch-size", "40%", "--batch-wait", "1", "*", "cmd.run", "echo hi"]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let sent = slices(&r.stdout);
    assert_eq!(sent[0], ["m1", "m2"], "{}", r.stdout);
    assert!(sent.iter().all(|s| s.len() <= 2), "{sent:?}");
    assert_eq!(sent.concat(), FIVE);
    assert!(took >= Duration::from_secs(2), "--batch-wait 1 held no place back: {took:?}");
    let jid = jids(&r.stdout).into_iter().next().unwrap();
    assert!(r.stdout.contains("m3:\n    hi\n"), "{}", r.stdout);
    assert_eq!(minions_of(&c, &jid), FIVE);
    assert_eq!(lookup_all(&c, &jid, 5).len(), 5);

    // The exit code is the highest retcode returned.
    let r = c.salt(&["-b", "3", "*", "cmd.run", "exit 3"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("retcode:\n    3\n"), "{}", r.stdout);

    // --static: nothing until the end, then every return in one output.
    let r = c.salt(&["-s", "-b", "2", "*", "test.ping", "--out", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let all: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(all, serde_json::json!({"m1": true, "m2": true, "m3": true, "m4": true, "m5": true}));

    // batch_safe_limit: a job reaching that many minions runs as a batch of batch_safe_size.
    let r = c.salt(&["--batch-safe-limit", "5", "--batch-safe-size", "2", "*", "test.ping"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("\nNOTICE: Too many minions targeted, switching to batch execution.\n\nExecuting run on ['m1', 'm2']\n"),
        "{}",
        r.stdout
    );
    assert_eq!(slices(&r.stdout).concat(), FIVE);
    let r = c.salt(&["--batch-safe-limit", "6", "*", "test.ping"]);
    assert_eq!((r.code, slices(&r.stdout).len()), (0, 0), "under the limit, a plain publish: {}", r.stdout);
    assert!(FIVE.iter().all(|id| r.stdout.contains(&format!("{id}:\n    True\n"))) && !r.stdout.contains("jid:"), "{}", r.stdout);

    // Bad sizes and empty targets, as Salt says them.
    let r = c.salt(&["-b", "x", "*", "test.ping"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Invalid batch data sent: x\nData must be in the form of %10, 10% or 3"), "{}", r.stderr);
    let r = c.salt(&["-b", "2", "nobody*", "test.ping"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "No minions matched the target. No command was sent, no jid was assigned.\nNo minions matched the target.\n")
    );
}

#[test]
fn a_minion_down_or_silent_does_not_stall_the_batch() {
    let _heavy = heavy();
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["m1", "m2", "m3", "m4"]);
    // m4 is down before the batch starts: Salt's batch leaves it out and says so.
    c.stop_minion("m4");
    wait_for(
        || c.salt(&["m4", "test.ping", "-t", "1"]).stdout.contains("[Not connected]"),
        Duration::from_secs(20),
        "the master to see m4 gone",
    );
    // m2 is connected but frozen: it never returns nor answers find_job, so after the timeout
    // it is given up on, shown as an empty return, and its place goes to m3.
    let m2 = c.minions.iter().find(|(id, _)| id == "m2").unwrap().1 .0.id() as i32;
    // SAFETY: kill takes a pid and a signal number; m2 is this test's child.
    unsafe { libc::kill(m2, libc::SIGSTOP) };
    let r = c.salt(&["-b", "2", "-t", "1", "--gather-job-timeout", "1", "*", "test.ping"]);
    // SAFETY: as above.
    unsafe { libc::kill(m2, libc::SIGCONT) };
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("Minion m4 did not respond. No job will be sent.\n\nExecuting run on ['m1', 'm2']\n\n"), "{}", r.stdout);
    assert!(r.stdout.contains("m2:\n    ----------\n"), "{}", r.stdout);
    assert!(r.stdout.contains("Executing run on ['m3']"), "{}", r.stdout);
    let jid = jids(&r.stdout).into_iter().next().unwrap();
    assert!(r.stdout.contains(&format!("jid:\n    {jid}\nm3:\n    True\n")), "{}", r.stdout);
    assert_eq!(minions_of(&c, &jid), ["m1", "m2", "m3"], "m4 was never sent the job");
}

/// Sends `request` and reads the master's answer to it (events in between are skipped).
async fn ask(stream: &mut tokio::net::UnixStream, request: ClientRequest) -> ClientReply {
    let max = 1 << 20;
    write_frame(stream, &request, max).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), read_frame::<ClientReply, _>(stream, max)).await.unwrap().unwrap() {
            ClientReply::Event { .. } => continue,
            reply => return reply,
        }
    }
}

/// A slice under an existing jid is accepted only from the connection that started the batch,
/// and only for targets of the batch not sent the job yet.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_batchs_publisher_may_send_its_jid_again() {
    let mut c = Cluster::new("");
    tokio::task::block_in_place(|| {
        c.start_master();
        c.start_accepted(&["m1", "m2"]);
    });
    let sock = c.root().join("var/run/salt/master/master.sock");
    let ping = PublishRequest {
        tgt: "m1".into(),
        tgt_type: "glob".into(),
        fun: "test.ping".into(),
        arg: vec![],
        ret: String::new(),
        kwargs: Default::default(),
    };

    // A plain publish's jid is not a batch: not even its publisher may send it again.
    let mut owner = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let ClientReply::Published { jid: plain, .. } = ask(&mut owner, ClientRequest::Publish(ping.clone())).await else { panic!() };
    let reply = ask(&mut owner, ClientRequest::Slice { jid: plain.clone(), minions: vec!["m1".into()] }).await;
    assert!(matches!(&reply, ClientReply::Refused { reason } if reason.contains("not a batch job this connection started")), "{reply:?}");

    // A batch: its publisher sends slices of targets not sent yet.
    let batch = PublishRequest { tgt: "*".into(), ..ping };
    let ClientReply::Published { jid, minions, .. } = ask(&mut owner, ClientRequest::Batch(batch)).await else { panic!() };
    assert_eq!(minions, ["m1", "m2"]);
    let reply = ask(&mut owner, ClientRequest::Slice { jid: jid.clone(), minions: vec!["m1".into()] }).await;
    assert!(matches!(&reply, ClientReply::Published { jid: j, minions, .. } if *j == jid && minions == &["m1"]), "{reply:?}");
    for wrong in ["m1", "m3"] {
        let reply = ask(&mut owner, ClientRequest::Slice { jid: jid.clone(), minions: vec![wrong.into()] }).await;
        assert!(matches!(&reply, ClientReply::Error { message } if message.contains("is not a target of batch job")), "{wrong}: {reply:?}");
    }

    // Anyone else, even the same user on another connection, is refused, and the master says so.
    let mut other = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let reply = ask(&mut other, ClientRequest::Slice { jid: jid.clone(), minions: vec!["m2".into()] }).await;
    assert!(matches!(&reply, ClientReply::Refused { reason } if reason.contains(&jid)), "{reply:?}");
    assert!(c.master_log().contains(&format!("Job {jid} is not a batch job this connection started")), "{}", c.master_log());
    // The publisher still may.
    let reply = ask(&mut owner, ClientRequest::Slice { jid: jid.clone(), minions: vec!["m2".into()] }).await;
    assert!(matches!(&reply, ClientReply::Published { .. }), "{reply:?}");
}
