//! A store opened on first use. Minion-side returners are named per job (`--return mysql`) and
//! their database may be down when the job ends; the return is spooled at once, and the store
//! is opened (and re-opened after a failure) when the spool delivers.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::options::Lookup;
use crate::{Capability, Load, Result, Returner};

pub struct LazyStore {
    name: String,
    opts: Map<String, Value>,
    /// `ret_config` / `ret_kwargs` of the jobs this store serves.
    ret: Map<String, Value>,
    inner: Mutex<Option<Arc<dyn Returner>>>,
}

impl LazyStore {
    pub fn new(name: &str, opts: Map<String, Value>, ret_config: Option<&str>, ret_kwargs: Option<&Map<String, Value>>) -> LazyStore {
        let mut ret = Map::new();
        if let Some(rc) = ret_config {
            ret.insert("ret_config".into(), rc.into());
        }
        if let Some(rk) = ret_kwargs {
            ret.insert("ret_kwargs".into(), Value::Object(rk.clone()));
        }
        LazyStore { name: name.to_string(), opts, ret, inner: Mutex::new(None) }
    }

    async fn get(&self) -> Result<Arc<dyn Returner>> {
        let mut inner = self.inner.lock().await;
        if let Some(store) = inner.as_ref() {
            return Ok(store.clone());
        }
        let store = crate::open(&self.name, &Lookup::new(&self.opts).with_ret(&self.ret)).await?;
        *inner = Some(store.clone());
        Ok(store)
    }
}

#[async_trait]
impl Returner for LazyStore {
    fn name(&self) -> &str {
        &self.name
    }

    /// Only the minion-side call is offered: that is the role this wrapper serves.
    fn supports(&self, call: Capability) -> bool {
        call == Capability::Returner
    }

    async fn returner(&self, ret: &Load) -> Result<()> {
        self.get().await?.returner(ret).await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<()> {
        self.get().await?.returner_batch(rets).await
    }
}
