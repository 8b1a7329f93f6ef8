//! The fuzz targets: each names what it exercises, its seed corpus (valid inputs, built in
//! code), the tokens of its format for the mutator, a structure-aware generator, and `run`,
//! which feeds one input to the code under test and checks a few properties (a failed
//! property is a panic, so it is reported like a crash). `run` returns whether the input was
//! accepted, so accepted inputs can grow the corpus.

use crate::rng::Rng;

mod args;
mod config;
mod frame;
mod ids;
mod targeting;
mod yaml;

pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub dict: &'static [&'static [u8]],
    pub nest: &'static [&'static [u8]],
    pub generate: fn(&mut Rng) -> Vec<u8>,
    pub run: fn(&[u8]) -> bool,
    pub max_len: usize,
}

pub static TARGETS: &[&Target] = &[&frame::TARGET, &yaml::TARGET, &config::TARGET, &args::TARGET, &targeting::TARGET, &ids::JID, &ids::ID];

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().copied().chain([&SELFTEST]).find(|t| t.name == name)
}

/// Checks the harness itself (not part of `all`): `SALT_FUZZ_SELFTEST=panic|hang|overflow
/// salt-fuzz selftest -n 1` must report a panic, a hang or an abort with its input.
pub static SELFTEST: Target = Target {
    name: "selftest",
    about: "the harness's own check: SALT_FUZZ_SELFTEST=panic|hang|overflow",
    seeds: || vec![std::env::var("SALT_FUZZ_SELFTEST").unwrap_or_default().into_bytes()],
    dict: &[],
    nest: &[],
    generate: |_| Vec::new(),
    run: selftest,
    max_len: 64,
};

fn selftest(input: &[u8]) -> bool {
    match input {
        b"panic" => panic!("self-test panic"),
        b"hang" => loop {
            std::hint::spin_loop();
        },
        b"overflow" => recurse(std::hint::black_box(1)) > 0,
        _ => false,
    }
}

#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 64]);
    recurse(n + 1).wrapping_add(frame[7])
}

/// Fuzz input as text: valid UTF-8 as is, anything else with replacement characters.
pub(crate) fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

/// A JSON value of bounded size: what grains, arguments and returns look like, with the odd
/// awkward scalar (huge ints, floats, unicode, control characters, empty keys).
pub(crate) fn gen_value(rng: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    let leaf = depth == 0 || rng.one_in(3);
    if leaf {
        return match rng.below(9) {
            0 => Value::Null,
            1 => Value::Bool(rng.one_in(2)),
            2 => Value::from(rng.next_u64() as i64 >> rng.below(64)),
            3 => Value::from(rng.next_u64()),
            4 => serde_json::Number::from_f64((rng.next_u64() as i64) as f64 / 1e3).map_or(Value::Null, Value::Number),
            _ => Value::String(gen_word(rng)),
        };
    }
    let n = rng.skewed(6) - 1;
    if rng.one_in(2) {
        Value::Array((0..n).map(|_| gen_value(rng, depth - 1)).collect())
    } else {
        Value::Object((0..n).map(|_| (gen_word(rng), gen_value(rng, depth - 1))).collect())
    }
}

const WORDS: &[&str] = &[
    "",
    "a",
    "web1",
    "db-2.example.com",
    "os",
    "Debian",
    "true",
    "yes",
    "no",
    "~",
    "null",
    "None",
    "0755",
    "1e3",
    "1:30",
    "20261125003800067893",
    "__kwarg__",
    "*",
    "?",
    "[a-z]",
    "ünïcødé ✓",
    "\u{0}",
    "\n",
    "'",
    "\"",
    "#",
    "{",
    "[",
    ":",
    ",",
    "-",
    "&a",
    "*a",
    "<<",
    "=",
    "!!int",
    "0x1F",
    "-.inf",
    ".nan",
    "18446744073709551616",
    "-9223372036854775809",
];

pub(crate) fn gen_word(rng: &mut Rng) -> String {
    if rng.one_in(4) {
        let n = rng.skewed(12);
        (0..n)
            .map(|_| match rng.below(8) {
                0 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'),
                1 => (rng.below(32) as u8) as char,
                _ => (b' ' + rng.below(95) as u8) as char,
            })
            .collect()
    } else {
        (*rng.pick(WORDS)).to_owned()
    }
}

/// Removes what targets left on disk (the config target's private directory).
pub fn cleanup() {
    config::cleanup();
}
