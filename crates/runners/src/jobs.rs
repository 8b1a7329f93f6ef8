//! `jobs.*`: what the job cache knows, with Salt's output shapes (`salt/runners/jobs.py`).
//! Beyond Salt, `list_jobs` pages (`limit`, default 100, newest first, and `offset`) and every
//! filter runs in the store, so listing a huge cache costs one page.

use futures::future::BoxFuture;
use salt_modules::{truthy, Bound};
use salt_returners::format::{jid_instance, jid_instance_ext, summary_from_load};
use salt_returners::{Capability, JobCache, JobQuery};
use serde_json::{Map, Value};

use crate::{cache, jid_arg, times, Master, RunnerError, RunnerOutput};

type Out<'a> = BoxFuture<'a, Result<RunnerOutput, RunnerError>>;

fn failed(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Failed(e.to_string())
}

/// `list_job`'s dict: jid, the job's description, Minions, Result, EndTime.
async fn describe(store: &dyn JobCache, master: &dyn Master, jid: &str) -> Result<Map<String, Value>, RunnerError> {
    let mut ret = Map::new();
    ret.insert("jid".into(), jid.into());
    match store.get_load(jid).await.map_err(failed)? {
        Some(load) => {
            ret.extend(jid_instance(&summary_from_load(jid, &load)));
            if let Some(minions) = load.get("Minions") {
                ret.insert("Minions".into(), minions.clone());
            }
        }
        None => {
            ret.insert("Error".into(), "Cannot contact returner or no job with this jid".into());
            ret.insert("StartTime".into(), salt_proto::jid::jid_to_time(jid).into());
        }
    }
    ret.insert("Result".into(), Value::Object(store.get_jid(jid).await.map_err(failed)?));
    if master.opts().get("job_cache_store_endtime") == Some(&Value::Bool(true)) && store.supports(Capability::GetEndtime) {
        if let Some(end) = store.get_endtime(jid).await.map_err(failed)? {
            ret.insert("EndTime".into(), end.into());
        }
    }
    Ok(ret)
}

pub fn list_job(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let jid = jid_arg(&b)?;
        let store = cache(master)?;
        Ok(RunnerOutput::data(Value::Object(describe(&*store, master, &jid).await?)))
    })
}

pub fn print_job(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let jid = jid_arg(&b)?;
        let store = cache(master)?;
        let mut job = describe(&*store, master, &jid).await?;
        job.shift_remove("jid");
        let mut ret = Map::new();
        ret.insert(jid, Value::Object(job));
        Ok(RunnerOutput::data(Value::Object(ret)))
    })
}

pub fn lookup_jid(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let jid = jid_arg(&b)?;
        let store = cache(master)?;
        let mut job = describe(&*store, master, &jid).await?;
        // Taken, not cloned: a return may be tens of megabytes.
        let returns = match job.remove("Result") {
            Some(Value::Object(returns)) => returns,
            _ => Map::new(),
        };
        // The first return's outputter (e.g. highstate) renders the whole result, as in Salt.
        let outputter = returns.values().next().and_then(|r| r.get("out")).and_then(Value::as_str).map(str::to_string);
        let missing: Vec<String> = match job.get("Minions") {
            Some(Value::Array(targeted)) if truthy(b.get("missing")) => {
                targeted.iter().filter_map(Value::as_str).filter(|id| !returns.contains_key(*id)).map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        let mut ret = Map::new();
        if truthy(b.get("returned")) {
            for (minion, r) in returns {
                let value = match r {
                    Value::Object(mut r) => r.remove("return").unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                ret.insert(minion, value);
            }
        }
        for id in missing {
            ret.insert(id, "Minion did not return".into());
        }
        let mut out = RunnerOutput::data(Value::Object(ret));
        out.outputter = outputter;
        Ok(out)
    })
}

/// `search_function`/`search_target` take a string, a comma string or a list of globs.
fn globs(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        Value::Array(items) => items.iter().flat_map(globs).collect(),
        Value::Null => Vec::new(),
        other => vec![salt_modules::py_str(other)],
    }
}

fn time_arg(b: &Bound, name: &str) -> Result<Option<chrono::NaiveDateTime>, RunnerError> {
    match b.get(name) {
        Value::Null => Ok(None),
        v => times::parse(&salt_modules::py_str(v)).map(Some).map_err(RunnerError::InvalidArguments),
    }
}

fn count_arg(b: &Bound, name: &str) -> Result<usize, RunnerError> {
    let v = b.get(name);
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .map(|n| n as usize)
        .ok_or_else(|| RunnerError::InvalidArguments(format!("{name} must be a non-negative number, got {}", salt_modules::py_str(v))))
}

