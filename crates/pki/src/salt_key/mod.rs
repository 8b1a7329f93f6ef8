//! The `salt-key` program (Salt's `salt/cli/key.py` + `salt.key.KeyCLI`), as a library function
//! so the binary stays a one-liner. It reads `pki_dir` from the master config, changes key files
//! and nothing else: the master re-reads key state on every authentication.
//!
//! Behaviour follows Salt 3008, including its quirks: `-A`/`-R`/`-D` are `-a '*'`/`-r '*'`/
//! `-d '*'`; accept and reject list what they will do and ask `Proceed? [n/Y]` (Enter means yes),
//! delete asks `Proceed? [N/y]` (Enter means no); `-F`/`-P` show only non-empty groups while `-L`
//! shows all four; and the exit code is 0 whether or not anything matched. Differences: a
//! closed stdin at the question counts as "no" (Salt dies with "EOF when reading a line"), and
//! errors Salt would print and still exit 0 on (unreadable config or `pki_dir`) exit 1.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Parser;
use salt_output::{OutputIndent, OutputOptions, Outputter};
use serde_json::{Map, Value};

use crate::keypair::fingerprint_with;
use crate::store::{KeyMatches, KeyState, KeyStore};

/// Runs salt-key with `argv` (program name first) on the process's stdin/stdout/stderr and
/// returns the exit code.
pub fn run(argv: Vec<String>) -> i32 {
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    // Buffered: `-A` of 50,000 keys prints 100,000 lines, one write(2) each through the
    // line-buffered stdout. The prompt and anything said on stderr flush it first.
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let code = run_with(argv, &mut io::stdin().lock(), &mut out, &mut io::stderr().lock(), tty);
    match out.flush() {
        Ok(()) => code,
        Err(_) => 1,
    }
}

