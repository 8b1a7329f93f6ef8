//! The `no_return` outputter (`salt/output/no_return.py`), which Salt uses
//! for minions that did not return: strings one line per `\n` in red,
//! dict keys sorted in cyan; other values print nothing.

use serde_json::Value;

use crate::color::Colors;

pub(crate) fn output(data: &Value, color: bool) -> String {
    let colors = Colors::new(color);
    let mut out = String::new();
    display(data, 0, "", &colors, &mut out);
    out
}

fn display(ret: &Value, indent: usize, prefix: &str, c: &Colors, out: &mut String) {
    match ret {
        Value::String(s) => {
            for line in s.split('\n') {
                out.push_str(&format!("{}{}{prefix}{line}{}\n", c.red, " ".repeat(indent), c.endc));
            }
        }
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            for key in keys {
                out.push_str(&format!("{}{}{prefix}{key}{}:\n", c.cyan, " ".repeat(indent), c.endc));
                display(&map[key], indent + 4, "", c, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputOptions, Outputter};

    #[test]
    fn minion_did_not_return() {
        let data = json!({"virtucentos": "Minion did not return"});
        let out = render(Outputter::NoReturn, &data, &OutputOptions::default());
        assert_eq!(out, "virtucentos:\n    Minion did not return\n");
        let opts = OutputOptions { color: true, ..OutputOptions::default() };
        let out = render(Outputter::NoReturn, &data, &opts);
        assert_eq!(out, "\x1b[0;36mvirtucentos\x1b[0;0m:\n\x1b[0;31m    Minion did not return\x1b[0;0m\n");
    }
}
