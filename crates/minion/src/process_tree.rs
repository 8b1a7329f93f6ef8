//! Signalling a job and everything it started. A job process leads its own session
//! (`setsid` at spawn), but what it starts may sit in process groups of their own (`cmd.run`
//! puts each shell in a new group so it can kill it on timeout). So "the job's tree" is: the
//! job, its descendants by parent pid, every process of its session, and the process groups
//! led by any of those. Groups led by processes outside that set are never signalled, so the
//! minion's own group is safe.

use std::collections::BTreeSet;
use std::io;

/// `(ppid, pgrp, session)` of a process, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(i32, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything, so parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((ppid, pgrp, session))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| d.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Every process below `root`: its descendants and, when `root` leads a session, the
/// session's members. `root` itself is not included.
pub fn tree_of(root: i32) -> BTreeSet<i32> {
    let procs: Vec<(i32, (i32, i32, i32))> = all_pids().into_iter().filter_map(|p| Some((p, stat(p)?))).collect();
    let mut found: BTreeSet<i32> = procs.iter().filter(|(p, (_, _, sid))| *sid == root && *p != root).map(|(p, _)| *p).collect();
    // Descendants, to a fixed point (a process may have left the session with setsid).
    loop {
        let before = found.len();
        for (pid, (ppid, _, _)) in &procs {
            if *pid != root && (*ppid == root || found.contains(ppid)) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to the job process `pid` and its whole tree (Salt signals the children
/// recursively, then the job). The job is stopped while its tree is collected so it cannot
/// start new processes in between. An error (ESRCH) means the job was not running.
pub fn signal_tree(pid: u32, sig: i32) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    if pid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    if sig == 0 {
        return kill(pid, 0);
    }
    // Succeeding here is what proves the job was running.
    kill(pid, libc::SIGSTOP)?;
    signal_members(pid, sig);
    // The group signal may have ended the job already (and its parent reaped it): then this
    // finds nothing, which is fine.
    let _ = kill(pid, sig);
    // A stopped process keeps a catchable signal pending until it runs again.
    let _ = kill(pid, libc::SIGCONT);
    Ok(())
}

/// SIGKILL to whatever a finished job left in its tree (a crashed or killed job process
/// cannot clean up after itself).
pub fn kill_leftovers(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 1 {
            signal_members(pid, libc::SIGKILL);
        }
    }
}

fn signal_members(root: i32, sig: i32) {
    let members = tree_of(root);
    for &p in &members {
        let _ = kill(p, sig);
    }
    // Groups led by the job or a member: catches what a member forked after the scan.
    let mut groups: BTreeSet<i32> = members.iter().filter_map(|&p| stat(p).map(|s| s.1)).collect();
    groups.insert(root);
    for g in groups {
        if g > 1 && (g == root || members.contains(&g)) {
            let _ = kill(-g, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_gone(pid: i32) -> bool {
        // Gone or a zombie (reaped later by whoever is its parent now).
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s[s.rfind(')').unwrap() + 1..].split_whitespace().next() == Some("Z"),
        }
    }

    #[test]
    fn stat_parses_names_with_spaces_and_parens() {
        let me = std::process::id() as i32;
        let (ppid, _, sid) = stat(me).unwrap();
        assert_eq!(ppid, unsafe { libc::getppid() });
        assert_eq!(sid, unsafe { libc::getsid(0) });
    }

    #[test]
    fn kills_the_whole_tree_including_other_process_groups() {
        // A session leader (like a job process) whose grandchild sits in its own process
        // group (like cmd.run's shell).
        let marker = format!("tree-test-{}", std::process::id());
        // bash's `set -m` gives the background job a process group of its own.
        let mut leader = std::process::Command::new("bash");
        leader.args(["-c", &format!("set -m; sh -c 'sleep 1000; echo {marker}' & wait")]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            leader.pre_exec(|| if libc::setsid() == -1 { Err(io::Error::last_os_error()) } else { Ok(()) });
        }
        let mut leader = leader.spawn().unwrap();
        let root = leader.id() as i32;
        wait_until("the tree to start", || tree_of(root).len() >= 2);
        let members = tree_of(root);
        assert!(members.iter().any(|&p| stat(p).unwrap().1 != root), "a member in another group: {members:?}");
        signal_tree(root as u32, libc::SIGKILL).unwrap();
        leader.wait().unwrap();
        for p in members {
            wait_until(&format!("member {p} to die"), || is_gone(p));
        }
        assert_eq!(signal_tree(root as u32, libc::SIGKILL).unwrap_err().raw_os_error(), Some(libc::ESRCH));
    }

    #[test]
    fn never_signals_pid_one_or_nonsense() {
        assert!(signal_tree(1, 0).is_err());
        assert!(signal_tree(0, 9).is_err());
        assert!(signal_tree(u32::MAX, 9).is_err());
    }
}
