//! The `multi_returner` option: the master's (or minion's) top-level `multi_returner`, a list of
//! returner names (Salt reads `__opts__["multi_returner"]`); a comma-separated string is taken
//! too. Each named store reads its own options as it would alone.

use serde_json::Value;

use crate::options::Lookup;
use crate::{Result, ReturnerError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiConfig {
    /// The stores, in the order given: reads prefer the first that has an answer.
    pub names: Vec<String>,
}

impl MultiConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<MultiConfig> {
        let invalid = |why: &str| ReturnerError::Invalid(format!("{}: {why}", super::NAME));
        let names: Vec<String> = match lookup.opts.and_then(|o| o.get("multi_returner")) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(|s| s.trim().to_string()).ok_or_else(|| invalid(&format!("the list holds {v}, not a returner name")))
                })
                .collect::<Result<_>>()?,
            Some(Value::String(s)) => s.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(),
            Some(other) => return Err(invalid(&format!("`multi_returner` must be a list of returner names, not {other}"))),
            None => return Err(invalid("set `multi_returner` to the list of returners to combine, e.g. `multi_returner: [mysql, redis]`")),
        };
        if names.is_empty() {
            return Err(invalid("`multi_returner` names no returner"));
        }
        if names.iter().any(|n| n == super::NAME) {
            return Err(invalid("it cannot combine itself"));
        }
        if let Some(twice) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
            return Err(invalid(&format!("'{twice}' is named twice")));
        }
        Ok(MultiConfig { names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<MultiConfig> {
        let opts = json!({ "multi_returner": v });
        MultiConfig::from_lookup(&Lookup::new(opts.as_object().unwrap()))
    }

    #[test]
    fn a_list_or_a_comma_string() {
        assert_eq!(read(json!(["mysql", "redis"])).unwrap().names, ["mysql", "redis"]);
        assert_eq!(read(json!("mysql, redis")).unwrap().names, ["mysql", "redis"]);
    }

    #[test]
    fn bad_lists_are_clear_errors() {
        for (v, words) in [
            (json!([]), "names no returner"),
            (json!(["mysql", 3]), "not a returner name"),
            (json!(["mysql", "multi_returner"]), "cannot combine itself"),
            (json!(["redis", "redis"]), "'redis' is named twice"),
            (json!({"a": 1}), "must be a list"),
        ] {
            let e = read(v).unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
        }
        let e = MultiConfig::from_lookup(&Lookup::new(&serde_json::Map::new())).unwrap_err().to_string();
        assert!(e.contains("multi_returner: [mysql, redis]"), "{e}");
    }
}
