//! Salt's outputters: how `salt`, `salt-run`, `salt-call` and `salt-key`
//! turn returned data into text, byte for byte as Salt 3008 prints it.
//!
//! Each outputter is a module named like Salt's (`nested`, `json`, `yaml`,
//! `txt`, `raw`, `pprint`, `no_return`, `key`); [`render`] is Salt's
//! `salt.output.display_output`: run the outputter, strip trailing
//! whitespace, and end with one newline, or print nothing at all when the
//! result is empty. Python's spelling of values (`True`, `None`, `'quoted'`,
//! `1e+16`) lives in one place, [`pyrepr`], shared by every outputter.
//!
//! The `salt` CLI calls [`render`] once per minion return as it arrives
//! (data `{minion_id: return}`) and passes that return's retcode in
//! [`OutputOptions::retcode`], which only changes colours.

mod color;
mod json;
mod key;
mod nested;
mod no_return;
mod pprint;
pub mod pyrepr;
mod raw;
mod txt;
mod yaml;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use json::dumps as json_dumps;
pub use pprint::pformat;
pub use yaml::dump as yaml_dump;

/// An outputter, by the name `--out` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outputter {
    /// Salt's default: indented keys and values.
    Nested,
    Json,
    Yaml,
    /// Python `str()` of the data.
    Raw,
    /// `minion: line` per line.
    Txt,
    /// Prints nothing. (Salt 3008 no longer ships `quiet`; there the name
    /// falls back to `nested`.)
    Quiet,
    /// For minions that did not return.
    NoReturn,
    /// `salt-key` listings.
    Key,
    /// Python `pprint.pformat`.
    Pprint,
}

impl Outputter {
    /// Every outputter, in the order names are listed in errors.
    pub const ALL: [Outputter; 9] = [
        Outputter::Json,
        Outputter::Key,
        Outputter::Nested,
        Outputter::NoReturn,
        Outputter::Pprint,
        Outputter::Quiet,
        Outputter::Raw,
        Outputter::Txt,
        Outputter::Yaml,
    ];

    /// The name Salt uses for this outputter.
    pub fn name(self) -> &'static str {
        match self {
            Outputter::Nested => "nested",
            Outputter::Json => "json",
            Outputter::Yaml => "yaml",
            Outputter::Raw => "raw",
            Outputter::Txt => "txt",
            Outputter::Quiet => "quiet",
            Outputter::NoReturn => "no_return",
            Outputter::Key => "key",
            Outputter::Pprint => "pprint",
        }
    }
}

impl fmt::Display for Outputter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--out` name that is not an outputter. Salt itself logs
/// "Invalid outputter <name> specified, fall back to nested" and uses
/// `nested`; callers that want that behaviour use `unwrap_or(Outputter::Nested)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOutputter(pub String);

impl fmt::Display for UnknownOutputter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Outputter::ALL.iter().map(|o| o.name()).collect();
        write!(f, "Invalid outputter {} specified; valid outputters are: {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownOutputter {}

impl FromStr for Outputter {
    type Err = UnknownOutputter;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        // "text" is accepted as an alias, as salt.output.get_printout does.
        if name == "text" {
            return Ok(Outputter::Txt);
        }
        Outputter::ALL.into_iter().find(|o| o.name() == name).ok_or_else(|| UnknownOutputter(name.to_string()))
    }
}

/// Salt's `output_indent` setting (`--out-indent`, or the config key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputIndent {
    /// Not set: json indents 4, yaml 2.
    #[default]
    Unset,
    /// A number of spaces; negative means one line (json) or flow style (yaml).
    Spaces(i64),
    /// `output_indent: pretty` in config: json indents 4 and sorts keys.
    Pretty,
    /// `output_indent: null` in config: json on one line.
    Null,
}

impl From<Option<i64>> for OutputIndent {
    /// From the `--out-indent` flag.
    fn from(flag: Option<i64>) -> Self {
        flag.map_or(OutputIndent::Unset, OutputIndent::Spaces)
    }
}

impl OutputIndent {
    /// From the `output_indent` config value (integer, `pretty`, or null).
    pub fn from_config(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(OutputIndent::Null),
            Value::String(s) if s == "pretty" => Some(OutputIndent::Pretty),
            Value::Number(n) => n.as_i64().map(OutputIndent::Spaces),
            _ => None,
        }
    }
}

