//! Targets (`salt_targeting`): `Matcher::new` for every target type (the compound parser
//! among them), from a string or, for `list` and `compound`, a JSON array; a matcher that
//! builds is then asked about a few minions with and without grains.
//!
//! Input layout: byte 0 picks the target type (bits 0-2), an array target (bit 3) and the
//! grain delimiter (bits 4-6); the rest is the target text (NUL separates array items).

use std::sync::OnceLock;

use salt_targeting::{Matcher, TargetType, MAX_TARGET_BYTES};
use serde_json::{json, Map, Value};

use super::{text, Target};
use crate::rng::Rng;

pub static TARGET: Target = Target {
    name: "target",
    about: "Matcher::new for glob, pcre, list, grain, grain_pcre, compound, ipcidr; then matches()",
    seeds,
    dict: &[
        b" and ",
        b" or ",
        b" not ",
        b"( ",
        b" )",
        b"G@",
        b"P@",
        b"E@",
        b"L@",
        b"S@",
        b"I@",
        b"J@",
        b"N@",
        b"R@",
        b"G|@",
        b"P:@",
        b"G@@",
        b"*",
        b"?",
        b"[",
        b"]",
        b"[!",
        b"[]",
        b"-",
        b",",
        b":",
        b"::",
        b"*:",
        b"\\d+",
        b"(?i)",
        b".*",
        b"(",
        b")",
        b"|",
        b"{1000}",
        b"{1,}",
        b"\\",
        b"10.0.0.0/8",
        b"::1",
        b"fe80::/10",
        b"/33",
        b"/129",
        b"os:Debian",
        b"roles:web",
        b"\0",
        b"\x1c",
        b"\xc2\xa0",
        b"\xe2\x80\x83",
    ],
    nest: &[b"( ", b"not ( ", b"((", b"[", b"(?:"],
    generate,
    run,
    max_len: MAX_TARGET_BYTES + 64,
};

const TYPES: [TargetType; 8] = [
    TargetType::Glob,
    TargetType::Pcre,
    TargetType::List,
    TargetType::Grain,
    TargetType::GrainPcre,
    TargetType::Compound,
    TargetType::Ipcidr,
    TargetType::Compound,
];
const DELIMITERS: [&str; 8] = [":", ":", ":", "|", "", "::", "@", "é"];

fn input(ty: usize, array: bool, delim: usize, text: &str) -> Vec<u8> {
    let mut out = vec![(ty as u8) | (u8::from(array) << 3) | ((delim as u8) << 4)];
    out.extend_from_slice(text.as_bytes());
    out
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        input(0, false, 0, "web*"),
        input(0, false, 0, "db[0-9]?.example.com"),
        input(0, false, 0, "[!a-c]*"),
        input(1, false, 0, "web\\d+"),
        input(1, false, 0, "(?i)WEB|db"),
        input(2, false, 0, "a,b, c ,,web1"),
        input(2, true, 0, "a\0b\0web1"),
        input(3, false, 0, "os:Debian"),
        input(3, false, 0, "nested:a:b:*"),
        input(3, false, 3, "roles|web"),
        input(3, false, 0, "*:Deb*"),
        input(4, false, 0, "os:deb.*"),
        input(4, false, 0, "ipv4:10\\..*"),
        input(5, false, 0, "G@os:Debian and L@a,b or E@web\\d+"),
        input(5, false, 0, "( web* or G@roles:db ) and not S@10.0.0.0/8"),
        input(5, false, 0, "P@os:deb.* or G|@os|Debian not L@ghost"),
        input(5, true, 0, "G@os:Debian\0and\0web*"),
        input(5, false, 0, "not ( ( a ) )"),
        input(6, false, 0, "10.0.0.0/8"),
        input(6, false, 0, "fe80::/10"),
        input(6, false, 0, "127.0.0.1"),
    ]
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut words = Vec::new();
    let mut depth = 0;
    for i in 0..rng.skewed(12) {
        if i > 0 {
            words.push(*rng.pick(&["and", "or", "and", "not", "or not"]));
        }
        if rng.one_in(4) {
            words.push("(");
            depth += 1;
        }
        words.push(*rng.pick(&[
            "web*",
            "G@os:Debian",
            "P@os:deb.*",
            "L@a,b",
            "E@web\\d+",
            "S@10.0.0.0/8",
            "G@nested:a:b:1",
            "G@*:Deb*",
            "I@x:y",
            "N@grp",
            "db?",
            "[a-",
            "E@(",
            "G@os",
            "S@::1",
            "G|@os|Debian",
        ]));
        if depth > 0 && rng.one_in(3) {
            words.push(")");
            depth -= 1;
        }
    }
    words.extend(std::iter::repeat_n(")", depth));
    input(5, false, 0, &words.join(" "))
}

fn grains(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// A 255-character id: `a`, `?`-friendly and `*a*a`-friendly all the way.
const LONG_ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn minions() -> &'static [(&'static str, Map<String, Value>)] {
    static MINIONS: OnceLock<Vec<(&'static str, Map<String, Value>)>> = OnceLock::new();
    MINIONS.get_or_init(|| {
        vec![
            (
                "web1",
                grains(json!({
                    "os": "Debian", "roles": ["web", "db"], "ipv4": ["10.0.0.5", "127.0.0.1"], "ipv6": ["::1", "fe80::1"],
                    "nested": {"a": {"b": [1, {"c": "d"}]}}, "num": 3, "float": 1.5, "none": null, "t": true, "*": "star",
                    "empty": {}, "list": [[1, 2], {"k": "v"}],
                })),
            ),
            ("db-2.example.com", grains(json!({"os": "Ubuntu", "ipv4": "192.168.1.1", "roles": "db"}))),
            ("a", Map::new()),
            // The longest id there can be: globs cost up to len(id) * len(pattern).
            (LONG_ID, grains(json!({"os": "Debian", "long": LONG_ID}))),
            ("ünïcødé", grains(json!({"os": ["Debian", "Ubuntu"], "deep": {"x": {"y": {"z": "w"}}}}))),
        ]
    })
}

fn run(input: &[u8]) -> bool {
    let Some((&head, rest)) = input.split_first() else {
        return false;
    };
    let ty = TYPES[usize::from(head & 7)];
    let array = head & 8 != 0;
    let delimiter = DELIMITERS[usize::from(head >> 4 & 7)];
    let text = text(rest);
    let tgt = if array {
        Value::Array(text.split('\0').map(|w| if w == "#" { json!(1) } else { json!(w) }).collect())
    } else {
        Value::String(text.to_string())
    };
    let _ = text.parse::<TargetType>();
    let Ok(matcher) = Matcher::new(&tgt, ty, delimiter) else {
        return false;
    };
    assert_eq!(matcher.tgt_type(), ty);
    let uses_grains = matcher.uses_grains();
    for (id, grains) in minions() {
        let with = matcher.matches(id, grains);
        let without = matcher.matches_without_grains(id);
        if !uses_grains {
            assert_eq!(with, without, "grains changed an id-only target's answer for {id}");
        }
    }
    if let Some(ids) = matcher.listed_ids() {
        assert!(ids.iter().all(|id| !id.is_empty() && id.trim() == id), "{ids:?}");
    }
    true
}
