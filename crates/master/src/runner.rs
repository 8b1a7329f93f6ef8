//! Running runners on the master: the job is announced (`salt/run/<jid>/new`), run against the
//! master's state, announced again with its return (`salt/run/<jid>/ret`) and stored in the job
//! cache under the master's id, as Salt does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use salt_proto::message::{ClientReply, PublishRequest, RunnerRequest};
use salt_returners::JobCache;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::acl::Caller;
use crate::Master;
use salt_returners::spool::Record;

pub(crate) async fn run(master: &Arc<Master>, user: &str, req: RunnerRequest) -> ClientReply {
    let jid = master.new_jid();
    let fun = format!("runner.{}", req.fun);
    let mut announce = Map::new();
    announce.insert("fun".into(), fun.clone().into());
    announce.insert("jid".into(), jid.clone().into());
    announce.insert("user".into(), user.into());
    announce.insert("fun_args".into(), Value::Array(req.arg.clone()));
    master.bus().fire(format!("salt/run/{jid}/new"), announce.clone());

    let host = RunnerHost { master: master.clone() };
    let (data, outputter, retcode, success) = match salt_runners::run(&host, &req.fun, &req.arg).await {
        Ok(out) => (out.data, out.outputter, out.retcode, true),
        Err(e) => (Value::String(e.to_string()), None, 1, false),
    };

    let kept = kept_copy(&data);
    let mut ret = announce;
    ret.insert("return".into(), kept.clone());
    ret.insert("success".into(), success.into());
    master.bus().fire(format!("salt/run/{jid}/ret"), ret);

    let master_id = master.id().to_string();
    let mut load = Map::new();
    load.insert("fun".into(), fun.clone().into());
    load.insert("arg".into(), Value::Array(req.arg.clone()));
    load.insert("tgt".into(), master_id.clone().into());
    load.insert("tgt_type".into(), "list".into());
    load.insert("user".into(), user.into());
    load.insert("jid".into(), jid.clone().into());
    master.store_load(Record::Load { jid: jid.clone(), load, minions: vec![master_id.clone()] });
    let mut stored = Map::new();
    stored.insert("id".into(), master_id.into());
    stored.insert("jid".into(), jid.clone().into());
    stored.insert("fun".into(), fun.into());
    stored.insert("fun_args".into(), Value::Array(req.arg));
    stored.insert("return".into(), kept);
    stored.insert("retcode".into(), retcode.into());
    stored.insert("success".into(), success.into());
    if let Err(e) = master.store_return(Record::Return { ret: stored }).await {
        tracing::error!("cannot spool the return of runner job {jid}: {e}");
    }

    ClientReply::RunnerReturn { jid, data, outputter, retcode }
}

/// Runner output up to this size (as JSON) is kept whole in the `salt/run/<jid>/ret` event and
/// the job cache, as Salt keeps it; larger output goes whole to its caller only. Otherwise a
/// `jobs.lookup_jid` of a 40 MB return would be copied onto the bus and into the job cache
/// again, and the master would hold it several times over.
const RUNNER_OUTPUT_KEPT: usize = 1024 * 1024;

fn kept_copy(data: &Value) -> Value {
    let size = json_len(data);
    if size <= RUNNER_OUTPUT_KEPT {
        data.clone()
    } else {
        Value::String(format!(
            "... output truncated: 0 of {size} bytes (larger than {RUNNER_OUTPUT_KEPT}; the whole output went to the caller)"
        ))
    }
}

/// The length of `value` as JSON, counted without building the text.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The master as runners see it.
struct RunnerHost {
    master: Arc<Master>,
}

#[async_trait]
impl salt_runners::Master for RunnerHost {
    fn opts(&self) -> &Map<String, Value> {
        self.master.config().as_map()
    }

    fn master_id(&self) -> &str {
        self.master.id()
    }

    fn job_cache(&self) -> Option<Arc<dyn JobCache>> {
        self.master.job_cache()
    }

    fn accepted_minions(&self) -> Vec<String> {
        self.master.accepted_minions()
    }

    fn connected_minions(&self) -> Vec<String> {
        self.master.connected_minions()
    }

    async fn cmd(&self, tgt: &str, fun: &str, arg: Vec<Value>, timeout: Duration) -> Map<String, Value> {
        let req = PublishRequest { tgt: json!(tgt), tgt_type: "glob".into(), fun: fun.into(), arg, ret: String::new(), kwargs: Map::new() };
        let root = Caller { uid: 0, name: "root".into() };
        let Ok(mut published) = crate::publish::publish(&self.master, &root, req) else {
            return Map::new();
        };
        let mut waiting: Vec<String> = published.minions.iter().filter(|m| !published.not_connected.contains(m)).cloned().collect();
        let mut returns = Map::new();
        let deadline = Instant::now() + timeout;
        let prefix = format!("salt/job/{}/ret/", published.jid);
        while !waiting.is_empty() {
            let event = match tokio::time::timeout_at(deadline, published.events.recv()).await {
                Ok(Some(e)) => e,
                _ => break,
            };
            if let Some(id) = event.tag.strip_prefix(&prefix) {
                waiting.retain(|w| w != id);
                returns.insert(id.to_string(), event.data.get("return").cloned().unwrap_or(Value::Null));
            }
        }
        returns
    }
}
