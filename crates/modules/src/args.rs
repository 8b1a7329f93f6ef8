//! Arguments as Salt passes them to a function, and a binder that checks them the way Python
//! checks a call, so errors read as Salt users know them.

use serde_json::{Map, Value};

use crate::ModuleError;

/// Positional and keyword arguments of one call, after Salt's `condition_input`/
/// `load_args_and_kwargs` split of the publish `arg` list. The `__pub_*` data is not in
/// `kwargs`; functions that want it read [`crate::JobContext::pub_data`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    pub positional: Vec<Value>,
    pub kwargs: Map<String, Value>,
}

impl Args {
    /// Split a publish `arg` list: a dict carrying `"__kwarg__": true` contributes its other
    /// keys as keyword arguments, a string of the form `key=value` becomes a keyword argument
    /// (value YAML-ish loaded, as Salt's `parse_input` does), anything else is positional.
    pub fn from_publish(arg: &[Value]) -> Args {
        let mut args = Args::default();
        for item in arg {
            match item {
                Value::Object(map) if map.get("__kwarg__") == Some(&Value::Bool(true)) => {
                    for (k, v) in map {
                        if k != "__kwarg__" {
                            args.kwargs.insert(k.clone(), v.clone());
                        }
                    }
                }
                Value::String(s) => match split_kwarg(s) {
                    Some((k, v)) => {
                        args.kwargs.insert(k.to_string(), yamlify(v));
                    }
                    None => args.positional.push(item.clone()),
                },
                other => args.positional.push(other.clone()),
            }
        }
        args
    }

    /// Convenience for tests and internal callers.
    pub fn positional(values: Vec<Value>) -> Args {
        Args { positional: values, kwargs: Map::new() }
    }
}

/// Salt's kwarg regex `^([^\d\W][\w.-]*)=(?!=)(.*)$`.
fn split_kwarg(s: &str) -> Option<(&str, &str)> {
    let eq = s.find('=')?;
    let (key, rest) = (&s[..eq], &s[eq + 1..]);
    let mut chars = key.chars();
    let first = chars.next()?;
    if !(first.is_alphabetic() || first == '_') {
        return None;
    }
    if !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-') {
        return None;
    }
    if rest.starts_with('=') || rest.trim_end_matches('\n').contains('\n') {
        return None;
    }
    Some((key, rest))
}

/// A small subset of Salt's `yamlify_arg`: YAML 1.1 scalars (null, booleans, integers,
/// floats) and flow collections written as JSON. Anything else stays a string.
fn yamlify(s: &str) -> Value {
    let t = s.trim();
    if t.is_empty() {
        return Value::String(s.to_string());
    }
    match t {
        "None" | "null" | "Null" | "NULL" | "~" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Value::Bool(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if t.contains('.') && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
        if let Ok(f) = t.parse::<f64>() {
            return Value::from(f);
        }
    }
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return v;
        }
    }
    Value::String(s.to_string())
}

/// Python truthiness of a decoded value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

pub use salt_targeting::pystr::{py_repr, py_str};

/// A Python function signature, e.g. `"retcode(code=42)"` or `"arg(*args, **kwargs)"`.
/// Defaults are Python literals (`None`, `True`, `False`, numbers, quoted strings, `[]`, `{}`).
#[derive(Debug, Clone)]
pub struct Signature {
    name: String,
    params: Vec<(String, Option<Value>)>,
    varargs: bool,
    varkwargs: bool,
}

