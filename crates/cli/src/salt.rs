//! `salt`: publish a job through the master's local socket, wait for the returns as Salt's CLI
//! does, print them with an outputter, and exit with Salt's codes.
//!
//! The wait: returns stream in as events. After `timeout` seconds, the minions that have not
//! returned are asked `saltutil.find_job <jid>`; those still running keep the CLI waiting,
//! the others are reported as not returned. Minions that were not connected when the job was
//! published cannot return, so they are reported at once as `[Not connected]`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use salt_config::{Config, Role};
use salt_output::Outputter;
use salt_proto::frame::{read_frame, write_frame, FrameError};
use salt_proto::message::{ClientReply, ClientRequest, PublishRequest};
use serde_json::{json, Map, Value};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::output::{OutputFlags, Printer};

#[derive(Parser, Debug)]
#[command(name = "salt", disable_version_flag = true, about = "Publish commands to the minions and print what they return.")]
struct Flags {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Seconds to wait for the minions before asking whether they are still running.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Seconds to wait for the answers to that question (gather_job_timeout).
    #[arg(long = "gather-job-timeout")]
    gather_job_timeout: Option<u64>,
    /// The target is a comma-separated list of minion ids.
    #[arg(short = 'L', long = "list")]
    list: bool,
    /// The target is a Perl-compatible regular expression.
    #[arg(short = 'E', long = "pcre")]
    pcre: bool,
    /// The target is a grain value, `key:glob`.
    #[arg(short = 'G', long = "grain")]
    grain: bool,
    /// The target is a grain value, `key:regex`.
    #[arg(short = 'P', long = "grain-pcre")]
    grain_pcre: bool,
    /// The target is a compound expression (`G@os:Debian and web*`).
    #[arg(short = 'C', long = "compound")]
    compound: bool,
    /// Delimiter for nested grain keys.
    #[arg(long = "delimiter", default_value = ":")]
    delimiter: String,
    /// Print the jid and a separator line before the returns.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print the jid.
    #[arg(long = "show-jid")]
    show_jid: bool,
    /// Do not list the minions that did not return.
    #[arg(long = "hide-timeout")]
    hide_timeout: bool,
    /// Print the jid and exit without waiting for returns.
    #[arg(long = "async")]
    run_async: bool,
    /// Print all returns at once, when every minion has answered.
    #[arg(short = 's', long = "static")]
    static_output: bool,
    /// Run on this many minions at a time (`-b 10`), or this share of the targets (`-b 25%`),
    /// all under one jid.
    #[arg(short = 'b', long = "batch-size", visible_alias = "batch")]
    batch: Option<String>,
    /// Seconds to wait after a minion of a batch returns before its place is given to the next.
    #[arg(long = "batch-wait", default_value_t = 0.0)]
    batch_wait: f64,
    /// Run the job as a batch if it targets at least this many minions (`batch_safe_limit`).
    #[arg(long = "batch-safe-limit")]
    batch_safe_limit: Option<u64>,
    /// The batch size for a job that --batch-safe-limit turns into a batch (`batch_safe_size`, 8).
    #[arg(long = "batch-safe-size")]
    batch_safe_size: Option<String>,
    /// Returners the minions hand their results to (comma-separated).
    #[arg(long = "return")]
    returner: Option<String>,
    /// Alternative returner configuration name (`alternative.mysql.*`).
    #[arg(long = "return_config", visible_alias = "return-config")]
    return_config: Option<String>,
    /// Returner options as a dict, overriding the configuration.
    #[arg(long = "return_kwargs", visible_alias = "return-kwargs")]
    return_kwargs: Option<String>,
    /// Metadata stored with the job, as YAML/JSON.
    #[arg(long = "metadata")]
    metadata: Option<String>,
    /// Console logging level.
    #[arg(short = 'l', long = "log-level", default_value = "warning")]
    log_level: String,
    #[command(flatten)]
    output: OutputFlags,
    /// Show the program's version number and exit.
    #[arg(long = "version")]
    version: bool,
    /// The target, the function, then its arguments.
    #[arg(allow_hyphen_values = false, allow_negative_numbers = true)]
    words: Vec<String>,
}

/// Salt's texts.
pub(crate) const NO_MINIONS: &str = "No minions matched the target. No command was sent, no jid was assigned.";
const NOT_CONNECTED: &str = "Minion did not return. [Not connected]";
pub(crate) const MASTER_DOWN: &str = "Failed to connect to the Master, is the Salt Master running?";

