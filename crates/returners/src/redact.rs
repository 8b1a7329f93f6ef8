//! Secrets never leave the process that needs them: before a load, an event or an error text is
//! stored or shown, values under secret-looking keys are replaced.

use serde_json::{Map, Value};

/// What a redacted value reads as.
pub const REDACTED: &str = "**********";

/// Whether a key names a secret (`pass`, `mysql.pass`, `password`, `token`, `api_key`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    matches!(
        last.as_str(),
        "pass"
            | "passwd"
            | "password"
            | "token"
            | "secret"
            | "api_key"
            | "apikey"
            | "key"
            | "sslkey"
            | "ssl_key"
            | "auth"
            | "user_key"
            | "app_key"
    ) || last.ends_with("_password")
        || last.ends_with("_token")
        || last.ends_with("_secret")
}

/// A copy of `value` with every secret-keyed value replaced, at any depth.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(redact_map(m)),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

pub fn redact_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) && !v.is_null() { Value::String(REDACTED.into()) } else { redact(v) };
            (k.clone(), v)
        })
        .collect()
}

/// Removes `secret` from a message (a driver's error may echo a connection string).
pub fn scrub(message: &str, secret: &str) -> String {
    if secret.len() < 3 {
        return message.to_string();
    }
    message.replace(secret, REDACTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_secrets_are_replaced() {
        let v = json!({"kwargs": {"ret_kwargs": {"pass": "hunter2", "host": "db"}, "mysql.pass": "x", "token": null}});
        assert_eq!(redact(&v), json!({"kwargs": {"ret_kwargs": {"pass": REDACTED, "host": "db"}, "mysql.pass": REDACTED, "token": null}}));
        assert_eq!(scrub("access denied for salt:hunter2@db", "hunter2"), format!("access denied for salt:{REDACTED}@db"));
    }
}
