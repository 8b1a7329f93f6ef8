//! The `json` outputter (`salt/output/json_out.py`).
//!
//! Salt calls Python's `json.dumps(data, indent=4, ensure_ascii=False)`.
//! That differs from `serde_json` in ways users see: items are separated by
//! `", "` on one line but `","` at line ends, floats use Python's repr
//! (`1e+16`, not `1e16`), and non-ASCII text is written raw. Keys keep the
//! order the data arrived in unless `output_indent: pretty` asks for sorting.

use serde_json::Value;

use crate::pyrepr;
use crate::{OutputIndent, OutputOptions};

pub(crate) fn output(data: &Value, opts: &OutputOptions) -> String {
    // Mirrors json_out.output: unset -> 4; negative -> one line; pretty -> 4 + sorted.
    let (indent, sort_keys) = match opts.indent {
        OutputIndent::Unset => (Some(4), false),
        OutputIndent::Null => (None, false),
        OutputIndent::Pretty => (Some(4), true),
        OutputIndent::Spaces(n) if n < 0 => (None, false),
        OutputIndent::Spaces(n) => (Some(n as usize), false),
    };
    dumps(data, indent, sort_keys)
}

/// Python's `json.dumps(data, indent=indent, sort_keys=sort_keys,
/// ensure_ascii=False)`.
pub fn dumps(data: &Value, indent: Option<usize>, sort_keys: bool) -> String {
    let mut out = String::new();
    write(&mut out, data, indent, sort_keys, 0);
    out
}

fn write(out: &mut String, value: &Value, indent: Option<usize>, sort_keys: bool, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => write_str(out, s),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, indent, level + 1, i == 0);
                write(out, item, indent, sort_keys, level + 1);
            }
            close(out, indent, level);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in pyrepr::entries(map, sort_keys).into_iter().enumerate() {
                separator(out, indent, level + 1, i == 0);
                write_str(out, k);
                out.push_str(": ");
                write(out, v, indent, sort_keys, level + 1);
            }
            close(out, indent, level);
            out.push('}');
        }
    }
}

/// Before an item: `", "` inline, or `","` + newline + indentation.
fn separator(out: &mut String, indent: Option<usize>, level: usize, first: bool) {
    match indent {
        None => {
            if !first {
                out.push_str(", ");
            }
        }
        Some(width) => {
            if !first {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&" ".repeat(width * level));
        }
    }
}

fn close(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(width) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(width * level));
    }
}

/// Floats as Python's `float.__repr__`, which `json` uses.
fn number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(f64::NAN);
        // Python writes these bare (not valid JSON, but it is what Salt prints).
        if f.is_nan() {
            return "NaN".into();
        }
        if f.is_infinite() {
            return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
        }
    }
    pyrepr::repr_number(n)
}

/// `ensure_ascii=False`: only `"`, `\` and control characters are escaped.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputIndent, OutputOptions, Outputter};

    fn json_out(data: serde_json::Value, indent: OutputIndent) -> String {
        let opts = OutputOptions { indent, ..OutputOptions::default() };
        render(Outputter::Json, &data, &opts)
    }

    #[test]
    fn test_ping_from_transcript() {
        assert_eq!(json_out(json!({"minion1": true}), OutputIndent::Unset), "{\n    \"minion1\": true\n}\n");
    }

    #[test]
    fn cmd_run_string_is_escaped() {
        let out = json_out(json!({"minion1": "bin\nboot\ndev"}), OutputIndent::Unset);
        assert_eq!(out, "{\n    \"minion1\": \"bin\\nboot\\ndev\"\n}\n");
    }

    /// Transcript: `saltutil.find_job --out=json` keeps the return's key order.
    #[test]
    fn find_job_keeps_insertion_order() {
        let data = json!({"minion1": {
            "pid": 16476, "fun": "cmd.run", "arg": ["sleep 100"], "tgt": "*",
            "jid": "20261125003832838505", "ret": "mysql", "tgt_type": "glob",
            "user": "root", "resource_targets": [], "pure_resource_target": false,
            "minion_is_target": true
        }});
        let want = r#"{
    "minion1": {
        "pid": 16476,
        "fun": "cmd.run",
        "arg": [
            "sleep 100"
        ],
        "tgt": "*",
        "jid": "20261125003832838505",
        "ret": "mysql",
        "tgt_type": "glob",
        "user": "root",
        "resource_targets": [],
        "pure_resource_target": false,
        "minion_is_target": true
    }
}
"#;
        assert_eq!(json_out(data, OutputIndent::Unset), want);
    }

    /// Transcript: `jobs.list_jobs --out=json` (nested list with a dict).
    #[test]
    fn list_jobs_arguments_from_transcript() {
        let data = json!({"20261125003920420732": {
            "Function": "test.arg",
            "Arguments": [1, "two", {"__kwarg__": true, "a": "b", "c": {"x": 1}}],
            "Target": "*"
        }});
        let want = r#"{
    "20261125003920420732": {
        "Function": "test.arg",
        "Arguments": [
            1,
            "two",
            {
                "__kwarg__": true,
                "a": "b",
                "c": {
                    "x": 1
                }
            }
        ],
        "Target": "*"
    }
}
"#;
        assert_eq!(json_out(data, OutputIndent::Unset), want);
    }

    #[test]
    fn negative_indent_is_one_line_with_python_separators() {
        let data = json!({"m": {"a": [1, 2.0], "b": null, "c": "é"}});
        assert_eq!(json_out(data.clone(), OutputIndent::Spaces(-1)), "{\"m\": {\"a\": [1, 2.0], \"b\": null, \"c\": \"é\"}}\n");
        assert_eq!(json_out(data, OutputIndent::Null), "{\"m\": {\"a\": [1, 2.0], \"b\": null, \"c\": \"é\"}}\n");
    }

    #[test]
    fn custom_and_zero_indent() {
        let data = json!({"m": [1, {}]});
        assert_eq!(json_out(data.clone(), OutputIndent::Spaces(2)), "{\n  \"m\": [\n    1,\n    {}\n  ]\n}\n");
        assert_eq!(json_out(data, OutputIndent::Spaces(0)), "{\n\"m\": [\n1,\n{}\n]\n}\n");
    }

    #[test]
    fn pretty_sorts_keys_recursively() {
        let data = json!({"b": 1, "a": {"z": 1, "y": 2}});
        let want = "{\n    \"a\": {\n        \"y\": 2,\n        \"z\": 1\n    },\n    \"b\": 1\n}\n";
        assert_eq!(json_out(data, OutputIndent::Pretty), want);
    }

    #[test]
    fn floats_and_escapes_match_python_json() {
        let data = json!([1e16, 0.5, -3, "q\"\\\u{1}\u{7f}😀"]);
        assert_eq!(json_out(data, OutputIndent::Spaces(-1)), "[1e+16, 0.5, -3, \"q\\\"\\\\\\u0001\u{7f}😀\"]\n");
    }

    #[test]
    fn scalars_at_top_level() {
        assert_eq!(json_out(json!("x"), OutputIndent::Unset), "\"x\"\n");
        assert_eq!(json_out(json!({}), OutputIndent::Unset), "{}\n");
    }
}
