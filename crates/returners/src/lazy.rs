//! A store opened on first use. Minion-side returners are named per job (`--return mysql`) and
//! their database may be down when the job ends; the return is spooled at once, and the store
//! is opened (and re-opened after a failure) when the spool delivers.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::options::Lookup;
use crate::registry::Entry;
use crate::{Load, Rejection, Result, Sink};

pub struct LazyStore {
    entry: &'static Entry,
    opts: Map<String, Value>,
    /// `ret_config` / `ret_kwargs` of the jobs this store serves.
    ret: Map<String, Value>,
    inner: Mutex<Option<Arc<dyn Sink>>>,
}

impl LazyStore {
    /// The store `name` (an unknown name is an error now, not at the first return).
    pub fn new(
        name: &str,
        opts: Map<String, Value>,
        ret_config: Option<&str>,
        ret_kwargs: Option<&Map<String, Value>>,
    ) -> Result<LazyStore> {
        let entry = crate::entry(name)?;
        let mut ret = Map::new();
        if let Some(rc) = ret_config {
            ret.insert("ret_config".into(), rc.into());
        }
        if let Some(rk) = ret_kwargs {
            ret.insert("ret_kwargs".into(), Value::Object(rk.clone()));
        }
        Ok(LazyStore { entry, opts, ret, inner: Mutex::new(None) })
    }

    async fn get(&self) -> Result<Arc<dyn Sink>> {
        let mut inner = self.inner.lock().await;
        if let Some(store) = inner.as_ref() {
            return Ok(store.clone());
        }
        let store = (self.entry.open)(&Lookup::new(&self.opts).with_ret(&self.ret)).await?.sink();
        *inner = Some(store.clone());
        Ok(store)
    }
}

/// Only the sink's calls are offered: a minion's returner writes returns.
#[async_trait]
impl Sink for LazyStore {
    fn entry(&self) -> &'static Entry {
        self.entry
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.get().await?.returner_batch(rets).await
    }

    async fn check(&self) -> Result<()> {
        self.get().await?.check().await
    }
}
