//! `salt-call`: run an execution module on this machine and print its return under `local:`.
//!
//! Only `--local` execution is implemented: the function runs here with the minion's config
//! and grains, and nothing is sent to a master. Without `--local` the same happens, since
//! talking to the master from salt-call is not built yet; that is said at the `debug` level
//! only, so the default console (`warning`) stays as quiet as Salt's.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use salt_config::Role;
use salt_modules::{JobContext, Registry};
use salt_output::Outputter;
use serde_json::{Map, Value};

use crate::output::OutputFlags;

#[derive(Parser, Debug)]
#[command(name = "salt-call", disable_version_flag = true, about = "Run a Salt function on this machine.")]
struct Flags {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Run without a master.
    #[arg(long = "local")]
    local: bool,
    /// Exit with the function's retcode instead of 0/1.
    #[arg(long = "retcode-passthrough")]
    retcode_passthrough: bool,
    /// Specify the minion id to use.
    #[arg(long = "id")]
    id: Option<String>,
    /// Console logging level.
    #[arg(short = 'l', long = "log-level", default_value = "warning")]
    log_level: String,
    #[command(flatten)]
    output: OutputFlags,
    /// Show the program's version number and exit.
    #[arg(long = "version")]
    version: bool,
    /// The function, then its arguments.
    #[arg(allow_negative_numbers = true)]
    words: Vec<String>,
}

pub fn main(argv: Vec<String>) -> i32 {
    let flags = match crate::common::parse_or_version("salt-call", argv, |f: &Flags| f.version) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let Some(fun) = flags.words.first().cloned() else {
        eprintln!("Usage: salt-call [options] <function> [arguments]\n\nsalt-call: error: Invalid arguments: a function is required");
        return 2;
    };
    let mut config = match crate::common::setup("salt-call", &flags.log_level, Role::Minion, &flags.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !flags.local {
        tracing::debug!("salt-call talks to no master yet: running {fun} locally, as with --local");
    }
    if let Some(id) = &flags.id {
        config.set("id", Value::String(id.clone()));
    }
    let mut printer = match crate::common::printer("salt-call", flags.output.clone()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let id = match salt_minion::minion_id(&config) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("salt-call: {e:#}");
            return 2;
        }
    };
    let arg = salt_config::args::parse_input(&flags.words[1..]);
    let configured = match config.get("grains") {
        Some(Value::Object(g)) => g.clone(),
        _ => Map::new(),
    };
    let jid = salt_proto::jid::new_jid(false);
    let mut pub_data = Map::new();
    pub_data.insert("fun".into(), fun.clone().into());
    pub_data.insert("arg".into(), Value::Array(arg.clone()));
    pub_data.insert("jid".into(), jid.clone().into());
    let registry = Arc::new(Registry::builtin());
    let ctx = Arc::new(JobContext {
        jid,
        minion_id: id.clone(),
        pub_data,
        grains: Arc::new(salt_modules::grains::collect(&id, &configured)),
        opts: config.as_map().clone().into(),
        returners: Arc::new(salt_returners::builtin_names().into_iter().map(str::to_string).collect()),
        registry: registry.clone(),
    });
    let runtime = match crate::common::runtime("salt-call", true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(registry.execute(ctx, &fun, &arg));
    let out = printer.outputter(outcome.out.as_deref(), Outputter::Nested);
    let mut local = Map::new();
    local.insert("local".into(), outcome.ret);
    printer.print(out, &Value::Object(local), outcome.retcode as i64);
    match (outcome.retcode, flags.retcode_passthrough) {
        (0, _) => 0,
        (code, true) => code,
        (_, false) => 1,
    }
}