fn no_response(jid: &str) -> String {
    format!("Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}")
}

/// What Salt 3008 prints on Ctrl-C during the wait (`salt/scripts.py` `_handle_signals`): the
/// notice first, then the jid and the hint.
pub(crate) fn ctrl_c_text(jid: &str) -> String {
    format!("\nExiting gracefully on Ctrl-c\nThis job's jid is: {jid}\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}")
}

pub fn main(argv: Vec<String>) -> i32 {
    let flags = match crate::common::parse_or_version("salt", argv, |f: &Flags| f.version) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if flags.words.len() < 2 {
        eprintln!("Usage: salt [options] '<target>' <function> [arguments]\n\nsalt: error: Invalid arguments: a target and a function are required");
        return 2;
    }
    let config = match crate::common::setup("salt", &flags.log_level, Role::Master, &flags.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let printer = match crate::common::printer("salt", flags.output.clone()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let runtime = match crate::common::runtime("salt", false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let batch_size = match &flags.batch {
        Some(size) => Some(size.clone()),
        None if flags.run_async => None,
        None => runtime.block_on(safe_limit_batch(&flags, &config)),
    };
    if let Some(size) = batch_size {
        let batch = match crate::batch::Options::new(&size, flags.batch_wait, flags.run_async) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        };
        let request = match build_request(&flags) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("salt: error: {e}");
                return 2;
            }
        };
        let (timeout, gather) = waits(&flags, &config);
        let options = crate::batch::Run { batch, timeout, gather, static_output: flags.static_output };
        return runtime.block_on(crate::batch::run(request, options, &config, printer));
    }
    runtime.block_on(run(flags, config, printer))
}

/// Salt's `batch_safe_limit`: a job that would reach at least that many minions runs as a batch
/// of `batch_safe_size` instead, and says so. Returns that size, if so.
async fn safe_limit_batch(flags: &Flags, config: &Config) -> Option<String> {
    let limit = flags.batch_safe_limit.or_else(|| config.u64("batch_safe_limit")).unwrap_or(0);
    if limit <= 1 {
        return None;
    }
    let targets = crate::batch::count_targets(build_request(flags).ok()?, config).await?;
    if (targets as u64) < limit {
        return None;
    }
    println!("\nNOTICE: Too many minions targeted, switching to batch execution.");
    let size = flags
        .batch_safe_size
        .clone()
        .or_else(|| config.get("batch_safe_size").map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)));
    Some(size.unwrap_or_else(|| "8".into()))
}

/// `timeout` and `gather_job_timeout`: the flags, else the config, else Salt's defaults.
fn waits(flags: &Flags, config: &Config) -> (Duration, Duration) {
    let timeout = Duration::from_secs(flags.timeout.or_else(|| config.u64("timeout")).unwrap_or(5));
    let gather = Duration::from_secs(flags.gather_job_timeout.or_else(|| config.u64("gather_job_timeout")).unwrap_or(10));
    (timeout, gather)
}

fn build_request(flags: &Flags) -> Result<PublishRequest, String> {
    let tgt_word = &flags.words[0];
    let fun = flags.words[1].clone();
    let (tgt, tgt_type) = if flags.list {
        (json!(tgt_word.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>()), "list")
    } else if flags.pcre {
        (json!(tgt_word), "pcre")
    } else if flags.grain {
        (json!(tgt_word), "grain")
    } else if flags.grain_pcre {
        (json!(tgt_word), "grain_pcre")
    } else if flags.compound {
        (json!(tgt_word), "compound")
    } else {
        (json!(tgt_word), "glob")
    };
    let arg = salt_config::args::parse_input(&flags.words[2..]);
    let mut kwargs = Map::new();
    kwargs.insert("show_timeout".into(), (!flags.hide_timeout).into());
    kwargs.insert("show_jid".into(), flags.show_jid.into());
    kwargs.insert("delimiter".into(), flags.delimiter.clone().into());
    if let Some(rc) = &flags.return_config {
        kwargs.insert("ret_config".into(), rc.clone().into());
    }
    if let Some(rk) = &flags.return_kwargs {
        let parsed = salt_config::args::parse_input(std::slice::from_ref(rk));
        match parsed.into_iter().next() {
            Some(Value::Object(m)) => kwargs.insert("ret_kwargs".into(), Value::Object(m)),
            _ => return Err(format!("--return_kwargs must be a dict, got {rk:?}")),
        };
    }
    if let Some(md) = &flags.metadata {
        if let Some(v) = salt_config::args::parse_input(std::slice::from_ref(md)).into_iter().next() {
            kwargs.insert("metadata".into(), v);
        }
    }
    Ok(PublishRequest { tgt, tgt_type: tgt_type.into(), fun, arg, ret: flags.returner.clone().unwrap_or_default(), kwargs })
}

