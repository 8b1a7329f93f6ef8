//! The YAML loader every config file and CLI argument goes through (`salt_config::yaml`):
//! PyYAML's 1.1 scalars, anchors and aliases, merge keys, tags, duplicate keys.

use salt_config::yaml;

use super::{text, Target};
use crate::rng::Rng;

pub static TARGET: Target = Target {
    name: "yaml",
    about: "salt_config::yaml::load / load_with_kind (the YAML loader)",
    seeds,
    dict: YAML_DICT,
    nest: YAML_NEST,
    generate,
    run,
    max_len: 64 * 1024,
};

pub(super) static YAML_DICT: &[&[u8]] = &[
    b"- ",
    b": ",
    b"\n",
    b"\n  ",
    b"\n    ",
    b"? ",
    b"[",
    b"]",
    b"{",
    b"}",
    b", ",
    b"&a ",
    b"*a",
    b"&b ",
    b"*b",
    b"<<: ",
    b"<<",
    b"=",
    b"!!int ",
    b"!!str ",
    b"!!float ",
    b"!!bool ",
    b"!!null ",
    b"!!binary ",
    b"!!set ",
    b"!!map ",
    b"!!seq ",
    b"! ",
    b"!custom ",
    b"%YAML 1.1\n",
    b"%TAG ! tag:x,2000:\n",
    b"---",
    b"...",
    b"#",
    b"'",
    b"\"",
    b"\\",
    b"|",
    b"|-",
    b">",
    b">+",
    b"~",
    b"null",
    b"yes",
    b"Off",
    b"0x1F",
    b"0b101",
    b"0755",
    b"-010",
    b"1_000",
    b"1:30",
    b"1:30.5",
    b".inf",
    b"-.Inf",
    b".NaN",
    b"1.0e+3",
    b"1e3",
    b"18446744073709551616",
    b"-9223372036854775808",
    b"0b",
    b"-0x",
    b"+0",
    b"2024-01-02",
    b"\t",
    b"\r\n",
    b"\xef\xbb\xbf",
    b"\\u0000",
    b"\\x",
    b"\xc3\xa9",
    b"\xe2\x9c\x93",
];

pub(super) static YAML_NEST: &[&[u8]] = &[b"[", b"{a: ", b"- ", b"[&a ", b"a:\n ", b"? "];

fn seeds() -> Vec<Vec<u8>> {
    [
        "a: 1\n",
        "[yes, No, ON, off, True, FALSE, y, n, Y, yEs]",
        "['yes', \"on\", '1', '~']",
        "[~, null, Null, NULL, nULL]",
        "[0, 12, -3, +4, 1_000, 0b101, 0x1F, 0755, -010, '0755', 1:30, 08, 0o17, 12abc]",
        "[1.5, -0.25, .5, 1.0e+3, 1e3, 1.e+2, 1:30.5, .inf, -.Inf, .NaN]",
        "[!!str 12, !!int '12', !!float '2', !!bool 'on', !!null 'x', ! 12]",
        "{1: a, true: b, ~: c, 1.5: d}",
        "base: &b {x: 1, y: 2}\nother: *b\nchild:\n  <<: *b\n  y: 3\n",
        "a: &a {p: 1}\nb: &b {q: 2}\nc:\n  <<: [*a, *b]\n",
        "a: |\n  x\n  y\nb: >\n  folded\n  text\nc: \"esc\\u00e9\\n\"\n",
        "---\nlist:\n  - one\n  - two: 2\n    three: [3, {four: 4}]\n...\n",
        "? complex\n: value\n= : eq\n",
        "%YAML 1.1\n---\n!!map {a: !!seq [1, 2]}\n",
        "20261125003937184047",
        "héllo wörld ✓",
        "",
        "# only a comment\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

const SCALARS: &[&str] = &[
    "1",
    "-3",
    "0755",
    "0x1F",
    "1:30",
    "1.5",
    ".inf",
    "yes",
    "off",
    "~",
    "''",
    "\"q\\n\"",
    "foo",
    "foo bar",
    "*a",
    "*b",
    "!!int 7",
    "!!str 1",
    "|\n  block\n",
    "2024-01-02",
    "=",
    "<<",
    "18446744073709551616",
];

/// A random document: flow and block collections, anchors and aliases, merge keys.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    let n = rng.skewed(8);
    for i in 0..n {
        out.push_str(&format!("k{}: ", rng.below(6)));
        if i == 0 || rng.one_in(3) {
            out.push_str(&format!("&{} ", *rng.pick(&["a", "b", "c"])));
        }
        node(rng, &mut out, 0, 3);
        out.push('\n');
    }
    if rng.one_in(6) {
        out.push_str("m:\n  <<: [*a, *b]\n  x: 1\n");
    }
    out.into_bytes()
}

fn node(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    match if depth == 0 { 0 } else { rng.below(4) } {
        1 => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push_str(", ");
                }
                node(rng, out, indent, depth - 1);
            }
            out.push(']');
        }
        2 => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(rng.pick::<&str>(&["a", "b", "1", "~", "<<", "'q'"]));
                out.push_str(": ");
                node(rng, out, indent, depth - 1);
            }
            out.push('}');
        }
        3 => {
            for _ in 0..rng.skewed(3) {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
                if rng.one_in(2) {
                    out.push_str("- ");
                } else {
                    out.push_str(&format!("s{}: ", rng.below(3)));
                }
                node(rng, out, indent + 2, depth - 1);
            }
        }
        _ => out.push_str(rng.pick::<&str>(SCALARS)),
    }
}

fn run(input: &[u8]) -> bool {
    let src = text(input);
    let loaded = yaml::load_with_kind(&src);
    if let Ok((value, kind)) = &loaded {
        assert_eq!(yaml::load(&src).as_ref().ok(), Some(value), "load and load_with_kind disagree");
        let matches = match value {
            serde_json::Value::Array(_) => *kind == yaml::Kind::List,
            serde_json::Value::Object(_) => *kind == yaml::Kind::Dict,
            serde_json::Value::Null => *kind == yaml::Kind::Null,
            serde_json::Value::Bool(_) => *kind == yaml::Kind::Bool,
            _ => true,
        };
        assert!(matches, "kind {kind:?} for {value}");
    }
    loaded.is_ok()
}
