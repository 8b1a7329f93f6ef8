//! `grains.*`: read the minion's grains (Salt's `salt/modules/grains.py`), and
//! [`collect`], which computes them.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};

use crate::{py_str, Args, JobContext, ModuleError, Registry, Returned, Signature};

mod collect;
pub use collect::collect;

type Result<T> = std::result::Result<T, ModuleError>;

/// Salt's `DEFAULT_TARGET_DELIM`.
const DELIM: &str = ":";

pub(crate) fn register(r: &mut Registry) {
    r.register("grains.items", ITEMS_DOC, items);
    r.register("grains.item", ITEM_DOC, item);
    r.register("grains.get", GET_DOC, get);
    r.register("grains.ls", LS_DOC, ls);
}

/// Salt's `traverse_dict_and_list`: walk `key` split on `delimiter` through dicts and lists
/// (a list step is an index, or the first embedded dict having that key); `default` when a
/// step is missing.
pub fn traverse(data: &Value, key: &str, default: &Value, delimiter: &str) -> Value {
    let mut ptr = data;
    for part in key.split(delimiter) {
        ptr = match ptr {
            Value::Object(map) => match map.get(part) {
                Some(v) => v,
                None => return default.clone(),
            },
            Value::Array(list) => {
                let embedded = list.iter().find_map(|x| x.as_object().and_then(|m| m.get(part)));
                match (embedded, part.parse::<i64>()) {
                    (Some(v), _) => v,
                    (None, Ok(idx)) => {
                        let len = list.len() as i64;
                        let i = if idx < 0 { idx + len } else { idx };
                        match usize::try_from(i).ok().and_then(|i| list.get(i)) {
                            Some(v) => v,
                            None => return default.clone(),
                        }
                    }
                    (None, Err(_)) => return default.clone(),
                }
            }
            _ => return default.clone(),
        };
    }
    ptr.clone()
}

const ITEMS_DOC: &str = "Return all of the minion's grains.

CLI Example:

    salt '*' grains.items";

fn items(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        Signature::parse("items(sanitize=None)").bind(&args)?;
        Ok(Returned::value(Value::Object((*ctx.grains).clone())))
    }
    .boxed()
}

const ITEM_DOC: &str = "Return one or more grains. Nested grains are reached with a colon
(``pkg:apache``); ``default`` and ``delimiter`` may be passed as keywords.

CLI Example:

    salt '*' grains.item os
    salt '*' grains.item os osrelease oscodename
    salt '*' grains.item ip4_interfaces:lo";

fn item(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("item(*args, **kwargs)").bind(&args)?;
        let default = b.extra("default").cloned().unwrap_or_else(|| Value::String(String::new()));
        let delimiter = b.extra("delimiter").map(py_str).unwrap_or_else(|| DELIM.to_string());
        let grains = Value::Object((*ctx.grains).clone());
        let mut ret = Map::new();
        for key in b.varargs.iter().map(py_str) {
            let v = traverse(&grains, &key, &default, &delimiter);
            ret.insert(key, v);
        }
        Ok(Returned::value(ret))
    }
    .boxed()
}

const GET_DOC: &str = "Attempt to retrieve the named value from grains; if it is not present
return the passed default (an empty string by default). Nested values are reached with a
delimiter, a colon by default: ``pkg:apache`` returns ``grains['pkg']['apache']``.

CLI Example:

    salt '*' grains.get pkg:apache
    salt '*' grains.get abc::def|ghi delimiter='|'";

fn get(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("get(key, default='', delimiter=':', ordered=True)").bind(&args)?;
        let key = py_str(b.get("key"));
        let delimiter = py_str(b.get("delimiter"));
        let grains = Value::Object((*ctx.grains).clone());
        Ok(Returned::value(traverse(&grains, &key, b.get("default"), &delimiter)))
    }
    .boxed()
}

const LS_DOC: &str = "Return a sorted list of all available grain names.

CLI Example:

    salt '*' grains.ls";

fn ls(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        Signature::parse("ls()").bind(&args)?;
        let mut keys: Vec<&String> = ctx.grains.keys().collect();
        keys.sort();
        Ok(Returned::value(keys.into_iter().cloned().collect::<Vec<_>>()))
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::run;
    use serde_json::json;

    #[test]
    fn traverse_like_salt() {
        let data = json!({
            "pkg": {"apache": "httpd"},
            "list": ["a", {"k": "v"}, ["x"]],
            "s": "text"
        });
        let d = json!("dflt");
        assert_eq!(traverse(&data, "pkg:apache", &d, ":"), json!("httpd"));
        assert_eq!(traverse(&data, "pkg", &d, ":"), json!({"apache": "httpd"}));
        assert_eq!(traverse(&data, "pkg:nope", &d, ":"), d);
        assert_eq!(traverse(&data, "list:0", &d, ":"), json!("a"));
        assert_eq!(traverse(&data, "list:-1:0", &d, ":"), json!("x"));
        assert_eq!(traverse(&data, "list:k", &d, ":"), json!("v"));
        assert_eq!(traverse(&data, "list:9", &d, ":"), d);
        assert_eq!(traverse(&data, "s:x", &d, ":"), d);
        assert_eq!(traverse(&data, "pkg|apache", &d, "|"), json!("httpd"));
    }

    #[tokio::test]
    async fn grains_functions() {
        let out = run("grains.get", json!(["id"])).await;
        assert_eq!(out.ret, json!("minion1"));
        let out = run("grains.get", json!(["ip4_interfaces:lo"])).await;
        assert_eq!(out.ret, json!(["127.0.0.1"]));
        let out = run("grains.get", json!(["nope"])).await;
        assert_eq!(out.ret, json!(""));
        let out = run("grains.get", json!(["nope", "fallback"])).await;
        assert_eq!(out.ret, json!("fallback"));
        let out = run("grains.item", json!(["id", "kernel", "nope"])).await;
        assert_eq!(out.ret, json!({"id": "minion1", "kernel": "Linux", "nope": ""}));
        let out = run("grains.ls", json!([])).await;
        let keys = out.ret.as_array().unwrap();
        assert!(keys.contains(&json!("os_family")));
        let out = run("grains.items", json!([])).await;
        assert_eq!(out.ret["id"], json!("minion1"));
        assert_eq!(out.ret["saltversion"], json!("3008.4"));
    }
}
