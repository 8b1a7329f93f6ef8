//! The master's minion keys: Salt's `pki_dir` layout and the state machine behind both the
//! master's authentication decision ([`KeyStore::authorize`], after Salt's
//! `ReqServerChannel._auth`) and `salt-key` (after Salt's `salt.key.Key`).
//!
//! ```text
//! pki_dir/master.pem, master.pub      the master's own pair (see KeyPair)
//! pki_dir/minions/<id>                accepted       (public PEM of the minion)
//! pki_dir/minions_pre/<id>            pending ("Unaccepted Keys")
//! pki_dir/minions_rejected/<id>       rejected
//! pki_dir/minions_denied/<id>         denied: a key that arrived for an id that already had another
//! ```
//!
//! The files are the only state. The master reads them on every authentication and `salt-key`
//! only changes them, so the two never need to talk. Every path is built by [`KeyStore`] from an
//! id that passed [`check_id`], and every write is atomic (temp file + rename).

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::fnmatch::{fnmatch, Glob};
use crate::keypair::{create_private_dir, public_der_from_pem, write_replace};
use crate::PkiError;

/// Where a minion's key is. The declaration order is Salt's `list_keys` order (the order its
/// dicts iterate in); displays sort by [`KeyState::dir_name`] instead, as Salt's outputter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyState {
    Accepted,
    Pending,
    Rejected,
    Denied,
}

impl KeyState {
    /// All states in Salt's `list_keys` order.
    pub const ALL: [KeyState; 4] = [KeyState::Accepted, KeyState::Pending, KeyState::Rejected, KeyState::Denied];

    /// The directory under `pki_dir` (also the key Salt uses in `--out json`).
    pub fn dir_name(self) -> &'static str {
        match self {
            KeyState::Accepted => "minions",
            KeyState::Pending => "minions_pre",
            KeyState::Rejected => "minions_rejected",
            KeyState::Denied => "minions_denied",
        }
    }

    pub fn from_dir_name(name: &str) -> Option<KeyState> {
        KeyState::ALL.into_iter().find(|s| s.dir_name() == name)
    }
}

/// Refuses ids that could escape or confuse a key directory. Callers validate ids strictly before
/// they get here (`salt_proto::id`); this is the last line of defence at the point where a path
/// is built. Ids starting with `.` are refused too: listings skip dot files, so such a key would be
/// stored but invisible.
pub fn check_id(id: &str) -> Result<(), PkiError> {
    if id.is_empty() || id.contains('/') || id.contains('\0') || id.contains("..") || id.starts_with('.') {
        return Err(PkiError::InvalidId(id.chars().take(64).collect()));
    }
    Ok(())
}

/// Minion ids grouped by key state, in insertion order: the shape of the dicts Salt's `Key` class
/// returns (`{"minions_pre": ["web1"], ...}`), which salt-key prints and acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMatches {
    entries: Vec<(KeyState, Vec<String>)>,
}

impl KeyMatches {
    pub fn new() -> KeyMatches {
        KeyMatches::default()
    }

    /// Appends `id` under `state`, creating the group at the end if new (Python's `setdefault`).
    pub fn push(&mut self, state: KeyState, id: String) {
        self.group_mut(state).push(id);
    }

