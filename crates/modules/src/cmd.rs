//! `cmd.*`: run commands on the minion (Salt's `salt/modules/cmdmod.py`).
//!
//! Every command runs in its own process group. On `timeout`, or when the job is aborted
//! (its future dropped), the whole group gets SIGKILL, so `sleep 100; echo x` leaves nothing
//! behind. Salt only kills the direct child; killing the group is deliberate.
//!
//! Captured output is capped per stream ([`OUTPUT_CAP`]); the rest is drained and dropped
//! and a note says so, so a runaway command cannot exhaust the minion's memory.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::{fnmatch, py_repr, py_str, truthy, Args, Bound, JobContext, ModuleError, Registry, Returned, Signature};

type Result<T> = std::result::Result<T, ModuleError>;

/// Most bytes kept from one output stream of one command.
pub const OUTPUT_CAP: usize = 64 << 20;

/// The shell commands run under unless `shell=` says otherwise.
pub(crate) fn default_shell() -> String {
    if std::path::Path::new("/bin/bash").exists() { "/bin/bash" } else { "/bin/sh" }.to_string()
}

pub(crate) fn register(r: &mut Registry) {
    r.register("cmd.run", RUN_DOC, run);
    r.register("cmd.shell", SHELL_DOC, shell);
    r.register("cmd.run_stdout", RUN_STDOUT_DOC, run_stdout);
    r.register("cmd.run_stderr", RUN_STDERR_DOC, run_stderr);
    r.register("cmd.run_all", RUN_ALL_DOC, run_all);
    r.register("cmd.retcode", RETCODE_DOC, retcode);
}

// Parameter lists in Salt's order, so positional arguments land where Salt puts them
// (`cmd.run 'ls' /tmp` sets cwd).
const RUN_SIG: &str = "run(cmd, cwd=None, stdin=None, runas=None, group=None, shell=None, python_shell=None, env=None, clean_env=False, template=None, rstrip=True, umask=None, output_encoding=None, output_loglevel='debug', log_callback=None, hide_output=False, timeout=None, reset_system_locale=True, ignore_retcode=False, saltenv=None, use_vt=False, bg=False, password=None, encoded_cmd=False, raise_err=False, prepend_path=None, success_retcodes=None, success_stdout=None, success_stderr=None, **kwargs)";
const SHELL_SIG: &str = "shell(cmd, cwd=None, stdin=None, runas=None, group=None, shell=None, env=None, clean_env=False, template=None, rstrip=True, umask=None, output_encoding=None, output_loglevel='debug', log_callback=None, hide_output=False, timeout=None, reset_system_locale=True, ignore_retcode=False, saltenv=None, use_vt=False, bg=False, password=None, prepend_path=None, success_retcodes=None, success_stdout=None, success_stderr=None, **kwargs)";
const RUN_STDOUT_SIG: &str = "run_stdout(cmd, cwd=None, stdin=None, runas=None, group=None, shell=None, python_shell=None, env=None, clean_env=False, template=None, rstrip=True, umask=None, output_encoding=None, output_loglevel='debug', log_callback=None, hide_output=False, timeout=None, reset_system_locale=True, ignore_retcode=False, saltenv=None, use_vt=False, password=None, prepend_path=None, success_retcodes=None, success_stdout=None, success_stderr=None, **kwargs)";
const RUN_STDERR_SIG: &str = "run_stderr(cmd, cwd=None, stdin=None, runas=None, group=None, shell=None, python_shell=None, env=None, clean_env=False, template=None, rstrip=True, umask=None, output_encoding=None, output_loglevel='debug', log_callback=None, hide_output=False, timeout=None, reset_system_locale=True, ignore_retcode=False, saltenv=None, use_vt=False, password=None, prepend_path=None, success_retcodes=None, success_stdout=None, success_stderr=None, **kwargs)";
const RUN_ALL_SIG: &str = "run_all(cmd, cwd=None, stdin=None, runas=None, group=None, shell=None, python_shell=None, env=None, clean_env=False, template=None, rstrip=True, umask=None, output_encoding=None, output_loglevel='debug', log_callback=None, hide_output=False, timeout=None, reset_system_locale=True, ignore_retcode=False, saltenv=None, use_vt=False, redirect_stderr=False, password=None, encoded_cmd=False, prepend_path=None, success_retcodes=None, success_stdout=None, success_stderr=None, **kwargs)";
const RETCODE_SIG: &str = "retcode(cmd, cwd=None, stdin=None, runas=None, group=None, shell=None, python_shell=None, env=None, clean_env=False, template=None, umask=None, output_encoding=None, output_loglevel='debug', log_callback=None, timeout=None, reset_system_locale=True, ignore_retcode=False, saltenv=None, use_vt=False, password=None, success_retcodes=None, success_stdout=None, success_stderr=None, **kwargs)";

/// The options every cmd.* function shares, appended to each doc.
macro_rules! common_params_doc {
    () => {
        "

Common keyword arguments:

    cwd           directory to run in (default: the home of the runas user, or /)
    stdin         text fed to the command; a literal \\n becomes a newline
    runas         run as this user (setuid/setgid before exec; requires root)
    group         run with this group
    shell         the shell (default /bin/bash, else /bin/sh)
    python_shell  True runs through the shell; False splits the command like a
                  POSIX shell and runs it directly. Default True for jobs.
    env           dict of environment variables to set
    clean_env     only use the variables in env
    prepend_path  prepended to $PATH
    umask         octal umask for the command
    timeout       seconds; on expiry the command's whole process group is killed
    rstrip        strip trailing whitespace from the output (default True)
    hide_output   return empty output
    ignore_retcode      do not set the job retcode from the exit code
    success_retcodes    exit codes to treat as 0
    success_stdout / success_stderr   substrings that make the run a success
    bg            start in the background and return at once"
    };
}

const RUN_DOC: &str = concat!(
    "Execute the passed command and return the output as a string, standard
error merged into standard output. The job's retcode is the command's exit code.
raise_err=True turns a non-zero exit code into an error.

CLI Example:

    salt '*' cmd.run \"ls -l | awk '/foo/{print \\$2}'\"
    salt '*' cmd.run 'grep f' stdin='one\\ntwo\\nthree'
    salt '*' cmd.run 'echo $FOO' env='{\"FOO\": \"bar\"}'",
    common_params_doc!()
);

