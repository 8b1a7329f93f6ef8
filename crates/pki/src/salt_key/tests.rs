//! salt-key end to end through [`run_with`]: a temp config dir whose `master` file points
//! `pki_dir` at a temp directory, and the exact texts Salt 3008 prints.

use super::run_with;
use crate::keypair::tests::TempDir;
use crate::{KeyPair, KeyState, KeyStore};
use std::fs;
use std::path::PathBuf;

struct Env {
    _t: TempDir,
    conf: PathBuf,
    store: KeyStore,
}

impl Env {
    fn new() -> Env {
        let t = TempDir::new("saltkey");
        let conf = t.path().join("etc");
        let pki = t.path().join("pki/master");
        fs::create_dir_all(&conf).unwrap();
        fs::write(conf.join("master"), format!("pki_dir: {}\n", pki.display())).unwrap();
        let store = KeyStore::open(&pki).unwrap();
        Env { _t: t, conf, store }
    }

    fn add(&self, state: KeyState, id: &str) -> String {
        let pem = KeyPair::generate().unwrap().public_pem().to_string();
        fs::write(self.store.key_path(state, id).unwrap(), &pem).unwrap();
        pem
    }

    /// Runs `salt-key -c <conf> <args>` with `stdin`; returns (code, stdout, stderr).
    fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut argv = vec!["salt-key".to_string(), "-c".into(), self.conf.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(argv, &mut stdin.as_bytes(), &mut out, &mut err, false);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let (code, out, err) = self.run(args, stdin);
        assert_eq!(code, 0, "stderr: {err}");
        out
    }
}

#[test]
fn list_all_matches_the_transcript() {
    let e = Env::new();
    for i in 1..=10 {
        e.add(KeyState::Accepted, &format!("minion{i}"));
    }
    let expected = "Accepted Keys:\nminion1\nminion10\nminion2\nminion3\nminion4\nminion5\n\
minion6\nminion7\nminion8\nminion9\nDenied Keys:\nUnaccepted Keys:\nRejected Keys:\n";
    assert_eq!(e.ok(&["-L"], ""), expected);
    // No action at all means -L, and `-l all` is the same.
    assert_eq!(e.ok(&[], ""), expected);
    assert_eq!(e.ok(&["-l", "all"], ""), expected);
}

#[test]
fn list_one_state_and_a_bad_list_argument() {
    let e = Env::new();
    e.add(KeyState::Pending, "web2");
    e.add(KeyState::Pending, "web1");
    e.add(KeyState::Rejected, "bad");
    assert_eq!(e.ok(&["-l", "un"], ""), "Unaccepted Keys:\nweb1\nweb2\n");
    assert_eq!(e.ok(&["--list", "pre"], ""), "Unaccepted Keys:\nweb1\nweb2\n");
    assert_eq!(e.ok(&["-l", "rejected"], ""), "Rejected Keys:\nbad\n");
    assert_eq!(e.ok(&["-l", "acc"], ""), "Accepted Keys:\n");
    let (code, out, err) = e.run(&["-l", "bogus"], "");
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(err, "Usage: salt-key [options]\n\nsalt-key: error: 'bogus' is not a valid argument to '--list'\n");
}

#[test]
fn delete_matches_the_transcript() {
    let e = Env::new();
    for i in 1..=10 {
        e.add(KeyState::Accepted, &format!("minion{i}"));
    }
    let out = e.ok(&["-y", "-d", "minion[2-9]"], "");
    let mut expected = String::from("The following keys are going to be deleted:\nAccepted Keys:\n");
    for i in 2..=9 {
        expected.push_str(&format!("minion{i}\n"));
    }
    for i in 2..=9 {
        expected.push_str(&format!("Key for minion minion{i} deleted.\n"));
    }
    assert_eq!(out, expected);
    assert_eq!(
        e.ok(&["-y", "-d", "minion10"], ""),
        "The following keys are going to be deleted:\nAccepted Keys:\nminion10\n\
Key for minion minion10 deleted.\n"
    );
    assert_eq!(e.ok(&["-L"], ""), "Accepted Keys:\nminion1\nDenied Keys:\nUnaccepted Keys:\nRejected Keys:\n");
}

#[test]
fn accept_asks_and_enter_means_yes() {
    let e = Env::new();
    e.add(KeyState::Pending, "web1");
    e.add(KeyState::Pending, "db1");
    // "n": nothing happens.
    let out = e.ok(&["-a", "web*"], "n\n");
    assert_eq!(out, "The following keys are going to be accepted:\nUnaccepted Keys:\nweb1\nProceed? [n/Y] ");
    assert_eq!(e.store.list(KeyState::Pending), ["db1", "web1"]);
    // Closed stdin: also no.
    let out = e.ok(&["-a", "web*"], "");
    assert!(out.ends_with("Proceed? [n/Y] \n"), "{out:?}");
    assert_eq!(e.store.list(KeyState::Accepted), Vec::<String>::new());
    // Enter: the default, yes.
    let out = e.ok(&["-a", "web*"], "\n");
    assert_eq!(
        out,
        "The following keys are going to be accepted:\nUnaccepted Keys:\nweb1\n\
Proceed? [n/Y] Key for minion web1 accepted.\n"
    );
    assert_eq!(e.store.list(KeyState::Accepted), ["web1"]);
    // -A takes the rest without asking when -y is given.
    assert_eq!(
        e.ok(&["-A", "-y"], ""),
        "The following keys are going to be accepted:\nUnaccepted Keys:\ndb1\n\
Key for minion db1 accepted.\n"
    );
    assert_eq!(e.ok(&["-A"], ""), "The key glob '*' does not match any unaccepted keys.\n");
}

