//! Renders a JSON array of cases read from stdin and prints a JSON array of
//! the results; `tools/compare_with_salt.py` feeds the same cases to real
//! Salt and diffs. A case is `{"out": name, "data": ..., "indent"?: int |
//! "pretty" | null, "color"?: bool, "retcode"?: int}`; the result is
//! `out_format` (no final newline), as Salt's `try_printout` returns it.

use salt_output::{out_format, OutputIndent, OutputOptions, Outputter};
use serde_json::Value;

fn main() {
    let input = std::io::read_to_string(std::io::stdin()).expect("read stdin");
    let cases: Vec<Value> = serde_json::from_str(&input).expect("a JSON array of cases");
    let results: Vec<Value> = cases
        .iter()
        .map(|case| {
            let out: Outputter = case["out"].as_str().expect("out").parse().expect("known outputter");
            let mut opts = OutputOptions {
                color: case["color"].as_bool().unwrap_or(false),
                retcode: case["retcode"].as_i64().unwrap_or(0),
                ..OutputOptions::default()
            };
            if let Some(indent) = case.get("indent") {
                opts.indent = OutputIndent::from_config(indent).expect("indent is int, \"pretty\" or null");
            }
            Value::String(out_format(out, &case["data"], &opts))
        })
        .collect();
    println!("{}", Value::Array(results));
}
