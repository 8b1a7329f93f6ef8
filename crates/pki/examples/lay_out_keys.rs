//! Lays out N minion keys the way the master keeps them, for the scale benchmarks of issue 10
//! (`bench/scale.sh`): `PKI_DIR/<state dir>/<id>`, each a distinct, real Ed25519 public PEM, mode
//! 0644 as [`KeyStore::authorize`](salt_pki::KeyStore::authorize) writes it.
//!
//! ```text
//! cargo run --release -p salt-pki --example lay_out_keys -- N PKI_DIR [minions_pre|minions|...]
//! ```
//!
//! Ids cycle through four roles (`web-00001`, `db-00002`, `app-00003`, `cache-00004`, ...), the
//! same ids `salt-master`'s `bench_targeting` example gives its grain maps.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use salt_pki::{KeyPair, KeyState, KeyStore};

/// The id of minion `n` (from 1) in every scale benchmark.
fn minion_id(n: usize) -> String {
    const ROLES: [&str; 4] = ["web", "db", "app", "cache"];
    format!("{}-{n:05}", ROLES[n % ROLES.len()])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: lay_out_keys N PKI_DIR [minions_pre|minions|minions_rejected|minions_denied]";
    let n: usize = args.first().and_then(|a| a.parse().ok()).ok_or(usage)?;
    let pki_dir = PathBuf::from(args.get(1).ok_or(usage)?);
    let state = match args.get(2) {
        Some(name) => KeyState::from_dir_name(name).ok_or(usage)?,
        None => KeyState::Pending,
    };
    let store = KeyStore::open(&pki_dir)?;
    for i in 1..=n {
        let path = store.key_path(state, &minion_id(i))?;
        std::fs::write(&path, KeyPair::generate()?.public_pem())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    eprintln!("{n} keys in {}", pki_dir.join(state.dir_name()).display());
    Ok(())
}