/// [`run`] with explicit streams; `tty` says whether stdout is a terminal (colours on).
pub fn run_with(argv: Vec<String>, input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write, tty: bool) -> i32 {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let text = e.render().to_string();
            let _ = if code == 0 { write!(out, "{text}") } else { write!(err, "{text}") };
            return code;
        }
    };
    if cli.version {
        let _ = writeln!(out, "{}", salt_proto::version_line("salt-key"));
        return 0;
    }
    if let Some(arg) = cli.list.as_deref().filter(|a| !a.is_empty()) {
        if !["acc", "pre", "un", "rej", "den", "all"].iter().any(|p| arg.starts_with(p)) {
            // optparse's error format, as Salt's parser reports it.
            let _ = write!(err, "Usage: salt-key [options]\n\nsalt-key: error: '{arg}' is not a valid argument to '--list'\n");
            return 2;
        }
    }
    let config = match salt_config::Config::load(salt_config::Role::Master, &cli.config_dir) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "Error: {e}");
            return 1;
        }
    };
    let pki_dir = config.path("pki_dir").unwrap_or_else(|| PathBuf::from("/etc/salt/pki/master"));
    let hash_type = config.str("hash_type").unwrap_or("sha256").to_string();
    let store = match KeyStore::open(&pki_dir) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "Error: {e}");
            return 1;
        }
    };
    let settings = Settings::from_cli(&cli, hash_type, tty);
    let mut io = Io { input, out, err };
    match execute(&cli.command(), &settings, &store, &mut io) {
        Ok(()) => 0,
        Err(e) => {
            let _ = io.out.flush();
            let _ = writeln!(io.err, "Error: {e}");
            1
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "salt-key",
    about = "Salt key is used to manage Salt authentication keys",
    override_usage = "salt-key [options]",
    disable_version_flag = true
)]
struct Cli {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", env = "SALT_CONFIG_DIR", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// List the public keys. The args 'pre', 'un', and 'unaccepted' will list unaccepted/unsigned
    /// keys. 'acc' or 'accepted' will list accepted/signed keys. 'rej' or 'rejected' will list
    /// rejected keys. 'den' or 'denied' will list denied keys. Finally, 'all' will list all keys.
    #[arg(short = 'l', long = "list", value_name = "ARG")]
    list: Option<String>,
    /// List all public keys. Deprecated: use "--list all".
    #[arg(short = 'L', long = "list-all")]
    list_all: bool,
    /// Accept the specified public key (use --include-rejected and --include-denied to match
    /// rejected and denied keys in addition to pending keys). Globs are supported.
    #[arg(short = 'a', long = "accept", value_name = "ACCEPT")]
    accept: Option<String>,
    /// Accept all pending keys.
    #[arg(short = 'A', long = "accept-all")]
    accept_all: bool,
    /// Reject the specified public key. Use --include-accepted and --include-denied to match
    /// accepted and denied keys in addition to pending keys. Globs are supported.
    #[arg(short = 'r', long = "reject", value_name = "REJECT")]
    reject: Option<String>,
    /// Reject all pending keys.
    #[arg(short = 'R', long = "reject-all")]
    reject_all: bool,
    /// Include rejected/accepted keys when accepting/rejecting. Deprecated: use
    /// "--include-rejected" and "--include-accepted".
    #[arg(long = "include-all")]
    include_all: bool,
    /// Include accepted keys when rejecting.
    #[arg(long = "include-accepted")]
    include_accepted: bool,
    /// Include rejected keys when accepting.
    #[arg(long = "include-rejected")]
    include_rejected: bool,
    /// Include denied keys when accepting/rejecting.
    #[arg(long = "include-denied")]
    include_denied: bool,
    /// Print the specified public key.
    #[arg(short = 'p', long = "print", value_name = "PRINT")]
    print: Option<String>,
    /// Print all public keys.
    #[arg(short = 'P', long = "print-all")]
    print_all: bool,
    /// Delete the specified key. Globs are supported.
    #[arg(short = 'd', long = "delete", value_name = "DELETE")]
    delete: Option<String>,
    /// Delete all keys.
    #[arg(short = 'D', long = "delete-all")]
    delete_all: bool,
    /// Print the specified key's fingerprint.
    #[arg(short = 'f', long = "finger", value_name = "FINGER")]
    finger: Option<String>,
    /// Print all keys' fingerprints.
    #[arg(short = 'F', long = "finger-all")]
    finger_all: bool,
    /// Suppress output. (As in Salt this only affects error display; errors here go to stderr.)
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Answer "Yes" to all questions presented. Default: False.
    #[arg(short = 'y', long = "yes")]
    yes: bool,
    /// Print the output using the specified outputter (json, yaml, nested, txt, raw, ...).
    #[arg(long = "out", visible_alias = "output", value_name = "OUTPUT")]
    out: Option<String>,
    /// Print the output indented by the provided value in spaces (negative: no indentation).
    #[arg(long = "out-indent", visible_alias = "output-indent", value_name = "OUTPUT_INDENT", allow_negative_numbers = true)]
    out_indent: Option<i64>,
    /// Disable all colored output.
    #[arg(long = "no-color", alias = "no-colour")]
    no_color: bool,
    /// Force colored output.
    #[arg(long = "force-color", alias = "force-colour")]
    force_color: bool,
    /// Show program's version number and exit.
    #[arg(long = "version")]
    version: bool,
}

/// What salt-key was asked to do, after Salt's `_update_opts`: the first of these flags wins,
/// and the `*-all` actions are their single form with the glob `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    List(String),
    Print(String),
    Accept(String),
    Reject(String),
    Delete(String),
    Finger(String),
}

impl Cli {
    fn command(&self) -> Command {
        let given = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
        let star = || "*".to_string();
        if let Some(l) = given(&self.list) {
            Command::List(l)
        } else if self.list_all {
            Command::List("all".into())
        } else if let Some(g) = given(&self.print) {
            Command::Print(g)
        } else if self.print_all {
            Command::Print(star())
        } else if let Some(g) = given(&self.accept) {
            Command::Accept(g)
        } else if self.accept_all {
            Command::Accept(star())
        } else if let Some(g) = given(&self.reject) {
            Command::Reject(g)
        } else if self.reject_all {
            Command::Reject(star())
        } else if let Some(g) = given(&self.delete) {
            Command::Delete(g)
        } else if self.delete_all {
            Command::Delete(star())
        } else if let Some(g) = given(&self.finger) {
            Command::Finger(g)
        } else if self.finger_all {
            Command::Finger(star())
        } else {
            Command::List("all".into())
        }
    }
}

struct Settings {
    yes: bool,
    include_all: bool,
    include_accepted: bool,
    include_rejected: bool,
    include_denied: bool,
    out: Option<String>,
    out_indent: Option<i64>,
    color: bool,
    hash_type: String,
}

