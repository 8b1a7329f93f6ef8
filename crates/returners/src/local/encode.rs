//! Records to the lines Python's `print` gives: `print(ret)` and `print(events)`.

use std::borrow::Cow;

use salt_targeting::pystr::write_repr;
use serde_json::{Map, Value};

use crate::json::SETTINGS_KEYS;
use crate::record::ReturnRecord;
use crate::redact::redact;
use crate::{Event, Load};

/// `print(ret)`: the return's Python repr, in its own key order, then `\n`; the secret values
/// of `ret_kwargs` redacted. `None` for a `nocache` return; `Err` says why the return cannot be
/// printed (no id, a bad jid).
pub fn return_line(ret: &Load) -> Result<Option<String>, String> {
    if ReturnRecord::parse(ret)?.is_none() {
        return Ok(None);
    }
    let mut line = String::new();
    write_map(&redacted(ret), &mut line);
    line.push('\n');
    Ok(Some(line))
}

/// `print(events)` of one event, as Salt's master calls `event_return` by default (its
/// `event_return_queue` is 0: every event is flushed alone): `[{'data': ..., 'tag': ...}]`.
pub fn event_line(event: &Event) -> String {
    let mut line = String::from("[{'data': ");
    match &event.data {
        Value::Object(map) => write_map(&redacted(map), &mut line),
        other => write_repr(other, &mut line),
    }
    line.push_str(", 'tag': ");
    write_repr(&Value::String(event.tag.clone()), &mut line);
    line.push_str("}]\n");
    line
}

/// `map` with the secret values of its settings (`ret_kwargs`, `kwargs`) redacted, as
/// [`crate::json::dumps_map`] writes it.
fn redacted(map: &Map<String, Value>) -> Cow<'_, Map<String, Value>> {
    if !SETTINGS_KEYS.iter().any(|k| map.contains_key(*k)) {
        return Cow::Borrowed(map);
    }
    Cow::Owned(map.iter().map(|(k, v)| (k.clone(), if SETTINGS_KEYS.contains(&k.as_str()) { redact(v) } else { v.clone() })).collect())
}

fn write_map(map: &Map<String, Value>, out: &mut String) {
    // `write_repr` takes a value: a borrowed map is shown without copying it into one.
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_repr(&Value::String(k.clone()), out);
        out.push_str(": ");
        write_repr(v, out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_return_prints_as_python_prints_the_dict() {
        let ret = json!({"success": true, "return": {"it's": [1, 2.5, null, false]}, "retcode": 0, "jid": "20261201120000000001",
                         "fun": "test.echo", "fun_args": ["a\nb"], "ret_kwargs": {"token": "hunter2"}, "id": "m1"});
        assert_eq!(
            return_line(ret.as_object().unwrap()).unwrap().unwrap(),
            "{'success': True, 'return': {\"it's\": [1, 2.5, None, False]}, 'retcode': 0, 'jid': '20261201120000000001', \
             'fun': 'test.echo', 'fun_args': ['a\\nb'], 'ret_kwargs': {'token': '**********'}, 'id': 'm1'}\n"
        );
        assert_eq!(return_line(json!({"id": "m1", "jid": "nocache", "return": 1}).as_object().unwrap()), Ok(None));
        assert!(return_line(json!({"jid": "20261201120000000001", "return": 1}).as_object().unwrap()).is_err());
    }

    #[test]
    fn an_event_prints_as_a_list_of_one() {
        let ev = Event { tag: "salt/auth".into(), data: json!({"_stamp": "2026-12-01T12:00:00.000001", "act": "accept"}) };
        assert_eq!(event_line(&ev), "[{'data': {'_stamp': '2026-12-01T12:00:00.000001', 'act': 'accept'}, 'tag': 'salt/auth'}]\n");
    }
}