impl Signature {
    /// Parse a signature spec. Panics on a malformed spec: specs are compile-time constants
    /// of this crate and every one is exercised by a test.
    pub fn parse(spec: &str) -> Signature {
        let open = spec.find('(').expect("signature needs '('");
        let close = spec.rfind(')').expect("signature needs ')'");
        let mut sig = Signature { name: spec[..open].trim().to_string(), params: Vec::new(), varargs: false, varkwargs: false };
        for part in spec[open + 1..close].split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.starts_with("**") {
                sig.varkwargs = true;
            } else if part.starts_with('*') {
                sig.varargs = true;
            } else if let Some((name, default)) = part.split_once('=') {
                sig.params.push((name.trim().to_string(), Some(parse_literal(default.trim()))));
            } else {
                sig.params.push((part.to_string(), None));
            }
        }
        sig
    }

    /// Bind a call the way Python and Salt's `load_args_and_kwargs` would, with their error
    /// texts: unknown keywords for a function without `**kwargs` are a `SaltInvocationError`,
    /// the rest are `TypeError`s.
    pub fn bind(&self, args: &Args) -> Result<Bound, ModuleError> {
        let is_param = |k: &str| self.params.iter().any(|(n, _)| n == k);
        if !self.varkwargs {
            let invalid: Vec<String> =
                args.kwargs.iter().filter(|(k, _)| !is_param(k)).map(|(k, v)| format!("{k}={}", py_str(v))).collect();
            if !invalid.is_empty() {
                return Err(ModuleError::Invocation(format!("The following keyword arguments are not valid: {}", invalid.join(", "))));
            }
        }
        let mut values = Map::new();
        let mut varargs = Vec::new();
        for (i, v) in args.positional.iter().enumerate() {
            match self.params.get(i) {
                Some((name, _)) => {
                    values.insert(name.clone(), v.clone());
                }
                None => varargs.push(v.clone()),
            }
        }
        let mut varkwargs = Map::new();
        for (k, v) in &args.kwargs {
            if is_param(k) {
                if values.contains_key(k) {
                    return Err(ModuleError::InvalidArguments(format!("{}() got multiple values for argument '{k}'", self.name)));
                }
                values.insert(k.clone(), v.clone());
            } else {
                varkwargs.insert(k.clone(), v.clone());
            }
        }
        if !self.varargs && args.positional.len() > self.params.len() {
            return Err(ModuleError::InvalidArguments(self.too_many(args.positional.len())));
        }
        let missing: Vec<&str> =
            self.params.iter().filter(|(n, d)| d.is_none() && !values.contains_key(n)).map(|(n, _)| n.as_str()).collect();
        if !missing.is_empty() {
            return Err(ModuleError::InvalidArguments(format!(
                "{}() missing {} required positional argument{}: {}",
                self.name,
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                py_name_list(&missing)
            )));
        }
        // Fill defaults in declaration order so `values` reads like the signature.
        let mut ordered = Map::new();
        for (name, default) in &self.params {
            let v = values.remove(name).or_else(|| default.clone()).unwrap_or(Value::Null);
            ordered.insert(name.clone(), v);
        }
        Ok(Bound { values: ordered, varargs, varkwargs })
    }

    fn too_many(&self, given: usize) -> String {
        let total = self.params.len();
        let required = self.params.iter().filter(|(_, d)| d.is_none()).count();
        let takes = if required == total {
            format!("{total} positional argument{}", if total == 1 { "" } else { "s" })
        } else {
            format!("from {required} to {total} positional arguments")
        };
        let was = if given == 1 { "was" } else { "were" };
        format!("{}() takes {takes} but {given} {was} given", self.name)
    }
}

/// Python's way of listing missing argument names: `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`.
fn py_name_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.len() {
        1 => quoted[0].clone(),
        2 => format!("{} and {}", quoted[0], quoted[1]),
        n => format!("{}, and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

fn parse_literal(s: &str) -> Value {
    match s {
        "None" => Value::Null,
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        "[]" => Value::Array(Vec::new()),
        "{}" => Value::Object(Map::new()),
        _ if s.len() >= 2 && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\''))) => {
            Value::String(s[1..s.len() - 1].to_string())
        }
        _ => {
            if let Ok(i) = s.parse::<i64>() {
                Value::from(i)
            } else if let Ok(f) = s.parse::<f64>() {
                Value::from(f)
            } else {
                panic!("unsupported default literal in signature: {s}")
            }
        }
    }
}

/// The result of [`Signature::bind`]: every named parameter (given or defaulted), the extra
/// positional values (`*args`) and the extra keywords (`**kwargs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub values: Map<String, Value>,
    pub varargs: Vec<Value>,
    pub varkwargs: Map<String, Value>,
}

impl Bound {
    /// The value of a named parameter, else of a keyword that arrived through `**kwargs`
    /// (Salt functions pass their `**kwargs` on, so an option the outer function does not
    /// name still reaches the helper that does); `Null` when absent.
    pub fn get(&self, name: &str) -> &Value {
        self.values.get(name).or_else(|| self.varkwargs.get(name)).unwrap_or(&Value::Null)
    }

