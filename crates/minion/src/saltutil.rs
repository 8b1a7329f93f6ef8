//! `saltutil.*` functions that look at this minion's own jobs: `running`, `is_running`,
//! `find_job`, `signal_job`, `term_job`, `kill_job`, `term_all_jobs`, `kill_all_jobs`.
//!
//! As in Salt they run inside a job like any other function and find the other jobs through
//! the proc files ([`crate::proc_dir`]), not through the minion's memory: with
//! `multiprocessing` each job is its own process. They live here, not in salt-modules,
//! because they need to know how this minion runs jobs.

use std::sync::Arc;

use futures::future::BoxFuture;
use salt_modules::{Args, JobContext, ModuleError, Registry, Returned, Signature};
use serde_json::{Map, Value};

use crate::jobs;
use crate::proc_dir::{job_process_alive, ProcDir};
use crate::process_tree;

/// Is the job in a proc file still running? Threads-mode jobs (the file names this very
/// minion process) are checked in the task table; job processes by pid and cmdline (the
/// pid-reuse guard).
fn alive(minion_id: &str, pid: u32, jid: &str) -> bool {
    if is_this_minion(pid) {
        jobs::task_running(minion_id, jid)
    } else {
        job_process_alive(pid, jid)
    }
}

/// True when `pid` is the minion process we run in (threads mode). A job process never
/// claims to be the minion, so it never signals it.
fn is_this_minion(pid: u32) -> bool {
    !crate::job_process::in_job_process() && pid == std::process::id()
}

const RUNNING_DOC: &str = "Return the data on all running salt processes on the minion\n\nCLI Example:\n\n    salt '*' saltutil.running";
const IS_RUNNING_DOC: &str = "If the named function is running return the data associated with it/them.\nThe argument can be a glob\n\nCLI Example:\n\n    salt '*' saltutil.is_running state.highstate";
const FIND_JOB_DOC: &str = "Return the data for a specific job id that is currently running.\n\njid\n    The job id to search for and return data.\n\nCLI Example:\n\n    salt '*' saltutil.find_job <job id>\n\nNote that the find_job function only returns job information when the job is still running. If\nthe job is currently running, the output looks something like this:\n\n    # salt my-minion saltutil.find_job 20160503150049487736\n    my-minion:\n        ----------\n        arg:\n            - 30\n        fun:\n            test.sleep\n        jid:\n            20160503150049487736\n        pid:\n            9601\n        ret:\n        tgt:\n            my-minion\n        tgt_type:\n            glob\n        user:\n            root\n\nIf the job has already completed, the job cannot be found and therefore the function returns\nan empty dictionary, which looks like this on the CLI:\n\n    # salt my-minion saltutil.find_job 20160503150049487736\n    my-minion:\n        ----------";
const SIGNAL_JOB_DOC: &str =
    "Sends a signal to the named salt job's process\n\nCLI Example:\n\n    salt '*' saltutil.signal_job <job id> 15";
const TERM_JOB_DOC: &str =
    "Sends a termination signal (SIGTERM 15) to the named salt job's process\n\nCLI Example:\n\n    salt '*' saltutil.term_job <job id>";
const TERM_ALL_JOBS_DOC: &str =
    "Sends a termination signal (SIGTERM 15) to all currently running jobs\n\nCLI Example:\n\n    salt '*' saltutil.term_all_jobs";
const KILL_JOB_DOC: &str =
    "Sends a kill signal (SIGKILL 9) to the named salt job's process\n\nCLI Example:\n\n    salt '*' saltutil.kill_job <job id>";
const KILL_ALL_JOBS_DOC: &str =
    "Sends a kill signal (SIGKILL 9) to all currently running jobs\n\nCLI Example:\n\n    salt '*' saltutil.kill_all_jobs";

