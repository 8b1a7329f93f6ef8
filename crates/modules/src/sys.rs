//! `sys.*`: what this minion can run, and the docs of it (Salt's `salt/modules/sysmod.py`).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};

use crate::{fnmatch, py_str, Args, JobContext, ModuleError, Registry, Returned, Signature};

type Result<T> = std::result::Result<T, ModuleError>;

pub(crate) fn register(r: &mut Registry) {
    r.register("sys.doc", DOC_DOC, doc);
    r.register("sys.list_functions", LIST_FUNCTIONS_DOC, list_functions);
    r.register("sys.list_modules", LIST_MODULES_DOC, list_modules);
    r.register("sys.list_returners", LIST_RETURNERS_DOC, list_returners);
}

fn names(values: &[Value]) -> Vec<String> {
    values.iter().map(py_str).collect()
}

/// `sys.doc` selection: a pattern with `*` is an fnmatch glob over function names; otherwise
/// it names a function or a module (`sys` and `sys.` both mean the `sys` module, not `sysctl`).
pub(crate) fn doc_matching(registry: &Registry, patterns: &[String]) -> Map<String, Value> {
    let mut docs = Map::new();
    let mut add = |fun: &str| {
        docs.insert(fun.to_string(), Value::String(registry.doc(fun).unwrap_or("").to_string()));
    };
    if patterns.is_empty() {
        registry.functions().into_iter().for_each(&mut add);
        return docs;
    }
    for pattern in patterns {
        if pattern.contains('*') {
            registry.functions().into_iter().filter(|f| fnmatch(f, pattern)).for_each(&mut add);
        } else if !pattern.is_empty() {
            let prefix = if pattern.ends_with('.') { pattern.clone() } else { format!("{pattern}.") };
            registry.functions().into_iter().filter(|f| f == pattern || f.starts_with(&prefix)).for_each(&mut add);
        } else {
            registry.functions().into_iter().for_each(&mut add);
        }
    }
    docs
}

const DOC_DOC: &str = "Return the docstrings for all modules. Optionally, specify a module or a
function to narrow the selection. Globs are supported.

CLI Example:

    salt '*' sys.doc
    salt '*' sys.doc sys
    salt '*' sys.doc sys.doc
    salt '*' sys.doc 'sys.*'";

fn doc(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("doc(*args)").bind(&args)?;
        Ok(Returned::value(doc_matching(&ctx.registry, &names(&b.varargs))))
    }
    .boxed()
}

const LIST_FUNCTIONS_DOC: &str = "List the functions for all modules. Optionally, specify a
module or modules from which to list. Globs are supported.

CLI Example:

    salt '*' sys.list_functions
    salt '*' sys.list_functions sys
    salt '*' sys.list_functions 'sys.list_*'";

fn list_functions(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("list_functions(*args, **kwargs)").bind(&args)?;
        let all = ctx.registry.functions();
        let patterns = names(&b.varargs);
        if patterns.is_empty() {
            return Ok(Returned::value(all));
        }
        let mut found: BTreeSet<&str> = BTreeSet::new();
        for module in &patterns {
            if module.contains('*') || module.contains('.') {
                found.extend(all.iter().copied().filter(|f| fnmatch(f, module)));
            } else {
                let dotted = format!("{module}.");
                found.extend(all.iter().copied().filter(|f| f.starts_with(&dotted)));
            }
        }
        Ok(Returned::value(found.into_iter().collect::<Vec<_>>()))
    }
    .boxed()
}

const LIST_MODULES_DOC: &str = "List the modules loaded on the minion. Globs are supported.

CLI Example:

    salt '*' sys.list_modules
    salt '*' sys.list_modules 's*'";

