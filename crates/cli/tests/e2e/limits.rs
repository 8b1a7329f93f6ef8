//! What one master holds: descriptors and memory per CLI call and per hostile connection, the
//! nesting limit, owner-only job data, and who may choose a returner.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use salt_proto::frame::{read_frame, write_frame};
use salt_proto::message::{ClientReply, ClientRequest, PublishRequest};
use tokio::io::AsyncWriteExt;

use crate::harness::*;

fn master_pid(c: &Cluster) -> u32 {
    c.master.as_ref().expect("master running").0.id()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn control_socket(c: &Cluster) -> PathBuf {
    c.root().join("var/run/salt/master/master.sock")
}

/// What `salt minion1 test.ping` does on the socket: publish, read until the return, hang up.
async fn ping_through_socket(sock: &Path) {
    let mut stream = tokio::net::UnixStream::connect(sock).await.unwrap();
    let request = ClientRequest::Publish(PublishRequest {
        tgt: "minion1".into(),
        tgt_type: "glob".into(),
        fun: "test.ping".into(),
        arg: vec![],
        ret: String::new(),
        kwargs: Default::default(),
    });
    write_frame(&mut stream, &request, 1 << 20).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), read_frame::<ClientReply, _>(&mut stream, 1 << 20)).await {
            Ok(Ok(ClientReply::Published { .. })) => {}
            Ok(Ok(ClientReply::Event { tag, .. })) if tag.contains("/ret/") => return,
            Ok(Ok(ClientReply::Event { .. })) => {}
            other => panic!("unexpected answer to a publish: {other:?}"),
        }
    }
}

