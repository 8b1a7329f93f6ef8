//! `local_cache`: the default master job cache. PLACEHOLDER — being written.

use std::path::Path;

use async_trait::async_trait;

use crate::{Capability, Result, Returner};

pub struct LocalCache {}

impl LocalCache {
    pub const NAME: &'static str = "local_cache";

    pub async fn open(_cachedir: &Path) -> Result<LocalCache> {
        Ok(LocalCache {})
    }
}

#[async_trait]
impl Returner for LocalCache {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn supports(&self, _call: Capability) -> bool {
        false
    }
}
