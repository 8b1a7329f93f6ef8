//! The `nested` outputter (`salt/output/nested.py`), Salt's default.
//!
//! Dict keys are printed sorted (Salt sorts every plain dict; only
//! `OrderedDict`s keep their order, and decoded returns are plain dicts).
//! A dict below the top level starts with a `----------` line; lists print
//! `- item`, and a dict or list inside a list starts with `|_` and is
//! indented two more columns. Strings print one line per `splitlines()`
//! line, so an empty string prints nothing and a blank line inside a string
//! prints as bare indentation.

use serde_json::Value;

use crate::color::{strip_esc_sequence, Colors};
use crate::pyrepr;
use crate::OutputOptions;

pub(crate) fn output(data: &Value, opts: &OutputOptions) -> String {
    let nest = Nest { colors: Colors::new(opts.color), strip_colors: opts.strip_colors, failed: opts.retcode != 0 };
    let mut lines = Vec::new();
    nest.display(data, opts.nested_indent, "", &mut lines);
    lines.join("\n")
}

struct Nest {
    colors: Colors,
    strip_colors: bool,
    /// A non-zero retcode paints list and dict structure red.
    failed: bool,
}

impl Nest {
    /// `NestDisplay.ustring`: indent, colour, prefix, text, end colour, suffix.
    fn ustring(&self, indent: usize, color: &str, msg: &str, prefix: &str, suffix: &str) -> String {
        format!("{}{color}{prefix}{msg}{}{suffix}", " ".repeat(indent), self.colors.endc)
    }

