//! Starting the daemons: a config with a wrong value stops them before they start, and a
//! second instance on the same config is refused without harming the first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Runs `program -c etc args`, which must exit within 20 s.
fn run_to_exit(program: &str, etc: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(bin(program))
        .arg("-c")
        .arg(etc)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not exit: it started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap().into()
}

/// SIGTERMs `pid` when dropped (a daemon started with `-d` is not our child), and waits for it.
struct Pid(i32);

impl Pid {
    fn alive(&self) -> bool {
        unsafe { libc::kill(self.0, 0) == 0 }
    }
}

impl Drop for Pid {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

fn read_pid(pid_file: &Path) -> i32 {
    let text = std::fs::read_to_string(pid_file).unwrap();
    text.trim().parse().unwrap_or_else(|_| panic!("{}: {text:?}", pid_file.display()))
}

#[test]
fn a_wrong_value_type_stops_the_master_with_file_key_value_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let root = dir.path().join("root");
    std::fs::write(etc.join("master"), format!("root_dir: {}\ninterface: 127.0.0.1\nret_port: abc\n", root.display())).unwrap();
    let want = format!(
        "Error in configuration file: {} - invalid value for 'ret_port': 'abc'; expected a port number from 1 to 65535",
        etc.join("master").display()
    );
    for args in [&[][..], &["-d"][..]] {
        let r = run_to_exit("salt-master", &etc, args);
        assert_ne!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(&want), "{args:?}: {}", r.stderr);
    }
    assert!(!root.join("var/run/salt-master.pid").exists(), "a master that did not start wrote no pid file");

    // The same in an included file names that file; a minion refuses its own bad values too.
    std::fs::write(etc.join("master"), format!("root_dir: {}\n", root.display())).unwrap();
    std::fs::create_dir_all(etc.join("master.d")).unwrap();
    std::fs::write(etc.join("master.d/cache.conf"), "master_job_cache: [mysql, pgjsonb]\n").unwrap();
    let r = run_to_exit("salt-master", &etc, &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(&format!("{} - invalid value for 'master_job_cache'", etc.join("master.d/cache.conf").display())),
        "{}",
        r.stderr
    );
    std::fs::write(etc.join("minion"), format!("root_dir: {}\nmaster_port: 99999\n", root.display())).unwrap();
    let r = run_to_exit("salt-minion", &etc, &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid value for 'master_port': 99999; expected a port number"), "{}", r.stderr);
}

#[test]
fn a_second_master_is_refused_and_the_first_keeps_its_pid_file() {
    let c = Cluster::new("");
    let r = run_to_exit("salt-master", &c.etc(), &["-d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `-d` returns once the pid file is written.
    let pid_file = c.root().join("var/run/salt-master.pid");
    let first = Pid(read_pid(&pid_file));
    assert!(first.alive());
    let sock = c.root().join("var/run/salt/master/master.sock");
    wait_for(|| sock.exists(), Duration::from_secs(20), "the master's control socket");

    for args in [&["-d"][..], &[][..]] {
        let r = run_to_exit("salt-master", &c.etc(), args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("An instance is already running. Exiting"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("pid {}", first.0)), "{}", r.stderr);
    }
    assert!(first.alive(), "the first master still runs");
    assert_eq!(read_pid(&pid_file), first.0, "its pid file is untouched");
    let r = c.salt_key(&["-L"]);
    assert_eq!(r.code, 0, "the first master still answers: {}", r.stderr);

    // Once it stops, its pid file goes, and a master starts again on the same config.
    drop(first);
    wait_for(|| !pid_file.exists(), Duration::from_secs(10), "the pid file to be removed");
    let r = run_to_exit("salt-master", &c.etc(), &["-d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _again = Pid(read_pid(&pid_file));
}

#[test]
fn a_stale_pid_file_does_not_block_a_start() {
    let c = Cluster::new("");
    let pid_file = c.root().join("var/run/salt-master.pid");
    std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
    // A master killed with -9 leaves its pid file; nobody holds its lock.
    std::fs::write(&pid_file, "999999\n").unwrap();
    let r = run_to_exit("salt-master", &c.etc(), &["-d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid = Pid(read_pid(&pid_file));
    assert!(pid.alive());
}

#[test]
fn a_second_minion_is_refused_and_the_first_stays_connected() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["m1"]);
    let pid_file = c.minion_root("m1").join("var/run/salt-minion.pid");
    let first = c.minions[0].1 .0.id() as i32;
    wait_for(
        || std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim() == first.to_string()),
        Duration::from_secs(10),
        "the minion's pid file",
    );

    for args in [&["-d"][..], &[][..]] {
        let r = run_to_exit("salt-minion", &c.minion_etc("m1"), args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("An instance is already running. Exiting"), "{args:?}: {}", r.stderr);
    }
    assert_eq!(read_pid(&pid_file), first, "the first minion's pid file is untouched");
    let r = c.salt(&["m1", "test.ping", "-t", "5"]);
    assert!(r.code == 0 && r.stdout.contains("True"), "the first minion still answers: {}{}", r.stdout, r.stderr);
}

#[test]
fn a_daemonised_master_that_cannot_bind_says_so_and_exits_non_zero() {
    let mut c = Cluster::new("");
    c.start_master();
    // Another master, its own root dir and pid file, on the same port.
    let other = tempfile::tempdir().unwrap();
    let etc = other.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let root = other.path().join("root");
    std::fs::write(etc.join("master"), format!("root_dir: {}\ninterface: 127.0.0.1\nret_port: {}\n", root.display(), c.port)).unwrap();
    let r = run_to_exit("salt-master", &etc, &["-d"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.starts_with("salt-master: ") && r.stderr.contains(&c.port.to_string()),
        "the bind error on the terminal: {}",
        r.stderr
    );
    assert!(!root.join("var/run/salt-master.pid").exists(), "no pid file is left behind");
    let r = c.salt_key(&["-L"]);
    assert_eq!(r.code, 0, "the first master still answers: {}", r.stderr);
}