/// One return as the CLI shows it.
pub(crate) struct Shown {
    pub ret: Value,
    pub retcode: i64,
    pub out: Option<String>,
}

async fn run(flags: Flags, config: Config, mut printer: Printer) -> i32 {
    let request = match build_request(&flags) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("salt: error: {e}");
            return 2;
        }
    };
    let socket = salt_master::control_socket_path(&config);
    let stream = match UnixStream::connect(&socket).await {
        Ok(s) => s,
        Err(_) => {
            eprintln!("{MASTER_DOWN}");
            return 2;
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let max = salt_proto::frame::DEFAULT_MAX_FRAME;
    if write_frame(&mut writer, &ClientRequest::Publish(request), max).await.is_err() {
        eprintln!("{MASTER_DOWN}");
        return 2;
    }

    // Until the publish is answered, only errors are possible.
    let (jid, minions, missing, not_connected) = match read_frame::<ClientReply, _>(&mut reader, max).await {
        Ok(ClientReply::Published { jid, minions, missing, not_connected }) => (jid, minions, missing, not_connected),
        Ok(ClientReply::NoMinions { .. }) => {
            // Salt's CLI then renders the empty result it got: nothing with `nested`, `{}` with json.
            println!("{NO_MINIONS}");
            let out = printer.outputter(None, Outputter::Nested);
            printer.print(out, &Value::Object(Map::new()), 0);
            eprintln!("ERROR: No return received");
            return 2;
        }
        Ok(ClientReply::Refused { reason }) => {
            eprintln!("{reason}");
            return 2;
        }
        Ok(ClientReply::Error { message }) => {
            eprintln!("ERROR: {message}");
            return 2;
        }
        Ok(ClientReply::Event { .. } | ClientReply::RunnerReturn { .. }) | Err(_) => {
            eprintln!("{MASTER_DOWN}");
            return 2;
        }
    };

    if flags.run_async {
        println!("Executed command with job ID: {jid}");
        return 0;
    }
    // Registered before the jid is shown, so that a Ctrl-C from then on always gets Salt's text
    // (tokio's `ctrl_c()` would register only when first polled, inside the wait).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    if flags.verbose {
        let line = format!("Executing job with jid {jid}");
        printer.write(&format!("{line}\n{}\n\n", "-".repeat(line.len())));
    }
    if flags.show_jid {
        printer.write(&format!("jid: {jid}\n"));
    }

    let (timeout, gather) = waits(&flags, &config);
    let show_missing = flags.verbose || !flags.hide_timeout;

    // Frames are read by a task of their own: a read cut off by the select below (the progress
    // tick, a deadline) would drop the part of a large frame already read, and lose the stream.
    let mut frames = read_frames(reader, max);
    let mut wait = Wait::new(&jid, &minions, &not_connected, timeout, gather);
    let mut results: Vec<(String, Shown)> = Vec::new();
    let mut progress = Progress::new(minions.len() - not_connected.len());
    let mut tick = tokio::time::interval(Duration::from_millis(250));

    while !wait.done() {
        let deadline = wait.deadline();
        tokio::select! {
            _ = tick.tick() => progress.show(results.len()),
            _ = interrupted(&mut interrupt) => {
                eprintln!("{}", ctrl_c_text(&jid));
                return 1;
            }
            frame = frames.recv() => match frame {
                Some(Ok(ClientReply::Event { tag, data })) => {
                    if let Some((id, shown)) = wait.on_event(&tag, data) {
                        progress.clear();
                        if !flags.static_output {
                            print_one(&mut printer, &id, &shown);
                        }
                        results.push((id, shown));
                    }
                }
                Some(Ok(ClientReply::Published { jid: poll_jid, .. })) => wait.on_poll_published(poll_jid),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    eprintln!("ERROR: the connection to the master was lost while waiting for job {jid}");
                    break;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                if let Some(ask) = wait.on_deadline() {
                    let poll = PublishRequest {
                        tgt: json!(ask),
                        tgt_type: "list".into(),
                        fun: "saltutil.find_job".into(),
                        arg: vec![json!(jid)],
                        ret: String::new(),
                        kwargs: Map::new(),
                    };
                    if send(&mut writer, poll).await.is_err() {
                        break;
                    }
                }
            }
        }
    }

    progress.clear();
    if show_missing {
        for id in wait.missing() {
            let text = if wait.was_not_connected(&id) { NOT_CONNECTED.to_string() } else { no_response(&jid) };
            let shown = Shown { ret: Value::String(text), retcode: 1, out: Some("no_return".into()) };
            if !flags.static_output {
                print_one(&mut printer, &id, &shown);
            }
            results.push((id, shown));
        }
    }
    // Ids a list target named that have no accepted key (Salt's `missing`) can never return; they
    // are not waited for. As in Salt 3008, they come last, as minions that did not respond, even
    // with --hide-timeout, and count as retcode 1; Salt's --static output leaves them out.
    if !flags.static_output && !missing.is_empty() {
        let targeted: std::collections::HashSet<&String> = minions.iter().collect();
        for id in missing.iter().filter(|id| !targeted.contains(id)) {
            let shown = Shown { ret: Value::String(no_response(&jid)), retcode: 1, out: Some("no_return".into()) };
            print_one(&mut printer, id, &shown);
            results.push((id.clone(), shown));
        }
    }
    if flags.static_output && !results.is_empty() {
        let all: Map<String, Value> = results.iter().map(|(id, s)| (id.clone(), s.ret.clone())).collect();
        let out = printer.outputter(results.iter().find_map(|(_, s)| s.out.as_deref()), Outputter::Nested);
        printer.print(out, &Value::Object(all), results.iter().map(|(_, s)| s.retcode).max().unwrap_or(0));
    }

    if results.is_empty() {
        eprintln!("ERROR: No return received");
        2
    } else if results.iter().any(|(_, s)| s.retcode != 0) {
        eprintln!("ERROR: Minions returned with non-zero exit code");
        1
    } else {
        0
    }
}

