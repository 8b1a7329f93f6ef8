//! The function table and the job wrapper that turns a call into Salt's return fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;

use crate::{Args, Handler, JobContext, ModuleError, Outcome, Returned};

/// Salt's `EX_GENERIC`, the retcode of every failed call.
const EX_GENERIC: i32 = 1;

#[derive(Clone, Copy)]
struct Entry {
    doc: &'static str,
    handler: Handler,
}

/// Functions by their Salt name (`module.function`), with their docs.
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, Entry>,
    /// Why a module could not be loaded (Salt's `function_errors`), shown as
    /// "Possible reasons" when one of its functions is called.
    module_errors: BTreeMap<String, String>,
}

impl Registry {
    /// An empty table.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The built-in modules: `test`, `cmd`, `grains`, `sys`, and `pkg` when this system has
    /// a package manager we drive (dpkg/apt or rpm with dnf/yum), as Salt's loader would.
    pub fn builtin() -> Registry {
        let mut r = Registry::new();
        crate::test::register(&mut r);
        crate::cmd::register(&mut r);
        crate::grains::register(&mut r);
        crate::sys::register(&mut r);
        crate::pkg::register(&mut r);
        r
    }

    /// Add (or replace) a function.
    pub fn register(&mut self, name: &'static str, doc: &'static str, handler: Handler) {
        self.entries.insert(name, Entry { doc, handler });
    }

    /// Record why `module` failed to load; calls into it then get Salt's
    /// `" Possible reasons: '<reason>'"` suffix.
    pub fn set_module_error(&mut self, module: &str, reason: &str) {
        self.module_errors.insert(module.to_string(), reason.to_string());
    }

    pub fn contains(&self, fun: &str) -> bool {
        self.entries.contains_key(fun)
    }

    /// All function names, sorted.
    pub fn functions(&self) -> Vec<&str> {
        self.entries.keys().copied().collect()
    }

    /// The doc string of a function.
    pub fn doc(&self, fun: &str) -> Option<&'static str> {
        self.entries.get(fun).map(|e| e.doc)
    }

    /// Run `fun` with the publish `arg` list (positional values, kwargs as trailing dicts
    /// carrying `"__kwarg__": true`). Never panics: a panic of the function is caught and
    /// reported as Salt reports an exception. Dropping the returned future aborts the function
    /// (and `cmd.*` then kills its process group).
    pub async fn execute(&self, ctx: Arc<JobContext>, fun: &str, arg: &[Value]) -> Outcome {
        let Some(entry) = self.entries.get(fun).copied() else {
            return self.missing(fun);
        };
        let args = Args::from_publish(arg);
        // Run in the caller's task (a task of its own would cost more than `test.ping`); the
        // handler is called inside the caught future so a panic before its first await is
        // caught too.
        let call = std::panic::AssertUnwindSafe(async move { (entry.handler)(ctx, args).await });
        let result = match call.catch_unwind().await {
            Ok(r) => r,
            Err(panic) => Err(ModuleError::Exception(panic_message(panic))),
        };
        match result {
            Ok(returned) => success_outcome(returned),
            Err(err) => error_outcome(fun, entry.doc, err),
        }
    }

    /// Salt's reply for a function the loader does not have: the docs of functions whose
    /// name starts with `fun` (plus the message under `fun`), or just the message.
    fn missing(&self, fun: &str) -> Outcome {
        let message = format!("'{fun}' is not available.");
        let mut docs = crate::sys::doc_matching(self, &[format!("{fun}*")]);
        let ret = if docs.is_empty() {
            let module = fun.split('.').next().unwrap_or(fun);
            match self.module_errors.get(module) {
                Some(reason) => Value::String(format!("{message} Possible reasons: '{reason}'")),
                None => Value::String(message),
            }
        } else {
            docs.insert(fun.to_string(), Value::String(message));
            Value::Object(docs)
        };
        Outcome { ret, retcode: EX_GENERIC, success: false, out: Some("nested".into()) }
    }
}

/// Salt's retcode rule: the function's `__context__["retcode"]`, else 0; a 0 becomes 1 when
/// the return is a dict whose `result` or `success` key is falsy.
fn success_outcome(returned: Returned) -> Outcome {
    let mut retcode = returned.retcode.unwrap_or(0);
    if retcode == 0 {
        if let Value::Object(map) = &returned.value {
            let failed = ["result", "success"].iter().any(|k| map.get(*k).is_some_and(|v| !crate::truthy(v)));
            if failed {
                retcode = EX_GENERIC;
            }
        }
    }
    Outcome { ret: returned.value, retcode, success: retcode == 0, out: None }
}