/// Adds the job functions to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register("saltutil.running", RUNNING_DOC, running);
    registry.register("saltutil.is_running", IS_RUNNING_DOC, is_running);
    registry.register("saltutil.find_job", FIND_JOB_DOC, find_job);
    registry.register("saltutil.signal_job", SIGNAL_JOB_DOC, signal_job);
    registry.register("saltutil.term_job", TERM_JOB_DOC, term_job);
    registry.register("saltutil.kill_job", KILL_JOB_DOC, kill_job);
    registry.register("saltutil.term_all_jobs", TERM_ALL_JOBS_DOC, term_all_jobs);
    registry.register("saltutil.kill_all_jobs", KILL_ALL_JOBS_DOC, kill_all_jobs);
    registry.register("saltutil.runner", RUNNER_DOC, runner);
}

/// What a handler works with: this minion's proc dir and the caller's jid (a job never sees
/// or signals itself, as in Salt).
struct Jobs<'a> {
    dir: ProcDir,
    minion_id: &'a str,
    own_jid: &'a str,
}

impl<'a> Jobs<'a> {
    fn of(ctx: &'a JobContext) -> Result<Jobs<'a>, ModuleError> {
        let dir = ProcDir::from_opts(&ctx.opts).ok_or_else(|| ModuleError::CommandExecution("the minion has no cachedir".into()))?;
        Ok(Jobs { dir, minion_id: &ctx.minion_id, own_jid: &ctx.jid })
    }

    fn running(&self) -> Vec<Map<String, Value>> {
        self.dir
            .running(|pid, jid| alive(self.minion_id, pid, jid))
            .into_iter()
            .filter(|j| j.get("jid").and_then(Value::as_str) != Some(self.own_jid))
            .collect()
    }

    fn find(&self, jid: &str) -> Option<Map<String, Value>> {
        self.running().into_iter().find(|j| j.get("jid").and_then(Value::as_str) == Some(jid))
    }

    /// Salt's `signal_job`: the job's whole tree gets `sig`; `""` for a job that is not
    /// running; a job whose process is gone has its file cleaned up.
    fn signal(&self, jid: &str, sig: i32) -> Result<String, ModuleError> {
        let Some(data) = self.find(jid) else { return Ok(String::new()) };
        let pid = data.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32;
        let sent = format!("Signal {sig} sent to job {jid} at pid {pid}");
        let not_running = || {
            self.dir.remove(jid);
            format!("Job {jid} was not running and job data has been cleaned up")
        };
        if is_this_minion(pid) {
            // A job of this very process (threads mode): stop its task instead.
            return Ok(if sig == 0 || jobs::abort_task(self.minion_id, jid) { sent } else { not_running() });
        }
        match process_tree::signal_tree(pid, sig) {
            Ok(()) => Ok(sent),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(not_running()),
            Err(e) => Err(ModuleError::CommandExecution(format!("cannot send signal {sig} to job {jid} at pid {pid}: {e}"))),
        }
    }

    fn signal_all(&self, sig: i32) -> Result<Value, ModuleError> {
        let jids: Vec<String> = self.running().iter().filter_map(|j| j.get("jid").and_then(Value::as_str).map(str::to_string)).collect();
        let mut out = Vec::new();
        for jid in jids {
            out.push(Value::String(self.signal(&jid, sig)?));
        }
        Ok(Value::Array(out))
    }
}

/// A jid argument as text (a YAML-parsed CLI argument may arrive as a number), validated
/// before it is used anywhere.
fn jid_arg(v: &Value) -> Result<String, ModuleError> {
    let jid = match v {
        Value::String(s) => s.clone(),
        other => salt_modules::py_str(other),
    };
    salt_proto::jid::validate_jid(&jid).map_err(|e| ModuleError::Invocation(e.to_string()))?;
    Ok(jid)
}

/// A signal number as `os.kill` takes it; numeric strings are accepted too.
fn signal_arg(v: &Value) -> Result<i32, ModuleError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=64).contains(&n) => Ok(n as i32),
        Some(n) => Err(ModuleError::Invocation(format!("invalid signal number {n}"))),
        None => Err(ModuleError::InvalidArguments(format!(
            "'{}' object cannot be interpreted as an integer",
            match v {
                Value::String(_) => "str",
                Value::Array(_) => "list",
                Value::Object(_) => "dict",
                Value::Null => "NoneType",
                Value::Bool(_) => "bool",
                Value::Number(_) => "float",
            }
        ))),
    }
}