/// Resolves at the next SIGINT; never, if the handler could not be installed.
pub(crate) async fn interrupted(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

pub(crate) async fn send(writer: &mut OwnedWriteHalf, req: PublishRequest) -> Result<(), ()> {
    write_frame(writer, &ClientRequest::Publish(req), salt_proto::frame::DEFAULT_MAX_FRAME).await.map_err(|_| ())
}

fn print_one(printer: &mut Printer, id: &str, shown: &Shown) {
    let out = printer.outputter(shown.out.as_deref(), Outputter::Nested);
    let mut one = Map::new();
    one.insert(id.to_string(), shown.ret.clone());
    printer.print(out, &Value::Object(one), shown.retcode);
}

/// "returned / expected" on the terminal while a wait lasts more than a second; never when
/// stdout or stderr is not a terminal.
pub(crate) struct Progress {
    expected: usize,
    started: Instant,
    enabled: bool,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(expected: usize) -> Progress {
        // SAFETY: isatty has no preconditions.
        let enabled = unsafe { libc::isatty(1) == 1 && libc::isatty(2) == 1 };
        Progress { expected, started: Instant::now(), enabled, shown: false }
    }

    pub(crate) fn show(&mut self, returned: usize) {
        if self.enabled && self.started.elapsed() >= Duration::from_secs(1) {
            eprint!("\r\x1b[K[{returned}/{} minions returned, {}s]", self.expected, self.started.elapsed().as_secs());
            self.shown = true;
        }
    }

    pub(crate) fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

/// Salt's CLI wait, as a state machine driven by events and deadlines.
pub(crate) struct Wait {
    jid: String,
    /// Connected targets that have not returned yet.
    pending: BTreeSet<String>,
    not_connected: BTreeSet<String>,
    /// Minions given up on (no answer to find_job, or not running any more).
    given_up: BTreeSet<String>,
    timeout: Duration,
    gather: Duration,
    deadline: Instant,
    /// The find_job poll in flight: its jid (once the master answered) and who said "running".
    poll: Option<Poll>,
}

struct Poll {
    jid: Option<String>,
    asked: BTreeSet<String>,
    running: BTreeSet<String>,
}

/// Reads the master's replies into a channel until the connection ends (its error is the last
/// item), so that waiting for the next one is cancel-safe.
pub(crate) fn read_frames(
    mut reader: tokio::net::unix::OwnedReadHalf,
    max: usize,
) -> tokio::sync::mpsc::Receiver<Result<ClientReply, FrameError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let frame = read_frame::<ClientReply, _>(&mut reader, max).await;
            let end = frame.is_err();
            if tx.send(frame).await.is_err() || end {
                break;
            }
        }
    });
    rx
}