    /// Ensures a (possibly empty) group for `state` exists.
    pub fn group_mut(&mut self, state: KeyState) -> &mut Vec<String> {
        let at = match self.entries.iter().position(|(s, _)| *s == state) {
            Some(i) => i,
            None => {
                self.entries.push((state, Vec::new()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    pub fn get(&self, state: KeyState) -> Option<&[String]> {
        self.entries.iter().find(|(s, _)| *s == state).map(|(_, ids)| ids.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (KeyState, &[String])> {
        self.entries.iter().map(|(s, ids)| (*s, ids.as_slice()))
    }

    /// True when there is no group at all (an empty group still counts, as in Python).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `{"minions": [...], ...}` in insertion order, as Salt passes it to `--out json`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (s, ids) in &self.entries {
            m.insert(s.dir_name().to_string(), Value::Array(ids.iter().cloned().map(Value::String).collect()));
        }
        Value::Object(m)
    }
}

/// How the master treats a key it has never seen: Salt's `auto_accept` and the glob/regex lines of
/// `autosign_file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptPolicy {
    pub auto_accept: bool,
    pub autosign_patterns: Vec<String>,
}

impl AcceptPolicy {
    /// Salt's `AutoKey.check_autosign` (without grains): `auto_accept`, or an autosign line that
    /// equals the id, matches it as a glob, or matches all of it as a regular expression.
    pub fn autosigns(&self, id: &str) -> bool {
        self.auto_accept || self.autosign_patterns.iter().any(|p| expr_match(id, p))
    }

    /// The lines of an `autosign_file`, as Salt reads them: stripped, `#` comments dropped. A
    /// missing file is no lines. A file that group or others may write is refused (Salt logs
    /// "Wrong permissions for <file>, ignoring content"), since whoever can write it can get any
    /// minion accepted.
    pub fn read_autosign_file(path: &Path) -> Result<Vec<String>, PkiError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PkiError::io(path, e)),
        };
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(PkiError::InsecureFile(path.to_path_buf()));
        }
        let text = fs::read_to_string(path).map_err(|e| PkiError::io(path, e))?;
        Ok(text.lines().map(str::trim).filter(|l| !l.starts_with('#')).map(str::to_string).collect())
    }
}

/// Salt's `salt.utils.stringutils.expr_match`: equal, or an fnmatch glob, or a regex that
/// `re.match(r"\A{expr}\Z", line)` accepts. The regex is spliced in unparenthesised exactly as
/// Salt does, so `a|b` keeps Python's precedence; an invalid regex just does not match.
pub(crate) fn expr_match(line: &str, expr: &str) -> bool {
    if line == expr || fnmatch(line, expr) {
        return true;
    }
    // `re.match` anchors at the start only; the outer `\A(?:...)` reproduces that.
    regex::Regex::new(&format!(r"\A(?:\A{expr}\z)")).map(|re| re.is_match(line)).unwrap_or(false)
}

/// Salt's `salt.crypt.clean_key`: keys are equal when they are equal after stripping surrounding
/// whitespace and normalising line endings.
fn clean_key(key: &str) -> String {
    key.trim().replace("\r\n", "\n").replace('\r', "\n")
}

/// Salt's `sorted_ignorecase`, with the exact name as tie-break so the order is deterministic.
/// Valid minion ids are ASCII, compared without copies; any other name is lower-cased once, not
/// once per comparison (50,000 keys made 1.6 million copies).
fn sort_ignorecase(ids: &mut [String]) {
    if ids.iter().all(|id| id.is_ascii()) {
        fn folded(id: &str) -> impl Iterator<Item = u8> + '_ {
            id.bytes().map(|b| b.to_ascii_lowercase())
        }
        ids.sort_unstable_by(|a, b| folded(a).cmp(folded(b)).then_with(|| a.cmp(b)));
    } else {
        ids.sort_by_cached_key(|id| (id.to_lowercase(), id.clone()));
    }
}

/// The master's `pki_dir`: minion keys by state.
#[derive(Debug, Clone)]
pub struct KeyStore {
    pki_dir: PathBuf,
}

/// Name of the hidden file touched after every change salt-key makes; see
/// [`KeyStore::last_change`].
const CHANGE_MARKER: &str = ".keys_changed";

impl KeyStore {
    /// Opens `pki_dir`, creating it and the four key directories (mode 0700) when missing.
    pub fn open(pki_dir: &Path) -> Result<KeyStore, PkiError> {
        create_private_dir(pki_dir)?;
        for s in KeyState::ALL {
            create_private_dir(&pki_dir.join(s.dir_name()))?;
        }
        Ok(KeyStore { pki_dir: pki_dir.to_path_buf() })
    }

    pub fn pki_dir(&self) -> &Path {
        &self.pki_dir
    }

    /// The file holding `id`'s key in `state` (whether or not it exists).
    pub fn key_path(&self, state: KeyState, id: &str) -> Result<PathBuf, PkiError> {
        check_id(id)?;
        Ok(self.pki_dir.join(state.dir_name()).join(id))
    }

