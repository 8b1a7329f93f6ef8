//! One process per job (Salt's `multiprocessing: True`), so a job that crashes or is killed
//! takes nothing else with it.
//!
//! A multi-threaded tokio process cannot safely fork, so the minion re-executes its own binary
//! as `salt-minion --run-job <jid>` ([`RUN_JOB_ARG`]; the program's `main` hands that to
//! [`main`]). The child leads a new session, so the job and everything it starts can be
//! signalled as one tree ([`crate::process_tree`]). The parent sends a [`JobSpec`] (msgpack)
//! on the child's stdin; the child runs the function on a current-thread runtime, keeps the
//! return in the minion's outbox directory, and writes the outcome (msgpack) to stdout. The
//! parent keeps `cachedir/proc/<jid>` while the child lives.
//!
//! A job outlives its minion, as in Salt: a minion killed or restarted mid-job leaves the job
//! process running, and because the child keeps its own return in the outbox, the next minion
//! adopts the job ([`adopt_orphans`]) and sends the return when the job ends.
//!
//! How the child ended decides the return: a result on stdout is the return; death by a kill
//! signal (`saltutil.kill_job`, `term_job`, an operator's `kill`) means no return, as in
//! Salt; a crash signal, a non-zero exit or unreadable output becomes a return with Salt's
//! exception text and retcode 1, so the caller is told.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use salt_modules::{JobContext, Outcome};
use salt_proto::message::Publish;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

pub use crate::proc_dir::RUN_JOB_ARG;
use crate::{process_tree, Minion};

/// Everything a job process needs of the minion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobSpec {
    pub publish: Publish,
    pub minion_id: String,
    pub grains: Map<String, Value>,
    /// The minion's options (`cachedir`, returner settings, ...).
    pub opts: Map<String, Value>,
    pub returners: Vec<String>,
    /// The minion's pid: a job process knows it is not the minion.
    pub minion_pid: u32,
    /// The minion's outbox directory, where the child keeps its return (see [`crate::outbox::Outbox`]).
    pub outbox: Option<PathBuf>,
}

impl JobSpec {
    pub fn new(minion: &Minion, publish: &Publish) -> JobSpec {
        JobSpec {
            publish: publish.clone(),
            minion_id: minion.id.clone(),
            grains: (*minion.grains).clone(),
            opts: minion.opts().to_map(),
            returners: (*crate::jobs::builtin_returners()).clone(),
            minion_pid: std::process::id(),
            outbox: minion.outbox.dir().map(Path::to_path_buf),
        }
    }
}

/// [`Outcome`] as it crosses the pipe.
#[derive(Debug, Serialize, Deserialize)]
struct WireOutcome {
    ret: Value,
    retcode: i32,
    success: bool,
    out: Option<String>,
}

/// In a job process: the pid of the minion that started it (set once by [`main`]).
static MINION_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Is this process a job process (rather than the minion itself)?
pub fn in_job_process() -> bool {
    MINION_PID.get().is_some()
}

/// How long the parent keeps reading the child's stderr after it exited (a process the job
/// left behind may hold the pipe open).
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// The job process: `salt-minion --run-job <jid>`, spec on stdin, outcome on stdout. Returns
/// the exit code.
pub fn main() -> i32 {
    let jid = std::env::args().nth(2).unwrap_or_default();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::WARN)
        .try_init();
    // The result goes out on a private copy of stdout; fds 0 and 1 become /dev/null so what
    // the job starts can neither read the spec nor hold the result pipe open.
    let (mut input, mut result) = match private_stdio() {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("job {jid}: cannot set up stdio: {e}");
            return 2;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = input.read_to_end(&mut bytes) {
        eprintln!("job {jid}: cannot read the job: {e}");
        return 2;
    }
    drop(input);
    let spec: JobSpec = match salt_proto::frame::decode(&bytes) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("job {jid}: unreadable job spec: {e}");
            return 2;
        }
    };
    if spec.publish.jid != jid {
        eprintln!("job {jid}: the spec is for job {}", spec.publish.jid);
        return 2;
    }
    let _ = MINION_PID.set(spec.minion_pid);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("job {jid}: cannot start the runtime: {e}");
            return 2;
        }
    };
    let outbox = spec.outbox.clone();
    let (minion_id, publish) = (spec.minion_id.clone(), spec.publish.clone());
    let outcome = runtime.block_on(execute(spec));
    // Kept before it is reported: should the minion be gone by now, the next one finds it.
    if let Some(dir) = &outbox {
        let ret = crate::jobs::job_return(&minion_id, &publish, outcome.clone());
        if let Err(e) = crate::outbox::keep(dir, &ret) {
            eprintln!("job {jid}: cannot keep the return in {}: {e}", dir.display());
        }
    }
    let wire = WireOutcome { ret: outcome.ret, retcode: outcome.retcode, success: outcome.success, out: outcome.out };
    let written = salt_proto::frame::encode(&wire)
        .map_err(|e| e.to_string())
        .and_then(|b| result.write_all(&b).and_then(|()| result.flush()).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!("job {jid}: cannot send the result: {e}");
        return 2;
    }
    runtime.shutdown_timeout(Duration::from_millis(100));
    0
}

