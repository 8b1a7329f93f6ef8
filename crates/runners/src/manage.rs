//! `manage.*`: which minions answer (`salt/runners/manage.py`).

use std::time::Duration;

use futures::future::BoxFuture;
use salt_modules::Bound;
use serde_json::{Map, Value};

use crate::{Master, RunnerError, RunnerOutput};

type Out<'a> = BoxFuture<'a, Result<RunnerOutput, RunnerError>>;

/// `{"up": [...], "down": [...]}`: accepted minions that did / did not answer test.ping.
async fn ping_status(master: &dyn Master, b: &Bound) -> Result<(Vec<String>, Vec<String>), RunnerError> {
    if b.opt_str("tgt_type").is_some_and(|t| t != "glob") {
        return Err(RunnerError::InvalidArguments("only tgt_type=glob is supported by manage.* here".into()));
    }
    let tgt = b.opt_str("tgt").unwrap_or_else(|| "*".into());
    let timeout = b.get("timeout").as_u64().or_else(|| master.opts().get("timeout").and_then(Value::as_u64)).unwrap_or(5);
    let answers = master.cmd(&tgt, "test.ping", Vec::new(), Duration::from_secs(timeout)).await;
    let mut up: Vec<String> = answers.keys().cloned().collect();
    up.sort();
    let mut down: Vec<String> = master
        .accepted_minions()
        .into_iter()
        .filter(|id| salt_targeting::fnmatch::fnmatch(id, &tgt) && !answers.contains_key(id))
        .collect();
    down.sort();
    Ok((up, down))
}

fn list(ids: Vec<String>) -> Value {
    Value::Array(ids.into_iter().map(Value::String).collect())
}

pub fn status(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let (up, down) = ping_status(master, &b).await?;
        let mut ret = Map::new();
        ret.insert("down".into(), list(down));
        ret.insert("up".into(), list(up));
        Ok(RunnerOutput { data: Value::Object(ret), outputter: None, retcode: 0 })
    })
}

pub fn up(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let (up, _) = ping_status(master, &b).await?;
        Ok(RunnerOutput { data: list(up), outputter: None, retcode: 0 })
    })
}

pub fn down(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        if salt_modules::truthy(b.get("removekeys")) {
            return Err(RunnerError::InvalidArguments("removekeys is not supported here; use salt-key -d".into()));
        }
        let (_, down) = ping_status(master, &b).await?;
        Ok(RunnerOutput { data: list(down), outputter: None, retcode: 0 })
    })
}

/// Minions with a live connection to this master (Salt: those with a connected ZeroMQ socket).
pub fn present(master: &dyn Master, b: Bound) -> Out<'_> {
    Box::pin(async move {
        let subset = b.opt_str("subset");
        let mut ids: Vec<String> = master.connected_minions();
        if let Some(glob) = subset {
            ids.retain(|id| salt_targeting::fnmatch::fnmatch(id, &glob));
        }
        ids.sort();
        Ok(RunnerOutput { data: list(ids), outputter: None, retcode: 0 })
    })
}
