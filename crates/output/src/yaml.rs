//! The `yaml` outputter (`salt/output/yaml_out.py`).
//!
//! Salt calls `yaml.dump(data, Dumper=SafeOrderedDumper, default_flow_style=False,
//! allow_unicode=True)`, and PyYAML's wheels run that through libyaml's C
//! emitter. Users see that emitter's exact choices: keys sorted, lists
//! under a key not indented, strings that would read back as another type
//! (`'true'`, `'123'`, `''`) single-quoted, multi-line text single-quoted
//! with doubled line breaks, control characters and anything outside the
//! Basic Multilingual Plane double-quoted with escapes, long plain or quoted
//! text folded at column 80, and keys over 128 bytes written as `? key`.
//! So this module is a port of the parts of libyaml's emitter (and PyYAML's
//! representer and implicit resolver) that JSON-shaped data can reach.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::pyrepr;
use crate::{OutputIndent, OutputOptions};

/// `yaml_out.output`; `None` where Salt's outputter raises TypeError (so
/// Salt falls back to `nested`).
pub(crate) fn output(data: &Value, opts: &OutputOptions) -> Option<String> {
    match opts.indent {
        OutputIndent::Unset => Some(dump(data, false, 2)),
        OutputIndent::Spaces(n) if n >= 0 => Some(dump(data, false, n as usize)),
        OutputIndent::Spaces(_) => Some(dump(data, true, 0)),
        // `"pretty" >= 0` / `None >= 0` raise TypeError in yaml_out.
        OutputIndent::Pretty | OutputIndent::Null => None,
    }
}

/// `yaml.safe_dump(data, default_flow_style=flow, indent=indent,
/// allow_unicode=True)` as the libyaml emitter writes it.
pub fn dump(data: &Value, flow: bool, indent: usize) -> String {
    let mut e = Emitter {
        out: String::new(),
        flow_style: flow,
        best_indent: if (2..=9).contains(&indent) { indent } else { 2 },
        best_width: 80,
        indent: None,
        indents: Vec::new(),
        flow_level: 0,
        column: 0,
        whitespace: true,
        indention: true,
        mapping_context: false,
        simple_key_context: false,
    };
    e.node(data, Context::Root);
    // DOCUMENT-END of an implicit document: just end the last line.
    e.write_indent();
    e.out
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Root,
    Sequence,
    Mapping,
    SimpleKey,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
}

struct Emitter {
    out: String,
    flow_style: bool,
    best_indent: usize,
    best_width: usize,
    /// `None` is libyaml's `-1`: no enclosing block yet.
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    flow_level: usize,
    column: usize,
    /// The last character written was whitespace.
    whitespace: bool,
    /// Only indentation (and indicators like `-`) so far on this line.
    indention: bool,
    mapping_context: bool,
    simple_key_context: bool,
}

impl Emitter {
    fn node(&mut self, value: &Value, ctx: Context) {
        self.mapping_context = matches!(ctx, Context::Mapping | Context::SimpleKey);
        self.simple_key_context = ctx == Context::SimpleKey;
        match value {
            Value::Array(items) => {
                if self.flow_level > 0 || self.flow_style || items.is_empty() {
                    self.flow_sequence(items);
                } else {
                    self.block_sequence(items);
                }
            }
            Value::Object(map) => {
                let entries = pyrepr::entries(map, true);
                if self.flow_level > 0 || self.flow_style || entries.is_empty() {
                    self.flow_mapping(&entries);
                } else {
                    self.block_mapping(&entries);
                }
            }
            scalar => {
                let (text, plain_implicit) = represent_scalar(scalar);
                let analysis = analyze(&text);
                let style = self.select_style(&text, &analysis, plain_implicit);
                self.increase_indent(true, false);
                let allow_breaks = !self.simple_key_context;
                match style {
                    Style::Plain => self.write_plain(&text, allow_breaks),
                    Style::Single => self.write_single_quoted(&text, allow_breaks),
                    Style::Double => self.write_double_quoted(&text, allow_breaks),
                }
                self.indent = self.indents.pop().flatten();
            }
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None => Some(if flow { self.best_indent } else { 0 }),
            Some(i) if !indentless => Some(i + self.best_indent),
            Some(i) => Some(i),
        };
    }

