//! `saltutil.*` functions that look at this minion's own jobs. They live here, not in
//! salt-modules, because they need the minion's job table.

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use salt_modules::{Args, JobContext, ModuleError, Registry, Returned};
use serde_json::Value;

use crate::jobs::JobTable;

/// One minion per process: the handlers reach its job table through this.
static JOBS: OnceLock<Arc<JobTable>> = OnceLock::new();

pub fn register(registry: &mut Registry, jobs: Arc<JobTable>) {
    let _ = JOBS.set(jobs);
    registry.register("saltutil.running", "Return the data on all running salt processes on the minion.\n\nCLI Example:\n\n    salt '*' saltutil.running", running);
    registry.register("saltutil.find_job", "Return the data for a specific job id that is currently running.\n\nCLI Example:\n\n    salt '*' saltutil.find_job <job id>", find_job);
}

fn table() -> Result<&'static Arc<JobTable>, ModuleError> {
    JOBS.get().ok_or_else(|| ModuleError::CommandExecution("the job table is not available".into()))
}

fn running(ctx: Arc<JobContext>, _args: Args) -> BoxFuture<'static, Result<Returned, ModuleError>> {
    Box::pin(async move {
        let jobs = table()?.running();
        let others: Vec<Value> = jobs
            .into_iter()
            .filter(|j| j.get("jid").and_then(Value::as_str) != Some(ctx.jid.as_str()))
            .map(Value::Object)
            .collect();
        Ok(Returned { value: Value::Array(others), retcode: None })
    })
}

fn find_job(_ctx: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned, ModuleError>> {
    Box::pin(async move {
        let jid = args
            .positional
            .first()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .or_else(|| args.kwargs.get("jid").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| ModuleError::InvalidArguments("find_job() missing 1 required positional argument: 'jid'".into()))?;
        let found = table()?.find(&jid).map(Value::Object).unwrap_or_else(|| Value::Object(Default::default()));
        Ok(Returned { value: found, retcode: None })
    })
}