type Reply = BoxFuture<'static, Result<Returned, ModuleError>>;

fn running(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        Signature::parse("running()").bind(&args)?;
        let jobs = Jobs::of(&ctx)?.running();
        Ok(Returned::value(Value::Array(jobs.into_iter().map(Value::Object).collect())))
    })
}

fn is_running(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        let b = Signature::parse("is_running(fun)").bind(&args)?;
        let pattern = salt_modules::py_str(b.get("fun"));
        let jobs = Jobs::of(&ctx)?.running();
        let matching = jobs
            .into_iter()
            .filter(|j| salt_modules::fnmatch(j.get("fun").and_then(Value::as_str).unwrap_or(""), &pattern))
            .map(Value::Object)
            .collect();
        Ok(Returned::value(Value::Array(matching)))
    })
}

fn find_job(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        let b = Signature::parse("find_job(jid)").bind(&args)?;
        let jid = jid_arg(b.get("jid"))?;
        let found = Jobs::of(&ctx)?.find(&jid).unwrap_or_default();
        Ok(Returned::value(Value::Object(found)))
    })
}

fn signal_job(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        let b = Signature::parse("signal_job(jid, sig)").bind(&args)?;
        let jid = jid_arg(b.get("jid"))?;
        let sig = signal_arg(b.get("sig"))?;
        Ok(Returned::value(Jobs::of(&ctx)?.signal(&jid, sig)?))
    })
}

fn term_job(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        let b = Signature::parse("term_job(jid)").bind(&args)?;
        let jid = jid_arg(b.get("jid"))?;
        Ok(Returned::value(Jobs::of(&ctx)?.signal(&jid, libc::SIGTERM)?))
    })
}

fn kill_job(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        let b = Signature::parse("kill_job(jid)").bind(&args)?;
        let jid = jid_arg(b.get("jid"))?;
        Ok(Returned::value(Jobs::of(&ctx)?.signal(&jid, libc::SIGKILL)?))
    })
}

fn term_all_jobs(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        Signature::parse("term_all_jobs()").bind(&args)?;
        Ok(Returned::value(Jobs::of(&ctx)?.signal_all(libc::SIGTERM)?))
    })
}

fn kill_all_jobs(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        Signature::parse("kill_all_jobs()").bind(&args)?;
        Ok(Returned::value(Jobs::of(&ctx)?.signal_all(libc::SIGKILL)?))
    })
}

const RUNNER_DOC: &str = "Execute a runner function. This function must be run on the master,
either by targeting a minion running on a master or by using salt-call on a master.

name
    The name of the function to run

arg
    Any positional arguments to pass to the runner function

kwarg
    Any keyword arguments to pass to the runner function

full_return
    Return the full data dict (fun, jid, return, success, ...) instead of the return value

CLI Example:

    salt master_minion saltutil.runner jobs.list_jobs";

