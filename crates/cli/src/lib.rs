//! The programs, kept thin: each parses its flags, loads its config and hands over to the
//! libraries. `src/bin/*` are one-line wrappers around these modules so that tests and the
//! binaries share one code path.

mod batch;
pub mod call;
mod common;
pub mod daemon;
pub mod logging;
pub mod output;
pub mod run;
pub mod salt;
pub mod schema;
pub mod swarm;