impl Settings {
    fn from_cli(cli: &Cli, hash_type: String, tty: bool) -> Settings {
        Settings {
            yes: cli.yes,
            include_all: cli.include_all,
            include_accepted: cli.include_accepted,
            include_rejected: cli.include_rejected,
            include_denied: cli.include_denied,
            out: cli.out.clone().filter(|o| !o.is_empty()),
            out_indent: cli.out_indent,
            color: salt_output::should_color(cli.force_color, cli.no_color, tty),
            hash_type,
        }
    }
}

struct Io<'a> {
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Accept,
    Reject,
    Delete,
}

impl Action {
    /// Salt builds these words as `cmd.rstrip("e") + "ed"`.
    fn past(self) -> &'static str {
        match self {
            Action::Accept => "accepted",
            Action::Reject => "rejected",
            Action::Delete => "deleted",
        }
    }
}

fn execute(cmd: &Command, s: &Settings, store: &KeyStore, io: &mut Io<'_>) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::List(arg) => display(list_status(store, arg), s, io),
        Command::Print(glob) => {
            let mut data = Map::new();
            for (state, ids) in store.name_match(glob).iter() {
                let mut texts = Map::new();
                for id in ids {
                    let text = store.key_text(state, id).unwrap_or_default();
                    texts.insert(id.clone(), Value::String(text));
                }
                data.insert(state.dir_name().to_string(), Value::Object(texts));
            }
            display(data, s, io)
        }
        Command::Finger(glob) => display(finger(store, glob, &s.hash_type)?, s, io),
        Command::Accept(glob) => act(Action::Accept, glob, s, store, io),
        Command::Reject(glob) => act(Action::Reject, glob, s, store, io),
        Command::Delete(glob) => act(Action::Delete, glob, s, store, io),
    }
}

/// The order in which Salt 3008's `salt-key -L` hands all four groups to the outputter, seen in
/// `--out json`/`yaml` (the `key` outputter sorts its headings itself).
const LIST_ALL_ORDER: [KeyState; 4] = [KeyState::Pending, KeyState::Rejected, KeyState::Accepted, KeyState::Denied];

/// Salt's `Key.list_status`: one group for `acc…`, `pre…`/`un…`, `rej…`, `den…`, or all four for
/// `all…` (the local keys Salt also gathers are dropped before display, as in Salt).
fn list_status(store: &KeyStore, arg: &str) -> Map<String, Value> {
    let states: Vec<KeyState> = if arg.starts_with("acc") {
        vec![KeyState::Accepted]
    } else if arg.starts_with("pre") || arg.starts_with("un") {
        vec![KeyState::Pending]
    } else if arg.starts_with("rej") {
        vec![KeyState::Rejected]
    } else if arg.starts_with("den") {
        vec![KeyState::Denied]
    } else {
        LIST_ALL_ORDER.to_vec()
    };
    let mut data = Map::new();
    for st in states {
        let ids = store.list(st).into_iter().map(Value::String).collect();
        data.insert(st.dir_name().to_string(), Value::Array(ids));
    }
    data
}

/// Salt's `Key.finger(match)`: fingerprints of the matching keys, the master's own `*.pem` and
/// `*.pub` files included (group "local"), hashing each file's text as `pem_finger` does.
fn finger(store: &KeyStore, glob: &str, hash_type: &str) -> Result<Map<String, Value>, crate::PkiError> {
    let globs: Vec<&str> = glob.split(',').collect();
    let mut data = Map::new();
    for (state, ids) in store.name_match(glob).iter() {
        let mut fps = Map::new();
        for id in ids {
            let text = store.key_text(state, id).unwrap_or_default();
            fps.insert(id.clone(), Value::String(finger_text(&text, hash_type)?));
        }
        data.insert(state.dir_name().to_string(), Value::Object(fps));
    }
    let mut local = Map::new();
    for name in store.local_keys() {
        if globs.iter().any(|g| crate::fnmatch::fnmatch(&name, g)) {
            let text = std::fs::read_to_string(store.pki_dir().join(&name)).unwrap_or_default();
            local.insert(name, Value::String(finger_text(&text, hash_type)?));
        }
    }
    if !local.is_empty() {
        data.insert("local".into(), Value::Object(local));
    }
    Ok(data)
}