    /// `None` for Python `None`, otherwise `str(value)`.
    pub fn opt_str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Value::Null => None,
            v => Some(py_str(v)),
        }
    }

    /// Python truthiness of a named parameter.
    pub fn flag(&self, name: &str) -> bool {
        truthy(self.get(name))
    }

    /// A keyword passed through `**kwargs`.
    pub fn extra(&self, name: &str) -> Option<&Value> {
        self.varkwargs.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        Args::from_publish(v.as_array().unwrap())
    }

    #[test]
    fn publish_args_split_into_positional_and_kwargs() {
        let a = args(json!([1, "two", {"__kwarg__": true, "a": "b", "c": {"x": 1}}, "k=5", "x==y"]));
        assert_eq!(a.positional, vec![json!(1), json!("two"), json!("x==y")]);
        assert_eq!(Value::Object(a.kwargs), json!({"a": "b", "c": {"x": 1}, "k": 5}));
        // A dict without the marker stays positional.
        let a = args(json!([{"a": 1}]));
        assert_eq!(a.positional, vec![json!({"a": 1})]);
        // Not kwargs: leading digit, spaces in the key.
        let a = args(json!(["1a=b", "echo a=b"]));
        assert_eq!(a.positional.len(), 2);
    }

    #[test]
    fn yamlify_subset() {
        assert_eq!(yamlify("True"), json!(true));
        assert_eq!(yamlify("no"), json!(false));
        assert_eq!(yamlify("None"), Value::Null);
        assert_eq!(yamlify("-3"), json!(-3));
        assert_eq!(yamlify("1.5"), json!(1.5));
        assert_eq!(yamlify("{\"a\": 1}"), json!({"a": 1}));
        assert_eq!(yamlify("hello world"), json!("hello world"));
        assert_eq!(yamlify("1.2.3"), json!("1.2.3"));
    }

    #[test]
    fn python_str_and_repr() {
        assert_eq!(py_str(&json!(false)), "False");
        assert_eq!(py_str(&Value::Null), "None");
        assert_eq!(py_str(&json!("it's")), "it's");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!(["a", 1, 2.0, null])), "['a', 1, 2.0, None]");
        assert_eq!(py_repr(&json!({"a": true})), "{'a': True}");
    }

    #[test]
    fn truthiness_is_pythons() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!(""), json!([]), json!({})] {
            assert!(!truthy(&v), "{v} should be falsy");
        }
        for v in [json!(true), json!(1), json!("0"), json!([0]), json!({"a": null})] {
            assert!(truthy(&v), "{v} should be truthy");
        }
    }

    #[test]
    fn bind_fills_defaults_and_extras() {
        let sig = Signature::parse("run(cmd, cwd=None, rstrip=True, code=42, s='x', **kwargs)");
        let b = sig.bind(&args(json!(["ls", "/tmp", {"__kwarg__": true, "code": 3, "zz": 1}]))).unwrap();
        assert_eq!(Value::Object(b.values.clone()), json!({"cmd": "ls", "cwd": "/tmp", "rstrip": true, "code": 3, "s": "x"}));
        assert_eq!(b.extra("zz"), Some(&json!(1)));
        assert_eq!(b.opt_str("cwd").as_deref(), Some("/tmp"));
        assert!(b.flag("rstrip"));
    }

    #[test]
    fn bind_errors_read_like_python() {
        let err = |spec: &str, v: Value| Signature::parse(spec).bind(&args(v)).unwrap_err();
        assert_eq!(
            err("echo(text)", json!([])),
            ModuleError::InvalidArguments("echo() missing 1 required positional argument: 'text'".into())
        );
        assert_eq!(
            err("f(a, b, c)", json!([])),
            ModuleError::InvalidArguments("f() missing 3 required positional arguments: 'a', 'b', and 'c'".into())
        );
        assert_eq!(
            err("f(a, b)", json!([])),
            ModuleError::InvalidArguments("f() missing 2 required positional arguments: 'a' and 'b'".into())
        );
        assert_eq!(err("ping()", json!([1])), ModuleError::InvalidArguments("ping() takes 0 positional arguments but 1 was given".into()));
        assert_eq!(
            err("echo(text)", json!([1, 2])),
            ModuleError::InvalidArguments("echo() takes 1 positional argument but 2 were given".into())
        );
        assert_eq!(
            err("retcode(code=42)", json!([1, 2])),
            ModuleError::InvalidArguments("retcode() takes from 0 to 1 positional arguments but 2 were given".into())
        );
        assert_eq!(
            err("echo(text)", json!(["a", {"__kwarg__": true, "text": "b"}])),
            ModuleError::InvalidArguments("echo() got multiple values for argument 'text'".into())
        );
        assert_eq!(
            err("ping()", json!([{"__kwarg__": true, "foo": "bar", "n": true}])),
            ModuleError::Invocation("The following keyword arguments are not valid: foo=bar, n=True".into())
        );
        // *args swallows extra positionals.
        let b = Signature::parse("doc(*args)").bind(&args(json!(["a", "b"]))).unwrap();
        assert_eq!(b.varargs, vec![json!("a"), json!("b")]);
    }
}