fn list_modules(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("list_modules(*args)").bind(&args)?;
        let funcs = ctx.registry.functions();
        let module = |f: &str| f.split('.').next().unwrap_or(f).to_string();
        let patterns = names(&b.varargs);
        let mut found = BTreeSet::new();
        if patterns.is_empty() {
            found.extend(funcs.iter().map(|f| module(f)));
        }
        for pattern in &patterns {
            if pattern.contains('*') {
                found.extend(funcs.iter().filter(|f| fnmatch(f, pattern)).map(|f| module(f)));
            } else {
                found.extend(funcs.iter().map(|f| module(f)).filter(|m| m == pattern));
            }
        }
        Ok(Returned::value(found.into_iter().collect::<Vec<_>>()))
    }
    .boxed()
}

const LIST_RETURNERS_DOC: &str = "List the returners available on the minion. Globs are
supported.

CLI Example:

    salt '*' sys.list_returners
    salt '*' sys.list_returners 's*'";

fn list_returners(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("list_returners(*args)").bind(&args)?;
        let patterns = names(&b.varargs);
        // Salt globs over "<returner>.<function>" keys; every returner has `returner`, so a
        // glob matches a returner when it matches its name or "<name>.returner".
        let found: BTreeSet<&String> = ctx
            .returners
            .iter()
            .filter(|name| {
                patterns.is_empty()
                    || patterns.iter().any(|p| {
                        if p.contains('*') {
                            fnmatch(name, p) || fnmatch(&format!("{name}.returner"), p)
                        } else {
                            *name == p
                        }
                    })
            })
            .collect();
        Ok(Returned::value(found.into_iter().cloned().collect::<Vec<_>>()))
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::run;
    use serde_json::{json, Value};

    #[tokio::test]
    async fn list_functions_and_modules() {
        let out = run("sys.list_functions", json!(["sys"])).await;
        assert_eq!(out.ret, json!(["sys.doc", "sys.list_functions", "sys.list_modules", "sys.list_returners"]));
        let out = run("sys.list_functions", json!(["test.p*"])).await;
        assert_eq!(out.ret, json!(["test.ping"]));
        let out = run("sys.list_functions", json!([])).await;
        assert!(out.ret.as_array().unwrap().contains(&json!("cmd.run_all")));
        let out = run("sys.list_modules", json!([])).await;
        let mods: Vec<&str> = out.ret.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for m in ["cmd", "grains", "sys", "test"] {
            assert!(mods.contains(&m));
        }
        let out = run("sys.list_modules", json!(["s*"])).await;
        assert_eq!(out.ret, json!(["sys"]));
        let out = run("sys.list_modules", json!(["cmd"])).await;
        assert_eq!(out.ret, json!(["cmd"]));
    }

    #[tokio::test]
    async fn doc_selects_by_function_module_and_glob() {
        let out = run("sys.doc", json!(["test.ping"])).await;
        let docs = out.ret.as_object().unwrap();
        assert_eq!(docs.keys().collect::<Vec<_>>(), vec!["test.ping"]);
        assert!(docs["test.ping"].as_str().unwrap().contains("salt '*' test.ping"));
        let out = run("sys.doc", json!(["sys"])).await;
        assert_eq!(out.ret.as_object().unwrap().len(), 4);
        let out = run("sys.doc", json!(["grains.i*"])).await;
        let keys: Vec<&String> = out.ret.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["grains.item", "grains.items"]);
        let out = run("sys.doc", json!(["nosuchmodule"])).await;
        assert_eq!(out.ret, json!({}));
    }

    #[tokio::test]
    async fn list_returners_sorted_and_globbed() {
        let out = run("sys.list_returners", json!([])).await;
        assert_eq!(out.ret, json!(["local", "local_cache", "mysql", "syslog"]));
        let out = run("sys.list_returners", json!(["local*"])).await;
        assert_eq!(out.ret, json!(["local", "local_cache"]));
        let out = run("sys.list_returners", json!(["mysql"])).await;
        assert_eq!(out.ret, json!(["mysql"]));
        let out = run("sys.list_returners", json!(["nope*"])).await;
        assert_eq!(out.ret, Value::Array(vec![]));
    }
}
