//! `salt-run`: run a runner on the master (`jobs.list_jobs`, `manage.up`, ...) and print its
//! result; `salt-run state.event` streams the master's events.

use std::path::PathBuf;

use clap::Parser;
use salt_config::Role;
use salt_output::Outputter;
use salt_proto::frame::{read_frame, write_frame, DEFAULT_MAX_FRAME};
use salt_proto::message::{ClientReply, ClientRequest, RunnerRequest};
use serde_json::Value;
use tokio::net::UnixStream;

use crate::output::{OutputFlags, Printer};

#[derive(Parser, Debug)]
#[command(name = "salt-run", disable_version_flag = true, about = "Run a runner on the master.")]
struct Flags {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Console logging level.
    #[arg(short = 'l', long = "log-level", default_value = "warning")]
    log_level: String,
    #[command(flatten)]
    output: OutputFlags,
    /// Show the program's version number and exit.
    #[arg(long = "version")]
    version: bool,
    /// The runner, then its arguments.
    #[arg(allow_negative_numbers = true)]
    words: Vec<String>,
}

const MASTER_DOWN: &str = "Failed to connect to the Master, is the Salt Master running?";

pub fn main(argv: Vec<String>) -> i32 {
    let flags = match crate::common::parse_or_version("salt-run", argv, |f: &Flags| f.version) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let Some(fun) = flags.words.first().cloned() else {
        eprintln!("Usage: salt-run [options] <function> [arguments]\n\nsalt-run: error: Invalid arguments: a runner function is required");
        return 2;
    };
    let config = match crate::common::setup("salt-run", &flags.log_level, Role::Master, &flags.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let printer = match crate::common::printer("salt-run", flags.output.clone()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let arg = salt_config::args::parse_input(&flags.words[1..]);
    let runtime = match crate::common::runtime("salt-run", false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let Ok(stream) = UnixStream::connect(salt_master::control_socket_path(&config)).await else {
            eprintln!("{MASTER_DOWN}");
            return 2;
        };
        if fun == "state.event" {
            stream_events(stream, arg).await
        } else {
            run_runner(stream, fun, arg, printer).await
        }
    })
}

async fn run_runner(stream: UnixStream, fun: String, arg: Vec<Value>, mut printer: Printer) -> i32 {
    let (mut reader, mut writer) = stream.into_split();
    if write_frame(&mut writer, &ClientRequest::Runner(RunnerRequest { fun, arg }), DEFAULT_MAX_FRAME).await.is_err() {
        eprintln!("{MASTER_DOWN}");
        return 2;
    }
    loop {
        match read_frame::<ClientReply, _>(&mut reader, DEFAULT_MAX_FRAME).await {
            Ok(ClientReply::RunnerReturn { data, outputter, retcode, .. }) => {
                let out = printer.outputter(outputter.as_deref(), Outputter::Nested);
                let text = salt_output::render(out, &data, &printer.options());
                // As Salt's display_output: an empty rendering prints nothing at all.
                if !text.is_empty() {
                    printer.write(&text);
                }
                return retcode;
            }
            Ok(ClientReply::Refused { reason }) | Ok(ClientReply::Error { message: reason }) => {
                eprintln!("{reason}");
                return 2;
            }
            Ok(_) => continue,
            Err(_) => {
                eprintln!("{MASTER_DOWN}");
                return 2;
            }
        }
    }
}

/// `state.event [tagmatch='*'] [count=-1] [pretty=False]`: `tag<TAB>json` per event, as Salt.
async fn stream_events(stream: UnixStream, arg: Vec<Value>) -> i32 {
    let (positional, kwargs) = salt_config::args::split_kwargs(&arg);
    let get = |name: &str, pos: usize| kwargs.get(name).cloned().or_else(|| positional.get(pos).cloned());
    let tagmatch = get("tagmatch", 0).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "*".into());
    let mut count = get("count", 1).and_then(|v| v.as_i64()).unwrap_or(-1);
    let pretty = get("pretty", 3).and_then(|v| v.as_bool()).unwrap_or(false);
    let (mut reader, mut writer) = stream.into_split();
    if write_frame(&mut writer, &ClientRequest::Events { tagmatch }, DEFAULT_MAX_FRAME).await.is_err() {
        eprintln!("{MASTER_DOWN}");
        return 2;
    }
    loop {
        match read_frame::<ClientReply, _>(&mut reader, DEFAULT_MAX_FRAME).await {
            Ok(ClientReply::Event { tag, data }) => {
                let json = if pretty { salt_output::json_dumps(&data, Some(4), true) } else { salt_output::json_dumps(&data, None, false) };
                println!("{tag}\t{json}");
                if count > 0 {
                    count -= 1;
                    if count == 0 {
                        return 0;
                    }
                }
            }
            Ok(ClientReply::Refused { reason }) => {
                eprintln!("{reason}");
                return 2;
            }
            Ok(_) => continue,
            Err(_) => return 0,
        }
    }
}
