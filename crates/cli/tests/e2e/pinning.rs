//! The minion pins the master's key: a wrong `master_finger`, or a master whose key changed
//! after the first contact, is refused before the minion says anything to it.

use std::time::Duration;

use crate::harness::*;

#[test]
fn a_wrong_master_finger_is_refused_before_the_hello() {
    let mut c = Cluster::new("auto_accept: True\n");
    c.start_master();
    c.start_minion("minion1", "master_finger: 'aa:bb:cc'\n");
    let log = || c.minion_log("minion1");
    wait_for(
        || log().contains("does not match master_finger aa:bb:cc"),
        Duration::from_secs(20),
        "the fingerprint mismatch in the minion's log",
    );
    // The minion never said hello, so the master has no key for it, even with auto_accept.
    for state in ["minions", "minions_pre"] {
        assert!(!c.master_pki().join(state).join("minion1").exists(), "minion1's key in {state}");
    }
    assert!(!c.minion_root("minion1").join("etc/salt/pki/minion/minion_master.pub").exists(), "a refused key was cached");
    let r = c.salt(&["*", "test.ping"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
}

#[test]
fn a_master_key_changed_after_pinning_is_refused() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let cached = c.minion_root("minion1").join("etc/salt/pki/minion/minion_master.pub");
    assert!(cached.exists());
    // Another master key (a master replaced, or an impostor on its address).
    c.stop_master();
    for file in ["master.pem", "master.pub"] {
        std::fs::remove_file(c.master_pki().join(file)).unwrap();
    }
    c.start_master();
    wait_for(
        || c.minion_log("minion1").contains("differs from the cached master key"),
        Duration::from_secs(30),
        "the changed master key in the minion's log",
    );
    let r = c.salt(&["minion1", "test.ping", "-t", "2"]);
    assert_ne!(r.code, 0, "a minion answered a master whose key changed: {}", r.stdout);
    assert!(r.stdout.contains("Minion did not return"), "{}", r.stdout);
}
