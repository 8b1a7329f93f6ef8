//! Keys for the master and the minions, and the salt-key state machine.
//!
//! Our transport is TLS 1.3 with Ed25519 keys, not Salt's RSA over ZeroMQ, so the key *type* is
//! ours. Everything a Salt administrator touches is Salt's: the file names (`master.pem`,
//! `minion.pub`, ...), the master's `pki_dir` layout (`minions/`, `minions_pre/`,
//! `minions_rejected/`, `minions_denied/`, one file per minion id holding its public PEM), the
//! fingerprint format, the rules the master applies when a minion presents its key, and the
//! `salt-key` command with its texts.
//!
//! - [`KeyPair`]: a node's own key pair on disk ([`keypair`]).
//! - [`KeyStore`]: the master's view of minion keys; [`KeyStore::authorize`] is the decision the
//!   master makes at authentication ([`store`]).
//! - [`salt_key::run`]: the `salt-key` program; it only changes files, and the master re-reads
//!   them on every authentication, so no IPC is needed.

pub use salt_targeting::fnmatch;
pub mod keypair;
pub mod salt_key;
pub mod store;

pub use keypair::{
    fingerprint, fingerprint_der, fingerprint_with, pem_from_public_der, public_der_from_pem, verify, KeyPair, PUBLIC_PEM_MAX_LEN,
};
pub use store::{check_id, AcceptOutcome, AcceptPolicy, KeyMatches, KeyState, KeyStore};

use std::path::PathBuf;

/// Everything that can go wrong with keys. Messages name the file involved, never key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("refusing to use minion id {0:?} as a file name")]
    InvalidId(String),
    #[error("unsupported hash_type {0:?} (use sha224, sha256, sha384 or sha512)")]
    UnsupportedHash(String),
    /// Salt's words for a signing file others could write (it is then ignored).
    #[error("Wrong permissions for {}, ignoring content", .0.display())]
    InsecureFile(PathBuf),
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> PkiError {
        PkiError::Io { path: path.into(), source }
    }
}