    fn block_sequence(&mut self, items: &[Value]) {
        let indentless = self.mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Context::Sequence);
        }
        self.indent = self.indents.pop().flatten();
    }

    fn block_mapping(&mut self, entries: &[(&String, &Value)]) {
        self.increase_indent(false, false);
        for (key, value) in entries {
            self.write_indent();
            let key = Value::String((*key).clone());
            if is_simple_key(&key) {
                self.node(&key, Context::SimpleKey);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(&key, Context::Mapping);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, Context::Mapping);
        }
        self.indent = self.indents.pop().flatten();
    }

    fn flow_sequence(&mut self, items: &[Value]) {
        self.write_indicator("[", true, true, false);
        self.increase_indent(true, false);
        self.flow_level += 1;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            self.node(item, Context::Sequence);
        }
        self.flow_level -= 1;
        self.indent = self.indents.pop().flatten();
        self.write_indicator("]", false, false, false);
    }

    fn flow_mapping(&mut self, entries: &[(&String, &Value)]) {
        self.write_indicator("{", true, true, false);
        self.increase_indent(true, false);
        self.flow_level += 1;
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            let key = Value::String((*key).clone());
            if is_simple_key(&key) {
                self.node(&key, Context::SimpleKey);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, false);
                self.node(&key, Context::Mapping);
                if self.column > self.best_width {
                    self.write_indent();
                }
                self.write_indicator(":", true, false, false);
            }
            self.node(value, Context::Mapping);
        }
        self.flow_level -= 1;
        self.indent = self.indents.pop().flatten();
        self.write_indicator("}", false, false, false);
    }

    /// `yaml_emitter_select_scalar_style` for untagged, unstyled scalars.
    fn select_style(&self, text: &str, a: &Analysis, plain_implicit: bool) -> Style {
        if self.simple_key_context && a.multiline {
            return Style::Double;
        }
        let mut style = Style::Plain;
        if (self.flow_level > 0 && !a.flow_plain_allowed)
            || (self.flow_level == 0 && !a.block_plain_allowed)
            || (text.is_empty() && (self.flow_level > 0 || self.simple_key_context))
            || !plain_implicit
        {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        style
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// libyaml's WRITE_BREAK: `\n` as the configured break, others verbatim.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, text: &str, allow_breaks: bool) {
        if !self.whitespace && (!text.is_empty() || self.flow_level > 0) {
            self.put(' ');
        }
        self.write_folded_text(text, allow_breaks, Style::Plain);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        self.write_folded_text(text, allow_breaks, Style::Single);
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The text of a plain or single-quoted scalar, as libyaml's
    /// `yaml_emitter_write_plain_scalar` and `yaml_emitter_write_single_quoted`
    /// write it: a space past the best width becomes a line break (unless a
    /// space follows), and a run of line breaks gets one break more, so that
    /// it reads back. The two differ only where `quoted` is tested.
    fn write_folded_text(&mut self, text: &str, allow_breaks: bool, style: Style) {
        let quoted = match style {
            Style::Plain => false,
            Style::Single => true,
            Style::Double => unreachable!("double-quoted text has its own writer"),
        };
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                // Quoted text never folds at its first or last character.
                let at_either_end = i == 0 || i == chars.len() - 1;
                if allow_breaks && !spaces && self.column > self.best_width && !(quoted && at_either_end) && !next_is_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if quoted && c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if quoted && breaks {
            self.write_indent();
        }
    }

    fn write_double_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\x07' => self.put('a'),
                    '\x08' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\x0b' => self.put('v'),
                    '\x0c' => self.put('f'),
                    '\r' => self.put('r'),
                    '\x1b' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    c => {
                        let cp = c as u32;
                        let escaped = if cp <= 0xff {
                            format!("x{cp:02X}")
                        } else if cp <= 0xffff {
                            format!("u{cp:04X}")
                        } else {
                            format!("U{cp:08X}")
                        };
                        for e in escaped.chars() {
                            self.put(e);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width && i != 0 && i != chars.len() - 1 {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
            i += 1;
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }
}

/// A key fits on one line as `key: value` if it has no line break and is at
/// most 128 bytes (libyaml counts bytes).
fn is_simple_key(key: &Value) -> bool {
    let (text, _) = represent_scalar(key);
    !analyze(&text).multiline && text.len() <= 128
}

/// PyYAML's SafeRepresenter: the scalar's text, and whether that text read
/// back as a plain scalar gives the same type ("plain implicit").
fn represent_scalar(value: &Value) -> (String, bool) {
    match value {
        Value::Null => ("null".into(), true),
        Value::Bool(b) => ((if *b { "true" } else { "false" }).into(), true),
        Value::Number(n) => {
            if n.is_f64() {
                (represent_float(n.as_f64().unwrap_or(f64::NAN)), true)
            } else {
                (pyrepr::repr_number(n), true)
            }
        }
        Value::String(s) => (s.clone(), !resolves_to_non_string(s)),
        Value::Array(_) | Value::Object(_) => unreachable!("collections are not scalars"),
    }
}

/// `SafeRepresenter.represent_float`: repr, lowercased, `1e+16` -> `1.0e+16`.
fn represent_float(x: f64) -> String {
    if x.is_nan() {
        return ".nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let value = pyrepr::repr_float(x).to_lowercase();
    if !value.contains('.') && value.contains('e') {
        value.replacen('e', ".0e", 1)
    } else {
        value
    }
}

/// PyYAML's YAML 1.1 implicit resolvers (bool, float, int, merge, null,
/// timestamp, value, yaml): a string matching one must be quoted.
fn resolves_to_non_string(s: &str) -> bool {
    static IMPLICIT: LazyLock<Regex> = LazyLock::new(|| {
        let patterns = [
            // bool
            r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            // float
            r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?",
            r"\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
            r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"[-+]?\.(?:inf|Inf|INF)",
            r"\.(?:nan|NaN|NAN)",
            // int
            r"[-+]?0b[0-1_]+",
            r"[-+]?0[0-7_]+",
            r"[-+]?(?:0|[1-9][0-9_]*)",
            r"[-+]?0x[0-9a-fA-F_]+",
            r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            // merge, null, value, yaml
            r"<<",
            r"~|null|Null|NULL|",
            r"=",
            r"!|&|\*",
            // timestamp
            r"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]",
            r"[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?",
        ];
        Regex::new(&format!("^(?:{})$", patterns.join("|"))).expect("resolver patterns are valid")
    });
    IMPLICIT.is_match(s)
}

/// What `yaml_emitter_analyze_scalar` learns about a scalar's text.
struct Analysis {
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
}

fn analyze(text: &str) -> Analysis {
    if text.is_empty() {
        return Analysis { multiline: false, flow_plain_allowed: false, block_plain_allowed: true, single_quoted_allowed: true };
    }
    let chars: Vec<char> = text.chars().collect();
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);

    if text.starts_with("---") || text.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = chars.get(1).is_none_or(|c| is_blankz(*c));

    for (i, &c) in chars.iter().enumerate() {
        let last = i == chars.len() - 1;
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                flow_indicators = true;
                block_indicators = true;
            }
            if c == '?' || c == ':' {
                flow_indicators = true;
                if followed_by_whitespace {
                    block_indicators = true;
                }
            }
            if c == '-' && followed_by_whitespace {
                flow_indicators = true;
                block_indicators = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                flow_indicators = true;
            }
            if c == ':' {
                flow_indicators = true;
                if followed_by_whitespace {
                    block_indicators = true;
                }
            }
            if c == '#' && preceded_by_whitespace {
                flow_indicators = true;
                block_indicators = true;
            }
        }
        if !is_printable(c) {
            special_characters = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(c);
        followed_by_whitespace = chars.get(i + 2).is_none_or(|c| is_blankz(*c));
    }

    let mut a = Analysis { multiline: line_breaks, flow_plain_allowed: true, block_plain_allowed: true, single_quoted_allowed: true };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if break_space {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if line_breaks {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if flow_indicators {
        a.flow_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// libyaml's IS_PRINTABLE: note it excludes everything above U+FFFF, so
/// emoji are escaped even with `allow_unicode`.
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0a | 0x20..=0x7e | 0xa0..=0xd7ff | 0xe000..=0xfffd) && c != '\u{feff}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\0' || is_break(c)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputIndent, OutputOptions, Outputter};

    fn yaml(data: serde_json::Value) -> String {
        render(Outputter::Yaml, &data, &OutputOptions::default())
    }

    fn yaml_indent(data: serde_json::Value, indent: OutputIndent) -> String {
        let opts = OutputOptions { indent, ..OutputOptions::default() };
        render(Outputter::Yaml, &data, &opts)
    }

    // Expected strings below were produced by Salt 3008.4's yaml outputter
    // (PyYAML 6.0.4 with libyaml) on the same data.

    #[test]
    fn test_ping() {
        assert_eq!(yaml(json!({"minion1": true})), "minion1: true\n");
    }

    #[test]
    fn dict_keys_sorted_and_lists_not_indented() {
        let data = json!({"minion1": {"pid": 16476, "fun": "cmd.run", "arg": ["sleep 100"],
            "tgt": "*", "ret": "", "resource_targets": [], "pure_resource_target": false}});
        let want = "minion1:\n  arg:\n  - sleep 100\n  fun: cmd.run\n  pid: 16476\n  pure_resource_target: false\n  resource_targets: []\n  ret: ''\n  tgt: '*'\n";
        assert_eq!(yaml(data), want);
    }

    #[test]
    fn multi_line_strings_are_single_quoted_with_doubled_breaks() {
        let want = "minion1: 'bin\n\n  boot\n\n  dev'\n";
        assert_eq!(yaml(json!({"minion1": "bin\nboot\ndev"})), want);
    }

    #[test]
    fn strings_that_look_like_other_types_are_quoted() {
        let data = json!({"a": "true", "b": "123", "c": "1.5", "d": "null", "e": "~",
            "f": "2024-01-01", "g": "yes", "h": "0x1F", "i": "1:20", "j": "plain text"});
        let want = "a: 'true'\nb: '123'\nc: '1.5'\nd: 'null'\ne: '~'\nf: '2024-01-01'\ng: 'yes'\nh: '0x1F'\ni: '1:20'\nj: plain text\n";
        assert_eq!(yaml(data), want);
    }

    #[test]
    fn scalars_and_floats() {
        let data = json!({"f": 1.0, "g": 1e16, "h": 2.5e-7, "i": -3, "n": null});
        assert_eq!(yaml(data), "f: 1.0\ng: 1.0e+16\nh: 2.5e-07\ni: -3\nn: null\n");
    }

    #[test]
    fn special_characters_are_double_quoted() {
        let data = json!({"tab": "a\tb", "emoji": "smile 😀", "uni": "héllo wörld ✓", "sb": "a \nb"});
        let want = "emoji: \"smile \\U0001F600\"\nsb: \"a \\nb\"\ntab: \"a\\tb\"\nuni: héllo wörld ✓\n";
        assert_eq!(yaml(data), want);
    }

    #[test]
    fn nested_lists_and_dicts_in_lists() {
        let data = json!({"m": [[1, 2], {"b": 1, "a": [true]}, []]});
        let want = "m:\n- - 1\n  - 2\n- a:\n  - true\n  b: 1\n- []\n";
        assert_eq!(yaml(data), want);
    }

    #[test]
    fn long_plain_text_folds_at_80_columns() {
        let text = "word ".repeat(30);
        let text = text.trim_end();
        let want = "k: word word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word\n";
        assert_eq!(yaml(json!({"k": text})), want);
    }

    #[test]
    fn long_keys_become_complex_keys() {
        let key = "k".repeat(129);
        assert_eq!(yaml(json!({key.clone(): 1})), format!("? {key}\n: 1\n"));
        let key = "k".repeat(128);
        assert_eq!(yaml(json!({key.clone(): 1})), format!("{key}: 1\n"));
    }

    #[test]
    fn top_level_scalars_and_empties() {
        assert_eq!(yaml(json!("hello")), "hello\n");
        assert_eq!(yaml(json!("")), "''\n");
        assert_eq!(yaml(json!({})), "{}\n");
        assert_eq!(yaml(json!([1, "a"])), "- 1\n- a\n");
    }

    #[test]
    fn out_indent_changes_block_indent_and_negative_means_flow() {
        let data = json!({"m": {"a": [1, 2], "b": "x y"}});
        assert_eq!(yaml_indent(data.clone(), OutputIndent::Spaces(4)), "m:\n    a:\n    - 1\n    - 2\n    b: x y\n");
        assert_eq!(yaml_indent(data.clone(), OutputIndent::Spaces(-1)), "{m: {a: [1, 2], b: x y}}\n");
        // Salt's yaml outputter raises on `pretty`; Salt falls back to nested.
        assert_eq!(yaml_indent(data, OutputIndent::Pretty), "m:\n    ----------\n    a:\n        - 1\n        - 2\n    b:\n        x y\n");
    }
}
