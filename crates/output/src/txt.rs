//! The `txt` outputter (`salt/output/txt.py`), made for `cmd.run`: every
//! line of a string return is prefixed with `minion: `; other values print
//! as `minion: <Python str()>`. Keys keep their arrival order. Data that is
//! not a dict prints as itself (strings) or through `pprint`.

use serde_json::Value;

use crate::pprint;
use crate::pyrepr;

pub(crate) fn output(data: &Value) -> String {
    let mut ret = String::new();
    match data {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(s) => {
                        for line in pyrepr::splitlines(s) {
                            ret.push_str(&format!("{key}: {line}\n"));
                        }
                    }
                    other => ret.push_str(&format!("{key}: {}\n", pyrepr::str(other))),
                }
            }
        }
        Value::String(s) => {
            ret.push_str(s);
            ret.push('\n');
        }
        other => {
            ret.push_str(&pprint::pformat(other, 1));
            ret.push('\n');
        }
    }
    ret
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputOptions, Outputter};

    fn txt(data: serde_json::Value) -> String {
        render(Outputter::Txt, &data, &OutputOptions::default())
    }

    #[test]
    fn each_line_gets_the_minion_prefix() {
        assert_eq!(txt(json!({"minion1": "bin\nboot"})), "minion1: bin\nminion1: boot\n");
    }

    #[test]
    fn non_strings_print_as_python_str() {
        let data = json!({"m1": true, "m2": {"a": [1, null]}, "m3": 1.0});
        assert_eq!(txt(data), "m1: True\nm2: {'a': [1, None]}\nm3: 1.0\n");
    }

    #[test]
    fn keys_keep_arrival_order_and_empty_strings_print_nothing() {
        assert_eq!(txt(json!({"b": "x", "a": "", "c": "y"})), "b: x\nc: y\n");
        assert_eq!(txt(json!({"m": ""})), "");
    }

    #[test]
    fn non_dict_data() {
        assert_eq!(txt(json!("plain\n")), "plain\n");
        assert_eq!(txt(json!([1, "a"])), "[1, 'a']\n");
    }
}
