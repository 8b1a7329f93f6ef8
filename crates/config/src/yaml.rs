//! YAML loading that gives the values Salt's `salt.utils.yaml.safe_load` gives.
//!
//! Salt reads every YAML it meets (config files, CLI arguments) with PyYAML's `SafeLoader`
//! (YAML 1.1 type resolution) as patched by `salt.utils.yamlloader.SaltYamlSafeLoader`.
//! serde-saphyr's own inference differs in both of its modes (its YAML 1.1 mode also takes
//! `y`/`n` as booleans; its strict mode drops `yes`/`on`/`off`; it reads `1e3` as a float and
//! `0o17` as an int, PyYAML reads both as strings). So we do not deserialise through it: we
//! walk the event stream of its parser (`granit_parser`, which serde-saphyr re-exports) and
//! resolve plain scalars with PyYAML's 1.1 rules:
//!
//! * booleans: `yes/no/true/false/on/off` in lower, Title or UPPER case (not `y`/`n`);
//! * null: `~`, `null`, `Null`, `NULL`, empty;
//! * ints: decimal, `0b…`, `0x…`, `0…` octal, sexagesimal `1:30` (= 90), `_` separators. Salt
//!   strips the leading zeros of unsigned octal spellings, so `0755` is 755, not 493;
//! * floats need a dot (`1.5`, `1.0e+3`, `.5`, `.inf`, `.nan`); `1e3` stays a string;
//! * timestamps stay strings (Salt registers the plain scalar constructor for them);
//! * merge keys `<<` are expanded; a duplicate key is an error ("found conflicting ID"), as in
//!   Salt's loader;
//! * a `!` (non-specific) tag resolves like an untagged plain scalar, as PyYAML does.
//!
//! Differences from Python, forced by JSON values: mapping keys become strings (`1` → `"1"`,
//! `true` → `"true"`, null → `"null"`, JSON style); integers outside i64/u64 are kept as their
//! decimal string; `.inf`/`.nan` are kept as the original text. `!!binary`, `!!set`, `!!omap`,
//! `!!pairs` and application tags are rejected (PyYAML builds bytes/sets/tuples from them, which
//! Salt configs do not use).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Number, Value};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

/// A YAML syntax or construction error, with a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {}, column {})", self.message, self.line, self.column)
    }
}

impl std::error::Error for YamlError {}

/// The Python type PyYAML would have built for a node. `yamlify_arg` decides on it, and it
/// is not always visible in the JSON value (a huge int is kept as a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    List,
    Dict,
}

/// Loads a single-document YAML text the way `salt.utils.yaml.safe_load` does.
/// An empty document is `Value::Null`.
pub fn load(src: &str) -> Result<Value, YamlError> {
    load_with_kind(src).map(|(value, _)| value)
}

/// [`load`], also returning the Python type of the root node.
pub fn load_with_kind(src: &str) -> Result<(Value, Kind), YamlError> {
    let mut parser = Parser::new_from_str(src);
    let mut builder = Builder::default();
    let mut documents = 0;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(scan_error)?;
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(error_at(&span, "expected a single document in the stream, but found another document"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let item = scalar(&text, style, tag.as_deref(), &span)?;
                builder.item(item, anchor, span)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq", &span)?;
                builder.stack.push(Frame::Seq { items: Vec::new(), anchor });
            }
            Event::MappingStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map", &span)?;
                builder.stack.push(Frame::Map(MapFrame { anchor, ..MapFrame::default() }));
            }
            Event::SequenceEnd => match builder.stack.pop() {
                Some(Frame::Seq { items, anchor }) => builder.item(Item::Node(Value::Array(items), Kind::List), anchor, span)?,
                _ => return Err(error_at(&span, "unbalanced sequence end")),
            },
            Event::MappingEnd => match builder.stack.pop() {
                Some(Frame::Map(frame)) => {
                    let anchor = frame.anchor;
                    let map = frame.finish()?;
                    builder.item(Item::Node(Value::Object(map), Kind::Dict), anchor, span)?
                }
                _ => return Err(error_at(&span, "unbalanced mapping end")),
            },
            Event::Alias(id) => {
                let Some(anchored) = builder.anchors.get(&id) else {
                    return Err(error_at(&span, "found undefined alias"));
                };
                if builder.stack.len() + anchored.depth > MAX_DEPTH {
                    return Err(error_at(&span, format!("this alias nests the document deeper than {MAX_DEPTH} levels")));
                }
                let (value, kind, nodes) = (anchored.value.clone(), anchored.kind, anchored.nodes);
                builder.spend(nodes, &span)?;
                builder.item(Item::Node(value, kind), 0, span)?;
            }
            // Stream/document boundaries, comments and anchor metadata carry no data.
            _ => {}
        }
    }
    Ok(builder.root.unwrap_or((Value::Null, Kind::Null)))
}