/// Moves stdin and stdout to close-on-exec descriptors and puts /dev/null in their place.
fn private_stdio() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain descriptor calls; the duplicates are owned by the returned Files.
    unsafe {
        let input = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        let output = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if input < 0 || output < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if devnull < 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::dup2(devnull, 0);
        libc::dup2(devnull, 1);
        libc::close(devnull);
        Ok((std::fs::File::from_raw_fd(input), std::fs::File::from_raw_fd(output)))
    }
}

/// Runs the job as the minion would in-process, with the saltutil functions looking at the
/// proc files.
pub async fn execute(spec: JobSpec) -> Outcome {
    let registry = Arc::new(crate::registry());
    let ctx = Arc::new(JobContext {
        jid: spec.publish.jid.clone(),
        minion_id: spec.minion_id,
        pub_data: spec.publish.to_pub_data(),
        grains: Arc::new(spec.grains),
        opts: spec.opts.into(),
        returners: Arc::new(spec.returners),
        registry: registry.clone(),
    });
    registry.execute(ctx, &spec.publish.fun, &spec.publish.arg).await
}

/// Parent side: runs `publish` in a job process started from `exe`. `None` when the job was
/// killed (no return).
pub async fn run(minion: &Minion, publish: &Publish, exe: &Path) -> Option<Outcome> {
    let jid = &publish.jid;
    let spec = JobSpec::new(minion, publish);
    let input = match salt_proto::frame::encode(&spec) {
        Ok(b) => b,
        Err(e) => return Some(failure(&format!("the job could not be handed to a job process: {e}"))),
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg(RUN_JOB_ARG).arg(jid).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| if libc::setsid() == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    // spawn returns after the exec, so the proc file never names a pid whose cmdline is still
    // the minion's (which readers would take for a reused pid).
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Some(failure(&format!("cannot start a job process ({}): {e}", exe.display()))),
    };
    let pid = child.id().unwrap_or(0);
    if let Err(e) = minion.proc_dir.write(jid, &publish.to_pub_data(), pid) {
        tracing::warn!("cannot write the proc file of job {jid}: {e}");
    }
    tracing::debug!("job {jid} runs in process {pid}");

    let (mut stdin, mut stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let feed = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A child that died early closes the pipe; its exit status tells the story.
            let _ = stdin.write_all(&input).await;
        }
    };
    let collect = async move {
        let mut buf = Vec::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_end(&mut buf).await;
        }
        buf
    };
    let mut relay = tokio::spawn(relay_stderr(jid.clone(), stderr));
    let ((), output, status) = tokio::join!(feed, collect, child.wait());
    minion.proc_dir.remove(jid);
    let stderr_tail = match tokio::time::timeout(STDERR_GRACE, &mut relay).await {
        Ok(Ok(tail)) => tail,
        _ => {
            relay.abort();
            String::new()
        }
    };
    match status {
        Ok(status) => judge(jid, pid, status, &output, &stderr_tail),
        Err(e) => Some(failure(&format!("lost track of the job process {pid}: {e}"))),
    }
}

/// How often an adopted job process is checked for its end.
const ORPHAN_POLL: Duration = Duration::from_millis(500);

/// At minion start: the jobs an earlier minion left running (proc files naming live job
/// processes) are watched until they end; then the return each kept in the outbox goes to the
/// master and to the job's returners, as if this minion had started the job.
pub fn adopt_orphans(minion: &Arc<Minion>) {
    for job in minion.proc_dir.running(crate::proc_dir::job_process_alive) {
        let jid = job.get("jid").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(pid) = job.get("pid").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok()) else { continue };
        // A replayed publish of this job must not run it a second time.
        minion.jobs.first_sight(&jid);
        tracing::info!("job {jid} (process {pid}) outlived an earlier minion; its return goes out when it ends");
        let minion = minion.clone();
        tokio::spawn(async move {
            while crate::proc_dir::job_process_alive(pid, &jid) {
                tokio::time::sleep(ORPHAN_POLL).await;
            }
            minion.proc_dir.remove(&jid);
            match minion.outbox.adopt(&jid) {
                Some(ret) => {
                    let publish_ret = job.get("ret").and_then(Value::as_str).unwrap_or_default();
                    // The proc file holds the publish data, kwargs (`ret_config`, ...) included.
                    minion.returners.hand_over(&ret, publish_ret, &job);
                }
                None => tracing::info!("adopted job {jid} ended without a return (killed, or already sent)"),
            }
        });
    }
}

/// Logs the child's stderr in the minion's log; returns the last line for error texts.
async fn relay_stderr(jid: String, stderr: Option<tokio::process::ChildStderr>) -> String {
    let Some(stderr) = stderr else { return String::new() };
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut last = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::warn!("job {jid}: {}", line.trim());
        if !line.trim().is_empty() {
            last = line.trim().to_string();
        }
    }
    last
}

