//! The vocabulary every program shares: what may cross a connection, how it is framed, and the
//! identifiers (jids and minion ids) that must be validated before they touch a path or a query.
//!
//! Framing ([`frame`]) is kept apart from meaning ([`message`]): a frame is a length and some
//! msgpack bytes; a message is a closed enum, so nothing that arrives from the network is ever
//! dispatched by name.

pub mod fit;
pub mod frame;
pub mod id;
pub mod jid;
pub mod message;
pub mod nesting;
pub mod private;
pub mod seen;

/// The Salt release whose behaviour, texts and formats we follow.
pub const SALT_VERSION: &str = "3008.4";
/// Salt's codename for [`SALT_VERSION`], printed by `--version`.
pub const SALT_CODENAME: &str = "Argon";
/// This implementation's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of our wire protocol; a peer speaking another one is refused with a clear error.
pub const PROTOCOL_VERSION: u32 = 3;

/// `salt 3008.4 (Argon)`-style version line, with our own version after it.
pub fn version_line(program: &str) -> String {
    format!("{program} {SALT_VERSION} ({SALT_CODENAME}) [saltrs {VERSION}]")
}