/// A constructed scalar, or one of the two YAML 1.1 key-only indicators.
enum Item {
    Node(Value, Kind),
    /// `<<`: merge the following mapping(s) into this one.
    Merge,
    /// `=`: PyYAML's "value" key, which Salt turns back into the string "=".
    ValueKey,
}

/// How many nodes anchors and aliases may copy in one document. An alias copies its anchor's
/// value, so a few lines of aliases of aliases ("billion laughs") describe billions of nodes;
/// building them hung the loader (found by salt-fuzz). Real configs copy a few small maps.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// The deepest nesting a document may reach through aliases (the parser itself stops at 255
/// flow and 255 block levels); libyaml's limit.
pub const MAX_DEPTH: usize = 1000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    root: Option<(Value, Kind)>,
    /// Nodes copied so far for anchors and aliases, against [`MAX_ALIAS_NODES`].
    copied: usize,
}

/// An anchored node, with its size and depth measured once.
struct Anchored {
    value: Value,
    kind: Kind,
    nodes: usize,
    depth: usize,
}

/// Nodes in `value` and its depth (a scalar is 0, `[1]` is 1), without recursion.
fn measure(value: &Value) -> (usize, usize) {
    let (mut nodes, mut depth) = (0, 0);
    let mut todo = vec![(value, 0usize)];
    while let Some((v, d)) = todo.pop() {
        nodes += 1;
        match v {
            Value::Array(items) => {
                depth = depth.max(d + 1);
                todo.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                depth = depth.max(d + 1);
                todo.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    (nodes, depth)
}

enum Frame {
    Seq { items: Vec<Value>, anchor: usize },
    Map(MapFrame),
}

#[derive(Default)]
struct MapFrame {
    anchor: usize,
    entries: Vec<(String, Value, Span)>,
    merges: Vec<(Value, Span)>,
    pending: Option<PendingKey>,
}

enum PendingKey {
    Key(String, Span),
    Merge(Span),
}

impl Builder {
    fn spend(&mut self, nodes: usize, span: &Span) -> Result<(), YamlError> {
        self.copied = self.copied.saturating_add(nodes);
        if self.copied > MAX_ALIAS_NODES {
            return Err(error_at(span, format!("anchors and aliases expand to more than {MAX_ALIAS_NODES} nodes")));
        }
        Ok(())
    }

    fn item(&mut self, item: Item, anchor: usize, span: Span) -> Result<(), YamlError> {
        if let (Item::Node(value, kind), true) = (&item, anchor != 0) {
            let (nodes, depth) = measure(value);
            self.spend(nodes, &span)?;
            let anchored = Anchored { value: value.clone(), kind: *kind, nodes, depth };
            self.anchors.insert(anchor, anchored);
        }
        let in_key_position = matches!(self.stack.last(), Some(Frame::Map(m)) if m.pending.is_none());
        let (value, kind) = match item {
            Item::Node(value, kind) => (value, kind),
            Item::Merge if in_key_position => {
                if let Some(Frame::Map(m)) = self.stack.last_mut() {
                    m.pending = Some(PendingKey::Merge(span));
                }
                return Ok(());
            }
            Item::ValueKey if in_key_position => (Value::String("=".into()), Kind::Str),
            Item::Merge => return Err(no_constructor("tag:yaml.org,2002:merge", &span)),
            Item::ValueKey => return Err(no_constructor("tag:yaml.org,2002:value", &span)),
        };
        match self.stack.last_mut() {
            None => self.root = Some((value, kind)),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map(m)) => match m.pending.take() {
                None => m.pending = Some(PendingKey::Key(key_string(value, &span)?, span)),
                Some(PendingKey::Key(key, key_span)) => m.entries.push((key, value, key_span)),
                Some(PendingKey::Merge(merge_span)) => m.merges.push((value, merge_span)),
            },
        }
        Ok(())
    }
}

impl MapFrame {
    /// Applies PyYAML/Salt merge-key semantics (`SaltYamlSafeLoader.flatten_mapping`): merged
    /// pairs come first, keys written in this mapping win over merged ones, the maps of a
    /// merge list are taken last-to-first, and any remaining duplicate is an error.
    fn finish(self) -> Result<Map<String, Value>, YamlError> {
        let mut merged = Vec::new();
        for (source, span) in self.merges {
            match source {
                Value::Object(map) => merged.extend(map.into_iter().map(|(k, v)| (k, v, span))),
                Value::Array(list) => {
                    let mut maps = Vec::new();
                    for entry in list {
                        match entry {
                            Value::Object(map) => maps.push(map),
                            other => {
                                return Err(error_at(&span, format!("expected a mapping for merging, but found {}", node_name(&other))))
                            }
                        }
                    }
                    for map in maps.into_iter().rev() {
                        merged.extend(map.into_iter().map(|(k, v)| (k, v, span)));
                    }
                }
                other => {
                    return Err(error_at(
                        &span,
                        format!("expected a mapping or list of mappings for merging, but found {}", node_name(&other)),
                    ))
                }
            }
        }
        let explicit: HashSet<&str> = self.entries.iter().map(|(k, _, _)| k.as_str()).collect();
        let merged: Vec<_> = merged.into_iter().filter(|(k, _, _)| !explicit.contains(k.as_str())).collect();
        let mut out = Map::new();
        for (key, value, span) in merged.into_iter().chain(self.entries) {
            if out.contains_key(&key) {
                return Err(error_at(&span, format!("found conflicting ID '{key}'")));
            }
            out.insert(key, value);
        }
        Ok(out)
    }
}

fn node_name(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
        _ => "scalar",
    }
}

/// JSON-style key text (what `json.dumps` writes for a non-string Python key).
fn key_string(value: Value, span: &Span) -> Result<String, YamlError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Ok("null".into()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Array(_) | Value::Object(_) => Err(error_at(span, "found unacceptable key")),
    }
}

