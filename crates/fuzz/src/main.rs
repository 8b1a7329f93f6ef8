//! `salt-fuzz`: a self-contained mutation fuzzer for the code that reads untrusted input,
//! built for the stable toolchain (no nightly, no libFuzzer).
//!
//! ```text
//! cargo run -p salt-fuzz --profile fuzz -- <target|all> [--iterations N] [--seconds S] [--seed X]
//!     [--hang-ms MS] [--stack-kib KIB] [--crash-dir DIR] [--keep-going] [--quiet]
//! cargo run -p salt-fuzz --profile fuzz -- <target> --replay FILE
//! cargo run -p salt-fuzz --profile fuzz -- list
//! ```
//!
//! Each target starts from a seed corpus of valid inputs written in code, mutates them at the
//! byte level (bit flips, interesting integers, inserts, deletes, splices, format tokens, deep
//! nesting) and generates structured inputs of its own; inputs the code under test accepts
//! join the corpus. A run is fully determined by `--seed`. A panic, a hang (one input over
//! `--hang-ms`) or an abort (a stack overflow) prints the target, seed, iteration and input in
//! hex, saves the input under the crash directory and ends the run with a non-zero status.

mod mutate;
mod rng;
mod runner;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use runner::Options;
use targets::{Target, TARGETS};

const USAGE: &str = "usage: salt-fuzz <target|all|list> [--iterations N] [--seconds S] [--seed X] [--hang-ms MS] \
[--stack-kib KIB] [--crash-dir DIR] [--keep-going] [--quiet] | salt-fuzz <target> --replay FILE";

fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.replace('_', "");
    if let Some((m, e)) = t.split_once(['e', 'E']) {
        let (m, e): (u64, u32) = (m.parse().map_err(|_| format!("bad number {s:?}"))?, e.parse().map_err(|_| format!("bad number {s:?}"))?);
        return 10u64.checked_pow(e).and_then(|p| p.checked_mul(m)).ok_or_else(|| format!("{s} is too large"));
    }
    t.parse().map_err(|_| format!("bad number {s:?}"))
}

struct Cli {
    which: String,
    opts: Options,
    replay: Option<PathBuf>,
}

fn parse_cli() -> Result<Cli, String> {
    let mut args = std::env::args().skip(1);
    let mut which = None;
    let mut iterations = None;
    let mut seconds = None;
    let mut seed = 1u64;
    let mut hang_ms = 2000u64;
    let mut stack_kib = 2048usize;
    let mut crash_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let (mut keep_going, mut quiet) = (false, false);
    let mut replay = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--iterations" | "-n" => iterations = Some(parse_count(&value(&arg)?)?),
            "--seconds" | "-s" => {
                let v = value(&arg)?;
                seconds = Some(v.parse::<f64>().ok().filter(|s| *s > 0.0).ok_or_else(|| format!("bad --seconds {v:?}"))?);
            }
            "--seed" => seed = parse_count(&value(&arg)?)?,
            "--hang-ms" => hang_ms = parse_count(&value(&arg)?)?,
            "--stack-kib" => stack_kib = parse_count(&value(&arg)?)? as usize,
            "--crash-dir" => crash_dir = PathBuf::from(value(&arg)?),
            "--replay" => replay = Some(PathBuf::from(value(&arg)?)),
            "--keep-going" => keep_going = true,
            "--quiet" | "-q" => quiet = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if which.is_none() => which = Some(s.to_owned()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let which = which.ok_or("which target?")?;
    let iterations = match (iterations, seconds) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => 100_000,
    };
    let opts = Options {
        iterations,
        seconds,
        seed,
        hang: Duration::from_millis(hang_ms.max(1)),
        stack_bytes: stack_kib.max(64) * 1024,
        crash_dir,
        keep_going,
        quiet,
    };
    Ok(Cli { which, opts, replay })
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("salt-fuzz: {e}");
            }
            eprintln!("{USAGE}");
            eprintln!("targets:");
            for t in TARGETS {
                eprintln!("  {:8} {}", t.name, t.about);
            }
            return ExitCode::from(2);
        }
    };
    if cli.which == "list" {
        for t in TARGETS {
            println!("{:8} {}", t.name, t.about);
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<&'static Target> = if cli.which == "all" {
        TARGETS.to_vec()
    } else {
        match cli.which.split(',').map(|n| targets::find(n).ok_or(n)).collect::<Result<Vec<_>, _>>() {
            Ok(v) => v,
            Err(name) => {
                eprintln!("salt-fuzz: unknown target {name:?}; `salt-fuzz list` names them");
                return ExitCode::from(2);
            }
        }
    };
    // Panics are reported by the loop, with the input; the default hook would only add noise.
    std::panic::set_hook(Box::new(|_| {}));

    if let Some(path) = &cli.replay {
        let mut status = ExitCode::SUCCESS;
        for t in &chosen {
            if let Err(e) = runner::replay(t, path) {
                eprintln!("salt-fuzz: {e}");
                status = ExitCode::FAILURE;
            }
        }
        targets::cleanup();
        return status;
    }

    let mut failed = false;
    let mut summaries = Vec::new();
    for t in &chosen {
        match runner::run(t, &cli.opts) {
            Ok(s) => {
                println!(
                    "salt-fuzz: {:8} {:>11} inputs in {:>7.1} s ({:>8.0}/s), {} accepted, corpus {}, {} crashes (seed {})",
                    s.target,
                    s.inputs,
                    s.elapsed.as_secs_f64(),
                    s.inputs as f64 / s.elapsed.as_secs_f64().max(1e-9),
                    s.valid,
                    s.corpus,
                    s.crashes,
                    cli.opts.seed
                );
                failed |= s.crashes > 0;
                summaries.push(s);
                if failed && !cli.opts.keep_going {
                    break;
                }
            }
            Err(e) => {
                eprintln!("salt-fuzz: {}: {e}", t.name);
                failed = true;
                break;
            }
        }
    }
    targets::cleanup();
    let total: u64 = summaries.iter().map(|s| s.inputs).sum();
    if summaries.len() > 1 {
        println!("salt-fuzz: {total} inputs over {} targets, {}", summaries.len(), if failed { "FAILED" } else { "no crash or hang" });
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