/// The return (if any) of a job process that ended with `status`.
fn judge(jid: &str, pid: u32, status: ExitStatus, output: &[u8], stderr_tail: &str) -> Option<Outcome> {
    if let Some(sig) = status.signal() {
        // Whatever the job started dies with it.
        process_tree::kill_leftovers(pid);
        return match crash_signal_name(sig) {
            Some(name) => {
                tracing::error!("job {jid}: the job process {pid} crashed ({name})");
                Some(failure(&format!("the job process crashed ({name})")))
            }
            None => {
                tracing::info!("job {jid}: the job process {pid} was ended by signal {sig}");
                None
            }
        };
    }
    if !status.success() {
        let code = status.code().unwrap_or(-1);
        let why = if stderr_tail.is_empty() { String::new() } else { format!(": {stderr_tail}") };
        return Some(failure(&format!("the job process exited with status {code}{why}")));
    }
    match salt_proto::frame::decode::<WireOutcome>(output) {
        Ok(w) => Some(Outcome { ret: w.ret, retcode: w.retcode, success: w.success, out: w.out }),
        Err(e) => Some(failure(&format!("the job process sent an unreadable result: {e}"))),
    }
}

/// Signals that mean the process crashed rather than was told to stop.
fn crash_signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTRAP => "SIGTRAP",
        _ => return None,
    })
}

/// What Salt's minion returns when the function raised: its exception text, retcode 1.
fn failure(message: &str) -> Outcome {
    Outcome {
        ret: Value::String(format!("The minion function caused an exception: {message}")),
        retcode: 1,
        success: false,
        out: Some("nested".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exit(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed(sig: i32) -> ExitStatus {
        ExitStatus::from_raw(sig)
    }

    #[test]
    fn a_result_on_stdout_is_the_return() {
        let wire = WireOutcome { ret: json!({"a": 1}), retcode: 0, success: true, out: None };
        let bytes = salt_proto::frame::encode(&wire).unwrap();
        let got = judge("j", 0, exit(0), &bytes, "").unwrap();
        assert_eq!(got, Outcome { ret: json!({"a": 1}), retcode: 0, success: true, out: None });
    }

    #[test]
    fn killed_jobs_have_no_return_and_crashes_are_reported() {
        assert_eq!(judge("j", 0, killed(libc::SIGKILL), b"", ""), None);
        assert_eq!(judge("j", 0, killed(libc::SIGTERM), b"", ""), None);
        let crash = judge("j", 0, killed(libc::SIGSEGV), b"", "").unwrap();
        assert_eq!(
            crash,
            Outcome {
                ret: json!("The minion function caused an exception: the job process crashed (SIGSEGV)"),
                retcode: 1,
                success: false,
                out: Some("nested".into())
            }
        );
    }

    #[test]
    fn bad_exits_and_bad_output_are_reported() {
        let out = judge("j", 0, exit(101), b"", "thread 'main' panicked at x.rs:1:1").unwrap();
        assert_eq!(
            out.ret,
            json!("The minion function caused an exception: the job process exited with status 101: thread 'main' panicked at x.rs:1:1")
        );
        assert_eq!((out.retcode, out.success), (1, false));
        let out = judge("j", 0, exit(0), b"\xc1garbage", "").unwrap();
        assert!(
            out.ret.as_str().unwrap().starts_with("The minion function caused an exception: the job process sent an unreadable result"),
            "{out:?}"
        );
    }

    fn publish(fun: &str, arg: Vec<Value>) -> Publish {
        Publish {
            jid: "20261125003832838505".into(),
            fun: fun.into(),
            arg,
            tgt: json!("minion1"),
            tgt_type: "glob".into(),
            ret: String::new(),
            user: "root".into(),
            expires_at_ms: 0,
            kwargs: Map::new(),
        }
    }

    #[test]
    fn the_spec_round_trips_through_msgpack() {
        let spec = JobSpec {
            publish: publish("cmd.run", vec![json!("sleep 1"), json!({"__kwarg__": true, "timeout": 5})]),
            minion_id: "minion1".into(),
            grains: json!({"os": "Debian", "num_cpus": 2, "mem": 1.5}).as_object().unwrap().clone(),
            opts: json!({"cachedir": "/var/cache/salt/minion", "x": null}).as_object().unwrap().clone(),
            returners: vec!["local_cache".into()],
            minion_pid: 42,
            outbox: Some("/var/cache/salt/minion/outbox".into()),
        };
        let back: JobSpec = salt_proto::frame::decode(&salt_proto::frame::encode(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[tokio::test]
    async fn execute_runs_the_function_with_the_job_registry() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = JobSpec {
            publish: publish("test.echo", vec![json!("hi")]),
            minion_id: "minion1".into(),
            grains: Map::new(),
            opts: json!({"cachedir": tmp.path()}).as_object().unwrap().clone(),
            returners: Vec::new(),
            minion_pid: 1,
            outbox: None,
        };
        let out = execute(spec.clone()).await;
        assert_eq!(out.ret, json!("hi"));
        // The job registry has the saltutil functions; nothing else runs, so nothing is listed.
        let out = execute(JobSpec { publish: publish("saltutil.running", vec![]), ..spec }).await;
        assert_eq!((out.ret, out.retcode), (json!([]), 0));
    }
}
