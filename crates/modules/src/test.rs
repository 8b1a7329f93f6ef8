//! `test.*`: functions for checking that minions answer and that arguments arrive intact
//! (Salt's `salt/modules/test.py`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};

use crate::{py_str, Args, JobContext, ModuleError, Registry, Returned, Signature};

type Result<T> = std::result::Result<T, ModuleError>;

pub(crate) fn register(r: &mut Registry) {
    r.register("test.ping", PING_DOC, ping);
    r.register("test.echo", ECHO_DOC, echo);
    r.register("test.arg", ARG_DOC, arg);
    r.register("test.sleep", SLEEP_DOC, sleep);
    r.register("test.version", VERSION_DOC, version);
    r.register("test.retcode", RETCODE_DOC, retcode);
}

const PING_DOC: &str = "Just used to make sure the minion is up and responding. Returns True.

CLI Example:

    salt '*' test.ping";

fn ping(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        Signature::parse("ping()").bind(&args)?;
        Ok(Returned::value(true))
    }
    .boxed()
}

const ECHO_DOC: &str = "Return a string - used for testing the connection.

CLI Example:

    salt '*' test.echo 'foo bar baz quo qux'";

fn echo(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("echo(text)").bind(&args)?;
        Ok(Returned::value(b.get("text").clone()))
    }
    .boxed()
}

const ARG_DOC: &str = "Print out the data passed into the function ``*args`` and ``**kwargs``.
This tests the publication data and CLI argument passing, and shows the publication data
available to a function (the ``__pub_*`` keys).

Returns a dict with the keys ``args`` and ``kwargs``.

CLI Example:

    salt '*' test.arg 1 \"two\" 3.1 txt=\"hello\" wow='{a: 1, b: \"hello\"}'";

fn arg(ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("arg(*args, **kwargs)").bind(&args)?;
        let mut kwargs = b.varkwargs;
        kwargs.extend(pub_kwargs(&ctx.pub_data));
        let mut ret = Map::new();
        ret.insert("args".into(), Value::Array(b.varargs));
        ret.insert("kwargs".into(), Value::Object(kwargs));
        Ok(Returned::value(ret))
    }
    .boxed()
}

/// The `__pub_*` keyword arguments Salt's `load_args_and_kwargs` adds for functions with
/// `**kwargs`: one per publish key. Salt 3008 publishes always carry the resource-targeting
/// keys; they are filled in here when the publish did not have them so `test.arg` shows what
/// 3008 shows.
pub(crate) fn pub_kwargs(pub_data: &Map<String, Value>) -> Map<String, Value> {
    let mut out: Map<String, Value> = pub_data.iter().map(|(k, v)| (format!("__pub_{k}"), v.clone())).collect();
    for (k, v) in [
        ("resource_targets", Value::Array(Vec::new())),
        ("pure_resource_target", Value::Bool(false)),
        ("minion_is_target", Value::Bool(true)),
    ] {
        out.entry(format!("__pub_{k}")).or_insert(v);
    }
    out
}

const SLEEP_DOC: &str = "Instruct the minion to initiate a process that will sleep for a given
period of time. Returns True.

CLI Example:

    salt '*' test.sleep 20";

fn sleep(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("sleep(length, fire_event=False)").bind(&args)?;
        let secs = py_int(b.get("length"))?;
        if secs > 0 {
            tokio::time::sleep(Duration::from_secs(secs as u64)).await;
        }
        Ok(Returned::value(true))
    }
    .boxed()
}

/// Python `int(value)` for the values a publish carries.
fn py_int(v: &Value) -> Result<i64> {
    let invalid = || ModuleError::Exception(format!("ValueError: invalid literal for int() with base 10: {}", crate::py_repr(v)));
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)).ok_or_else(invalid),
        Value::Bool(b) => Ok(*b as i64),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| invalid()),
        _ => Err(ModuleError::Exception(format!(
            "TypeError: int() argument must be a string, a bytes-like object or a real number, not '{}'",
            match v {
                Value::Null => "NoneType",
                Value::Array(_) => "list",
                _ => "dict",
            }
        ))),
    }
}

const VERSION_DOC: &str = "Return the version of salt on the minion.

CLI Example:

    salt '*' test.version";

fn version(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        Signature::parse("version()").bind(&args)?;
        Ok(Returned::value(crate::SALT_VERSION))
    }
    .boxed()
}

const RETCODE_DOC: &str = "Test that the returncode system is functioning correctly: sets the
job's retcode to ``code`` (default 42) and returns True.

CLI Example:

    salt '*' test.retcode 42";

fn retcode(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("retcode(code=42)").bind(&args)?;
        let code = py_int(b.get("code"))?;
        let code =
            i32::try_from(code).map_err(|_| ModuleError::Invocation(format!("retcode {} is out of range", py_str(b.get("code")))))?;
        // Salt's test.retcode returns True; the code goes into __context__["retcode"].
        Ok(Returned::with_retcode(true, code))
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::run;
    use serde_json::json;

    #[tokio::test]
    async fn ping_echo_version() {
        let out = run("test.ping", json!([])).await;
        assert_eq!((out.ret, out.retcode, out.success, out.out), (json!(true), 0, true, None));
        let out = run("test.echo", json!(["héllo wörld ✓"])).await;
        assert_eq!(out.ret, json!("héllo wörld ✓"));
        let out = run("test.echo", json!([false])).await;
        assert_eq!(out.ret, json!(false));
        let out = run("test.version", json!([])).await;
        assert_eq!(out.ret, json!("3008.4"));
    }

    #[tokio::test]
    async fn arg_returns_args_and_pub_kwargs() {
        let out = run("test.arg", json!([1, "two", {"__kwarg__": true, "a": "b", "c": {"x": 1}}])).await;
        assert_eq!(
            out.ret,
            json!({
                "args": [1, "two"],
                "kwargs": {
                    "a": "b",
                    "c": {"x": 1},
                    "__pub_fun": "test.arg",
                    "__pub_arg": [],
                    "__pub_tgt": "*",
                    "__pub_jid": "20261125003920420732",
                    "__pub_ret": "",
                    "__pub_tgt_type": "glob",
                    "__pub_user": "root",
                    "__pub_resource_targets": [],
                    "__pub_pure_resource_target": false,
                    "__pub_minion_is_target": true
                }
            })
        );
        assert_eq!(out.retcode, 0);
    }

    #[tokio::test]
    async fn retcode_sets_the_job_retcode() {
        let out = run("test.retcode", json!([])).await;
        assert_eq!((out.ret, out.retcode, out.success), (json!(true), 42, false));
        let out = run("test.retcode", json!([{"__kwarg__": true, "code": 0}])).await;
        assert_eq!((out.retcode, out.success), (0, true));
    }

    #[tokio::test]
    async fn sleep_waits_and_returns_true() {
        let start = std::time::Instant::now();
        let out = run("test.sleep", json!([1])).await;
        assert_eq!(out.ret, json!(true));
        assert!(start.elapsed() >= std::time::Duration::from_secs(1));
        let out = run("test.sleep", json!(["abc"])).await;
        assert_eq!(out.ret, json!("The minion function caused an exception: ValueError: invalid literal for int() with base 10: 'abc'"));
    }
}
