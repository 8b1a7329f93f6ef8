//! Records to lines, as Salt's `rawfile_json` writes them: `json.dumps(ret)` and
//! `json.dumps(event)`, each followed by `\n`.

use serde_json::Value;

use crate::json::{dumps, dumps_map};
use crate::record::ReturnRecord;
use crate::{Event, Load};

/// The line of a return: the return as given, in its own key order, without the `_stamp` a
/// master adds (Salt's minion-side returns have none); `None` for a `nocache` return; `Err`
/// says why the return cannot be written (no id, a bad jid).
pub fn return_line(ret: &Load) -> Result<Option<String>, String> {
    if ReturnRecord::parse(ret)?.is_none() {
        return Ok(None);
    }
    let mut text = if ret.contains_key("_stamp") {
        let mut without = ret.clone();
        without.shift_remove("_stamp");
        dumps_map(&without)
    } else {
        dumps_map(ret)
    };
    text.push('\n');
    Ok(Some(text))
}

/// The line of an event: the dict Salt's event bus hands `event_return`, `{"data": ...,
/// "tag": ...}` in that order, the data as given (with its `_stamp`).
pub fn event_line(event: &Event) -> String {
    let data = match &event.data {
        Value::Object(map) => dumps_map(map),
        other => dumps(other),
    };
    format!("{{\"data\": {data}, \"tag\": {}}}\n", dumps(&Value::String(event.tag.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_return_is_salt_json_dumps_in_its_own_order() {
        let ret = json!({"success": true, "return": {"b": 1, "a": "é ✓"}, "retcode": 0, "jid": "20261201120000000001",
                         "fun": "test.echo", "fun_args": ["x"], "user": "root", "_stamp": "2026-12-01T12:00:00.000001",
                         "ret_kwargs": {"password": "hunter2"}, "id": "m1"});
        let line = return_line(ret.as_object().unwrap()).unwrap().unwrap();
        assert_eq!(
            line,
            "{\"success\": true, \"return\": {\"b\": 1, \"a\": \"é ✓\"}, \"retcode\": 0, \"jid\": \"20261201120000000001\", \
             \"fun\": \"test.echo\", \"fun_args\": [\"x\"], \"user\": \"root\", \"ret_kwargs\": {\"password\": \"**********\"}, \
             \"id\": \"m1\"}\n"
        );
        let nocache = json!({"id": "m1", "jid": "nocache", "return": true});
        assert_eq!(return_line(nocache.as_object().unwrap()), Ok(None));
        let bad = json!({"id": "../m1", "jid": "20261201120000000001", "return": true});
        assert!(return_line(bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn an_event_is_data_then_tag() {
        let ev =
            Event { tag: "salt/job/20261201120000000001/ret/m1".into(), data: json!({"_stamp": "2026-12-01T12:00:00.000001", "x": "\"'"}) };
        assert_eq!(
            event_line(&ev),
            "{\"data\": {\"_stamp\": \"2026-12-01T12:00:00.000001\", \"x\": \"\\\"'\"}, \"tag\": \"salt/job/20261201120000000001/ret/m1\"}\n"
        );
        assert_eq!(event_line(&Event { tag: "t".into(), data: json!([1]) }), "{\"data\": [1], \"tag\": \"t\"}\n");
    }
}
