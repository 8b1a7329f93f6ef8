//! The `rawfile_json` option, with Salt's name and default: `rawfile_json.filename`
//! (`/var/log/salt/events`), looked up as for every returner (nested `rawfile_json: {...}`,
//! `alternative.rawfile_json.filename` with `--return_config`, `--return_kwargs`).

use std::path::PathBuf;

use serde_json::json;

use crate::options::{opt_set, Lookup};
use crate::{Result, ReturnerError};

pub const DEFAULT_FILENAME: &str = "/var/log/salt/events";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawfileJsonConfig {
    /// The file every return and event is appended to, one JSON line each.
    pub filename: PathBuf,
}

impl RawfileJsonConfig {
    pub fn from_lookup(lookup: &Lookup<'_>) -> Result<RawfileJsonConfig> {
        let options = lookup.options(super::NAME, &["filename"], &[("filename", json!(DEFAULT_FILENAME))]);
        let filename = opt_set(&options, "filename").unwrap_or_else(|| DEFAULT_FILENAME.into());
        if filename.ends_with('/') {
            return Err(ReturnerError::Invalid(format!("rawfile_json.filename must name a file, not the directory {filename}")));
        }
        Ok(RawfileJsonConfig { filename: PathBuf::from(filename) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn opts(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn salt_default_flat_nested_and_kwargs() {
        let read = |o: Value| RawfileJsonConfig::from_lookup(&Lookup::new(&opts(o))).map(|c| c.filename);
        assert_eq!(read(json!({})).unwrap(), PathBuf::from(DEFAULT_FILENAME));
        assert_eq!(read(json!({"rawfile_json.filename": ""})).unwrap(), PathBuf::from(DEFAULT_FILENAME));
        assert_eq!(read(json!({"rawfile_json.filename": "/tmp/a"})).unwrap(), PathBuf::from("/tmp/a"));
        assert_eq!(read(json!({"rawfile_json": {"filename": "/tmp/b"}})).unwrap(), PathBuf::from("/tmp/b"));
        assert!(read(json!({"rawfile_json.filename": "/var/log/"})).unwrap_err().to_string().contains("must name a file"));
        let o = opts(json!({"rawfile_json.filename": "/tmp/a", "alternative.rawfile_json.filename": "/tmp/alt"}));
        let ret = opts(json!({"ret_config": "alternative"}));
        assert_eq!(RawfileJsonConfig::from_lookup(&Lookup::new(&o).with_ret(&ret)).unwrap().filename, PathBuf::from("/tmp/alt"));
        let ret = opts(json!({"ret_kwargs": {"filename": "/tmp/kw"}}));
        assert_eq!(RawfileJsonConfig::from_lookup(&Lookup::new(&o).with_ret(&ret)).unwrap().filename, PathBuf::from("/tmp/kw"));
    }
}
