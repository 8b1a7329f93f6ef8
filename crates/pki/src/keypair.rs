//! A node's own Ed25519 key pair, stored where and as Salt stores its RSA pair: `<dir>/<name>.pem`
//! (the private key, PKCS#8 PEM, mode 0600) and `<dir>/<name>.pub` (SubjectPublicKeyInfo PEM,
//! `-----BEGIN PUBLIC KEY-----`). Also the free functions that work on a peer's public PEM:
//! signature checks and Salt's fingerprint.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sha2::Digest;

use crate::PkiError;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 },
/// BIT STRING (0 unused bits) } followed by the 32-byte key. Every Ed25519 SPKI is these 12 bytes
/// plus the key, so checking the prefix is a complete parse.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Longest public-key PEM we accept from a peer. An Ed25519 one is 113 bytes; the bound only
/// exists so that a hostile peer cannot make us parse or store megabytes.
pub const PUBLIC_PEM_MAX_LEN: usize = 4096;

/// An Ed25519 key pair. `Debug` never shows the private key.
pub struct KeyPair {
    pkcs8: Vec<u8>,
    signer: Ed25519KeyPair,
    public_der: Vec<u8>,
    public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("public_pem", &self.public_pem).finish_non_exhaustive()
    }
}

impl Clone for KeyPair {
    fn clone(&self) -> KeyPair {
        KeyPair::from_pkcs8_der(self.pkcs8.clone()).expect("a loaded key parses again")
    }
}

impl KeyPair {
    /// A fresh key pair, in memory only.
    pub fn generate() -> Result<KeyPair, PkiError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| PkiError::InvalidKey("the system random generator failed".into()))?;
        KeyPair::from_pkcs8_der(doc.as_ref().to_vec())
    }

    /// From PKCS#8 DER. Both v1 (as `openssl genpkey` writes) and v2 (as ring writes) are read.
    pub fn from_pkcs8_der(pkcs8: Vec<u8>) -> Result<KeyPair, PkiError> {
        let signer = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|e| PkiError::InvalidKey(format!("not an Ed25519 PKCS#8 private key ({e})")))?;
        let mut public_der = ED25519_SPKI_PREFIX.to_vec();
        public_der.extend_from_slice(signer.public_key().as_ref());
        let public_pem = encode_pem("PUBLIC KEY", &public_der);
        Ok(KeyPair { pkcs8, signer, public_der, public_pem })
    }

    /// From a `-----BEGIN PRIVATE KEY-----` PEM.
    pub fn from_pkcs8_pem(text: &str) -> Result<KeyPair, PkiError> {
        let block = pem::parse(text).map_err(|e| PkiError::InvalidKey(format!("bad PEM ({e})")))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(PkiError::InvalidKey(format!(
                "expected a PKCS#8 \"PRIVATE KEY\" PEM, found {:?} (RSA keys from Salt are not used: \
                 move them aside and a new Ed25519 pair is generated)",
                block.tag()
            )));
        }
        KeyPair::from_pkcs8_der(block.into_contents())
    }

    /// Loads `<dir>/<name>.pem`, or generates and writes it (0600) when it does not exist.
    /// `<dir>/<name>.pub` is (re)written from the private key when missing or different, since the
    /// private key is the source of truth. `dir` is created with mode 0700 when missing.
    /// Two processes racing to generate end up with the same key: the file is created with a
    /// no-clobber link, and the loser loads the winner's key.
    pub fn load_or_generate(dir: &Path, name: &str) -> Result<KeyPair, PkiError> {
        if name.is_empty() || name.contains('/') || name.contains('\0') || name.starts_with('.') {
            return Err(PkiError::InvalidKey(format!("bad key file name {name:?}")));
        }
        create_private_dir(dir)?;
        let pem_path = dir.join(format!("{name}.pem"));
        let pub_path = dir.join(format!("{name}.pub"));
        let pair = match fs::read_to_string(&pem_path) {
            Ok(text) => KeyPair::from_pkcs8_pem(&text).map_err(|e| in_file(&pem_path, e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let fresh = KeyPair::generate()?;
                let private_pem = encode_pem("PRIVATE KEY", &fresh.pkcs8);
                if write_new(&pem_path, private_pem.as_bytes(), 0o600)? {
                    fresh
                } else {
                    let text = fs::read_to_string(&pem_path).map_err(|e| PkiError::io(&pem_path, e))?;
                    KeyPair::from_pkcs8_pem(&text).map_err(|e| in_file(&pem_path, e))?
                }
            }
            Err(e) => return Err(PkiError::io(&pem_path, e)),
        };
        match fs::read_to_string(&pub_path) {
            Ok(existing) if existing == pair.public_pem => {}
            Ok(_) => write_replace(&pub_path, pair.public_pem.as_bytes(), 0o644)?,
            Err(e) if e.kind() == ErrorKind::NotFound => write_replace(&pub_path, pair.public_pem.as_bytes(), 0o644)?,
            Err(e) => return Err(PkiError::io(&pub_path, e)),
        }
        Ok(pair)
    }

    /// The public key as the `.pub` file holds it (ends with a newline).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// PKCS#8 DER of the private key, for rustls (`PrivatePkcs8KeyDer`) and rcgen.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// SubjectPublicKeyInfo DER of the public key.
    pub fn public_der(&self) -> &[u8] {
        &self.public_der
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_raw(&self) -> &[u8] {
        self.signer.public_key().as_ref()
    }

    /// Ed25519 signature (64 bytes) of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.signer.sign(msg).as_ref().to_vec()
    }

    /// Salt's fingerprint of this key's `.pub` file (what `salt-key -f` and `master_finger` show).
    pub fn fingerprint(&self) -> String {
        fingerprint_der(&self.public_der)
    }
}

