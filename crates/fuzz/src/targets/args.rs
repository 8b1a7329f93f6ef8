//! CLI argument parsing (`salt_config::args`): `key=value` kwargs, YAML scalars, and the
//! publish `arg` list built from them. An input is a list of arguments separated by NUL.

use salt_config::args::{parse_input, parse_kwarg, split_kwargs, yamlify_arg};
use serde_json::Value;

use super::yaml::YAML_NEST;
use super::{gen_word, text, Target};
use crate::rng::Rng;

pub static TARGET: Target = Target {
    name: "args",
    about: "parse_input / parse_kwarg / yamlify_arg / split_kwargs on NUL-separated CLI arguments",
    seeds,
    dict: ARGS_DICT,
    nest: YAML_NEST,
    generate,
    run,
    max_len: 128 * 1024,
};

static ARGS_DICT: &[&[u8]] = &[
    b"\0",
    b"=",
    b"==",
    b"a=",
    b"_a.b-c=",
    b"n\xc3\xa9v=",
    b"__kwarg__=",
    b"1a=",
    b"{",
    b"}",
    b"[",
    b"]",
    b": ",
    b"#",
    b"---",
    b"...",
    b"|",
    b"!",
    b"None",
    b"~",
    b"1_2_3",
    b"20261125003937184047",
    b"\t",
    b"\r",
    b"\n",
    b"'",
    b"\"",
    b"&a ",
    b"*a",
    b"<<: ",
    b"0755",
    b"1e3",
    b"yes",
    b"y",
];

fn seeds() -> Vec<Vec<u8>> {
    [
        &["1", "two", "a=b", "c={x: 1}"][..],
        &["false"],
        &["ls /"],
        &["a=1", "b=2", "a=3"],
        &["20261125003937184047"],
        &["[\"foo\", \"bar\", \"###\"]", "{\"foo\": \"###\"}", "# hash", "Hello world! # hash elsewhere"],
        &["None", "- foo", "foo: bar", "|", "!", "123", "45.67", "---", " ...", "foo\t\nbar"],
        &["pip==1.1", "pip=1.2=1", "_a.b-c=d e", "név=x", "a=b\nc", "a=b\n", "a=", "=a"],
        &["{a: '#'}", "{a: 1", "'unterminated", "0755", "1e3", "~", "héllo wörld ✓"],
        &["cmd=[&a [1, 2], *a]", "x={<<: {a: 1}, b: 2}"],
        &[""],
    ]
    .iter()
    .map(|args| args.join("\0").into_bytes())
    .collect()
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut args = Vec::new();
    for _ in 0..rng.skewed(6) {
        let value = match rng.below(4) {
            0 => format!("[{}, {}]", gen_word(rng), gen_word(rng)),
            1 => format!("{{{}: {}}}", gen_word(rng), gen_word(rng)),
            _ => gen_word(rng),
        };
        if rng.one_in(2) {
            args.push(format!("{}={value}", *rng.pick(&["a", "b", "_x", "k.y-z", "név", "1a"])));
        } else {
            args.push(value);
        }
    }
    args.join("\0").into_bytes()
}

fn run(input: &[u8]) -> bool {
    let src = text(input);
    let args: Vec<String> = if src.is_empty() { Vec::new() } else { src.split('\0').map(str::to_owned).collect() };
    let mut kw_names = Vec::new();
    for arg in &args {
        if let Some((name, value)) = parse_kwarg(arg) {
            assert!(arg.starts_with(name) && arg[name.len()..].starts_with('='), "{arg:?} -> {name:?}");
            assert!(!value.contains('\n'), "a kwarg value with a newline: {value:?}");
            kw_names.push(name.to_owned());
        }
        let _ = yamlify_arg(arg);
    }
    let parsed = parse_input(&args);
    let (positional, kwargs) = split_kwargs(&parsed);
    // A positional argument typed as `{__kwarg__: true, ...}` is taken for kwargs, as in Salt.
    let marked = |v: &Value| matches!(v, Value::Object(m) if m.contains_key("__kwarg__"));
    let typed_kwargs = parsed.iter().take(parsed.len() - usize::from(!kw_names.is_empty())).any(marked);
    // `__kwarg__=x` replaces the marker itself (Salt's condition_input does the same).
    if typed_kwargs || kw_names.iter().any(|n| n == "__kwarg__") {
        return true;
    }
    // Every kwarg the CLI saw reaches the minion, and nothing else does.
    for name in &kw_names {
        assert!(kwargs.contains_key(name), "kwarg {name:?} lost in {parsed:?}");
    }
    let mut expected = kw_names.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(kwargs.len(), expected.len(), "kwargs {kwargs:?} for names {expected:?}");
    assert_eq!(positional.len() + kw_names.len(), args.len(), "positional {positional:?}");
    parsed.iter().any(|v| !matches!(v, Value::String(_)))
}