    fn structure_color(&self, normal: &'static str) -> &'static str {
        if self.failed {
            self.colors.red
        } else {
            normal
        }
    }

    fn display(&self, ret: &Value, indent: usize, prefix: &str, out: &mut Vec<String>) {
        let c = self.colors;
        match ret {
            Value::Null | Value::Bool(_) | Value::Number(_) => {
                out.push(self.ustring(indent, c.light_yellow, &pyrepr::repr(ret), prefix, ""));
            }
            Value::String(s) => {
                let blank_prefix = " ".repeat(prefix.chars().count());
                for (i, line) in pyrepr::splitlines(s).into_iter().enumerate() {
                    let line_prefix = if i == 0 { prefix } else { &blank_prefix };
                    let line = if self.strip_colors { strip_esc_sequence(line) } else { line.to_string() };
                    out.push(self.ustring(indent, c.green, &line, line_prefix, ""));
                }
            }
            Value::Array(items) => {
                let color = self.structure_color(c.green);
                for item in items {
                    match item {
                        Value::Array(_) | Value::Object(_) => {
                            out.push(self.ustring(indent, color, "|_", "", ""));
                            let inner = if item.is_object() { "" } else { "- " };
                            self.display(item, indent + 2, inner, out);
                        }
                        _ => self.display(item, indent, "- ", out),
                    }
                }
            }
            Value::Object(map) => {
                let color = self.structure_color(c.cyan);
                if indent > 0 {
                    out.push(self.ustring(indent, color, "----------", "", ""));
                }
                for (key, val) in pyrepr::entries(map, true) {
                    out.push(self.ustring(indent, color, key, prefix, ":"));
                    self.display(val, indent + 4, "", out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputOptions, Outputter};

    fn nested(data: serde_json::Value) -> String {
        render(Outputter::Nested, &data, &OutputOptions::default())
    }

    #[test]
    fn test_ping() {
        assert_eq!(nested(json!({"minion1": true})), "minion1:\n    True\n");
    }

    #[test]
    fn multi_line_string_prints_one_line_each() {
        let out = nested(json!({"minion1": "bin\nboot\ndev"}));
        assert_eq!(out, "minion1:\n    bin\n    boot\n    dev\n");
    }

    #[test]
    fn list_of_strings() {
        let data = json!({"minion1": ["highstate", "local", "local_cache"]});
        assert_eq!(nested(data), "minion1:\n    - highstate\n    - local\n    - local_cache\n");
    }

    #[test]
    fn unicode_is_untouched() {
        assert_eq!(nested(json!({"minion1": "héllo wörld ✓"})), "minion1:\n    héllo wörld ✓\n");
    }

    /// Transcript: `salt '*' saltutil.find_job <jid>` (keys arrive unsorted,
    /// print sorted; empty list and empty string print only the key).
    #[test]
    fn find_job_block_from_transcript() {
        let data = json!({"minion1": {
            "pid": 16476, "fun": "cmd.run", "arg": ["sleep 100"], "tgt": "*",
            "jid": "20261125003832838505", "ret": "mysql", "tgt_type": "glob",
            "user": "root", "resource_targets": [], "pure_resource_target": false,
            "minion_is_target": true
        }});
        let want = "\
minion1:
    ----------
    arg:
        - sleep 100
    fun:
        cmd.run
    jid:
        20261125003832838505
    minion_is_target:
        True
    pid:
        16476
    pure_resource_target:
        False
    resource_targets:
    ret:
        mysql
    tgt:
        *
    tgt_type:
        glob
    user:
        root
";
        assert_eq!(nested(data), want);
    }

    /// Transcript: `saltutil.running` (a list of dicts uses `|_`).
    #[test]
    fn running_list_of_dicts_from_transcript() {
        let data = json!({"minion1": [{
            "arg": ["sleep 100"], "fun": "cmd.run", "jid": "20261125003832838505",
            "minion_is_target": true, "pid": 16476, "pure_resource_target": false,
            "resource_targets": [], "ret": "mysql", "tgt": "*", "tgt_type": "glob",
            "user": "root"
        }]});
        let want = "\
minion1:
    |_
      ----------
      arg:
          - sleep 100
      fun:
          cmd.run
      jid:
          20261125003832838505
      minion_is_target:
          True
      pid:
          16476
      pure_resource_target:
          False
      resource_targets:
      ret:
          mysql
      tgt:
          *
      tgt_type:
          glob
      user:
          root
";
        assert_eq!(nested(data), want);
    }

    /// Transcript: `find_job` after kill returns `{}`; `kill_job` of an
    /// unknown jid returns `""`.
    #[test]
    fn empty_dict_and_empty_string() {
        assert_eq!(nested(json!({"minion1": {}})), "minion1:\n    ----------\n");
        assert_eq!(nested(json!({"minion1": ""})), "minion1:\n");
        assert_eq!(nested(json!({"minion1": []})), "minion1:\n");
        // Nothing at all to print: Salt prints nothing, not even a newline.
        assert_eq!(nested(json!({})), "");
        assert_eq!(nested(json!("")), "");
    }

    /// Transcript: a minion that did not return; the blank line inside the
    /// message keeps its four spaces of indentation.
    #[test]
    fn minion_did_not_return_block() {
        let msg = "Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid 20261125005607604356";
        let want = "minion2:\n    Minion did not return. [No response]\n    The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n    \n    salt-run jobs.lookup_jid 20261125005607604356\n";
        assert_eq!(nested(json!({"minion2": msg})), want);
    }

    /// Transcript: `salt '*' test.arg 1 two a=b c='{x: 1}'`.
    #[test]
    fn test_arg_with_kwargs_from_transcript() {
        let data = json!({"minion1": {
            "args": [1, "two"],
            "kwargs": {
                "a": "b",
                "c": {"x": 1},
                "__pub_arg": [1, "two", {"__kwarg__": true, "a": "b", "c": {"x": 1}}],
                "__pub_fun": "test.arg",
                "__pub_jid": "20261125003920420732",
                "__pub_minion_is_target": true,
                "__pub_pure_resource_target": false,
                "__pub_resource_targets": [],
                "__pub_ret": "",
                "__pub_tgt": "*",
                "__pub_tgt_type": "glob",
                "__pub_user": "root"
            }
        }});
        let want = "\
minion1:
    ----------
    args:
        - 1
        - two
    kwargs:
        ----------
        __pub_arg:
            - 1
            - two
            |_
              ----------
              __kwarg__:
                  True
              a:
                  b
              c:
                  ----------
                  x:
                      1
        __pub_fun:
            test.arg
        __pub_jid:
            20261125003920420732
        __pub_minion_is_target:
            True
        __pub_pure_resource_target:
            False
        __pub_resource_targets:
        __pub_ret:
        __pub_tgt:
            *
        __pub_tgt_type:
            glob
        __pub_user:
            root
        a:
            b
        c:
            ----------
            x:
                1
";
        assert_eq!(nested(data), want);
    }

    /// Transcript: `salt-run jobs.list_job <jid>` with the local cache (a
    /// top-level dict has no `----------`; a multi-line return nests).
    #[test]
    fn list_job_from_transcript() {
        let data = json!({
            "jid": "20261125003808100453",
            "Function": "cmd.run",
            "Arguments": ["ls /"],
            "Target": "*",
            "Target-type": "glob",
            "User": "root",
            "StartTime": "2026, Nov 25 00:38:08.100453",
            "Minions": ["minion1"],
            "Result": {"minion1": {"return": "bin\nboot\nvar", "retcode": 0, "success": true}}
        });
        let want = "\
Arguments:
    - ls /
Function:
    cmd.run
Minions:
    - minion1
Result:
    ----------
    minion1:
        ----------
        retcode:
            0
        return:
            bin
            boot
            var
        success:
            True
StartTime:
    2026, Nov 25 00:38:08.100453
Target:
    *
Target-type:
    glob
User:
    root
jid:
    20261125003808100453
";
        assert_eq!(nested(data), want);
    }

    /// Transcript: `salt-run jobs.active` (a list holding a dict of pids).
    #[test]
    fn jobs_active_from_transcript() {
        let data = json!({"20261125003832838505": {
            "Function": "cmd.run", "Arguments": ["sleep 100"], "Target": "*",
            "Target-type": "glob", "User": "root",
            "StartTime": "2026, Nov 25 00:38:32.838505",
            "Running": [{"minion1": 16476}], "Returned": []
        }});
        let want = "\
20261125003832838505:
    ----------
    Arguments:
        - sleep 100
    Function:
        cmd.run
    Returned:
    Running:
        |_
          ----------
          minion1:
              16476
    StartTime:
        2026, Nov 25 00:38:32.838505
    Target:
        *
    Target-type:
        glob
    User:
        root
";
        assert_eq!(nested(data), want);
    }

    #[test]
    fn scalars_floats_lists_in_lists_and_multiline_list_items() {
        let data = json!({"m": [1.0, null, [1, "a"], "x\ny", 1e16]});
        let want = "m:\n    - 1.0\n    - None\n    |_\n      - 1\n      - a\n    - x\n      y\n    - 1e+16\n";
        assert_eq!(nested(data), want);
    }

    #[test]
    fn escape_characters_in_values_are_neutralised() {
        assert_eq!(nested(json!({"m": "a\x1b[31mb"})), "m:\n    a?[31mb\n");
        let opts = OutputOptions { strip_colors: false, ..OutputOptions::default() };
        let out = render(Outputter::Nested, &json!({"m": "a\x1b[31mb"}), &opts);
        assert_eq!(out, "m:\n    a\x1b[31mb\n");
    }

    #[test]
    fn nested_indent_shifts_everything() {
        let opts = OutputOptions { nested_indent: 2, ..OutputOptions::default() };
        let out = render(Outputter::Nested, &json!({"m": {"k": 1}}), &opts);
        assert_eq!(out, "  ----------\n  m:\n      ----------\n      k:\n          1\n");
    }

    #[test]
    fn colored_output_matches_salt_escape_codes() {
        let opts = OutputOptions { color: true, ..OutputOptions::default() };
        let out = render(Outputter::Nested, &json!({"minion1": {"a": [true, "x"]}}), &opts);
        let want = concat!(
            "\x1b[0;36mminion1\x1b[0;0m:\n",
            "    \x1b[0;36m----------\x1b[0;0m\n",
            "    \x1b[0;36ma\x1b[0;0m:\n",
            "        \x1b[0;1;33m- True\x1b[0;0m\n",
            "        \x1b[0;32m- x\x1b[0;0m\n",
        );
        assert_eq!(out, want);
    }

    #[test]
    fn failed_retcode_paints_structure_red() {
        let opts = OutputOptions { color: true, retcode: 1, ..OutputOptions::default() };
        let out = render(Outputter::Nested, &json!({"minion1": [[1]]}), &opts);
        let want = concat!("\x1b[0;31mminion1\x1b[0;0m:\n", "    \x1b[0;31m|_\x1b[0;0m\n", "      \x1b[0;1;33m- 1\x1b[0;0m\n",);
        assert_eq!(out, want);
    }
}