/// True when `sig` is a valid Ed25519 signature of `msg` by the key in `public_pem`. Any parse
/// failure is simply `false`: the caller only needs to know whether to trust the message.
pub fn verify(public_pem: &str, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(der) = public_der_from_pem(public_pem) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, &der[ED25519_SPKI_PREFIX.len()..]).verify(msg, sig).is_ok()
}

/// The SPKI DER inside a `-----BEGIN PUBLIC KEY-----` PEM, checked to be an Ed25519 key (the only
/// kind our transport uses, so anything else is an error here rather than a surprise later).
pub fn public_der_from_pem(public_pem: &str) -> Result<Vec<u8>, PkiError> {
    if public_pem.len() > PUBLIC_PEM_MAX_LEN {
        return Err(PkiError::InvalidKey(format!("public key PEM is {} bytes; the limit is {PUBLIC_PEM_MAX_LEN}", public_pem.len())));
    }
    let block = pem::parse(public_pem).map_err(|e| PkiError::InvalidKey(format!("bad PEM ({e})")))?;
    if block.tag() != "PUBLIC KEY" {
        return Err(PkiError::InvalidKey(format!("expected a \"PUBLIC KEY\" PEM, found {:?}", block.tag())));
    }
    let der = block.into_contents();
    if der.len() != ED25519_SPKI_PREFIX.len() + 32 || !der.starts_with(&ED25519_SPKI_PREFIX) {
        return Err(PkiError::InvalidKey("not an Ed25519 public key".into()));
    }
    Ok(der)
}

/// The `-----BEGIN PUBLIC KEY-----` PEM of an SPKI DER key, written exactly as the `.pub` files
/// are (so a key received as DER compares equal to the stored file). No check is made here;
/// [`KeyStore::authorize`](crate::KeyStore::authorize) and [`verify`] check what they use.
pub fn pem_from_public_der(der: &[u8]) -> String {
    encode_pem("PUBLIC KEY", der)
}

/// Salt's key fingerprint (`salt.utils.crypt.pem_finger` on a file holding `pem_text`), with the
/// default `hash_type: sha256`.
pub fn fingerprint(pem_text: &str) -> Result<String, PkiError> {
    fingerprint_with(pem_text, "sha256")
}

/// [`fingerprint`] of a key held as SPKI DER (e.g. the key a TLS peer presented): the fingerprint
/// of the `.pub` file that key is stored as. Use this, not a hash of the DER, wherever a
/// fingerprint is shown or compared (`master_finger`), so it always equals what `salt-key -f`
/// prints.
pub fn fingerprint_der(public_der: &[u8]) -> String {
    fingerprint(&pem_from_public_der(public_der)).expect("an encoded PEM has a body")
}