impl Wait {
    pub(crate) fn new(jid: &str, minions: &[String], not_connected: &[String], timeout: Duration, gather: Duration) -> Wait {
        let not_connected: BTreeSet<String> = not_connected.iter().cloned().collect();
        let pending = minions.iter().filter(|m| !not_connected.contains(*m)).cloned().collect();
        Wait {
            jid: jid.to_string(),
            pending,
            not_connected,
            given_up: BTreeSet::new(),
            timeout,
            gather,
            deadline: Instant::now() + timeout,
            poll: None,
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.pending.is_empty()
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    fn was_not_connected(&self, id: &str) -> bool {
        self.not_connected.contains(id)
    }

    /// The master said these had no connection when the job was sent: no return will come.
    pub(crate) fn mark_not_connected(&mut self, ids: &[String]) {
        for id in ids {
            if self.pending.remove(id) {
                self.not_connected.insert(id.clone());
            }
        }
    }

    /// Minions that never returned, in id order.
    pub(crate) fn missing(&self) -> Vec<String> {
        let mut all: Vec<String> = self.not_connected.iter().chain(self.given_up.iter()).chain(self.pending.iter()).cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    pub(crate) fn on_poll_published(&mut self, poll_jid: String) {
        if let Some(p) = &mut self.poll {
            p.jid = Some(poll_jid);
        }
    }

    /// A return for our job is shown; a find_job answer updates who is still running.
    pub(crate) fn on_event(&mut self, tag: &str, data: Value) -> Option<(String, Shown)> {
        let mut parts = tag.splitn(5, '/');
        let (Some("salt"), Some("job"), Some(jid), Some("ret"), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if jid == self.jid {
            if !self.pending.remove(id) && !self.given_up.remove(id) && !self.not_connected.remove(id) {
                return None; // a duplicate, or a minion we did not target
            }
            let retcode = data.get("retcode").and_then(Value::as_i64).unwrap_or(0);
            let out = data.get("out").and_then(Value::as_str).map(str::to_string);
            let ret = data.get("return").cloned().unwrap_or(Value::Null);
            return Some((id.to_string(), Shown { ret, retcode, out }));
        }
        if let Some(p) = &mut self.poll {
            if p.jid.as_deref() == Some(jid) {
                let running = matches!(data.get("return"), Some(Value::Object(m)) if !m.is_empty());
                if running {
                    p.running.insert(id.to_string());
                }
            }
        }
        None
    }

    /// Called when the deadline passes: returns the minions to ask `find_job`, if any.
    pub(crate) fn on_deadline(&mut self) -> Option<Vec<String>> {
        match self.poll.take() {
            None => {
                // `timeout` passed: ask the silent ones whether they are still at it.
                let ask: BTreeSet<String> = self.pending.clone();
                self.deadline = Instant::now() + self.gather;
                self.poll = Some(Poll { jid: None, asked: ask.clone(), running: BTreeSet::new() });
                Some(ask.into_iter().collect())
            }
            Some(poll) => {
                // The poll's time is up: keep waiting for the running ones only.
                for id in poll.asked.difference(&poll.running) {
                    if self.pending.remove(id) {
                        self.given_up.insert(id.clone());
                    }
                }
                self.deadline = Instant::now() + self.timeout;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_gives_up_on_silent_minions_and_keeps_running_ones() {
        let mut w = Wait::new("1", &["a".into(), "b".into(), "c".into()], &["c".into()], Duration::from_secs(5), Duration::from_secs(10));
        assert!(!w.done());
        let ask = w.on_deadline().unwrap();
        assert_eq!(ask, vec!["a".to_string(), "b".to_string()]);
        w.on_poll_published("2".into());
        w.on_event("salt/job/2/ret/a", json!({"return": {"jid": "1", "pid": 7}}));
        w.on_event("salt/job/2/ret/b", json!({"return": {}}));
        assert!(w.on_deadline().is_none());
        assert_eq!(w.pending.iter().cloned().collect::<Vec<_>>(), vec!["a".to_string()]);
        let (id, shown) = w.on_event("salt/job/1/ret/a", json!({"return": true, "retcode": 0})).unwrap();
        assert_eq!((id.as_str(), shown.retcode), ("a", 0));
        assert!(w.done());
        assert_eq!(w.missing(), vec!["b".to_string(), "c".to_string()]);
        assert!(w.was_not_connected("c") && !w.was_not_connected("b"));
    }
}