#[test]
fn delete_defaults_to_no() {
    let e = Env::new();
    e.add(KeyState::Accepted, "m1");
    let out = e.ok(&["-d", "m1"], "\n");
    assert_eq!(out, "The following keys are going to be deleted:\nAccepted Keys:\nm1\nProceed? [N/y] ");
    assert_eq!(e.store.list(KeyState::Accepted), ["m1"]);
    let out = e.ok(&["-D"], "Y\n");
    assert!(out.ends_with("Proceed? [N/y] Key for minion m1 deleted.\n"), "{out}");
    assert!(e.store.list(KeyState::Accepted).is_empty());
}

#[test]
fn reject_and_the_include_flags() {
    let e = Env::new();
    e.add(KeyState::Accepted, "a1");
    e.add(KeyState::Pending, "p1");
    e.add(KeyState::Denied, "d1");
    assert_eq!(e.ok(&["-r", "a1", "-y"], ""), "The key glob 'a1' does not match any unaccepted keys.\n");
    assert_eq!(
        e.ok(&["-r", "a1", "-y", "--include-accepted"], ""),
        "The following keys are going to be rejected:\nAccepted Keys:\na1\n\
Key for minion a1 rejected.\n"
    );
    assert_eq!(
        e.ok(&["-a", "zz", "--include-rejected", "--include-denied"], ""),
        "The key glob 'zz' does not match any unaccepted, rejected or denied keys.\n"
    );
    assert_eq!(
        e.ok(&["-R", "-y"], ""),
        "The following keys are going to be rejected:\nUnaccepted Keys:\np1\n\
Key for minion p1 rejected.\n"
    );
    // Accepting with --include-rejected picks up both rejected keys; d1 needs --include-denied.
    assert_eq!(
        e.ok(&["-a", "*1", "-y", "--include-all"], ""),
        "The following keys are going to be accepted:\nRejected Keys:\na1\np1\n\
Key for minion a1 accepted.\nKey for minion p1 accepted.\n"
    );
    assert_eq!(
        e.ok(&["-a", "d1", "-y", "--include-denied"], ""),
        "The following keys are going to be accepted:\nDenied Keys:\nd1\n\
Key for minion d1 accepted.\n"
    );
    assert_eq!(e.store.list(KeyState::Accepted), ["a1", "d1", "p1"]);
}

#[test]
fn an_invalid_pending_key_is_not_accepted() {
    let e = Env::new();
    fs::write(e.store.key_path(KeyState::Pending, "junk").unwrap(), "junk").unwrap();
    let (code, out, err) = e.run(&["-A", "-y"], "");
    assert_eq!(code, 0);
    assert_eq!(out, "The following keys are going to be accepted:\nUnaccepted Keys:\njunk\n");
    assert_eq!(err, "Unable to accept invalid key for junk.\n");
    assert_eq!(e.store.list(KeyState::Pending), ["junk"]);
}

#[test]
fn fingerprints_and_printed_keys() {
    let e = Env::new();
    let pem = e.add(KeyState::Accepted, "m1");
    let master = KeyPair::load_or_generate(e.store.pki_dir(), "master").unwrap();
    let fp = crate::fingerprint(&pem).unwrap();
    assert_eq!(e.ok(&["-f", "m1"], ""), format!("Accepted Keys:\nm1:  {fp}\n"));
    let pem_fp = crate::fingerprint(&fs::read_to_string(e.store.pki_dir().join("master.pem")).unwrap()).unwrap();
    assert_eq!(
        e.ok(&["-F"], ""),
        format!("Local Keys:\nmaster.pem:  {pem_fp}\nmaster.pub:  {}\nAccepted Keys:\nm1:  {fp}\n", master.fingerprint())
    );
    // -p prints the stored text after "id:  "; the PEM's own newline leaves a blank line, which
    // the final strip removes for the last entry.
    assert_eq!(e.ok(&["-p", "m1"], ""), format!("Accepted Keys:\nm1:  {}\n", pem.trim_end()));
    assert_eq!(e.ok(&["-p", "nomatch"], ""), "");
}

#[test]
fn out_json_goes_through_salt_output() {
    let e = Env::new();
    e.add(KeyState::Accepted, "m1");
    let out = e.ok(&["-L", "--out", "json"], "");
    assert_eq!(
        out,
        "{\n    \"minions_pre\": [],\n    \"minions_rejected\": [],\n    \"minions\": [\n        \
\"m1\"\n    ],\n    \"minions_denied\": []\n}\n"
    );
}

#[test]
fn version_and_usage_errors() {
    let e = Env::new();
    let (code, out, _) = e.run(&["--version"], "");
    assert_eq!(code, 0);
    assert_eq!(out, format!("{}\n", salt_proto::version_line("salt-key")));
    assert!(out.starts_with("salt-key 3008."), "{out}");
    let (code, _, err) = e.run(&["--no-such-flag"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
    let (code, out, _) = e.run(&["--help"], "");
    assert_eq!(code, 0);
    assert!(out.contains("--accept-all"), "{out}");
}