const SHELL_DOC: &str = concat!(
    "Execute the passed command through the shell and return the output as
a string, standard error merged into standard output. Like cmd.run with python_shell=True.

CLI Example:

    salt '*' cmd.shell \"ls -l | awk '/foo/{print \\$2}'\"",
    common_params_doc!()
);

const RUN_STDOUT_DOC: &str = concat!(
    "Execute a command, and only return the standard out.

CLI Example:

    salt '*' cmd.run_stdout \"ls -l | awk '/foo/{print \\$2}'\"",
    common_params_doc!()
);

const RUN_STDERR_DOC: &str = concat!(
    "Execute a command and only return the standard error.

CLI Example:

    salt '*' cmd.run_stderr \"ls -l | awk '/foo/{print \\$2}'\"",
    common_params_doc!()
);

const RUN_ALL_DOC: &str = concat!(
    "Execute the passed command and return a dict of pid, retcode, stdout
and stderr. redirect_stderr=True merges standard error into standard output.

CLI Example:

    salt '*' cmd.run_all \"ls -l | awk '/foo/{print \\$2}'\"",
    common_params_doc!()
);

const RETCODE_DOC: &str = concat!(
    "Execute a shell command and return the command's return code.

CLI Example:

    salt '*' cmd.retcode \"file /bin/bash\"",
    common_params_doc!()
);

/// What one command run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    pub pid: u32,
    /// The exit code (negative signal number if killed, as Python reports it); `None` for a
    /// background run.
    pub retcode: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// What the job sees of a run: its output, and the retcode for `__context__`.
struct Ran {
    out: RunOutput,
    context_retcode: i32,
}

fn run(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    CmdFunction { sig: RUN_SIG, stderr: Stderr::Merged, python_shell, reply: reply_run }.call(ctx, args)
}

fn shell(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    CmdFunction { sig: SHELL_SIG, stderr: Stderr::Merged, python_shell: python_shell_for_cmd_shell, reply: reply_stdout }.call(ctx, args)
}

fn run_stdout(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    CmdFunction { sig: RUN_STDOUT_SIG, stderr: Stderr::Apart, python_shell, reply: reply_stdout }.call(ctx, args)
}

fn run_stderr(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    CmdFunction { sig: RUN_STDERR_SIG, stderr: Stderr::Apart, python_shell, reply: reply_stderr }.call(ctx, args)
}

fn run_all(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    CmdFunction { sig: RUN_ALL_SIG, stderr: Stderr::AsAsked, python_shell, reply: reply_all }.call(ctx, args)
}

fn retcode(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    CmdFunction { sig: RETCODE_SIG, stderr: Stderr::Merged, python_shell, reply: reply_retcode }.call(ctx, args)
}

/// What sets one cmd.* function apart from the others; everything else is the same path.
struct CmdFunction {
    /// Its signature in Salt's parameter order.
    sig: &'static str,
    stderr: Stderr,
    /// Whether the command runs through the shell.
    python_shell: fn(&JobContext, &Bound) -> bool,
    /// Makes the job's return from the run.
    reply: fn(&Bound, Ran) -> Result<Returned>,
}

impl CmdFunction {
    /// Bind `args` to the signature, run the command, and reply.
    fn call(self, ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
        async move {
            let b = Signature::parse(self.sig).bind(&args)?;
            let merge_stderr = match self.stderr {
                Stderr::Merged => true,
                Stderr::Apart => false,
                Stderr::AsAsked => b.flag("redirect_stderr"),
            };
            let python_shell = (self.python_shell)(&ctx, &b);
            let ran = execute(&ctx, &b, merge_stderr, python_shell).await?;
            (self.reply)(&b, ran)
        }
        .boxed()
    }
}

/// Where a cmd.* function sends the command's standard error.
#[derive(Debug, Clone, Copy)]
enum Stderr {
    /// Into standard output.
    Merged,
    /// Kept apart, so either stream can be returned on its own.
    Apart,
    /// Into standard output only when `redirect_stderr=True` (cmd.run_all).
    AsAsked,
}

/// cmd.run: the output, or with `raise_err=True` an error carrying it when the command
/// failed.
fn reply_run(b: &Bound, ran: Ran) -> Result<Returned> {
    let text = unless_hidden(b, ran.out.stdout);
    if b.flag("raise_err") && ran.context_retcode != 0 {
        return Err(ModuleError::CommandExecution(text));
    }
    Ok(Returned::with_retcode(text, ran.context_retcode))
}

/// cmd.shell and cmd.run_stdout: the standard output.
fn reply_stdout(b: &Bound, ran: Ran) -> Result<Returned> {
    let text = unless_hidden(b, ran.out.stdout);
    Ok(Returned::with_retcode(text, ran.context_retcode))
}

/// cmd.run_stderr: the standard error.
fn reply_stderr(b: &Bound, ran: Ran) -> Result<Returned> {
    let text = unless_hidden(b, ran.out.stderr);
    Ok(Returned::with_retcode(text, ran.context_retcode))
}

/// cmd.run_all: a dict of pid, retcode, stdout and stderr.
fn reply_all(b: &Bound, ran: Ran) -> Result<Returned> {
    let hide = b.flag("hide_output");
    let (stdout, stderr) = if hide { (String::new(), String::new()) } else { (ran.out.stdout, ran.out.stderr) };
    let retcode = ran.out.retcode.map(Value::from).unwrap_or(Value::Null);
    let pid = Value::from(ran.out.pid);
    // Salt builds this dict in a different order on the timeout path; keep both.
    let entries: [(&str, Value); 4] = if ran.out.timed_out {
        [("stdout", stdout.into()), ("stderr", stderr.into()), ("retcode", retcode), ("pid", pid)]
    } else {
        [("pid", pid), ("retcode", retcode), ("stdout", stdout.into()), ("stderr", stderr.into())]
    };
    let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(Returned::with_retcode(map, ran.context_retcode))
}