/// `saltutil.runner`: runs a runner as Salt does, on the master's host with that host's master
/// config (`<this minion's config dir>/master`), through the master's local socket.
fn runner(ctx: Arc<JobContext>, args: Args) -> Reply {
    Box::pin(async move {
        let b =
            Signature::parse("runner(name, arg=None, kwarg=None, full_return=False, saltenv='base', jid=None, **kwargs)").bind(&args)?;
        let name = b
            .opt_str("name")
            .ok_or_else(|| ModuleError::InvalidArguments("runner() missing 1 required positional argument: 'name'".into()))?;
        let mut runner_args: Vec<Value> = match b.get("arg") {
            Value::Null => Vec::new(),
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        let mut kwargs = Map::new();
        if let Value::Object(k) = b.get("kwarg") {
            kwargs.extend(k.clone());
        }
        kwargs.extend(b.varkwargs.iter().filter(|(k, _)| !k.starts_with("__")).map(|(k, v)| (k.clone(), v.clone())));
        if !kwargs.is_empty() {
            kwargs.insert("__kwarg__".into(), true.into());
            runner_args.push(Value::Object(kwargs));
        }
        let conf_dir = ctx
            .opts
            .get("conf_file")
            .and_then(Value::as_str)
            .and_then(|f| std::path::Path::new(f).parent().map(std::path::Path::to_path_buf))
            .unwrap_or_else(|| std::path::PathBuf::from("/etc/salt"));
        let master_conf = conf_dir.join("master");
        if !master_conf.exists() {
            return Err(ModuleError::CommandExecution(format!(
                "saltutil.runner runs runners on the master's host, with its master config, and there is no {} on this minion",
                master_conf.display()
            )));
        }
        let config =
            salt_config::Config::load(salt_config::Role::Master, &conf_dir).map_err(|e| ModuleError::CommandExecution(e.to_string()))?;
        let socket = salt_config::master_control_socket(&config);
        let (data, fun_jid) = call_runner(&socket, &name, runner_args.clone()).await?;
        if salt_modules::truthy(b.get("full_return")) {
            let mut full = Map::new();
            full.insert("fun".into(), format!("runner.{name}").into());
            full.insert("jid".into(), fun_jid.into());
            full.insert("fun_args".into(), Value::Array(runner_args));
            full.insert("return".into(), data);
            full.insert("success".into(), true.into());
            return Ok(Returned::value(Value::Object(full)));
        }
        Ok(Returned::value(data))
    })
}

async fn call_runner(socket: &std::path::Path, fun: &str, arg: Vec<Value>) -> Result<(Value, String), ModuleError> {
    use salt_proto::frame::{read_frame, write_frame, DEFAULT_MAX_FRAME};
    use salt_proto::message::{ClientReply, ClientRequest, RunnerRequest};
    let unreachable =
        |e: &dyn std::fmt::Display| ModuleError::CommandExecution(format!("cannot reach the master at {}: {e}", socket.display()));
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| unreachable(&e))?;
    let (mut reader, mut writer) = stream.into_split();
    write_frame(&mut writer, &ClientRequest::Runner(RunnerRequest { fun: fun.to_string(), arg }), DEFAULT_MAX_FRAME)
        .await
        .map_err(|e| unreachable(&e))?;
    loop {
        match read_frame::<ClientReply, _>(&mut reader, DEFAULT_MAX_FRAME).await.map_err(|e| unreachable(&e))? {
            ClientReply::RunnerReturn { jid, data, .. } => return Ok((data, jid)),
            ClientReply::Refused { reason } | ClientReply::Error { message: reason } => return Err(ModuleError::CommandExecution(reason)),
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    /// This test process plays the minion (threads mode for jobs that carry its pid).
    fn registry() -> Arc<Registry> {
        let mut r = Registry::builtin();
        register(&mut r);
        Arc::new(r)
    }

    async fn call(cachedir: &std::path::Path, fun: &str, arg: Value) -> salt_modules::Outcome {
        let registry = registry();
        let ctx = Arc::new(JobContext {
            jid: "20261125009999999999".into(),
            minion_id: "minion1".into(),
            pub_data: Map::new(),
            grains: Arc::new(Map::new()),
            opts: json!({"cachedir": cachedir}).as_object().unwrap().clone().into(),
            returners: crate::jobs::builtin_returners(),
            registry: registry.clone(),
        });
        registry.execute(ctx, fun, arg.as_array().unwrap()).await
    }

    fn pub_data(jid: &str, fun: &str) -> Map<String, Value> {
        json!({"fun": fun, "arg": ["sleep 1000; echo hehe"], "tgt": "minion1", "jid": jid, "ret": "", "tgt_type": "glob", "user": "root"})
            .as_object()
            .unwrap()
            .clone()
    }

    /// A stand-in job process: its cmdline carries `--run-job <jid>` and it leads a session
    /// with a `sleep` below it, like a real one running `cmd.run`.
    fn fake_job_process(jid: &str, marker: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", &format!("sh -c 'sleep 1000; echo {marker}' & wait"), crate::proc_dir::RUN_JOB_ARG, jid]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| if libc::setsid() == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
        }
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        wait_until(|| job_process_alive(pid, jid) && !process_tree::tree_of(pid as i32).is_empty());
        child
    }

    fn wait_until(cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "condition never held");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Gone, or a zombie waiting for whoever adopted it.
    fn is_gone(pid: i32) -> bool {
        std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| c.is_empty()).unwrap_or(true)
    }

    #[tokio::test]
    async fn find_and_kill_a_job_process_and_its_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProcDir::new(tmp.path());
        let jid = "20261125003832838505";
        let mut job = fake_job_process(jid, "hehe");
        let pid = job.id();
        dir.write(jid, &pub_data(jid, "cmd.run"), pid).unwrap();

        let found = call(tmp.path(), "saltutil.find_job", json!([jid])).await;
        assert_eq!(found.ret["pid"], json!(pid));
        assert_eq!(found.ret["fun"], json!("cmd.run"));
        let keys: Vec<&String> = found.ret.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["pid", "fun", "arg", "tgt", "jid", "ret", "tgt_type", "user"]);
        let running = call(tmp.path(), "saltutil.running", json!([])).await;
        assert_eq!(running.ret, json!([found.ret.clone()]));
        assert_eq!(call(tmp.path(), "saltutil.is_running", json!(["cmd.*"])).await.ret, running.ret);
        assert_eq!(call(tmp.path(), "saltutil.is_running", json!(["test.*"])).await.ret, json!([]));
        let tree = process_tree::tree_of(pid as i32);
        assert!(!tree.is_empty(), "the inner shell runs");

        let killed = call(tmp.path(), "saltutil.kill_job", json!([jid])).await;
        assert_eq!(killed.ret, json!(format!("Signal 9 sent to job {jid} at pid {pid}")));
        assert_eq!(killed.retcode, 0);
        job.wait().unwrap();
        for p in tree {
            wait_until(|| is_gone(p));
        }

        // The dead job's file is pruned by the next reader.
        assert_eq!(call(tmp.path(), "saltutil.find_job", json!([jid])).await.ret, json!({}));
        assert!(!dir.path().join(jid).exists());
        assert_eq!(call(tmp.path(), "saltutil.kill_job", json!([jid])).await.ret, json!(""));
    }

    #[tokio::test]
    async fn a_job_that_is_gone_when_signalled_is_cleaned_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProcDir::new(tmp.path());
        let jid = "20261125003832838506";
        // A threads-mode entry (the minion's pid) whose task is not in the table.
        dir.write(jid, &pub_data(jid, "test.sleep"), std::process::id()).unwrap();
        let jobs = Jobs { dir: dir.clone(), minion_id: "minion1", own_jid: "20261125009999999999" };
        // Readers prune it as not running, so a signal finds nothing.
        assert_eq!(jobs.signal(jid, 15).unwrap(), "");
        assert!(!dir.path().join(jid).exists());
    }

    #[tokio::test]
    async fn threads_mode_jobs_are_aborted_not_signalled() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProcDir::new(tmp.path());
        let jid = "20261125003832838507";
        let (job, abort) = futures::future::abortable(tokio::time::sleep(Duration::from_secs(1000)));
        jobs::track_task("minion1", jid, abort);
        dir.write(jid, &pub_data(jid, "test.sleep"), std::process::id()).unwrap();
        let pid = std::process::id();
        let listed = call(tmp.path(), "saltutil.running", json!([])).await;
        assert_eq!(listed.ret[0]["jid"], json!(jid));
        let out = call(tmp.path(), "saltutil.term_job", json!([jid])).await;
        assert_eq!(out.ret, json!(format!("Signal 15 sent to job {jid} at pid {pid}")));
        assert!(job.await.is_err(), "the job was aborted and this process lives");
        jobs::untrack_task("minion1", jid);
        assert_eq!(call(tmp.path(), "saltutil.find_job", json!([jid])).await.ret, json!({}));
    }

    #[tokio::test]
    async fn all_jobs_functions_return_lists_and_the_caller_is_excluded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProcDir::new(tmp.path());
        let own = "20261125009999999999";
        let other = "20261125003832838508";
        let mut own_job = fake_job_process(own, "own");
        let mut other_job = fake_job_process(other, "other");
        dir.write(own, &pub_data(own, "saltutil.kill_all_jobs"), own_job.id()).unwrap();
        dir.write(other, &pub_data(other, "cmd.run"), other_job.id()).unwrap();
        let running = call(tmp.path(), "saltutil.running", json!([])).await;
        assert_eq!(running.ret.as_array().unwrap().len(), 1, "{}", running.ret);
        let out = call(tmp.path(), "saltutil.kill_all_jobs", json!([])).await;
        assert_eq!(out.ret, json!([format!("Signal 9 sent to job {other} at pid {}", other_job.id())]));
        other_job.wait().unwrap();
        assert!(job_process_alive(own_job.id(), own), "the caller's own job is never signalled");
        own_job.kill().unwrap();
        own_job.wait().unwrap();
        process_tree::kill_leftovers(own_job.id());
        assert_eq!(call(tmp.path(), "saltutil.term_all_jobs", json!([])).await.ret, json!([]));
    }

    #[tokio::test]
    async fn argument_errors_read_as_salt_reports_them() {
        let tmp = tempfile::tempdir().unwrap();
        let out = call(tmp.path(), "saltutil.kill_job", json!(["../../etc/passwd"])).await;
        assert_eq!(out.retcode, 1);
        assert_eq!(
            out.ret,
            json!("ERROR executing 'saltutil.kill_job': invalid jid \"../../etc/passwd\": a jid is 20 digits (YYYYMMDDhhmmssffffff), optionally followed by _<pid>")
        );
        let out = call(tmp.path(), "saltutil.find_job", json!([])).await;
        assert_eq!(
            out.ret,
            json!(format!(
                "Passed invalid arguments to saltutil.find_job: find_job() missing 1 required positional argument: 'jid'\n{FIND_JOB_DOC}"
            ))
        );
        let out = call(tmp.path(), "saltutil.signal_job", json!(["20261125003832838505"])).await;
        assert!(out
            .ret
            .as_str()
            .unwrap()
            .starts_with("Passed invalid arguments to saltutil.signal_job: signal_job() missing 1 required positional argument: 'sig'"));
        let out = call(tmp.path(), "saltutil.running", json!(["x"])).await;
        assert!(out.ret.as_str().unwrap().contains("running() takes 0 positional arguments but 1 was given"), "{}", out.ret);
        // Unknown jid: Salt's empty answers.
        assert_eq!(call(tmp.path(), "saltutil.kill_job", json!(["20000101000000000000"])).await.ret, json!(""));
        assert_eq!(call(tmp.path(), "saltutil.find_job", json!(["20000101000000000000"])).await.ret, json!({}));
        assert_eq!(call(tmp.path(), "saltutil.signal_job", json!(["20000101000000000000", 15])).await.ret, json!(""));
    }

    #[test]
    fn docs_are_registered() {
        let r = registry();
        for f in ["running", "is_running", "find_job", "signal_job", "term_job", "kill_job", "term_all_jobs", "kill_all_jobs"] {
            let doc = r.doc(&format!("saltutil.{f}")).unwrap();
            assert!(doc.contains(&format!("salt '*' saltutil.{f}")), "{f}");
        }
    }

    #[test]
    fn jids_are_validated_before_use() {
        assert_eq!(jid_arg(&json!("20261125003832838505")).unwrap(), "20261125003832838505");
        assert_eq!(jid_arg(&json!("20261125003832838505_77")).unwrap(), "20261125003832838505_77");
        for bad in [json!("../../etc/shadow"), json!("2026"), json!(null), json!(["20261125003832838505"])] {
            let err = jid_arg(&bad).unwrap_err();
            assert!(matches!(&err, ModuleError::Invocation(m) if m.starts_with("invalid jid")), "{bad}: {err:?}");
        }
    }

    #[test]
    fn signal_numbers_as_os_kill_takes_them() {
        assert_eq!(signal_arg(&json!(9)).unwrap(), 9);
        assert_eq!(signal_arg(&json!("15")).unwrap(), 15);
        assert_eq!(
            signal_arg(&json!("TERM")).unwrap_err(),
            ModuleError::InvalidArguments("'str' object cannot be interpreted as an integer".into())
        );
        assert_eq!(signal_arg(&json!(999)).unwrap_err(), ModuleError::Invocation("invalid signal number 999".into()));
    }
}