/// A file that is not PEM gets whatever Salt's pem_finger would hash; we show an empty string
/// rather than invent a fingerprint, except that an unknown hash type is a real error.
fn finger_text(text: &str, hash_type: &str) -> Result<String, crate::PkiError> {
    match fingerprint_with(text, hash_type) {
        Ok(fp) => Ok(fp),
        Err(e @ crate::PkiError::UnsupportedHash(_)) => Err(e),
        Err(_) => Ok(String::new()),
    }
}

/// accept / reject / delete, as `KeyCLI.run`: match, filter by the include flags, show, ask,
/// act on exactly the keys shown, then report per minion.
fn act(action: Action, glob: &str, s: &Settings, store: &KeyStore, io: &mut Io<'_>) -> Result<(), Box<dyn std::error::Error>> {
    // Salt's _update_opts: accept never includes accepted keys, reject never rejected ones, and
    // the deprecated --include-all means "the other one".
    let (inc_acc, inc_rej) = match action {
        Action::Accept => (false, s.include_rejected || s.include_all),
        Action::Reject => (s.include_accepted || s.include_all, false),
        Action::Delete => (s.include_accepted, s.include_rejected),
    };
    let found = store.name_match(glob);
    let shown = if action == Action::Delete {
        found
    } else {
        let mut keep = KeyMatches::new();
        let wanted =
            [(KeyState::Pending, true), (KeyState::Accepted, inc_acc), (KeyState::Rejected, inc_rej), (KeyState::Denied, s.include_denied)];
        for (state, on) in wanted {
            if let Some(ids) = found.get(state).filter(|ids| on && !ids.is_empty()) {
                *keep.group_mut(state) = ids.to_vec();
            }
        }
        keep
    };
    if shown.is_empty() {
        let mut statuses = vec!["unaccepted"];
        if inc_acc {
            statuses.push("accepted");
        }
        if inc_rej {
            statuses.push("rejected");
        }
        if s.include_denied {
            statuses.push("denied");
        }
        let stat_str = match statuses.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => statuses[0].to_string(),
        };
        writeln!(io.out, "The key glob '{glob}' does not match any {stat_str} keys.")?;
        return Ok(());
    }
    writeln!(io.out, "The following keys are going to be {}:", action.past())?;
    display(shown.to_json(), s, io)?;
    if !s.yes {
        let (prompt, default_yes) = match action {
            Action::Delete => ("Proceed? [N/y] ", false),
            _ => ("Proceed? [n/Y] ", true),
        };
        write!(io.out, "{prompt}")?;
        io.out.flush()?;
        let mut answer = String::new();
        let proceed = match io.input.read_line(&mut answer)? {
            0 => {
                // No answer at all (stdin closed): treat as "no", and end the prompt's line.
                writeln!(io.out)?;
                false
            }
            _ => {
                let answer = answer.trim_end_matches(['\r', '\n']);
                if answer.is_empty() {
                    default_yes
                } else {
                    answer.to_lowercase().starts_with('y')
                }
            }
        };
        if !proceed {
            return Ok(());
        }
    }
    let report = match action {
        Action::Accept => {
            let outcome = store.accept_matches(&shown, inc_rej, s.include_denied)?;
            io.out.flush()?;
            for id in &outcome.invalid {
                writeln!(io.err, "Unable to accept invalid key for {id}.")?;
            }
            outcome.now
        }
        Action::Reject => store.reject_matches(&shown, inc_acc, s.include_denied)?,
        Action::Delete => {
            store.delete_matches(&shown)?;
            shown
        }
    };
    for (_, ids) in report.iter() {
        for id in ids {
            writeln!(io.out, "Key for minion {id} {}.", action.past())?;
        }
    }
    Ok(())
}

/// Salt's `display_output(data, "key", opts)`: the `key` outputter unless `--out` names another;
/// an unknown name falls back to nested with Salt's log line, as `get_printout` does.
fn display(data: impl Into<Value>, s: &Settings, io: &mut Io<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let outputter = match s.out.as_deref() {
        None => Outputter::Key,
        Some(name) => name.parse::<Outputter>().or_else(|_| {
            writeln!(io.err, "[ERROR   ] Invalid outputter {name} specified, fall back to nested").map(|_| Outputter::Nested)
        })?,
    };
    let opts = OutputOptions { color: s.color, indent: OutputIndent::from(s.out_indent), ..OutputOptions::default() };
    let text = salt_output::render(outputter, &data.into(), &opts);
    io.out.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests;