/// cmd.retcode: the exit code (null for a background run).
fn reply_retcode(_b: &Bound, ran: Ran) -> Result<Returned> {
    let value = ran.out.retcode.map(Value::from).unwrap_or(Value::Null);
    Ok(Returned::with_retcode(value, ran.context_retcode))
}

/// `text`, or nothing under `hide_output=True`.
fn unless_hidden(b: &Bound, text: String) -> String {
    if b.flag("hide_output") {
        String::new()
    } else {
        text
    }
}

/// cmd.shell runs through the shell unless told otherwise. `python_shell` is not in its
/// signature, so a caller's value arrives among the extra keywords.
fn python_shell_for_cmd_shell(_ctx: &JobContext, b: &Bound) -> bool {
    b.extra("python_shell").map(truthy).unwrap_or(true)
}

/// Salt's `_python_shell_default`: a job from the publisher (it has a jid) runs through the
/// shell unless told otherwise; so does any call when `cmd_safe: False`.
fn python_shell(ctx: &JobContext, b: &Bound) -> bool {
    match b.get("python_shell") {
        Value::Null => !ctx.jid.is_empty() || ctx.opts.get("cmd_safe") == Some(&Value::Bool(false)),
        v => truthy(v),
    }
}

/// How the command is started.
#[derive(Debug, Clone, PartialEq)]
enum Program {
    /// `<shell> -c <script...>` (a list `cmd` passes its extra items as `$0`, `$1`, ...).
    Shell { shell: String, script: Vec<String> },
    /// Direct exec of argv.
    Argv(Vec<String>),
}

/// Everything needed to start one command.
struct Spec {
    program: Program,
    /// `str()` of what Salt hands to Popen, for the timeout and spawn-error texts.
    display: String,
    cwd: String,
    env: BTreeMap<OsString, OsString>,
    stdin: Option<Vec<u8>>,
    user: Option<User>,
    group: Option<u32>,
    umask: Option<u32>,
    /// The limit and its text as the caller wrote it (`str(timeout)` in Salt's message).
    timeout: Option<(Duration, String)>,
    merge_stderr: bool,
    bg: bool,
    rstrip: bool,
    cap: usize,
}

/// Validate the options the way `cmdmod._run` does (same order, same texts), run the
/// command, and apply the retcode options.
async fn execute(ctx: &JobContext, b: &Bound, merge_stderr: bool, python_shell: bool) -> Result<Ran> {
    let spec = prepare(ctx, b, merge_stderr, python_shell)?;
    let success_retcodes = int_list(b.get("success_retcodes"))?;
    let out = spawn_and_wait(spec).await?;
    let mut retcode = out.retcode;
    if let Some(code) = retcode {
        if !out.timed_out {
            let ok_out = str_list(b.get("success_stdout")).iter().any(|s| out.stdout.contains(s.as_str()));
            let ok_err = str_list(b.get("success_stderr")).iter().any(|s| out.stderr.contains(s.as_str()));
            if success_retcodes.contains(&code) || ok_out || ok_err {
                retcode = Some(0);
            }
        }
    }
    // Salt leaves the job retcode at 0 when a command times out; we report the 1 that
    // cmd.run_all shows, so a timed-out job is not counted a success.
    let context_retcode = if b.flag("ignore_retcode") || b.flag("bg") { 0 } else { retcode.unwrap_or(0) };
    Ok(Ran { out: RunOutput { retcode, ..out }, context_retcode })
}