    fn read_key(&self, state: KeyState, id: &str) -> Result<Option<String>, PkiError> {
        let path = self.key_path(state, id)?;
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PkiError::io(path, e)),
        }
    }

    fn write_key(&self, state: KeyState, id: &str, public_pem: &str) -> Result<(), PkiError> {
        write_replace(&self.key_path(state, id)?, public_pem.as_bytes(), 0o644)
    }

    /// The stored public PEM of `id` in `state`, if there is one.
    pub fn key_text(&self, state: KeyState, id: &str) -> Option<String> {
        self.read_key(state, id).ok().flatten()
    }

    /// Why [`KeyStore::authorize`] denied a key presented for `id`, naming the state of the key
    /// the id already has: accepted, or still pending (`minions_pre`, waiting for `salt-key -a`).
    /// The master tells the denied minion this and logs it.
    pub fn denial_reason(&self, id: &str) -> String {
        let held = |state| self.key_path(state, id).is_ok_and(|p| p.is_file());
        if held(KeyState::Accepted) {
            format!("another key is already accepted for minion id {id}")
        } else if held(KeyState::Pending) {
            format!("another key is already pending for minion id {id} (in minions_pre, not yet accepted)")
        } else {
            format!("another key is already known for minion id {id}")
        }
    }

    /// The accepted public PEM of `id`: what the master pins the minion's TLS key to.
    pub fn accepted_key(&self, id: &str) -> Option<String> {
        self.key_text(KeyState::Accepted, id)
    }

    /// The states in which `id` currently has a key (normally zero or one; Denied can sit beside
    /// Accepted or Pending).
    pub fn states_of(&self, id: &str) -> Vec<KeyState> {
        KeyState::ALL.into_iter().filter(|s| self.key_path(*s, id).map(|p| p.is_file()).unwrap_or(false)).collect()
    }

    /// What the master does when minion `id` presents `public_pem` (Salt's `_auth`, without
    /// `open_mode`, autoreject and `max_minions`):
    ///
    /// - a key in `minions_rejected` → Rejected, whatever key was presented;
    /// - accepted with the same key → Accepted; with another key → that key is written to
    ///   `minions_denied` → Denied (the accepted key stays);
    /// - pending with the same key → Pending, or Accepted (moved) if the policy autosigns it;
    ///   pending with another key → written to `minions_denied` → Denied;
    /// - unknown → written to `minions/` if the policy autosigns it (Accepted), else to
    ///   `minions_pre/` (Pending). A key only in `minions_denied` counts as unknown, as in Salt.
    ///
    /// A key that is not an Ed25519 public key PEM is an error and nothing is written.
    pub fn authorize(&self, id: &str, public_pem: &str, policy: &AcceptPolicy) -> Result<KeyState, PkiError> {
        check_id(id)?;
        public_der_from_pem(public_pem)?;
        if self.key_path(KeyState::Rejected, id)?.is_file() {
            return Ok(KeyState::Rejected);
        }
        if let Some(stored) = self.read_key(KeyState::Accepted, id)? {
            if clean_key(&stored) == clean_key(public_pem) {
                return Ok(KeyState::Accepted);
            }
            self.write_key(KeyState::Denied, id, public_pem)?;
            return Ok(KeyState::Denied);
        }
        match self.read_key(KeyState::Pending, id) {
            Ok(None) => {
                if policy.autosigns(id) {
                    self.write_key(KeyState::Accepted, id, public_pem)?;
                    Ok(KeyState::Accepted)
                } else {
                    self.write_key(KeyState::Pending, id, public_pem)?;
                    Ok(KeyState::Pending)
                }
            }
            Ok(Some(stored)) if clean_key(&stored) != clean_key(public_pem) => {
                self.write_key(KeyState::Denied, id, public_pem)?;
                Ok(KeyState::Denied)
            }
            Ok(Some(_)) if policy.autosigns(id) => {
                let from = self.key_path(KeyState::Pending, id)?;
                let to = self.key_path(KeyState::Accepted, id)?;
                fs::rename(&from, &to).map_err(|e| PkiError::io(&from, e))?;
                Ok(KeyState::Accepted)
            }
            Ok(Some(_)) => Ok(KeyState::Pending),
            // A directory named like the id (Salt: "New public key ... is a directory").
            Err(e) => Err(e),
        }
    }

    /// Ids with a key in `state`, sorted as Salt sorts them (case-insensitively). Dot files are
    /// skipped, as are names that are not UTF-8 (they cannot be minion ids).
    pub fn list(&self, state: KeyState) -> Vec<String> {
        let mut ids = list_dir(&self.pki_dir.join(state.dir_name()));
        sort_ignorecase(&mut ids);
        ids
    }

    /// Like [`KeyStore::list`], but a directory that cannot be read (out of file descriptors,
    /// say) is an error rather than "no keys", for callers where the difference matters.
    pub fn try_list(&self, state: KeyState) -> std::io::Result<Vec<String>> {
        let dir = self.pki_dir.join(state.dir_name());
        let mut ids = match read_ids(&dir) {
            Ok(ids) => ids,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("cannot read {}: {e}", dir.display()))),
        };
        sort_ignorecase(&mut ids);
        Ok(ids)
    }

    /// Every state with its ids (empty ones included), in Salt's `list_keys` order.
    pub fn list_all(&self) -> KeyMatches {
        let mut m = KeyMatches::new();
        for s in KeyState::ALL {
            *m.group_mut(s) = self.list(s);
        }
        m
    }

    /// The master's own key files in `pki_dir` (`*.pem`, `*.pub`): Salt's "Local Keys".
    pub fn local_keys(&self) -> Vec<String> {
        let mut names: Vec<String> = list_dir(&self.pki_dir)
            .into_iter()
            .filter(|n| n.ends_with(".pem") || n.ends_with(".pub"))
            .filter(|n| self.pki_dir.join(n).is_file())
            .collect();
        sort_ignorecase(&mut names);
        names
    }

    /// Salt's `Key.name_match`: the ids matching `glob` (or any glob of a comma-separated list),
    /// grouped by state; states without a match are absent. An id matching two globs of a list
    /// appears twice, as in Salt.
    pub fn name_match(&self, glob: &str) -> KeyMatches {
        let globs: Vec<Glob> = if glob.contains(',') { glob.split(',').map(Glob::new).collect() } else { vec![Glob::new(glob)] };
        let mut out = KeyMatches::new();
        for (state, ids) in self.list_all().iter() {
            for id in ids {
                for g in &globs {
                    if g.matches(id) {
                        out.push(state, id.clone());
                    }
                }
            }
        }
        out
    }

    /// Salt's `Key.dict_match`: where the ids named in `matches` are now. Salt uses each id as
    /// an fnmatch pattern over the listing; an id without glob characters (every valid minion
    /// id) can only match itself, so it is looked up in a set instead of matched against every
    /// key, which made accepting 50,000 keys quadratic.
    pub fn dict_match(&self, matches: &KeyMatches) -> KeyMatches {
        let listed = self.list_all();
        let now: Vec<(KeyState, HashSet<&str>)> =
            listed.iter().map(|(state, ids)| (state, ids.iter().map(String::as_str).collect())).collect();
        let mut out = KeyMatches::new();
        for (_, ids) in matches.iter() {
            let mut ids = ids.to_vec();
            sort_ignorecase(&mut ids);
            for id in ids {
                let glob = id.contains(['*', '?', '[']).then(|| Glob::new(&id));
                for (state, present) in &now {
                    let found = match &glob {
                        None => present.contains(id.as_str()),
                        Some(glob) => present.iter().any(|p| glob.matches(p)),
                    };
                    if found {
                        out.push(*state, id.clone());
                    }
                }
            }
        }
        out
    }

    fn move_key(&self, id: &str, from: KeyState, to: KeyState) -> Result<(), PkiError> {
        let src = self.key_path(from, id)?;
        let dst = self.key_path(to, id)?;
        match fs::rename(&src, &dst) {
            Ok(()) => Ok(()),
            // Someone else moved it first; Salt ignores that too.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PkiError::io(src, e)),
        }
    }

    /// Accepts the keys of `matches` that are pending (and rejected / denied when asked): Salt's
    /// `Key.accept(match_dict=...)`. A stored key that is not a valid public key is left where it
    /// is and reported in `invalid` (salt-key prints "Unable to accept invalid key for <id>.").
    /// Returns where the named ids are afterwards ([`KeyStore::dict_match`]).
    pub fn accept_matches(&self, matches: &KeyMatches, include_rejected: bool, include_denied: bool) -> Result<AcceptOutcome, PkiError> {
        let mut from = vec![KeyState::Pending];
        if include_rejected {
            from.push(KeyState::Rejected);
        }
        if include_denied {
            from.push(KeyState::Denied);
        }
        let mut invalid: Vec<(KeyState, String)> = Vec::new();
        for state in from {
            for id in matches.get(state).unwrap_or_default() {
                let valid = self.read_key(state, id)?.is_some_and(|pem| public_der_from_pem(&pem).is_ok());
                if !valid && self.key_path(state, id)?.exists() {
                    invalid.push((state, id.clone()));
                    continue;
                }
                self.move_key(id, state, KeyState::Accepted)?;
            }
        }
        self.touch_change_marker();
        // As Salt: ids left behind as invalid are not reported as accepted.
        let mut kept = matches.clone();
        if !invalid.is_empty() {
            let left: HashSet<(KeyState, &str)> = invalid.iter().map(|(s, id)| (*s, id.as_str())).collect();
            for (state, ids) in kept.entries.iter_mut() {
                ids.retain(|id| !left.contains(&(*state, id.as_str())));
            }
        }
        Ok(AcceptOutcome { now: self.dict_match(&kept), invalid: invalid.into_iter().map(|(_, id)| id).collect() })
    }

    /// Rejects the keys of `matches` that are pending (and accepted / denied when asked): Salt's
    /// `Key.reject(match_dict=...)`. Returns where the named ids are afterwards.
    pub fn reject_matches(&self, matches: &KeyMatches, include_accepted: bool, include_denied: bool) -> Result<KeyMatches, PkiError> {
        let mut from = vec![KeyState::Pending];
        if include_accepted {
            from.push(KeyState::Accepted);
        }
        if include_denied {
            from.push(KeyState::Denied);
        }
        for state in from {
            for id in matches.get(state).unwrap_or_default() {
                self.move_key(id, state, KeyState::Rejected)?;
            }
        }
        self.touch_change_marker();
        Ok(self.dict_match(matches))
    }

    /// Deletes every key named in `matches`, in the state it is listed under: Salt's
    /// `Key.delete_key(match_dict=...)`. Returns where the named ids still are afterwards.
    pub fn delete_matches(&self, matches: &KeyMatches) -> Result<KeyMatches, PkiError> {
        for (state, ids) in matches.iter() {
            for id in ids {
                let path = self.key_path(state, id)?;
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(PkiError::io(path, e)),
                }
            }
        }
        self.touch_change_marker();
        Ok(self.dict_match(matches))
    }

    /// `salt-key -a <glob>` without the questions.
    pub fn accept(&self, glob: &str, include_rejected: bool, include_denied: bool) -> Result<AcceptOutcome, PkiError> {
        self.accept_matches(&self.name_match(glob), include_rejected, include_denied)
    }

    /// `salt-key -r <glob>` without the questions.
    pub fn reject(&self, glob: &str, include_accepted: bool, include_denied: bool) -> Result<KeyMatches, PkiError> {
        self.reject_matches(&self.name_match(glob), include_accepted, include_denied)
    }

    /// `salt-key -d <glob>` without the questions.
    pub fn delete(&self, glob: &str) -> Result<KeyMatches, PkiError> {
        self.delete_matches(&self.name_match(glob))
    }

    /// When key state was last changed by accept/reject/delete (salt-key touches a hidden file in
    /// `pki_dir`). Salt rotates its AES key to cut off a deleted or rejected minion; our master
    /// can instead stat this one file (e.g. before each publish) and re-check the connected
    /// minions' keys with [`KeyStore::accepted_key`] when it moved.
    pub fn last_change(&self) -> Option<SystemTime> {
        fs::metadata(self.pki_dir.join(CHANGE_MARKER)).and_then(|m| m.modified()).ok()
    }

    fn touch_change_marker(&self) {
        // Best effort: the marker is a hint for a running master, the key files are the truth.
        let _ = write_replace(&self.pki_dir.join(CHANGE_MARKER), b"", 0o600);
    }
}