/// Salt's `pem_finger(path, sum_type=hash_type)`. Note what Salt hashes: not the DER, but the PEM
/// *text* between the first and last non-blank lines, each line with its own line ending (the
/// base64 body, newlines included). Matching that keeps our fingerprints equal to the ones a
/// Salt user computes from the same file, e.g. for `master_finger`.
pub fn fingerprint_with(pem_text: &str, hash_type: &str) -> Result<String, PkiError> {
    let lines: Vec<&str> = pem_text.split_inclusive('\n').filter(|l| !l.trim().is_empty()).collect();
    if lines.len() < 3 || !lines[0].starts_with("-----BEGIN ") {
        return Err(PkiError::InvalidKey("not a PEM file".into()));
    }
    let body = lines[1..lines.len() - 1].concat();
    let digest = match hash_type {
        "sha224" => sha2::Sha224::digest(body.as_bytes()).to_vec(),
        "sha256" => sha2::Sha256::digest(body.as_bytes()).to_vec(),
        "sha384" => sha2::Sha384::digest(body.as_bytes()).to_vec(),
        "sha512" => sha2::Sha512::digest(body.as_bytes()).to_vec(),
        other => return Err(PkiError::UnsupportedHash(other.to_string())),
    };
    let hex = hex::encode(digest);
    let pairs: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
    Ok(pairs.join(":"))
}

/// PEM with `\n` line endings and 64-character lines, as OpenSSL (and so Salt) writes it.
fn encode_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(&pem::Pem::new(tag, der.to_vec()), pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

fn in_file(path: &Path, e: PkiError) -> PkiError {
    match e {
        PkiError::InvalidKey(msg) => PkiError::InvalidKey(format!("{}: {msg}", path.display())),
        other => other,
    }
}

/// Creates `dir` (and parents) with mode 0700 when missing; an existing directory is left as is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| PkiError::io(dir, e))
}

/// A hidden temporary name beside `path`. Hidden because Salt (and we) skip dot files when
/// listing key directories, so a half-written key is never seen as a minion.
fn temp_beside(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    path.with_file_name(format!(".{name}.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)))
}

fn write_temp(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, PkiError> {
    let tmp = temp_beside(path);
    let result = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(PkiError::io(&tmp, e))
        }
    }
}

/// Writes `path` atomically (readers see the old file or the new one, never a partial one).
pub(crate) fn write_replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = write_temp(path, contents, mode)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        PkiError::io(path, e)
    })
}