fn prepare(ctx: &JobContext, b: &Bound, merge_stderr: bool, python_shell: bool) -> Result<Spec> {
    let cmd = b.get("cmd").clone();
    let runas = b.opt_str("runas").filter(|s| !s.is_empty());
    let cwd = match b.opt_str("cwd").filter(|s| !s.is_empty()) {
        Some(c) => c,
        None => {
            let home = match &runas {
                Some(name) => lookup_user(name).map(|u| u.home),
                None => std::env::var("HOME").ok().or_else(current_home),
            };
            home.filter(|h| readable(h)).unwrap_or_else(|| "/".to_string())
        }
    };
    let shell = b.opt_str("shell").unwrap_or_else(default_shell);
    if !is_executable_file(&shell) {
        return Err(ModuleError::CommandExecution(format!("The shell {shell} is not available")));
    }
    if let Some(template) = b.opt_str("template") {
        return Err(ModuleError::CommandExecution(format!("Attempted to render file paths with unavailable engine {template}")));
    }
    if !ctx.jid.is_empty() && !permitted(&ctx.opts, &cmd) {
        return Err(ModuleError::CommandExecution(format!("The shell command \"{}\" is not permitted", py_str(&cmd))));
    }
    let user_env = parse_env(b.get("env"));
    let user = match &runas {
        Some(name) => Some(lookup_user(name).ok_or_else(|| ModuleError::CommandExecution(format!("User '{name}' is not available")))?),
        None => None,
    };
    let group = match b.opt_str("group").filter(|s| !s.is_empty()) {
        Some(name) => Some(lookup_group(&name).ok_or_else(|| ModuleError::CommandExecution(format!("Group '{name}' is not available")))?),
        None => None,
    };

    // The command's environment, built in Salt's order: the runas user's basics, the
    // caller's `env` over them, then the C locale for anything the caller did not set.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if let Some(u) = &user {
        env.insert("HOME".into(), u.home.clone());
        env.insert("USER".into(), u.name.clone());
        env.insert("LOGNAME".into(), u.name.clone());
    }
    env.extend(user_env.iter().cloned());
    if let Some(u) = &user {
        env.insert("USER".into(), u.name.clone());
        env.insert("HOME".into(), u.home.clone());
    }
    if b.flag("reset_system_locale") {
        for k in LOCALE_VARS {
            env.entry(k.to_string()).or_insert_with(|| "C".to_string());
        }
    }
    let mut run_env: BTreeMap<OsString, OsString> = if b.flag("clean_env") { BTreeMap::new() } else { std::env::vars_os().collect() };
    if !user_env.iter().any(|(k, _)| k == "NOTIFY_SOCKET") {
        run_env.remove(&OsString::from("NOTIFY_SOCKET"));
    }
    run_env.extend(env.into_iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
    if let Some(prefix) = b.opt_str("prepend_path") {
        let path = run_env.get(&OsString::from("PATH")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        run_env.insert("PATH".into(), format!("{prefix}:{path}").into());
    }

    let umask = match b.opt_str("umask") {
        None => None,
        Some(raw) => {
            let digits = raw.trim_start_matches('0');
            if digits.is_empty() {
                return Err(ModuleError::CommandExecution("Zero umask is not allowed.".into()));
            }
            Some(u32::from_str_radix(digits, 8).map_err(|_| ModuleError::CommandExecution(format!("Invalid umask: '{raw}'")))?)
        }
    };
    if !cwd.starts_with('/') || !std::path::Path::new(&cwd).is_dir() {
        return Err(ModuleError::CommandExecution(format!("Specified cwd '{cwd}' either not absolute or does not exist")));
    }

    let (program, display) = if python_shell {
        match &cmd {
            Value::Array(items) => (Program::Shell { shell, script: items.iter().map(py_str).collect() }, py_repr(&cmd)),
            other => {
                let s = py_str(other);
                (Program::Shell { shell, script: vec![s.clone()] }, s)
            }
        }
    } else {
        let argv: Vec<String> = match &cmd {
            Value::Array(items) => items.iter().map(py_str).collect(),
            other => shlex_split(&py_str(other)).map_err(|e| ModuleError::Exception(format!("ValueError: {e}")))?,
        };
        if argv.is_empty() {
            return Err(ModuleError::Exception("IndexError: list index out of range".into()));
        }
        let display = py_repr(&Value::Array(argv.iter().cloned().map(Value::String).collect()));
        (Program::Argv(argv), display)
    };

    let stdin = b.opt_str("stdin").map(|s| {
        let raw = b.extra("stdin_raw_newlines").is_some_and(truthy);
        if raw { s } else { s.replace("\\n", "\n") }.into_bytes()
    });
    let timeout = match b.get("timeout") {
        Value::Null => None,
        Value::Number(n) => {
            let secs = n.as_f64().unwrap_or(0.0);
            if secs == 0.0 {
                None
            } else {
                Some((Duration::from_secs_f64(secs.max(0.0)), py_str(b.get("timeout"))))
            }
        }
        Value::Bool(false) => None,
        other => return Err(ModuleError::Exception(format!("TimedProcTimeoutError: Error: timeout {} must be a number", py_str(other)))),
    };

    Ok(Spec {
        program,
        display,
        cwd,
        env: run_env,
        stdin,
        user,
        group,
        umask,
        timeout,
        merge_stderr,
        bg: b.flag("bg"),
        rstrip: b.get("rstrip") == &Value::Null || b.flag("rstrip"),
        cap: OUTPUT_CAP,
    })
}

/// Run a program directly (no shell) in `/` with the C locale plus `env`; for other modules
/// (`pkg.*`) that drive system tools. Output is right-stripped, stderr kept apart.
pub async fn run_argv(argv: &[String], env: &[(String, String)]) -> Result<RunOutput> {
    let mut run_env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for k in LOCALE_VARS {
        run_env.insert(k.into(), "C".into());
    }
    run_env.extend(env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
    let display = py_repr(&Value::Array(argv.iter().cloned().map(Value::String).collect()));
    spawn_and_wait(Spec {
        program: Program::Argv(argv.to_vec()),
        display,
        cwd: "/".into(),
        env: run_env,
        stdin: None,
        user: None,
        group: None,
        umask: None,
        timeout: None,
        merge_stderr: false,
        bg: false,
        rstrip: true,
        cap: OUTPUT_CAP,
    })
    .await
}

/// Salt's `reset_system_locale` variables.
const LOCALE_VARS: [&str; 13] = [
    "LC_CTYPE",
    "LC_NUMERIC",
    "LC_TIME",
    "LC_COLLATE",
    "LC_MONETARY",
    "LC_MESSAGES",
    "LC_PAPER",
    "LC_NAME",
    "LC_ADDRESS",
    "LC_TELEPHONE",
    "LC_MEASUREMENT",
    "LC_IDENTIFICATION",
    "LANGUAGE",
];

async fn spawn_and_wait(spec: Spec) -> Result<RunOutput> {
    let mut command = match &spec.program {
        Program::Shell { shell, script } => {
            let mut c = Command::new(shell);
            c.arg("-c").args(script);
            c
        }
        Program::Argv(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    command.current_dir(&spec.cwd).env_clear().envs(&spec.env).process_group(0);
    install_identity(&mut command, spec.user.clone(), spec.group, spec.umask);

    if spec.bg {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = command.spawn().map_err(|e| spawn_error(&spec, &e))?;
        let pid = child.id().unwrap_or(0);
        // Reap it whenever it ends; nobody waits for a background command's result.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        return Ok(RunOutput { pid, retcode: None, stdout: String::new(), stderr: String::new(), timed_out: false });
    }

    command.stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let merged_reader = if spec.merge_stderr {
        let (read, write) = pipe().map_err(|e| spawn_error(&spec, &e))?;
        let write2 = write.try_clone().map_err(|e| spawn_error(&spec, &e))?;
        command.stdout(Stdio::from(write)).stderr(Stdio::from(write2));
        Some(read)
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    command.kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| spawn_error(&spec, &e))?;
    // The Command holds our copies of the merged pipe's write end; drop them so the reader
    // sees EOF when the command's side closes.
    drop(command);
    let pid = child.id().unwrap_or(0);
    let mut group = GroupKill { pgid: pid as libc::pid_t, armed: true };

    let stdout: Box<dyn AsyncRead + Unpin + Send> = match merged_reader {
        Some(fd) => Box::new(tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map_err(|e| spawn_error(&spec, &e))?),
        None => Box::new(child.stdout.take().expect("stdout is piped")),
    };
    let stderr: Option<Box<dyn AsyncRead + Unpin + Send>> = child.stderr.take().map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>);
    let stdin_pipe = child.stdin.take();
    let stdin_data = spec.stdin.clone();
    let cap = spec.cap;

    let io = async {
        let feed = async move {
            if let (Some(mut pipe), Some(data)) = (stdin_pipe, stdin_data) {
                // A command that does not read its input closes the pipe: not an error.
                let _ = pipe.write_all(&data).await;
            }
        };
        let err_read = async move {
            match stderr {
                Some(r) => read_capped(r, cap).await,
                None => (Vec::new(), false),
            }
        };
        let (_, out, err, status) = tokio::join!(feed, read_capped(stdout, cap), err_read, child.wait());
        (out, err, status)
    };

    let finished = match &spec.timeout {
        Some((limit, _)) => tokio::time::timeout(*limit, io).await.ok(),
        None => Some(io.await),
    };
    let Some((out, err, status)) = finished else {
        group.kill();
        let _ = child.wait().await;
        let (_, text) = spec.timeout.as_ref().expect("timed out without a timeout");
        return Ok(RunOutput {
            pid,
            retcode: Some(1),
            stdout: format!("{} : Timed out after {} seconds", spec.display, text),
            stderr: String::new(),
            timed_out: true,
        });
    };
    // Finished on its own: anything it deliberately left running in the background stays.
    group.armed = false;
    let status = status.map_err(|e| ModuleError::Exception(format!("OSError: {e}")))?;
    let code = status.code().or_else(|| status.signal().map(|s| -s)).unwrap_or(1);
    Ok(RunOutput {
        pid,
        retcode: Some(code),
        stdout: decode(out, spec.rstrip, cap),
        stderr: decode(err, spec.rstrip, cap),
        timed_out: false,
    })
}

/// SIGKILLs the command's process group unless disarmed: on timeout, and when the job's
/// future is dropped mid-run.
struct GroupKill {
    pgid: libc::pid_t,
    armed: bool,
}

impl GroupKill {
    fn kill(&mut self) {
        if self.armed && self.pgid > 0 {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        }
        self.armed = false;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Read up to `cap` bytes; past that keep draining (so the writer never blocks) and report
/// truncation.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

fn decode((bytes, truncated): (Vec<u8>, bool), rstrip: bool, cap: usize) -> String {
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if rstrip {
        text.truncate(text.trim_end().len());
    }
    if truncated {
        text.push_str(&format!("\n[output truncated: the command wrote more than {cap} bytes]"));
    }
    text
}

/// Salt's text for a command that could not be started (the Popen context without the
/// environment, which may hold secrets).
fn spawn_error(spec: &Spec, e: &std::io::Error) -> ModuleError {
    let shell = matches!(spec.program, Program::Shell { .. });
    let context = format!(
        "{{'cwd': {}, 'shell': {}, 'timeout': {}, 'bg': {}}}",
        py_repr(&Value::String(spec.cwd.clone())),
        if shell { "True" } else { "False" },
        spec.timeout.as_ref().map(|(_, t)| t.clone()).unwrap_or_else(|| "None".into()),
        if spec.bg { "True" } else { "False" },
    );
    let reason = match (e.raw_os_error(), &spec.program) {
        (Some(errno), Program::Argv(argv)) => {
            format!("[Errno {errno}] {}: {}", strerror(errno), py_repr(&Value::String(argv[0].clone())))
        }
        (Some(errno), Program::Shell { shell, .. }) => {
            format!("[Errno {errno}] {}: {}", strerror(errno), py_repr(&Value::String(shell.clone())))
        }
        (None, _) => e.to_string(),
    };
    ModuleError::CommandExecution(format!("Unable to run command '{}' with the context '{context}', reason: {reason}", spec.display))
}

fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Switch to the runas user / group and set the umask in the child before exec, as Salt's
/// `chugid_and_umask` does (primary group, supplementary groups via initgroups, then uid).
fn install_identity(command: &mut Command, user: Option<User>, group: Option<u32>, umask: Option<u32>) {
    if user.is_none() && group.is_none() && umask.is_none() {
        return;
    }
    let name = user.as_ref().and_then(|u| CString::new(u.name.clone()).ok());
    let ids = user.as_ref().map(|u| (u.uid, u.gid));
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe-in-practice libc functions on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if let Some(mask) = umask {
                libc::umask(mask as libc::mode_t);
            }
            if let (Some((uid, gid)), Some(name)) = (ids, name.as_ref()) {
                let gid = group.unwrap_or(gid);
                if libc::setgid(gid) != 0 || libc::initgroups(name.as_ptr(), gid as _) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if let Some(gid) = group {
                if libc::setgid(gid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A passwd entry.
#[derive(Debug, Clone)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn lookup_user(name: &str) -> Option<User> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: getpwnam_r gets a NUL-terminated name and passwd_entry's out-parameters.
    let entry = passwd_entry(|pwd, buf, len, result| unsafe { libc::getpwnam_r(c_name.as_ptr(), pwd, buf, len, result) })?;
    Some(User { name: name.to_string(), uid: entry.uid, gid: entry.gid, home: entry.home.unwrap_or_default() })
}

fn current_home() -> Option<String> {
    // SAFETY: getpwuid_r gets passwd_entry's out-parameters; getuid has no preconditions.
    passwd_entry(|pwd, buf, len, result| unsafe { libc::getpwuid_r(libc::getuid(), pwd, buf, len, result) })?.home
}

/// What we keep of a passwd entry.
struct PasswdEntry {
    uid: u32,
    gid: u32,
    /// `None` when the entry has no home directory.
    home: Option<String>,
}

/// Look up a passwd entry with one of the reentrant `getpw*_r` calls: `getpw_r` gets the
/// entry to fill, the buffer, its length and the result pointer, and returns the call's
/// result. What we need is copied out before the buffer goes.
fn passwd_entry(
    getpw_r: impl FnOnce(*mut libc::passwd, *mut libc::c_char, libc::size_t, *mut *mut libc::passwd) -> libc::c_int,
) -> Option<PasswdEntry> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter; getpw*_r fills it with pointers
    // into `buf`, which outlives every read below.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = getpw_r(&mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
    if rc != 0 || result.is_null() {
        return None;
    }
    let home = (!pwd.pw_dir.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) }.to_string_lossy().into_owned());
    Some(PasswdEntry { uid: pwd.pw_uid, gid: pwd.pw_gid, home })
}

fn lookup_group(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: as in passwd_entry, for group entries.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let rc = unsafe { libc::getgrnam_r(c_name.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(grp.gr_gid)
}

fn readable(path: &str) -> bool {
    CString::new(path).is_ok_and(|p| unsafe { libc::access(p.as_ptr(), libc::R_OK) } == 0)
}

fn is_executable_file(path: &str) -> bool {
    std::path::Path::new(path).is_file() && CString::new(path).is_ok_and(|p| unsafe { libc::access(p.as_ptr(), libc::X_OK) } == 0)
}

/// Salt's `_parse_env`: a dict, or a list of dicts merged; anything else is ignored. `None`
/// values become empty strings, other values `str()`.
fn parse_env(env: &Value) -> Vec<(String, String)> {
    let pairs: Vec<(&String, &Value)> = match env {
        Value::Object(map) => map.iter().collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_object).flat_map(|m| m.iter()).collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Null => {
                    tracing::error!("Environment variable '{k}' passed without a value. Setting value to an empty string");
                    String::new()
                }
                other => py_str(other),
            };
            (k.clone(), v)
        })
        .collect()
}

/// Salt's `_check_avail`: `cmd_blacklist_glob` denies, a non-empty `cmd_whitelist_glob`
/// must allow.
fn permitted(opts: &crate::Opts, cmd: &Value) -> bool {
    let text = match cmd {
        Value::Array(items) => items.iter().map(py_str).collect::<Vec<_>>().join(" "),
        other => py_str(other),
    };
    let globs = |key: &str| -> Vec<String> {
        match opts.get(key) {
            Some(Value::Array(a)) => a.iter().map(py_str).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let denied = globs("cmd_blacklist_glob").iter().any(|g| fnmatch(&text, g));
    let allow = globs("cmd_whitelist_glob");
    !denied && (allow.is_empty() || allow.iter().any(|g| fnmatch(&text, g)))
}

/// `success_retcodes`: a list or a comma-separated string of integers.
fn int_list(v: &Value) -> Result<Vec<i32>> {
    let bad = || ModuleError::Invocation("success_retcodes must be a list of integers".into());
    str_list(v).iter().map(|s| s.trim().parse::<i32>().map_err(|_| bad())).collect()
}

/// Salt's `split_input`: a list as is, a string split on commas, nothing for `None`.
fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(py_str).collect(),
        Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        other => vec![py_str(other)],
    }
}

/// POSIX-mode `shlex.split` with no comment characters, as Salt's `shlex_split`.
fn shlex_split(s: &str) -> std::result::Result<Vec<String>, &'static str> {
    #[derive(PartialEq)]
    enum State {
        Plain,
        Single,
        Double,
    }
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut state = State::Plain;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Plain => match c {
                ' ' | '\t' | '\r' | '\n' => {
                    if in_token {
                        tokens.push(std::mem::take(&mut cur));
                        in_token = false;
                    }
                }
                '\'' => {
                    state = State::Single;
                    in_token = true;
                }
                '"' => {
                    state = State::Double;
                    in_token = true;
                }
                '\\' => {
                    cur.push(chars.next().ok_or("No escaped character")?);
                    in_token = true;
                }
                c => {
                    cur.push(c);
                    in_token = true;
                }
            },
            State::Single => {
                if c == '\'' {
                    state = State::Plain;
                } else {
                    cur.push(c);
                }
            }
            State::Double => match c {
                '"' => state = State::Plain,
                '\\' => match chars.peek() {
                    Some(&n) if n == '"' || n == '\\' => {
                        cur.push(n);
                        chars.next();
                    }
                    Some(_) => cur.push('\\'),
                    None => return Err("No closing quotation"),
                },
                c => cur.push(c),
            },
        }
    }
    if state != State::Plain {
        return Err("No closing quotation");
    }
    if in_token {
        tokens.push(cur);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::{ctx_with, run};
    use serde_json::json;

    fn kw(v: Value) -> Value {
        let mut m = v.as_object().unwrap().clone();
        m.insert("__kwarg__".into(), json!(true));
        Value::Object(m)
    }

    #[test]
    fn shlex_like_python() {
        assert_eq!(shlex_split("echo 'a b' | cat").unwrap(), vec!["echo", "a b", "|", "cat"]);
        assert_eq!(shlex_split(r#"a "b \"c\" \d" e\ f ''"#).unwrap(), vec!["a", r#"b "c" \d"#, "e f", ""]);
        assert_eq!(shlex_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(shlex_split("'open").unwrap_err(), "No closing quotation");
        assert_eq!(shlex_split("x\\").unwrap_err(), "No escaped character");
    }

    #[test]
    fn black_and_white_lists() {
        let opts = json!({"cmd_blacklist_glob": ["rm *"], "cmd_whitelist_glob": ["ls *", "rm *"]});
        let opts = &crate::Opts::from(opts.as_object().unwrap().clone());
        assert!(permitted(opts, &json!("ls /")));
        assert!(!permitted(opts, &json!("rm -rf /")));
        assert!(!permitted(opts, &json!("cat /etc/shadow")));
        assert!(permitted(&crate::Opts::default(), &json!("anything")));
    }

    #[tokio::test]
    async fn run_merges_stderr_and_sets_retcode() {
        let out = run("cmd.run", json!(["echo out; echo err >&2; exit 4"])).await;
        assert_eq!((out.ret, out.retcode, out.success, out.out), (json!("out\nerr"), 4, false, None));
        let out = run("cmd.run", json!(["ls /"])).await;
        assert!(out.ret.as_str().unwrap().lines().any(|l| l == "tmp"));
        assert_eq!((out.retcode, out.success), (0, true));
    }

    #[tokio::test]
    async fn run_false_runs_the_word_false_like_salt() {
        if !std::path::Path::new("/bin/bash").exists() {
            saltrs_testkit::skip("/bin/bash is not present; install bash");
            return;
        }
        // The CLI YAML-loads 'false' to a boolean; Salt runs str(False).
        let out = run("cmd.run", json!([false])).await;
        assert_eq!(out.ret, json!("/bin/bash: line 1: False: command not found"));
        assert_eq!((out.retcode, out.success), (127, false));
    }

    #[tokio::test]
    async fn run_all_keeps_streams_apart() {
        let out = run("cmd.run_all", json!(["echo out; echo err >&2; exit 2"])).await;
        let r = out.ret.as_object().unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), vec!["pid", "retcode", "stdout", "stderr"]);
        assert_eq!((r["retcode"].clone(), r["stdout"].clone(), r["stderr"].clone()), (json!(2), json!("out"), json!("err")));
        assert!(r["pid"].as_u64().unwrap() > 0);
        assert_eq!(out.retcode, 2);
        let out = run("cmd.run_all", json!(["echo out; echo err >&2", kw(json!({"redirect_stderr": true}))])).await;
        assert_eq!((out.ret["stdout"].clone(), out.ret["stderr"].clone()), (json!("out\nerr"), json!("")));
    }

    #[tokio::test]
    async fn stdout_stderr_and_retcode_variants() {
        let out = run("cmd.run_stdout", json!(["echo out; echo err >&2"])).await;
        assert_eq!(out.ret, json!("out"));
        let out = run("cmd.run_stderr", json!(["echo out; echo err >&2"])).await;
        assert_eq!(out.ret, json!("err"));
        let out = run("cmd.retcode", json!(["exit 3"])).await;
        assert_eq!((out.ret, out.retcode, out.success), (json!(3), 3, false));
        let out = run("cmd.shell", json!(["echo a | tr a b"])).await;
        assert_eq!(out.ret, json!("b"));
    }

    #[tokio::test]
    async fn cwd_env_stdin_and_rstrip() {
        let out = run("cmd.run", json!(["pwd", "/tmp"])).await;
        assert_eq!(out.ret, json!("/tmp"));
        let out = run("cmd.run", json!(["echo $FOO-$LC_MESSAGES", kw(json!({"env": {"FOO": "bar", "N": 1}}))])).await;
        assert_eq!(out.ret, json!("bar-C"));
        let out = run(
            "cmd.run",
            json!(["echo $ONLY; echo ${HOME:-nohome}", kw(json!({"env": {"ONLY": "x"}, "clean_env": true, "reset_system_locale": false}))]),
        )
        .await;
        assert_eq!(out.ret, json!("x\nnohome"));
        let out = run("cmd.run", json!(["cat", kw(json!({"stdin": "one\\ntwo"}))])).await;
        assert_eq!(out.ret, json!("one\ntwo"));
        let out = run("cmd.run", json!(["printf 'a  \\n\\n'", kw(json!({"rstrip": false}))])).await;
        assert_eq!(out.ret, json!("a  \n\n"));
        let out = run("cmd.run", json!(["echo x", kw(json!({"prepend_path": "/opt/zz"}))])).await;
        assert_eq!(out.ret, json!("x"));
        let out = run("cmd.run", json!(["echo $PATH", kw(json!({"prepend_path": "/opt/zz"}))])).await;
        assert!(out.ret.as_str().unwrap().starts_with("/opt/zz:"));
    }

    #[tokio::test]
    async fn python_shell_false_does_not_use_a_shell() {
        let out = run("cmd.run", json!(["echo 'a b' | cat", kw(json!({"python_shell": false}))])).await;
        assert_eq!(out.ret, json!("a b | cat"));
        let out = run("cmd.run", json!(["no-such-binary-xyz", kw(json!({"python_shell": false}))])).await;
        assert_eq!(out.retcode, 1);
        let text = out.ret.as_str().unwrap();
        assert!(text.starts_with("ERROR: Unable to run command '['no-such-binary-xyz']' with the context '"), "{text}");
        assert!(text.ends_with("reason: [Errno 2] No such file or directory: 'no-such-binary-xyz'"), "{text}");
    }

    #[tokio::test]
    async fn option_errors_use_salts_texts() {
        let out = run("cmd.run", json!(["ls", "/no/such/dir"])).await;
        assert_eq!(out.ret, json!("ERROR: Specified cwd '/no/such/dir' either not absolute or does not exist"));
        assert_eq!((out.retcode, out.out.as_deref()), (1, Some("nested")));
        let out = run("cmd.run", json!(["ls", "relative"])).await;
        assert_eq!(out.ret, json!("ERROR: Specified cwd 'relative' either not absolute or does not exist"));
        let out = run("cmd.run", json!(["id", kw(json!({"runas": "no-such-user-xyz"}))])).await;
        assert_eq!(out.ret, json!("ERROR: User 'no-such-user-xyz' is not available"));
        let out = run("cmd.run", json!(["id", kw(json!({"shell": "/no/shell"}))])).await;
        assert_eq!(out.ret, json!("ERROR: The shell /no/shell is not available"));
        let out = run("cmd.run", json!(["id", kw(json!({"umask": "0"}))])).await;
        assert_eq!(out.ret, json!("ERROR: Zero umask is not allowed."));
        let out = run("cmd.run", json!(["id", kw(json!({"umask": "9z"}))])).await;
        assert_eq!(out.ret, json!("ERROR: Invalid umask: '9z'"));
        let out = run("cmd.run", json!(["id", kw(json!({"template": "jinja"}))])).await;
        assert_eq!(out.ret, json!("ERROR: Attempted to render file paths with unavailable engine jinja"));
        let out = run("cmd.run", json!(["id", kw(json!({"success_retcodes": "a"}))])).await;
        assert_eq!(out.ret, json!("ERROR executing 'cmd.run': success_retcodes must be a list of integers"));
        let out = run("cmd.run", json!([])).await;
        assert!(out
            .ret
            .as_str()
            .unwrap()
            .starts_with("Passed invalid arguments to cmd.run: run() missing 1 required positional argument: 'cmd'\n"));
    }

    #[tokio::test]
    async fn retcode_options() {
        let out = run("cmd.run", json!(["exit 3", kw(json!({"success_retcodes": [3]}))])).await;
        assert_eq!((out.retcode, out.success), (0, true));
        let out = run("cmd.run_all", json!(["echo fine; exit 5", kw(json!({"success_stdout": "fine"}))])).await;
        assert_eq!((out.ret["retcode"].clone(), out.retcode), (json!(0), 0));
        let out = run("cmd.run", json!(["exit 3", kw(json!({"ignore_retcode": true}))])).await;
        assert_eq!((out.retcode, out.success), (0, true));
        let out = run("cmd.run", json!(["echo bad; exit 3", kw(json!({"raise_err": true}))])).await;
        assert_eq!(out.ret, json!("ERROR: bad"));
        let out = run("cmd.run", json!(["echo secret", kw(json!({"hide_output": true}))])).await;
        assert_eq!(out.ret, json!(""));
    }

    #[tokio::test]
    async fn blacklisted_command_is_refused() {
        let opts = json!({"cmd_blacklist_glob": ["rm *"]}).as_object().unwrap().clone();
        let ctx = ctx_with(Registry::builtin(), opts);
        let out = ctx.registry.clone().execute(ctx, "cmd.run", &[json!("rm -rf /nothing")]).await;
        assert_eq!(out.ret, json!("ERROR: The shell command \"rm -rf /nothing\" is not permitted"));
    }

    /// Processes whose command line contains `marker`.
    fn processes_with(marker: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.chars().all(|c| c.is_ascii_digit()) || name == std::process::id().to_string() {
                continue;
            }
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(marker) {
                    found.push(format!("{name}: {cmdline}"));
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_tree() {
        let marker = "100.4242";
        let started = std::time::Instant::now();
        let cmd = format!("sleep {marker}; echo x");
        let out = run("cmd.run_all", json!([cmd, kw(json!({"timeout": 1}))])).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let r = out.ret.as_object().unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), vec!["stdout", "stderr", "retcode", "pid"]);
        assert_eq!(r["stdout"], json!(format!("{cmd} : Timed out after 1 seconds")));
        assert_eq!((r["stderr"].clone(), r["retcode"].clone()), (json!(""), json!(1)));
        assert_eq!((out.retcode, out.success), (1, false));
        // SIGKILL is synchronous for the group, but give /proc a moment to settle.
        let mut left = processes_with(marker);
        for _ in 0..20 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = processes_with(marker);
        }
        assert!(left.is_empty(), "left behind: {left:?}");

        let out = run("cmd.run", json!(["sleep 5", kw(json!({"timeout": 0.2}))])).await;
        assert_eq!(out.ret, json!("sleep 5 : Timed out after 0.2 seconds"));
    }

    #[tokio::test]
    async fn aborting_the_job_kills_the_process_group() {
        let marker = "100.5353";
        let ctx = crate::registry::tests::ctx();
        let reg = ctx.registry.clone();
        let job = tokio::spawn(async move { reg.execute(ctx, "cmd.run", &[json!(format!("sleep {marker}; echo x"))]).await });
        for _ in 0..50 {
            if !processes_with(marker).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!processes_with(marker).is_empty(), "command never started");
        job.abort();
        let _ = job.await;
        let mut left = processes_with(marker);
        for _ in 0..40 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = processes_with(marker);
        }
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[tokio::test]
    async fn runas_nobody() {
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            saltrs_testkit::skip("the runas test needs root; run the tests as root");
            return;
        }
        let out =
            run("cmd.run", json!(["id -un; pwd; echo $HOME $USER; touch /root/.salt-rs-runas-probe", kw(json!({"runas": "nobody"}))]))
                .await;
        let text = out.ret.as_str().unwrap().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "nobody");
        let home = lookup_user("nobody").unwrap().home;
        // nobody's home (/nonexistent) is unreadable, so Salt falls back to /.
        assert_eq!(lines[1], if readable(&home) { home.as_str() } else { "/" });
        assert_eq!(lines[2], format!("{home} nobody"));
        assert!(lines[3].contains("Permission denied"), "{text}");
        assert_ne!(out.retcode, 0);
    }

    #[tokio::test]
    async fn umask_applies() {
        let out = run("cmd.run", json!(["umask", kw(json!({"umask": "027"}))])).await;
        assert_eq!(out.ret, json!("0027"));
    }

    #[tokio::test]
    async fn background_run_returns_at_once() {
        let started = std::time::Instant::now();
        let out = run("cmd.run_all", json!(["sleep 3", kw(json!({"bg": true}))])).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!((out.ret["retcode"].clone(), out.ret["stdout"].clone()), (Value::Null, json!("")));
        assert_eq!(out.retcode, 0);
        let pid = out.ret["pid"].as_i64().unwrap() as libc::pid_t;
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    #[tokio::test]
    async fn output_is_capped() {
        let mut spec_env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        spec_env.insert("X".into(), "1".into());
        let out = spawn_and_wait(Spec {
            program: Program::Shell { shell: default_shell(), script: vec!["head -c 100000 /dev/zero | tr '\\0' a".into()] },
            display: "x".into(),
            cwd: "/".into(),
            env: spec_env,
            stdin: None,
            user: None,
            group: None,
            umask: None,
            timeout: None,
            merge_stderr: true,
            bg: false,
            rstrip: true,
            cap: 10,
        })
        .await
        .unwrap();
        assert_eq!(out.stdout, "aaaaaaaaaa\n[output truncated: the command wrote more than 10 bytes]");
        assert_eq!(out.retcode, Some(0));
    }

    #[tokio::test]
    async fn invalid_utf8_is_replaced() {
        let out = run("cmd.run", json!(["printf 'a\\377b'"])).await;
        assert_eq!(out.ret, json!("a\u{FFFD}b"));
    }

    #[tokio::test]
    async fn run_argv_for_other_modules() {
        let out =
            run_argv(&["sh".into(), "-c".into(), "echo $LC_MESSAGES-$Z; echo e >&2".into()], &[("Z".into(), "z".into())]).await.unwrap();
        assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.retcode), ("C-z", "e", Some(0)));
    }
}