const CORE_PREFIX: &str = "tag:yaml.org,2002:";

fn core_name(tag: &Tag) -> Option<String> {
    tag.suffix_in_namespace(CORE_PREFIX).map(|s| s.into_owned())
}

fn is_non_specific(tag: &Tag) -> bool {
    tag.parts() == ("", "!")
}

fn check_collection_tag(tag: Option<&Tag>, expected: &str, span: &Span) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if is_non_specific(t) => Ok(()),
        Some(t) if core_name(t).as_deref() == Some(expected) => Ok(()),
        Some(t) => Err(no_constructor(&tag_text(t), span)),
    }
}

fn tag_text(tag: &Tag) -> String {
    let (handle, suffix) = tag.parts();
    format!("{handle}{suffix}")
}

fn no_constructor(tag: &str, span: &Span) -> YamlError {
    error_at(span, format!("could not determine a constructor for the tag '{tag}'"))
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, span: &Span) -> Result<Item, YamlError> {
    let explicit = match tag {
        Some(t) if is_non_specific(t) => None,
        Some(t) => Some(t),
        None => None,
    };
    let Some(tag) = explicit else {
        // PyYAML resolves implicitly only plain scalars (and `!`-tagged ones).
        if style == ScalarStyle::Plain || tag.is_some() {
            return resolve_plain(text, span);
        }
        return Ok(Item::Node(Value::String(text.to_owned()), Kind::Str));
    };
    let bad = |what: &str| error_at(span, format!("invalid {what} value '{text}'"));
    let node = match core_name(tag).as_deref() {
        Some("str") | Some("timestamp") | Some("python/unicode") => (Value::String(text.to_owned()), Kind::Str),
        Some("null") => (Value::Null, Kind::Null),
        Some("bool") => match text.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" => (Value::Bool(true), Kind::Bool),
            "no" | "false" | "off" => (Value::Bool(false), Kind::Bool),
            _ => return Err(bad("bool")),
        },
        Some("int") => (construct_int(text).ok_or_else(|| bad("int"))?, Kind::Int),
        Some("float") => (construct_float(text).ok_or_else(|| bad("float"))?, Kind::Float),
        _ => return Err(no_constructor(&tag_text(tag), span)),
    };
    Ok(Item::Node(node.0, node.1))
}

fn int_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$")
            .expect("valid int regex")
    })
}

fn float_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        )
        .expect("valid float regex")
    })
}

/// PyYAML's implicit resolvers for plain scalars (YAML 1.1).
fn resolve_plain(text: &str, span: &Span) -> Result<Item, YamlError> {
    let node = match text {
        "" | "~" | "null" | "Null" | "NULL" => (Value::Null, Kind::Null),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => (Value::Bool(true), Kind::Bool),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => (Value::Bool(false), Kind::Bool),
        "<<" => return Ok(Item::Merge),
        "=" => return Ok(Item::ValueKey),
        _ if float_re().is_match(text) => {
            (construct_float(text).ok_or_else(|| error_at(span, format!("invalid float value '{text}'")))?, Kind::Float)
        }
        _ if int_re().is_match(text) => {
            (construct_int(text).ok_or_else(|| error_at(span, format!("invalid int value '{text}'")))?, Kind::Int)
        }
        _ => (Value::String(text.to_owned()), Kind::Str),
    };
    Ok(Item::Node(node.0, node.1))
}