/// Issue 7, item 1: every `salt` that waited for returns used to leave a socket, a task and a
/// bus subscription behind in the master, until `Too many open files`.
// The heavy-test lock is held for the whole test on purpose; each test has its own runtime.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread")]
async fn synchronous_publishes_leave_no_descriptor_or_memory_behind() {
    let _heavy = heavy();
    // Without a job cache: SQLite's page cache grows with the jobs stored (to a bound), which
    // would hide or mimic a leak in the path measured here, the CLI session's.
    let mut c = Cluster::new("job_cache: False\n");
    c.start_master();
    // Jobs as tasks of the minion: the leak was the master's, and 2,200 job processes would only
    // load the machine.
    tokio::task::block_in_place(|| {
        c.start_minion("minion1", "multiprocessing: False\n");
        let pre = c.master_pki().join("minions_pre/minion1");
        wait_for(|| pre.exists(), Duration::from_secs(20), "minion1 pending");
        c.salt_key(&["-a", "minion1", "-y"]);
        c.wait_connected("minion1");
    });
    let pid = master_pid(&c);
    let sock = control_socket(&c);
    let burst = |n: usize| {
        let sock = sock.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for worker in 0..8 {
                let sock = sock.clone();
                tasks.spawn(async move {
                    for _ in (worker..n).step_by(8) {
                        ping_through_socket(&sock).await;
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    };
    // Warm up (allocator pools, the job cache's connections), then measure.
    burst(200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));

    burst(2000).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > fds_before + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (fds_after, rss_after) = (open_fds(pid), rss_kib(pid));
    eprintln!("2,000 publishes: descriptors {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} KiB");
    assert!(fds_after <= fds_before + 2, "2,000 publishes left descriptors open: {fds_before} before, {fds_after} after");
    assert!(rss_after <= rss_before + rss_before / 10 + 4096, "2,000 publishes grew the master from {rss_before} KiB to {rss_after} KiB");
    let log = c.master_log();
    assert!(log.contains("open files limit: "), "the master logs its descriptor limit:\n{log}");
}

/// Issue 7, item 2: 1,000 TLS peers with throwaway keys each holding a partial frame, and 1,000
/// local connections from an unprivileged user each announcing a 64 MiB request, at once: the
/// master stays small and keeps answering.
// The heavy-test lock is held for the whole test on purpose; each test has its own runtime.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread")]
async fn hostile_connections_cost_the_master_little() {
    let _heavy = heavy();
    raise_own_fd_limit();
    let mut c = Cluster::new("");
    c.start_master();
    tokio::task::block_in_place(|| c.start_accepted(&["minion1"]));
    let pid = master_pid(&c);
    // `nobody` must reach the socket, as an admin who opened the directories for publisher_acl would.
    for dir in [c.dir.path().to_path_buf(), c.root(), c.root().join("var"), c.root().join("var/run")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // 1,000 TLS connections: handshake with a fresh key, announce a hello of 4000 bytes, send 3000.
    let port = c.port;
    let mut tls_peers = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        tls_peers.spawn(async move {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap().serialize_der();
            let pin = std::sync::Arc::new(salt_transport::MasterPin::new(None, None));
            let connector = salt_transport::minion_connector(&key, "probe", pin).unwrap();
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            let mut tls = connector.connect(salt_transport::server_name(), tcp).await.ok()?;
            tls.write_all(&4000u32.to_be_bytes()).await.ok()?;
            tls.write_all(&[0x90; 3000]).await.ok()?;
            tls.flush().await.ok()?;
            Some(tls)
        });
    }
    let mut held = Vec::new();
    while let Some(peer) = tls_peers.join_next().await {
        held.extend(peer.unwrap());
    }

    // 1,000 local connections as `nobody`, each announcing a 64 MiB request and sending 1 MiB.
    let sock = control_socket(&c);
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let local = std::thread::spawn(move || {
        // A raw setresuid changes this thread's credentials only (glibc's wrapper would change
        // every thread's), so the test process stays root.
        // SAFETY: the syscall takes three plain integers.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
        let mut streams = Vec::new();
        for _ in 0..1000 {
            let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) else { continue };
            s.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
            let _ = std::io::Write::write_all(&mut s, &(64u32 << 20).to_be_bytes());
            let _ = std::io::Write::write_all(&mut s, &vec![0x90; 1 << 20]);
            streams.push(s);
        }
        opened_tx.send(streams.len()).unwrap();
        let _ = release_rx.recv();
    });
    let local_opened = opened_rx.recv().unwrap();

    let rss = rss_kib(pid);
    let ping = tokio::task::block_in_place(|| c.salt(&["minion1", "test.ping"]));
    drop(release_tx);
    local.join().unwrap();
    drop(held);
    assert!(rss < 64 * 1024, "the master grew to {rss} KiB under 1,000 + {local_opened} hostile connections");
    assert_eq!((ping.code, ping.stdout.as_str()), (0, "minion1:\n    True\n"), "{}", ping.stderr);
}

fn raise_own_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain structs passed to getrlimit/setrlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(65536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// Issue 7, item 4: arguments nested deeper than the stores can read back are refused at the
/// door; up to the limit they run and the job can be looked up again.
#[test]
fn arguments_nested_too_deep_are_refused_and_the_rest_stored_readably() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));

    let refused = c.salt(&["minion1", "test.arg", &nested(150)]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("argument 1 is nested 150 levels deep; at most 100 levels are accepted"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );

    let ok = c.salt(&["minion1", "test.arg", &nested(100), "--out", "json", "--show-jid"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let jid = ok.stdout.lines().find_map(|l| l.strip_prefix("jid: ")).expect("jid printed").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.salt_run(&["jobs.list_job", &jid, "--out", "json"]);
        if r.code == 0 && r.stdout.contains("minion1") && r.stdout.contains("\"Result\"") {
            assert!(r.stdout.contains("nested deeper than 100 levels: cut"), "{}", r.stdout);
            break;
        }
        assert!(Instant::now() < deadline, "job {jid} never readable: {}{}", r.stdout, r.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 7, items 7 and 8: a `publisher_acl` user may not choose a returner or its options
/// unless `publisher_returner_acl` grants it, and learns nothing about which minions exist
/// from a function it may not run.
#[test]
fn acl_users_may_not_choose_returners_or_probe_minion_ids() {
    let mut c = Cluster::new("publisher_acl:\n  nobody:\n    - test.*\npublisher_returner_acl:\n  nobody:\n    - local_cache\n");
    c.start_master();
    c.start_accepted(&["minion1"]);
    // `nobody` must be able to read the config.
    c.open_config_to_all();
    let target = c.minion_root("minion1").join("stolen.db");
    let r = c.salt_as_nobody(&[
        "minion1",
        "test.ping",
        "--return",
        "sqlite3",
        "--return_kwargs",
        &format!("{{\"database\": \"{}\"}}", target.display()),
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("User nobody may not choose the returner sqlite3"), "{}", r.stderr);
    let r = c.salt_as_nobody(&["minion1", "test.ping", "--return_config", "alternative"]);
    assert!(r.stderr.contains("may not set returner options"), "{}", r.stderr);
    // Refused at the master, so no minion ever saw the options.
    assert!(!target.exists(), "the minion opened a store the caller chose");

    // The granted returner is allowed.
    let r = c.salt_as_nobody(&["minion1", "test.ping", "--return", "local_cache"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "minion1:\n    True\n"), "{}", r.stderr);

    // A function the user may not run is refused the same way whether or not the target exists.
    let real = c.salt_as_nobody(&["minion1", "cmd.run", "id"]);
    let ghost = c.salt_as_nobody(&["no-such-minion", "cmd.run", "id"]);
    assert_eq!((real.code, ghost.code), (2, 2));
    assert_eq!(real.stderr.replace("minion1", "X"), ghost.stderr.replace("no-such-minion", "X"));
    assert!(ghost.stderr.contains("is not allowed to run cmd.run"), "{}", ghost.stderr);
}

/// Issue 7, item 6: the job cache, spools, minion data, proc files and the outbox are
/// owner-only, and an unprivileged user cannot read them even where the directories are open.
#[test]
fn job_data_is_owner_only() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["minion1", "cmd.run", "echo secret-output", "--async"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jid = r.stdout.trim().rsplit(' ').next().unwrap().to_string();
    c.wait_lookup(&jid, "minion1:\n    secret-output\n", Duration::from_secs(20));
    // An old file left readable is tightened at the next start.
    let cachedir = c.root().join("var/cache/salt/master");
    let stale = cachedir.join("spool/left-by-an-older-version");
    std::fs::write(&stale, "x").unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
    c.stop_master();
    c.start_master();
    c.wait_connected("minion1");

    let mut files = Vec::new();
    for dir in [cachedir.clone(), c.minion_cachedir("minion1")] {
        collect(&dir, &mut files);
    }
    assert!(files.iter().any(|(p, _)| p.ends_with("job_cache.sqlite")), "{files:?}");
    let readable: Vec<_> = files.iter().filter(|(_, mode)| mode & 0o077 != 0).collect();
    assert!(readable.is_empty(), "job data readable by others: {readable:?}");

    // Open every directory on the way, as an admin might; `nobody` still reads nothing.
    let mut dir = cachedir.join("job_cache.sqlite");
    while let Some(parent) = dir.parent() {
        if parent == Path::new("/") || parent == std::env::temp_dir() {
            break;
        }
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir = parent.to_path_buf();
    }
    let read = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "cat"])
        .arg(cachedir.join("job_cache.sqlite"))
        .output()
        .unwrap();
    assert!(!read.status.success(), "nobody read the job cache");
    assert!(String::from_utf8_lossy(&read.stderr).contains("Permission denied"));
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let meta = entry.metadata().unwrap();
        out.push((entry.path(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            collect(&entry.path(), out);
        }
    }
}

/// Issue 7, item 3: a return over `max_frame_bytes` used to stay in the outbox for ever; now it
/// is cut to fit with a marker, keeps its retcode, and arrives at the CLI and the job cache.
#[test]
fn a_return_larger_than_a_frame_arrives_truncated_with_its_retcode() {
    let _heavy = heavy();
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["minion1", "cmd.run", "head -c 200000000 /dev/zero | tr '\\0' x; exit 3", "--out", "json", "--show-jid", "-t", "120"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("... output truncated: "),
        "no truncation marker in {} bytes of output: {}\nstderr: {}\nmaster log (last lines first):\n{}\nminion log:\n{}",
        r.stdout.len(),
        &r.stdout[..r.stdout.len().min(2000)],
        r.stderr,
        last_lines(&c.master_log(), 15),
        last_lines(&c.minion_log("minion1"), 15)
    );
    let jid = r.stdout.lines().find_map(|l| l.strip_prefix("jid: ")).expect("jid printed").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.salt_run(&["jobs.exit_success", &jid, "--out", "json"]);
        if r.stdout.contains("minion1") {
            assert!(r.stdout.contains("false"), "{}", r.stdout);
            break;
        }
        assert!(Instant::now() < deadline, "job {jid} not in the job cache: {}{}", r.stdout, r.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
    let outbox = c.minion_cachedir("minion1").join("outbox");
    wait_for(|| std::fs::read_dir(&outbox).map(|d| d.count() == 0).unwrap_or(true), Duration::from_secs(10), "an empty outbox");
    assert!(c.minion_log("minion1").contains("output was truncated"), "{}", c.minion_log("minion1"));
}

/// Issue 7, item 5: a master killed right after the CLI printed a jid used to lose the job.
/// The publish is journaled before the jid is printed and sent again after the restart.
#[test]
fn every_printed_jid_is_delivered_though_the_master_is_killed_right_after() {
    let _heavy = heavy();
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let mut jids = Vec::new();
    for _ in 0..50 {
        c.wait_connected("minion1");
        let r = c.salt(&["minion1", "test.ping", "--async"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        jids.push(r.stdout.trim().rsplit(' ').next().unwrap().to_string());
        // SIGKILL at once, as soon as the jid is printed.
        c.stop_master();
        c.start_master();
    }
    c.wait_connected("minion1");
    for jid in &jids {
        c.wait_lookup(jid, "minion1:\n    True\n", Duration::from_secs(30));
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 7, item 3: `jobs.lookup_jid` of a 42 MB return took the master to 470 MB.
#[test]
fn looking_up_a_large_return_costs_the_master_about_its_size() {
    let _heavy = heavy();
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["minion1", "cmd.run", "head -c 42000000 /dev/zero | tr '\\0' x", "--out", "quiet", "--show-jid", "-t", "60"]);
    let jid = r.stdout.lines().find_map(|l| l.strip_prefix("jid: ")).expect("jid printed").to_string();
    let pid = master_pid(&c);
    let lookup = || c.salt_run(&["jobs.lookup_jid", &jid, "--out", "json"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lookup().stdout.len() < 42_000_000 {
        assert!(Instant::now() < deadline, "job {jid} never stored");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(1));
    // Peak RSS from now on (writing 5 to clear_refs resets VmHWM).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = rss_kib(pid);
    let r = lookup();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.len() > 42_000_000);
    let peak = peak_rss_kib(pid);
    eprintln!("RSS {before} KiB before the lookup, peak {peak} KiB during it");
    assert!(peak < before + 3 * 42 * 1024, "the lookup took the master from {before} KiB to {peak} KiB");
}

/// `publisher_acl` entries limited to a target allow the function there and nowhere else.
#[test]
fn target_limited_acl_entries_hold_to_their_target() {
    let mut c = Cluster::new("publisher_acl:\n  nobody:\n    - 'minion1':\n        - test.echo\n");
    c.start_master();
    c.start_accepted(&["minion1", "minion2"]);
    // `nobody` must be able to read the config.
    c.open_config_to_all();
    let ok = c.salt_as_nobody(&["minion1", "test.echo", "hi"]);
    assert_eq!((ok.code, ok.stdout.as_str()), (0, "minion1:\n    hi\n"), "{}", ok.stderr);
    for target in ["minion2", "*", "minion*"] {
        let refused = c.salt_as_nobody(&[target, "test.echo", "hi"]);
        assert_eq!(refused.code, 2, "{target}: {}{}", refused.stdout, refused.stderr);
        assert!(refused.stderr.contains("User nobody is not allowed to run test.echo"), "{target}: {}", refused.stderr);
    }
    let other_fun = c.salt_as_nobody(&["minion1", "test.ping"]);
    assert_eq!(other_fun.code, 2, "{}", other_fun.stdout);
}
