//! Key states as the master enforces them: pending, accepted, rejected, denied.

use std::time::Duration;

use crate::harness::*;

#[test]
fn rejected_minion_stops_and_impostor_is_denied() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);

    // Another machine claims to be minion1 with its own key: denied, logged, and minion1 keeps working.
    let impostor_etc = c.dir.path().join("etc-impostor");
    std::fs::create_dir_all(&impostor_etc).unwrap();
    std::fs::write(
        impostor_etc.join("minion"),
        format!(
            "id: minion1\nroot_dir: {}\nmaster: 127.0.0.1\nmaster_port: {}\nlog_level_logfile: info\n",
            c.dir.path().join("root-impostor").display(),
            c.port
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin("salt-minion")).arg("-c").arg(&impostor_etc).arg("-l").arg("error").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the impostor gives up");
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.master_pki().join("minions_denied/minion1").exists());
    assert!(c.master_log().contains("denied minion minion1"), "{}", c.master_log());
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.stdout, "minion1:\n    True\n");
    let listed = c.salt_key(&["-L"]);
    assert_eq!(listed.stdout, "Accepted Keys:\nminion1\nDenied Keys:\nminion1\nUnaccepted Keys:\nRejected Keys:\n");

    // A rejected minion is told so and stops trying.
    c.start_minion("minion2", "");
    let pre = c.master_pki().join("minions_pre/minion2");
    wait_for(|| pre.exists(), Duration::from_secs(20), "minion2 pending");
    let r = c.salt_key(&["-r", "minion2", "-y"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let child = &mut c.minions.iter_mut().find(|(id, _)| id == "minion2").unwrap().1 .0;
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(exited.and_then(|s| s.code()), Some(1), "a rejected minion exits");
    assert!(c.minion_log("minion2").contains("rejected"), "{}", c.minion_log("minion2"));
}

#[test]
fn only_root_and_publisher_acl_users_may_publish() {
    let mut c = Cluster::new("publisher_acl:\n  nobody:\n    - test.ping\n");
    c.start_master();
    c.start_accepted(&["minion1"]);
    // `nobody` must be able to read the config.
    c.open_config_to_all();
    let allowed = c.salt_as_nobody(&["minion1", "test.ping"]);
    assert_eq!((allowed.code, allowed.stdout.as_str()), (0, "minion1:\n    True\n"), "{}", allowed.stderr);
    let refused = c.salt_as_nobody(&["minion1", "cmd.run", "id"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("User nobody is not allowed to run cmd.run"), "{}", refused.stderr);
}

#[test]
fn minions_come_back_after_a_master_restart() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1", "minion2"]);
    c.stop_master();
    c.start_master();
    // Both reconnect on their own (jittered back-off) with their accepted keys.
    c.wait_connected("minion1");
    c.wait_connected("minion2");
    let r = c.salt(&["*", "test.ping", "--out", "txt", "--static"]);
    assert_eq!(r.code, 0);
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["minion1: True", "minion2: True"]);
}

#[test]
fn deleting_an_accepted_key_cuts_the_minion_off() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted(&["minion1"]);
    let mut events = EventWatch::start(&c);
    let r = c.salt_key(&["-d", "minion1", "-y"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, data) = events.expect(|tag| tag == "salt/key", Duration::from_secs(10));
    assert_eq!(
        (&data["act"], &data["id"], &data["result"]),
        (&serde_json::json!("delete"), &serde_json::json!("minion1"), &serde_json::json!(true))
    );
    // The master drops the connection; the minion comes back and waits for acceptance again.
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(15), "minion1 pending again");
    let r = c.salt(&["minion1", "test.ping"]);
    assert_eq!(r.code, 2);
    assert!(c.master_log().contains("the key of minion minion1 is no longer accepted"), "{}", c.master_log());
}

/// Issue 7 item 11: a second key for an id whose first key is still pending is denied, and the
/// denial says the other key is pending, not accepted.
#[test]
fn a_second_key_for_a_pending_id_is_denied_as_pending() {
    let mut c = Cluster::new("");
    c.start_master();
    c.start_minion("minion1", "");
    let pre = c.master_pki().join("minions_pre/minion1");
    wait_for(|| pre.exists(), Duration::from_secs(20), "minion1 pending");

    let impostor_etc = c.dir.path().join("etc-impostor");
    std::fs::create_dir_all(&impostor_etc).unwrap();
    std::fs::write(
        impostor_etc.join("minion"),
        format!("id: minion1\nroot_dir: {}\nmaster: 127.0.0.1\nmaster_port: {}\n", c.dir.path().join("root-impostor").display(), c.port),
    )
    .unwrap();
    let out = std::process::Command::new(bin("salt-minion")).arg("-c").arg(&impostor_etc).arg("-l").arg("error").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the impostor gives up: {stderr}");
    assert!(stderr.contains("another key is already pending for minion id minion1"), "{stderr}");
    assert!(!stderr.contains("already accepted"), "{stderr}");
    assert!(c.master_log().contains("denied minion minion1: another key is already pending"), "{}", c.master_log());
    let listed = c.salt_key(&["-L"]);
    assert_eq!(listed.stdout, "Accepted Keys:\nDenied Keys:\nminion1\nUnaccepted Keys:\nminion1\nRejected Keys:\n");
    // salt-key's json lists the groups in Salt 3008's order (issue 7 item 21).
    let listed = c.salt_key(&["-L", "--out", "json"]);
    assert_eq!(
        listed.stdout,
        "{\n    \"minions_pre\": [\n        \"minion1\"\n    ],\n    \"minions_rejected\": [],\n    \"minions\": [],\n    \"minions_denied\": [\n        \"minion1\"\n    ]\n}\n"
    );
}

/// The salt-key program over many pending keys (its stdout is buffered): every key listed once
/// as Salt's key outputter sorts (byte order), then one line per accepted key in the order of
/// Salt's `dict_match` (case-insensitive); `-L` in byte order again.
#[test]
fn salt_key_accepts_and_lists_many_keys_in_salts_order() {
    let c = Cluster::new("");
    let pre = c.master_pki().join("minions_pre");
    std::fs::create_dir_all(&pre).unwrap();
    let pem = salt_pki::KeyPair::generate().unwrap().public_pem().to_string();
    let mut ids: Vec<String> = (0..2_000).map(|i| if i % 3 == 0 { format!("Web-{i:04}") } else { format!("web-{i:04}") }).collect();
    for id in &ids {
        std::fs::write(pre.join(id), &pem).unwrap();
    }
    ids.sort();
    let bytewise = ids.clone();
    ids.sort_by_key(|id| (id.to_lowercase(), id.clone()));

    let r = c.salt_key(&["-A", "-y"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut want = String::from("The following keys are going to be accepted:\nUnaccepted Keys:\n");
    for id in &bytewise {
        want.push_str(&format!("{id}\n"));
    }
    for id in &ids {
        want.push_str(&format!("Key for minion {id} accepted.\n"));
    }
    assert_eq!(r.stdout, want);

    let listed = c.salt_key(&["-L"]);
    let want = format!("Accepted Keys:\n{}\nDenied Keys:\nUnaccepted Keys:\nRejected Keys:\n", bytewise.join("\n"));
    assert_eq!(listed.stdout, want);
}