/// `SaltYamlSafeLoader.construct_scalar` + PyYAML's `construct_yaml_int`.
fn construct_int(raw: &str) -> Option<Value> {
    let mut text = raw.to_owned();
    // Salt: "0755" is decimal 755 (signed spellings keep PyYAML's octal reading).
    if text != "0" && text.starts_with('0') && !text.starts_with("0b") && !text.starts_with("0x") {
        text = text.trim_start_matches('0').to_owned();
        if text.is_empty() {
            text = "0".into();
        }
    }
    let text = text.replace('_', "");
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    if body.is_empty() {
        return None;
    }
    let magnitude: u128 = if body == "0" {
        Some(0)
    } else if let Some(bin) = body.strip_prefix("0b") {
        u128::from_str_radix(bin, 2).ok()
    } else if let Some(hex) = body.strip_prefix("0x") {
        u128::from_str_radix(hex, 16).ok()
    } else if body.starts_with('0') {
        u128::from_str_radix(body, 8).ok()
    } else if body.contains(':') {
        body.split(':').try_fold(0u128, |acc, part| acc.checked_mul(60)?.checked_add(part.parse::<u128>().ok()?))
    } else if body.bytes().all(|b| b.is_ascii_digit()) {
        match body.parse::<u128>() {
            Ok(n) => Some(n),
            // Python ints are unbounded: keep the digits rather than fail.
            Err(_) => return Some(Value::String(format!("{}{body}", if negative { "-" } else { "" }))),
        }
    } else {
        None
    }?;
    Some(int_value(negative, magnitude))
}

fn int_value(negative: bool, magnitude: u128) -> Value {
    if negative {
        match i64::try_from(magnitude).ok().and_then(i64::checked_neg) {
            Some(n) => Value::Number(n.into()),
            None if magnitude == 1u128 << 63 => Value::Number(i64::MIN.into()),
            None => Value::String(format!("-{magnitude}")),
        }
    } else {
        match u64::try_from(magnitude) {
            Ok(n) => Value::Number(n.into()),
            Err(_) => Value::String(magnitude.to_string()),
        }
    }
}

/// PyYAML's `construct_yaml_float`. Non-finite results keep their original text, since
/// JSON has no infinity or NaN.
fn construct_float(raw: &str) -> Option<Value> {
    let text = raw.replace('_', "").to_ascii_lowercase();
    let (sign, body) = match text.as_bytes().first()? {
        b'-' => (-1.0, &text[1..]),
        b'+' => (1.0, &text[1..]),
        _ => (1.0, text.as_str()),
    };
    let value: f64 = if body == ".inf" || body == ".nan" {
        return Some(Value::String(raw.to_owned()));
    } else if body.contains(':') {
        let mut total = 0.0;
        for part in body.split(':') {
            total = total * 60.0 + part.parse::<f64>().ok()?;
        }
        sign * total
    } else {
        sign * body.parse::<f64>().ok()?
    };
    match Number::from_f64(value) {
        Some(n) => Some(Value::Number(n)),
        None => Some(Value::String(raw.to_owned())),
    }
}

fn scan_error(err: ScanError) -> YamlError {
    let marker = err.marker();
    YamlError { message: err.info(), line: marker.line(), column: marker.col() + 1 }
}

