//! The `raw` outputter (`salt/output/raw.py`): Python's `str(data)`, so
//! `{'minion1': True}` for a dict (arrival order) and bare text for a string.

use serde_json::Value;

use crate::pyrepr;

pub(crate) fn output(data: &Value) -> String {
    pyrepr::str(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{render, OutputOptions, Outputter};

    #[test]
    fn python_repr_of_the_data() {
        let opts = OutputOptions::default();
        assert_eq!(render(Outputter::Raw, &json!({"minion1": true}), &opts), "{'minion1': True}\n");
        let data = json!({"m": {"z": "it's", "a": [1.5, null]}});
        assert_eq!(render(Outputter::Raw, &data, &opts), "{'m': {'z': \"it's\", 'a': [1.5, None]}}\n");
        assert_eq!(render(Outputter::Raw, &json!("text\n\n"), &opts), "text\n");
    }
}