/// Writes `path` atomically only if it does not exist yet. Returns false when it already did.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<bool, PkiError> {
    let tmp = write_temp(path, contents, mode)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(PkiError::io(path, e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh empty directory under the system temp dir (removed by the returned guard).
    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!("salt-pki-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generates_salt_named_files_with_private_modes_and_reloads_them() {
        let t = TempDir::new("gen");
        let dir = t.path().join("pki/master");
        let a = KeyPair::load_or_generate(&dir, "master").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("master.pem")), 0o600);
        let pem = fs::read_to_string(dir.join("master.pem")).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let pubf = fs::read_to_string(dir.join("master.pub")).unwrap();
        assert_eq!(pubf, a.public_pem());
        assert!(pubf.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pubf.ends_with("-----END PUBLIC KEY-----\n"));
        assert_eq!(pubf.lines().count(), 3, "44 DER bytes fit on one base64 line");

        let b = KeyPair::load_or_generate(&dir, "master").unwrap();
        assert_eq!(a.public_pem(), b.public_pem());
        assert_eq!(a.pkcs8_der(), b.pkcs8_der());
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn missing_or_stale_pub_is_rewritten_from_the_private_key() {
        let t = TempDir::new("pub");
        let a = KeyPair::load_or_generate(t.path(), "minion").unwrap();
        fs::remove_file(t.path().join("minion.pub")).unwrap();
        KeyPair::load_or_generate(t.path(), "minion").unwrap();
        assert_eq!(fs::read_to_string(t.path().join("minion.pub")).unwrap(), a.public_pem());
        let other = KeyPair::generate().unwrap();
        fs::write(t.path().join("minion.pub"), other.public_pem()).unwrap();
        KeyPair::load_or_generate(t.path(), "minion").unwrap();
        assert_eq!(fs::read_to_string(t.path().join("minion.pub")).unwrap(), a.public_pem());
    }

    #[test]
    fn an_rsa_or_garbage_private_key_is_an_error_naming_the_file() {
        let t = TempDir::new("bad");
        fs::write(t.path().join("master.pem"), "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n").unwrap();
        let err = KeyPair::load_or_generate(t.path(), "master").unwrap_err().to_string();
        assert!(err.contains("master.pem"), "{err}");
        assert!(err.contains("RSA PRIVATE KEY"), "{err}");
        assert!(KeyPair::load_or_generate(t.path(), "../x").is_err());
    }

    #[test]
    fn sign_and_verify() {
        let k = KeyPair::generate().unwrap();
        let sig = k.sign(b"publish jid 1");
        assert_eq!(sig.len(), 64);
        assert!(verify(k.public_pem(), b"publish jid 1", &sig));
        assert!(!verify(k.public_pem(), b"publish jid 2", &sig));
        let other = KeyPair::generate().unwrap();
        assert!(!verify(other.public_pem(), b"publish jid 1", &sig));
        assert!(!verify("not a pem", b"publish jid 1", &sig));
    }

    #[test]
    fn public_der_round_trips_and_rejects_other_keys() {
        let k = KeyPair::generate().unwrap();
        assert_eq!(public_der_from_pem(k.public_pem()).unwrap(), k.public_der());
        assert_eq!(pem_from_public_der(k.public_der()), k.public_pem());
        assert_eq!(k.public_der().len(), 44);
        assert_eq!(&k.public_der()[12..], k.public_raw());
        // An RSA SubjectPublicKeyInfo (from the Salt docs) is refused.
        let rsa = "-----BEGIN PUBLIC KEY-----\n\
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDUkb0ol7/oLRbfbLqcW43xtJdh\n\
7xQ+Vf57DWtkEpeflZ5fUTIND+s1AlTAv63NsfUX3GJ/p+5jhnl3zweTKr7e5haM\n\
ZqOJaARSKpGxOBwz1K3bhvJW+izXwUrwPbcmkiAlvkAsjj1hwRpND8t/NouF+hOw\n\
HLQCPvkX8YLbUzoZrwIDAQAB\n\
-----END PUBLIC KEY-----\n";
        assert!(public_der_from_pem(rsa).is_err());
        assert!(public_der_from_pem(&"A".repeat(PUBLIC_PEM_MAX_LEN + 1)).is_err());
    }

    #[test]
    fn fingerprint_hashes_the_pem_body_lines_like_salt() {
        // Fixed key (RFC 8410 example public key). Expected value computed the way Salt's
        // pem_finger does (checked by running its Python code on this file).
        let pem = "-----BEGIN PUBLIC KEY-----\n\
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
-----END PUBLIC KEY-----\n";
        let body = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n";
        let expect_hex = hex::encode(sha2::Sha256::digest(body.as_bytes()));
        let fp = fingerprint(pem).unwrap();
        assert_eq!(fp.replace(':', ""), expect_hex);
        assert_eq!(fp.len(), 32 * 3 - 1);
        let der = public_der_from_pem(pem).unwrap();
        assert_eq!(fingerprint_der(&der), fp);
        assert_eq!(fp, "a8:0a:43:a8:63:f0:5e:ec:99:9f:a5:da:c1:73:bb:cc:cc:ee:45:cb:57:78:e4:ae:78:63:ea:f7:b9:c2:9d:c7");
        // Blank lines are ignored, as in Salt; a missing final newline does not matter (the END
        // line is not hashed).
        let padded = format!("\n{}\n\n", pem.trim_end());
        assert_eq!(fingerprint(&padded).unwrap(), fp);
        assert!(public_der_from_pem(pem).is_ok());
        assert_eq!(fingerprint_with(pem, "sha512").unwrap().len(), 64 * 3 - 1);
        assert!(fingerprint_with(pem, "md5").is_err());
        assert!(fingerprint("no pem here").is_err());
    }
}