fn error_at(span: &Span, message: impl Into<String>) -> YamlError {
    YamlError { message: message.into(), line: span.start.line(), column: span.start.col() + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(src: &str) -> Value {
        load(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    #[test]
    fn yaml11_booleans_like_pyyaml() {
        assert_eq!(
            v("[yes, No, ON, off, True, FALSE, y, n, Y, yEs]"),
            json!([true, false, true, false, true, false, "y", "n", "Y", "yEs"])
        );
        // Quoted scalars are never resolved.
        assert_eq!(v("['yes', \"on\", '1', '~']"), json!(["yes", "on", "1", "~"]));
    }

    #[test]
    fn nulls() {
        assert_eq!(v("[~, null, Null, NULL, nULL]"), json!([null, null, null, null, "nULL"]));
        assert_eq!(v("a:\n"), json!({"a": null}));
        assert_eq!(v(""), Value::Null);
        assert_eq!(v("# only a comment\n"), Value::Null);
    }

    #[test]
    fn ints_like_salt() {
        assert_eq!(
            v("[0, 12, -3, +4, 1_000, 0b101, 0x1F, 0755, -010, '0755', 1:30, 08, 0o17, 12abc]"),
            json!([0, 12, -3, 4, 1000, 5, 31, 755, -8, "0755", 90, "08", "0o17", "12abc"])
        );
        assert_eq!(v("20261125003937184047"), json!("20261125003937184047"));
        assert_eq!(load_with_kind("20261125003937184047").unwrap().1, Kind::Int);
    }

    #[test]
    fn floats_need_a_dot() {
        assert_eq!(v("[1.5, -0.25, .5, 1.0e+3, 1e3, 1.e+2, 1:30.5]"), json!([1.5, -0.25, 0.5, 1000.0, "1e3", 100.0, 90.5]));
        assert_eq!(v("[.inf, -.Inf, .NaN]"), json!([".inf", "-.Inf", ".NaN"]));
        assert_eq!(load_with_kind(".inf").unwrap().1, Kind::Float);
    }

    #[test]
    fn timestamps_stay_strings() {
        assert_eq!(v("2024-01-02"), json!("2024-01-02"));
    }

    #[test]
    fn explicit_tags() {
        assert_eq!(v("[!!str 12, !!int '12', !!float '2', !!bool 'on', !!null 'x', ! 12]"), json!(["12", 12, 2.0, true, null, 12]));
        assert!(load("!!binary aGVsbG8=").is_err());
        let err = load("a: !custom 1").unwrap_err();
        assert!(err.message.contains("'!custom'"), "{err}");
    }

    #[test]
    fn mapping_keys_become_json_strings() {
        assert_eq!(v("{1: a, true: b, ~: c, 1.5: d}"), json!({"1": "a", "true": "b", "null": "c", "1.5": "d"}));
        assert!(load("? [a, b]\n: c\n").is_err());
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let src = "base: &b {x: 1, y: 2}\nother: *b\nchild:\n  <<: *b\n  y: 3\n";
        assert_eq!(v(src), json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 2}, "child": {"x": 1, "y": 3}}));
        // A merge list is taken last-to-first.
        let src = "a: &a {p: 1}\nb: &b {q: 2}\nc:\n  <<: [*a, *b]\n";
        let value = v(src);
        let keys: Vec<_> = value["c"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["q", "p"]);
    }

    /// Found by salt-fuzz (yaml target): nine lines of aliases of aliases describe 9^9 nodes
    /// and the loader hung building them. Now it stops with an error.
    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in "bcdefgh".chars() {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            src.push_str(&format!("{name}: &{name} [{refs}]\n"));
            prev = name;
        }
        let err = load(&src).unwrap_err();
        assert!(err.message.contains("expand to more than"), "{err}");
        // Ordinary reuse is unaffected.
        assert_eq!(v("a: &a {x: 1}\nb: [*a, *a, *a]\n")["b"], json!([{"x": 1}, {"x": 1}, {"x": 1}]));
    }

    /// Found alongside: each alias may add its anchor's depth, so a chain of deep anchors nests
    /// far past the parser's own limit; drop and serialisation of such a value recurse per level.
    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(200), "]".repeat(200));
        let mut src = format!("a0: &a0 {}\n", deep("x"));
        for i in 1..10 {
            src.push_str(&format!("a{i}: &a{i} {}\n", deep(&format!("*a{}", i - 1))));
        }
        let err = load(&src).unwrap_err();
        assert!(err.message.contains("deeper than 1000 levels"), "{err}");
        let ok = format!("a0: &a0 {}\nb: {}\n", deep("x"), deep("*a0"));
        assert!(load(&ok).is_ok());
    }

    #[test]
    fn duplicate_keys_are_an_error_with_position() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.message, "found conflicting ID 'a'");
        assert_eq!((err.line, err.column), (3, 1));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = load("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        let err = load("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
    }

    #[test]
    fn only_one_document() {
        assert!(load("a: 1\n---\nb: 2\n").is_err());
        assert_eq!(v("---\na: 1\n"), json!({"a": 1}));
    }

    #[test]
    fn unicode_and_block_scalars() {
        assert_eq!(v("héllo wörld ✓"), json!("héllo wörld ✓"));
        assert_eq!(v("a: |\n  x\n  y\n"), json!({"a": "x\ny\n"}));
    }
}
