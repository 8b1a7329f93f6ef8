//! The `pprint` outputter (`salt/output/pprint_out.py`): Python's
//! `pprint.pformat(data)` (width 80, dict keys sorted).
//!
//! Port of `pprint.PrettyPrinter._format` for dicts, lists and strings, the
//! types JSON data can hold: an object is written on one line if its repr
//! fits in the remaining width, otherwise dicts and lists put one item per
//! line and long strings are split into adjacent string literals.

use serde_json::{Map, Value};

use crate::pyrepr::{self, repr_sorted};

/// `pprint.pformat(data, indent=indent)`.
pub fn pformat(data: &Value, indent: usize) -> String {
    let printer = Printer { indent_per_level: indent, width: 80 };
    let mut out = String::new();
    printer.format(data, &mut out, 0, 0, 0);
    out
}

struct Printer {
    indent_per_level: usize,
    width: usize,
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

impl Printer {
    fn format(&self, obj: &Value, out: &mut String, indent: usize, allowance: usize, level: usize) {
        let rep = repr_sorted(obj);
        let max_width = self.width as isize - indent as isize - allowance as isize;
        if width_of(&rep) as isize > max_width {
            match obj {
                Value::Object(map) => return self.pprint_dict(map, out, indent, allowance, level + 1),
                Value::Array(items) => return self.pprint_list(items, out, indent, allowance, level + 1),
                Value::String(s) => return self.pprint_str(s, out, indent, allowance, level + 1),
                _ => {}
            }
        }
        out.push_str(&rep);
    }

    fn pprint_dict(&self, map: &Map<String, Value>, out: &mut String, indent: usize, allowance: usize, level: usize) {
        out.push('{');
        if self.indent_per_level > 1 {
            out.push_str(&" ".repeat(self.indent_per_level - 1));
        }
        if !map.is_empty() {
            let items = pyrepr::entries(map, true);
            let indent = indent + self.indent_per_level;
            let allowance = allowance + 1;
            let delimnl = format!(",\n{}", " ".repeat(indent));
            let last_index = items.len() - 1;
            for (i, (key, value)) in items.into_iter().enumerate() {
                let last = i == last_index;
                let rep = pyrepr::repr_str(key);
                out.push_str(&rep);
                out.push_str(": ");
                self.format(value, out, indent + width_of(&rep) + 2, if last { allowance } else { 1 }, level);
                if !last {
                    out.push_str(&delimnl);
                }
            }
        }
        out.push('}');
    }

    fn pprint_list(&self, items: &[Value], out: &mut String, indent: usize, allowance: usize, level: usize) {
        out.push('[');
        let indent = indent + self.indent_per_level;
        let allowance = allowance + 1;
        if self.indent_per_level > 1 {
            out.push_str(&" ".repeat(self.indent_per_level - 1));
        }
        let delimnl = format!(",\n{}", " ".repeat(indent));
        for (i, item) in items.iter().enumerate() {
            let last = i == items.len() - 1;
            if i > 0 {
                out.push_str(&delimnl);
            }
            self.format(item, out, indent, if last { allowance } else { 1 }, level);
        }
        out.push(']');
    }

    /// `_pprint_str`: split at line ends, then at whitespace, so each piece's
    /// repr fits; a top-level string is wrapped in parentheses.
    fn pprint_str(&self, s: &str, out: &mut String, indent: usize, allowance: usize, level: usize) {
        if s.is_empty() {
            out.push_str(&pyrepr::repr_str(s));
            return;
        }
        let (mut indent, mut allowance) = (indent, allowance);
        if level == 1 {
            indent += 1;
            allowance += 1;
        }
        let max_width = self.width as isize - indent as isize;
        let mut max_width1 = max_width;
        let lines = pyrepr::splitlines_keepends(s);
        let mut chunks: Vec<String> = Vec::new();
        let mut rep = String::new();
        for (i, line) in lines.iter().enumerate() {
            rep = pyrepr::repr_str(line);
            let last_line = i == lines.len() - 1;
            if last_line {
                max_width1 -= allowance as isize;
            }
            if width_of(&rep) as isize <= max_width1 {
                chunks.push(rep.clone());
            } else {
                let parts = split_words(line);
                let mut max_width2 = max_width;
                let mut current = String::new();
                for (j, part) in parts.iter().enumerate() {
                    let candidate = format!("{current}{part}");
                    if j == parts.len() - 1 && last_line {
                        max_width2 -= allowance as isize;
                    }
                    if width_of(&pyrepr::repr_str(&candidate)) as isize > max_width2 {
                        if !current.is_empty() {
                            chunks.push(pyrepr::repr_str(&current));
                        }
                        current = (*part).to_string();
                    } else {
                        current = candidate;
                    }
                }
                if !current.is_empty() {
                    chunks.push(pyrepr::repr_str(&current));
                }
            }
        }
        if chunks.len() == 1 {
            out.push_str(&rep);
            return;
        }
        if level == 1 {
            out.push('(');
        }
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
            }
            out.push_str(chunk);
        }
        if level == 1 {
            out.push(')');
        }
    }
}

/// `re.findall(r'\S*\s*', line)` without the trailing empty match: runs of
/// non-space followed by their trailing whitespace.
fn split_words(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in line.char_indices() {
        let space = pyrepr::is_space(c);
        if in_space && !space {
            parts.push(&line[start..i]);
            start = i;
        }
        in_space = space;
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputOptions, Outputter};

    fn pprint(data: serde_json::Value) -> String {
        render(Outputter::Pprint, &data, &OutputOptions::default())
    }

    // Expected strings were produced by Python 3.11's pprint.pformat.

    #[test]
    fn short_data_on_one_line_sorted() {
        assert_eq!(pprint(json!({"minion1": true, "a": [1, 2.0, null]})), "{'a': [1, 2.0, None], 'minion1': True}\n");
    }

    #[test]
    fn long_dict_breaks_one_item_per_line() {
        let data = json!({"minion1": {"pid": 16476, "fun": "cmd.run", "arg": ["sleep 100"],
            "tgt": "*", "jid": "20261125003832838505", "ret": "mysql", "user": "root"}});
        let want = "{'minion1': {'arg': ['sleep 100'],\n             'fun': 'cmd.run',\n             'jid': '20261125003832838505',\n             'pid': 16476,\n             'ret': 'mysql',\n             'tgt': '*',\n             'user': 'root'}}\n";
        assert_eq!(pprint(data), want);
    }

    #[test]
    fn long_strings_split_into_literals() {
        let data = json!({"minion1": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot"});
        let want = "{'minion1': 'bin\\n'\n            'boot\\n'\n            'dev\\n'\n            'etc\\n'\n            'home\\n'\n            'lib\\n'\n            'lib64\\n'\n            'lost+found\\n'\n            'media\\n'\n            'mnt\\n'\n            'opt\\n'\n            'proc\\n'\n            'root'}\n";
        assert_eq!(pprint(data), want);
    }

    #[test]
    fn top_level_long_string_is_parenthesised() {
        let text = "word ".repeat(20);
        let want = "('word word word word word word word word word word word word word word word '\n 'word word word word word ')\n";
        assert_eq!(pprint(json!(text)), want);
    }
}