fn query_from(b: &Bound, function_key: &str, target_key: &str, metadata_key: &str) -> Result<JobQuery, RunnerError> {
    Ok(JobQuery {
        functions: globs(b.get(function_key)),
        targets: globs(b.get(target_key)),
        metadata: b.get(metadata_key).as_object().cloned(),
        start_time: time_arg(b, "start_time")?,
        end_time: time_arg(b, "end_time")?,
        ..JobQuery::default()
    })
}

fn as_dict(jobs: impl Iterator<Item = salt_returners::JobSummary>) -> Map<String, Value> {
    jobs.map(|j| (j.jid.clone(), Value::Object(jid_instance(&j)))).collect()
}

pub fn list_jobs(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let store = cache(master)?;
        let mut query = query_from(&b, "search_function", "search_target", "search_metadata")?;
        query.limit = Some(count_arg(&b, "limit")?).filter(|&n| n > 0);
        query.offset = count_arg(&b, "offset")?;
        let mut jobs = store.get_jids(&query).await.map_err(failed)?;
        jobs.reverse(); // fetched newest first; shown oldest first, as Salt's sorted output reads
        let mut out = RunnerOutput::data(Value::Object(as_dict(jobs.into_iter())));
        out.outputter = b.opt_str("outputter");
        Ok(out)
    })
}

pub fn list_jobs_filter(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let store = cache(master)?;
        let query =
            JobQuery { limit: Some(count_arg(&b, "count")?), exclude_find_job: truthy(b.get("filter_find_job")), ..JobQuery::default() };
        let mut jobs = store.get_jids(&query).await.map_err(failed)?;
        jobs.reverse();
        let list = jobs.iter().map(|j| Value::Object(jid_instance_ext(j))).collect();
        let mut out = RunnerOutput::data(Value::Array(list));
        out.outputter = b.opt_str("outputter");
        Ok(out)
    })
}

pub fn last_run(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let store = cache(master)?;
        let query = JobQuery { limit: Some(1), ..query_from(&b, "function", "target", "metadata")? };
        let Some(last) = store.get_jids(&query).await.map_err(failed)?.into_iter().next() else {
            return Ok(RunnerOutput::data(Value::Bool(false)));
        };
        let mut job = describe(&*store, master, &last.jid).await?;
        job.shift_remove("jid");
        let mut ret = Map::new();
        ret.insert(last.jid, Value::Object(job));
        Ok(RunnerOutput::data(Value::Object(ret)))
    })
}

pub fn exit_success(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let jid = jid_arg(&b)?;
        let store = cache(master)?;
        let job = describe(&*store, master, &jid).await?;
        let results = job.get("Result").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut ret = Map::new();
        for id in job.get("Minions").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            let ok = results.get(id).and_then(|r| r.get("return")).is_some_and(truthy);
            ret.insert(id.to_string(), ok.into());
        }
        for (id, r) in &results {
            if !ret.contains_key(id) {
                ret.insert(id.clone(), r.get("return").is_some_and(truthy).into());
            }
        }
        Ok(RunnerOutput { data: Value::Object(ret), outputter: None, retcode: 0 })
    })
}

pub fn active(master: &dyn Master, _b: Bound) -> Out<'_> {
    Box::pin(async move {
        let timeout = std::time::Duration::from_secs(master.opts().get("timeout").and_then(Value::as_u64).unwrap_or(5));
        let running = master.cmd("*", "saltutil.running", Vec::new(), timeout).await;
        let mut ret: Map<String, Value> = Map::new();
        for (minion, data) in &running {
            for job in data.as_array().into_iter().flatten().filter_map(Value::as_object) {
                let Some(jid) = job.get("jid").and_then(Value::as_str) else { continue };
                let pid = job.get("pid").cloned().unwrap_or(Value::Null);
                let mut running_on = Map::new();
                running_on.insert(minion.clone(), pid);
                let entry = ret.entry(jid.to_string()).or_insert_with(|| {
                    let mut m = jid_instance(&summary_from_load(jid, job));
                    m.insert("Running".into(), Value::Array(Vec::new()));
                    m.insert("Returned".into(), Value::Array(Vec::new()));
                    Value::Object(m)
                });
                if let Some(list) = entry.get_mut("Running").and_then(Value::as_array_mut) {
                    list.push(Value::Object(running_on));
                }
            }
        }
        if let Some(store) = master.job_cache() {
            for (jid, job) in ret.iter_mut() {
                let returned = store.get_jid(jid).await.map(|r| r.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                if let Some(list) = job.get_mut("Returned").and_then(Value::as_array_mut) {
                    list.extend(returned.into_iter().map(Value::String));
                }
            }
        }
        Ok(RunnerOutput { data: Value::Object(ret), outputter: None, retcode: 0 })
    })
}