/// Result of an accept: where the ids are now, and which stored keys were invalid and stayed put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptOutcome {
    pub now: KeyMatches,
    pub invalid: Vec<String>,
}

fn list_dir(dir: &Path) -> Vec<String> {
    read_ids(dir).unwrap_or_default()
}

fn read_ids(dir: &Path) -> std::io::Result<Vec<String>> {
    Ok(fs::read_dir(dir)?.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).filter(|n| !n.starts_with('.')).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keypair::tests::TempDir;
    use crate::KeyPair;

    fn pem() -> String {
        KeyPair::generate().unwrap().public_pem().to_string()
    }

    fn store(t: &TempDir) -> KeyStore {
        KeyStore::open(&t.path().join("pki")).unwrap()
    }

    const OPEN: AcceptPolicy = AcceptPolicy { auto_accept: false, autosign_patterns: Vec::new() };

    #[test]
    fn open_creates_salt_dirs_0700() {
        let t = TempDir::new("open");
        let s = store(&t);
        for d in ["minions", "minions_pre", "minions_rejected", "minions_denied"] {
            let m = fs::metadata(s.pki_dir().join(d)).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{d}");
        }
    }

    #[test]
    fn new_key_goes_pending_then_accept_makes_it_accepted() {
        let t = TempDir::new("new");
        let s = store(&t);
        let k = pem();
        assert_eq!(s.authorize("web1", &k, &OPEN).unwrap(), KeyState::Pending);
        assert_eq!(fs::read_to_string(s.pki_dir().join("minions_pre/web1")).unwrap(), k);
        // Asking again with the same key stays pending, and writes nothing new.
        assert_eq!(s.authorize("web1", &k, &OPEN).unwrap(), KeyState::Pending);
        assert_eq!(s.list(KeyState::Pending), ["web1"]);
        assert!(s.accepted_key("web1").is_none());

        let out = s.accept("web*", false, false).unwrap();
        assert_eq!(out.now.get(KeyState::Accepted).unwrap(), ["web1"]);
        assert!(out.invalid.is_empty());
        assert_eq!(s.accepted_key("web1").as_deref(), Some(k.as_str()));
        assert_eq!(s.authorize("web1", &k, &OPEN).unwrap(), KeyState::Accepted);
        // Whitespace and line endings do not make a key different (Salt's clean_key).
        let crlf = format!("\n{}\r\n", k.trim_end().replace('\n', "\r\n"));
        assert_eq!(s.authorize("web1", &crlf, &OPEN).unwrap(), KeyState::Accepted);
    }

    #[test]
    fn a_different_key_for_a_known_id_is_denied_and_kept_aside() {
        let t = TempDir::new("deny");
        let s = store(&t);
        let (k1, k2) = (pem(), pem());
        s.authorize("db1", &k1, &OPEN).unwrap();
        s.accept("db1", false, false).unwrap();
        assert_eq!(s.authorize("db1", &k2, &OPEN).unwrap(), KeyState::Denied);
        assert_eq!(s.accepted_key("db1").as_deref(), Some(k1.as_str()));
        assert_eq!(s.key_text(KeyState::Denied, "db1").as_deref(), Some(k2.as_str()));
        assert_eq!(s.states_of("db1"), [KeyState::Accepted, KeyState::Denied]);
        assert_eq!(s.denial_reason("db1"), "another key is already accepted for minion id db1");
        // The right key still works.
        assert_eq!(s.authorize("db1", &k1, &OPEN).unwrap(), KeyState::Accepted);

        // Pending with a different key: denied too (Salt's _auth does the same), and the pending
        // key is untouched.
        s.authorize("db2", &k1, &OPEN).unwrap();
        assert_eq!(s.authorize("db2", &k2, &OPEN).unwrap(), KeyState::Denied);
        assert_eq!(s.key_text(KeyState::Pending, "db2").as_deref(), Some(k1.as_str()));
        // ... and said so truthfully: the other key is pending, not accepted.
        assert_eq!(s.denial_reason("db2"), "another key is already pending for minion id db2 (in minions_pre, not yet accepted)");
    }

    #[test]
    fn rejected_stays_rejected_whatever_the_key() {
        let t = TempDir::new("rej");
        let s = store(&t);
        let k = pem();
        s.authorize("bad", &k, &OPEN).unwrap();
        s.reject("bad", false, false).unwrap();
        assert_eq!(s.list(KeyState::Rejected), ["bad"]);
        assert_eq!(s.authorize("bad", &k, &OPEN).unwrap(), KeyState::Rejected);
        assert_eq!(s.authorize("bad", &pem(), &OPEN).unwrap(), KeyState::Rejected);
        assert!(s.list(KeyState::Pending).is_empty());
    }

    #[test]
    fn auto_accept_and_autosign_patterns() {
        let t = TempDir::new("auto");
        let s = store(&t);
        let all = AcceptPolicy { auto_accept: true, autosign_patterns: vec![] };
        assert_eq!(s.authorize("m1", &pem(), &all).unwrap(), KeyState::Accepted);
        let web = AcceptPolicy { auto_accept: false, autosign_patterns: vec!["web*".into(), r"db\d+".into()] };
        assert_eq!(s.authorize("web7", &pem(), &web).unwrap(), KeyState::Accepted);
        assert_eq!(s.authorize("db12", &pem(), &web).unwrap(), KeyState::Accepted);
        assert_eq!(s.authorize("db12x", &pem(), &web).unwrap(), KeyState::Pending);
        // A pending key with a matching autosign line is accepted when it comes back.
        let k = pem();
        assert_eq!(s.authorize("web9", &k, &OPEN).unwrap(), KeyState::Pending);
        assert_eq!(s.authorize("web9", &k, &web).unwrap(), KeyState::Accepted);
        assert!(s.list(KeyState::Pending).iter().all(|i| i != "web9"));
        // But a different key for it is still denied.
        assert_eq!(s.authorize("db12x", &pem(), &web).unwrap(), KeyState::Denied);
    }

    #[test]
    fn expr_match_is_salts() {
        assert!(expr_match("web1", "web1"));
        assert!(expr_match("web1", "web?"));
        assert!(expr_match("web1", r"web\d"));
        assert!(!expr_match("web1x", r"web\d"));
        // Python's precedence quirk: `\Aa|b\Z` with re.match accepts anything starting with a.
        assert!(expr_match("axx", "a|b"));
        assert!(!expr_match("xb", "a|b"));
        assert!(!expr_match("x", "(")); // invalid regex: no match, no panic
    }

    #[test]
    fn autosign_file_rules() {
        let t = TempDir::new("asf");
        let f = t.path().join("autosign.conf");
        assert!(AcceptPolicy::read_autosign_file(&f).unwrap().is_empty());
        fs::write(&f, "# comment\n web*  \n\ndb1\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(AcceptPolicy::read_autosign_file(&f).unwrap(), ["web*", "", "db1"]);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
        let err = AcceptPolicy::read_autosign_file(&f).unwrap_err().to_string();
        assert!(err.starts_with("Wrong permissions for "), "{err}");
    }

    #[test]
    fn bad_ids_and_bad_keys_never_touch_the_disk() {
        let t = TempDir::new("ids");
        let s = store(&t);
        for id in ["", "../x", "a/b", "a\0b", "..", ".hidden", "x..y"] {
            assert!(matches!(s.authorize(id, &pem(), &OPEN), Err(PkiError::InvalidId(_))));
        }
        assert!(matches!(
            s.authorize("ok", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &OPEN),
            Err(PkiError::InvalidKey(_))
        ));
        assert!(s.list_all().iter().all(|(_, ids)| ids.is_empty()));
    }

    #[test]
    fn listing_skips_dot_files_and_sorts_ignoring_case() {
        let t = TempDir::new("list");
        let s = store(&t);
        for id in ["b", "A", "c", ".tmp"] {
            fs::write(s.pki_dir().join("minions").join(id), pem()).unwrap();
        }
        assert_eq!(s.list(KeyState::Accepted), ["A", "b", "c"]);
        fs::write(s.pki_dir().join("master.pem"), "x").unwrap();
        fs::write(s.pki_dir().join("master.pub"), "x").unwrap();
        assert_eq!(s.local_keys(), ["master.pem", "master.pub"]);
    }

    #[test]
    fn name_match_and_dict_match_follow_salt() {
        let t = TempDir::new("match");
        let s = store(&t);
        for (dir, id) in [
            ("minions", "minion1"),
            ("minions", "minion10"),
            ("minions", "minion2"),
            ("minions_pre", "minion3"),
            ("minions_rejected", "other"),
        ] {
            fs::write(s.pki_dir().join(dir).join(id), pem()).unwrap();
        }
        let m = s.name_match("minion[2-9]");
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![(KeyState::Accepted, &["minion2".to_string()][..]), (KeyState::Pending, &["minion3".to_string()][..]),]
        );
        let m = s.name_match("other,minion1");
        assert_eq!(m.get(KeyState::Accepted).unwrap(), ["minion1"]);
        assert_eq!(m.get(KeyState::Rejected).unwrap(), ["other"]);
        assert!(s.name_match("nope*").is_empty());
        assert_eq!(m.to_json().to_string(), r#"{"minions":["minion1"],"minions_rejected":["other"]}"#);

        let gone = s.delete("minion[2-9]").unwrap();
        assert!(gone.is_empty());
        assert_eq!(s.list(KeyState::Accepted), ["minion1", "minion10"]);
        assert!(s.list(KeyState::Pending).is_empty());
    }

    #[test]
    fn sorting_ignores_case_with_the_exact_name_as_tie_break() {
        let sorted = |ids: &[&str]| {
            let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            sort_ignorecase(&mut ids);
            ids
        };
        assert_eq!(sorted(&["b", "B", "c", "a", "A"]), ["A", "a", "B", "b", "c"]);
        // A non-ASCII name takes the lower-casing path, with the same answer for the ASCII ones.
        assert_eq!(sorted(&["éb", "b", "Éa", "B", "c", "a", "A"]), ["A", "a", "B", "b", "c", "Éa", "éb"]);
    }

    #[test]
    fn accepting_many_keys_reports_each_once_where_it_now_is() {
        let t = TempDir::new("many");
        let s = store(&t);
        let k = pem();
        let ids: Vec<String> = (0..300).map(|i| format!("m{i:03}")).collect();
        for id in &ids {
            fs::write(s.pki_dir().join("minions_pre").join(id), &k).unwrap();
        }
        fs::write(s.pki_dir().join("minions_pre/junk"), "junk").unwrap();
        let out = s.accept("*", false, false).unwrap();
        assert_eq!(out.now.get(KeyState::Accepted).unwrap(), ids.as_slice());
        assert!(out.now.get(KeyState::Pending).is_none());
        assert_eq!(out.invalid, ["junk"]);
        // An id that is itself a glob (not a valid minion id, but a file may be named so) is
        // still matched as Salt's dict_match does: as a pattern over the listing.
        let mut globbed = KeyMatches::new();
        globbed.push(KeyState::Pending, "m00[0-2]".into());
        assert_eq!(s.dict_match(&globbed).get(KeyState::Accepted).unwrap(), ["m00[0-2]"]);
    }

    #[test]
    fn include_flags_widen_accept_and_reject() {
        let t = TempDir::new("incl");
        let s = store(&t);
        fs::write(s.pki_dir().join("minions_rejected/r1"), pem()).unwrap();
        fs::write(s.pki_dir().join("minions/a1"), pem()).unwrap();
        let out = s.accept("r1", false, false).unwrap();
        assert_eq!(out.now.get(KeyState::Rejected).unwrap(), ["r1"]);
        let out = s.accept("r1", true, false).unwrap();
        assert_eq!(out.now.get(KeyState::Accepted).unwrap(), ["r1"]);
        assert_eq!(s.reject("a1", false, false).unwrap().get(KeyState::Accepted).unwrap(), ["a1"]);
        assert_eq!(s.reject("a1", true, false).unwrap().get(KeyState::Rejected).unwrap(), ["a1"]);
    }

    #[test]
    fn invalid_stored_key_is_not_accepted() {
        let t = TempDir::new("inv");
        let s = store(&t);
        fs::write(s.pki_dir().join("minions_pre/junk"), "junk").unwrap();
        let before = s.last_change();
        let out = s.accept("*", false, false).unwrap();
        assert_eq!(out.invalid, ["junk"]);
        assert_eq!(s.list(KeyState::Pending), ["junk"]);
        assert!(s.last_change().is_some() && s.last_change() >= before);
    }
}