/// How to render. `Default` is what `salt ... | cat` gets: no colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputOptions {
    /// Terminal colours; decide with [`should_color`].
    pub color: bool,
    /// `--out-indent` / `output_indent`.
    pub indent: OutputIndent,
    /// The return's retcode; non-zero paints nested structure red.
    pub retcode: i64,
    /// `nested_indent`: base indentation of the nested outputter.
    pub nested_indent: usize,
    /// `strip_colors` (default true): ESC in returned text prints as `?`.
    pub strip_colors: bool,
    /// Indentation of `key` output (Salt uses 4 for multi-master listings).
    pub key_indent: usize,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions { color: false, indent: OutputIndent::Unset, retcode: 0, nested_indent: 0, strip_colors: true, key_indent: 0 }
    }
}

/// Salt's colour decision (`salt.output.get_printout`): `--force-color`
/// wins, then `--no-color`, and otherwise colour only on a terminal.
pub fn should_color(force_color: bool, no_color: bool, stdout_is_tty: bool) -> bool {
    force_color || (!no_color && stdout_is_tty)
}

/// The text Salt writes for `data`: the outputter's result with trailing
/// whitespace stripped and a final newline, or `""` when there is nothing
/// to print (Salt then prints no line at all). Also what `--out-file`
/// appends.
pub fn render(out: Outputter, data: &Value, opts: &OutputOptions) -> String {
    let text = out_format(out, data, opts);
    if text.is_empty() {
        text
    } else {
        text + "\n"
    }
}

/// Salt's `salt.output.out_format`: the outputter's text with trailing
/// whitespace stripped and no final newline. An outputter that cannot
/// handle the data falls back to `nested`, as Salt's `try_printout` does.
pub fn out_format(out: Outputter, data: &Value, opts: &OutputOptions) -> String {
    let text = match out {
        Outputter::Nested => nested::output(data, opts),
        Outputter::Json => json::output(data, opts),
        Outputter::Yaml => yaml::output(data, opts).unwrap_or_else(|| nested::output(data, opts)),
        Outputter::Raw => raw::output(data),
        Outputter::Txt => txt::output(data),
        Outputter::Quiet => String::new(),
        Outputter::NoReturn => no_return::output(data, opts.color),
        Outputter::Key => key::output(data, opts).unwrap_or_else(|| nested::output(data, opts)),
        Outputter::Pprint => match opts.indent {
            OutputIndent::Unset | OutputIndent::Spaces(..0) => pprint::pformat(data, 1),
            OutputIndent::Spaces(n) => pprint::pformat(data, n as usize),
            // `"pretty" >= 0` raises TypeError in pprint_out: Salt falls back to nested.
            OutputIndent::Pretty | OutputIndent::Null => nested::output(data, opts),
        },
    };
    pyrepr::rstrip(&text).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_parse_and_unknown_names_list_the_valid_ones() {
        for o in Outputter::ALL {
            assert_eq!(o.name().parse::<Outputter>(), Ok(o));
        }
        assert_eq!("text".parse::<Outputter>(), Ok(Outputter::Txt));
        let err = "bogus".parse::<Outputter>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid outputter bogus specified; valid outputters are: json, key, nested, no_return, pprint, quiet, raw, txt, yaml"
        );
    }

    #[test]
    fn render_strips_trailing_whitespace_and_adds_one_newline() {
        let opts = OutputOptions::default();
        assert_eq!(render(Outputter::Raw, &json!("x  \n\n"), &opts), "x\n");
        assert_eq!(render(Outputter::Quiet, &json!({"m": true}), &opts), "");
        assert_eq!(render(Outputter::Txt, &json!({"m": ""}), &opts), "");
    }

    #[test]
    fn indent_from_flag_and_config() {
        assert_eq!(OutputIndent::from(None), OutputIndent::Unset);
        assert_eq!(OutputIndent::from(Some(-1)), OutputIndent::Spaces(-1));
        assert_eq!(OutputIndent::from_config(&json!("pretty")), Some(OutputIndent::Pretty));
        assert_eq!(OutputIndent::from_config(&json!(null)), Some(OutputIndent::Null));
        assert_eq!(OutputIndent::from_config(&json!(2)), Some(OutputIndent::Spaces(2)));
        assert_eq!(OutputIndent::from_config(&json!("x")), None);
    }

    #[test]
    fn color_decision() {
        assert!(should_color(true, true, false));
        assert!(!should_color(false, true, true));
        assert!(should_color(false, false, true));
        assert!(!should_color(false, false, false));
    }

    #[test]
    fn pprint_honours_out_indent() {
        let data = json!({"k": ["a".repeat(40), "b".repeat(40)]});
        let opts = OutputOptions { indent: OutputIndent::Spaces(4), ..OutputOptions::default() };
        let want = format!("{{   'k': [   '{}',\n             '{}']}}\n", "a".repeat(40), "b".repeat(40));
        assert_eq!(render(Outputter::Pprint, &data, &opts), want);
    }
}