/// The texts of `Minion._thread_return`'s exception handlers.
fn error_outcome(fun: &str, doc: &str, err: ModuleError) -> Outcome {
    let text = match err {
        ModuleError::CommandExecution(m) => format!("ERROR: {m}"),
        ModuleError::CommandNotFound(m) => format!("Command required for '{fun}' not found: {m}"),
        ModuleError::Invocation(m) => format!("ERROR executing '{fun}': {m}"),
        ModuleError::InvalidArguments(m) => {
            format!("Passed invalid arguments to {fun}: {m}\n{doc}")
        }
        ModuleError::Exception(m) => format!("The minion function caused an exception: {m}"),
    };
    tracing::warn!(function = fun, "{text}");
    Outcome { ret: Value::String(text), retcode: EX_GENERIC, success: false, out: Some("nested".into()) }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("panic: {msg}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Map};

    /// A context for tests: jid and pub data as a `salt '*' <fun>` publish would carry.
    pub(crate) fn ctx_with(registry: Registry, opts: Map<String, Value>) -> Arc<JobContext> {
        let pub_data = json!({
            "fun": "test.arg", "arg": [], "tgt": "*", "jid": "20261125003920420732",
            "ret": "", "tgt_type": "glob", "user": "root"
        });
        Arc::new(JobContext {
            jid: "20261125003920420732".into(),
            minion_id: "minion1".into(),
            pub_data: pub_data.as_object().unwrap().clone(),
            grains: Arc::new(crate::grains::collect("minion1", &Map::new())),
            opts: opts.into(),
            returners: Arc::new(vec!["local_cache".into(), "mysql".into(), "local".into(), "syslog".into()]),
            registry: Arc::new(registry),
        })
    }

    pub(crate) fn ctx() -> Arc<JobContext> {
        ctx_with(Registry::builtin(), Map::new())
    }

    /// Run through the registry exactly as the minion does.
    pub(crate) async fn run(fun: &str, arg: Value) -> Outcome {
        let ctx = ctx();
        let reg = ctx.registry.clone();
        reg.execute(ctx, fun, arg.as_array().unwrap()).await
    }

    fn boom(_: Arc<JobContext>, _: Args) -> futures::future::BoxFuture<'static, Result<Returned, ModuleError>> {
        async { panic!("kaboom") }.boxed()
    }

    fn sync_boom(_: Arc<JobContext>, _: Args) -> futures::future::BoxFuture<'static, Result<Returned, ModuleError>> {
        panic!("before the future")
    }

    fn failing_dict(_: Arc<JobContext>, _: Args) -> futures::future::BoxFuture<'static, Result<Returned, ModuleError>> {
        async { Ok(Returned::value(json!({"result": false, "comment": "nope"}))) }.boxed()
    }

    fn cmd_error(_: Arc<JobContext>, _: Args) -> futures::future::BoxFuture<'static, Result<Returned, ModuleError>> {
        async { Err(ModuleError::CommandExecution("disk on fire".into())) }.boxed()
    }

    fn invocation_error(_: Arc<JobContext>, _: Args) -> futures::future::BoxFuture<'static, Result<Returned, ModuleError>> {
        async { Err(ModuleError::Invocation("bad input".into())) }.boxed()
    }

    #[tokio::test]
    async fn unknown_function_texts() {
        let out = run("foo.bar", json!([])).await;
        assert_eq!(out, Outcome { ret: json!("'foo.bar' is not available."), retcode: 1, success: false, out: Some("nested".into()) });
        // Module exists, function does not: same text (no doc matches "test.nope*").
        let out = run("test.nope", json!([])).await;
        assert_eq!(out.ret, json!("'test.nope' is not available."));
        // A prefix of existing functions returns their docs plus the message.
        let out = run("test.pin", json!([])).await;
        let ret = out.ret.as_object().unwrap();
        assert_eq!(ret.get("test.pin"), Some(&json!("'test.pin' is not available.")));
        assert!(ret.get("test.ping").unwrap().as_str().unwrap().contains("test.ping"));
        assert_eq!((out.retcode, out.success), (1, false));
    }

    #[tokio::test]
    async fn module_load_errors_add_possible_reasons() {
        let mut reg = Registry::builtin();
        reg.set_module_error("zfs", "no zfs binary");
        let ctx = ctx_with(reg, Map::new());
        let out = ctx.registry.clone().execute(ctx, "zfs.list", &[]).await;
        assert_eq!(out.ret, json!("'zfs.list' is not available. Possible reasons: 'no zfs binary'"));
    }

    #[tokio::test]
    async fn bad_arguments_text_includes_doc() {
        let out = run("test.echo", json!([])).await;
        let doc = Registry::builtin().doc("test.echo").unwrap();
        assert_eq!(
            out.ret,
            json!(format!("Passed invalid arguments to test.echo: echo() missing 1 required positional argument: 'text'\n{doc}"))
        );
        assert_eq!((out.retcode, out.success, out.out.as_deref()), (1, false, Some("nested")));
        let out = run("test.ping", json!([{"__kwarg__": true, "foo": "bar"}])).await;
        assert_eq!(out.ret, json!("ERROR executing 'test.ping': The following keyword arguments are not valid: foo=bar"));
    }

    #[tokio::test]
    async fn panics_are_contained_and_registry_survives() {
        let mut reg = Registry::builtin();
        reg.register("boom.async", "doc", boom);
        reg.register("boom.sync", "doc", sync_boom);
        let ctx = ctx_with(reg, Map::new());
        let reg = ctx.registry.clone();
        let out = reg.execute(ctx.clone(), "boom.async", &[]).await;
        assert_eq!(out.ret, json!("The minion function caused an exception: panic: kaboom"));
        assert_eq!((out.retcode, out.success, out.out.as_deref()), (1, false, Some("nested")));
        let out = reg.execute(ctx.clone(), "boom.sync", &[]).await;
        assert_eq!(out.ret, json!("The minion function caused an exception: panic: before the future"));
        let out = reg.execute(ctx, "test.ping", &[]).await;
        assert_eq!(out, Outcome { ret: json!(true), retcode: 0, success: true, out: None });
    }

    #[tokio::test]
    async fn retcode_rules() {
        let mut reg = Registry::builtin();
        reg.register("x.failing_dict", "doc", failing_dict);
        reg.register("x.cmd_error", "doc", cmd_error);
        reg.register("x.invocation_error", "doc", invocation_error);
        let ctx = ctx_with(reg, Map::new());
        let reg = ctx.registry.clone();
        let out = reg.execute(ctx.clone(), "x.failing_dict", &[]).await;
        assert_eq!((out.retcode, out.success, out.out), (1, false, None));
        let out = reg.execute(ctx.clone(), "x.cmd_error", &[]).await;
        assert_eq!(out.ret, json!("ERROR: disk on fire"));
        assert_eq!(out.out.as_deref(), Some("nested"));
        let out = reg.execute(ctx, "x.invocation_error", &[]).await;
        assert_eq!(out.ret, json!("ERROR executing 'x.invocation_error': bad input"));
        // A retcode set by the function wins and makes success false.
        let out = run("test.retcode", json!([3])).await;
        assert_eq!((out.ret, out.retcode, out.success), (json!(true), 3, false));
    }

    #[test]
    fn success_rule_only_checks_result_and_success_keys() {
        let o = success_outcome(Returned::value(json!({"result": true, "success": 1})));
        assert_eq!((o.retcode, o.success), (0, true));
        let o = success_outcome(Returned::value(json!({"success": ""})));
        assert_eq!((o.retcode, o.success), (1, false));
        let o = success_outcome(Returned::value(json!([{"result": false}])));
        assert_eq!((o.retcode, o.success), (0, true));
        let o = success_outcome(Returned::with_retcode(json!({"result": false}), 5));
        assert_eq!((o.retcode, o.success), (5, false));
    }

    #[test]
    fn functions_are_sorted_and_builtin_has_the_core_set() {
        let reg = Registry::builtin();
        let f = reg.functions();
        let mut sorted = f.clone();
        sorted.sort();
        assert_eq!(f, sorted);
        for name in [
            "test.ping",
            "test.echo",
            "test.arg",
            "test.sleep",
            "test.version",
            "test.retcode",
            "cmd.run",
            "cmd.run_all",
            "cmd.run_stdout",
            "cmd.run_stderr",
            "cmd.retcode",
            "cmd.shell",
            "grains.items",
            "grains.item",
            "grains.get",
            "grains.ls",
            "sys.list_modules",
            "sys.list_functions",
            "sys.doc",
            "sys.list_returners",
        ] {
            assert!(reg.contains(name), "{name} missing");
            assert!(!reg.doc(name).unwrap().is_empty());
        }
    }
}
