//! The `key` outputter (`salt/output/key.py`) behind `salt-key -L`.
//!
//! Data is `{status: [ids]}` (or `{status: {id: fingerprint}}` for
//! `salt-key -f`). Statuses print in sorted order under their headings, so
//! the ZeroMQ-style names come out Accepted, Denied, Unaccepted, Rejected.

use serde_json::Value;

use crate::color::{strip_esc_sequence, Colors};
use crate::pyrepr;
use crate::OutputOptions;

/// `None` when a status is not one salt-key knows; Salt's outputter then
/// raises KeyError and Salt falls back to `nested`.
pub(crate) fn output(data: &Value, opts: &OutputOptions) -> Option<String> {
    let c = Colors::new(opts.color);
    let map = data.as_object()?;
    let ident = " ".repeat(opts.key_indent);
    let mut ret = Vec::new();
    for (status, entries) in pyrepr::entries(map, true) {
        let (heading, heading_color, color) = match status.as_str() {
            "minions_pre" | "pending" => ("Unaccepted Keys:", c.light_red, c.red),
            "minions" | "accepted" => ("Accepted Keys:", c.light_green, c.green),
            "minions_denied" => ("Denied Keys:", c.light_magenta, c.magenta),
            "minions_rejected" | "rejected" => ("Rejected Keys:", c.light_blue, c.blue),
            "local" => ("Local Keys:", c.light_magenta, c.magenta),
            _ => return None,
        };
        ret.push(format!("{ident}{heading_color}{heading}{}", c.endc));
        let clean = |key: &str| {
            if opts.strip_colors {
                strip_esc_sequence(key)
            } else {
                key.to_string()
            }
        };
        match entries {
            Value::Array(ids) => {
                let mut ids: Vec<String> = ids.iter().map(pyrepr::str).collect();
                ids.sort();
                for id in ids {
                    ret.push(format!("{ident}{color}{}{}", clean(&id), c.endc));
                }
            }
            Value::Object(fingers) => {
                for (id, finger) in pyrepr::entries(fingers, true) {
                    ret.push(format!("{ident}{color}{}:  {}{}", clean(id), pyrepr::str(finger), c.endc));
                }
            }
            // Salt sorts the value but prints nothing for other types.
            _ => {}
        }
    }
    Some(ret.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputOptions, Outputter};

    /// Transcript: `salt-key -L` with ten accepted minions.
    #[test]
    fn salt_key_list_from_transcript() {
        let data = json!({
            "minions_pre": [], "minions_rejected": [], "minions_denied": [],
            "minions": ["minion1", "minion10", "minion2", "minion3", "minion4",
                        "minion5", "minion6", "minion7", "minion8", "minion9"]
        });
        let want = "Accepted Keys:\nminion1\nminion10\nminion2\nminion3\nminion4\nminion5\nminion6\nminion7\nminion8\nminion9\nDenied Keys:\nUnaccepted Keys:\nRejected Keys:\n";
        assert_eq!(render(Outputter::Key, &data, &OutputOptions::default()), want);
    }

    #[test]
    fn fingerprints_and_colors() {
        let data = json!({"minions": {"m1": "ab:cd"}});
        let opts = OutputOptions { color: true, ..OutputOptions::default() };
        let want = "\x1b[0;1;32mAccepted Keys:\x1b[0;0m\n\x1b[0;32mm1:  ab:cd\x1b[0;0m\n";
        assert_eq!(render(Outputter::Key, &data, &opts), want);
    }

    #[test]
    fn unknown_status_falls_back_to_nested() {
        let data = json!({"return": {"m1": true}});
        assert_eq!(render(Outputter::Key, &data, &OutputOptions::default()), "return:\n    ----------\n    m1:\n        True\n");
    }
}
