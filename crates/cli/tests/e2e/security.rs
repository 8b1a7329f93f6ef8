//! Hostile peers: each gets a clear error, and the master and the other minions keep working.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use salt_proto::frame::{read_frame, write_frame};
use salt_proto::message::{Hello, MasterMessage, MinionMessage, Publish, SignedPublish};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::harness::*;

fn fresh_key() -> Vec<u8> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap().serialize_der()
}

async fn tls_to(port: u16) -> salt_transport::ClientTlsStream<TcpStream> {
    let pin = Arc::new(salt_transport::MasterPin::new(None, None));
    let connector = salt_transport::minion_connector(&fresh_key(), "probe", pin).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    connector.connect(salt_transport::server_name(), tcp).await.unwrap()
}

async fn hello_reply(port: u16, id: &str) -> MasterMessage {
    let mut tls = tls_to(port).await;
    let hello = MinionMessage::Hello(Hello { protocol: salt_proto::PROTOCOL_VERSION, id: id.into() });
    write_frame(&mut tls, &hello, 1 << 20).await.unwrap();
    read_frame(&mut tls, 1 << 20).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_peers_get_clear_errors_and_change_nothing() {
    let mut c = Cluster::new("");
    c.start_master();
    tokio::task::block_in_place(|| c.start_accepted(&["minion1"]));
    let port = c.port;

    // A return before any hello.
    let mut tls = tls_to(port).await;
    let ret = MinionMessage::Return(ping_return("minion1", "20261125003800067893"));
    write_frame(&mut tls, &ret, 1 << 20).await.unwrap();
    match read_frame::<MasterMessage, _>(&mut tls, 1 << 20).await.unwrap() {
        MasterMessage::Refused { reason } => assert!(reason.contains("expected hello"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Bad ids.
    for (id, why) in [("../x", "may not start with"), ("", "is empty"), (&"x".repeat(300)[..], "the limit is 255")] {
        match hello_reply(port, id).await {
            MasterMessage::Refused { reason } => assert!(reason.contains("invalid minion id") && reason.contains(why), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    // A hello larger than a hello can be is refused by size before it is read whole.
    match hello_reply(port, &"x".repeat(10_000)).await {
        MasterMessage::Refused { reason } => assert!(reason.contains("exceeds the limit of 4096 bytes"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(!c.master_pki().join("minions_pre/x").exists());

    // A frame far over the limit, announced before authentication.
    let mut tls = tls_to(port).await;
    tls.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    match read_frame::<MasterMessage, _>(&mut tls, 1 << 20).await.unwrap() {
        MasterMessage::Refused { reason } => assert!(reason.contains("exceeds the limit"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Garbage instead of TLS.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\xff\xfe garbage").await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut buf)).await;
    // The master closes the connection at once; at most a TLS alert comes back (record type 21).
    assert!(matches!(closed, Ok(Ok(_)) | Ok(Err(_))), "the master kept a garbage connection open");
    assert!(buf.is_empty() || buf[0] == 21, "unexpected reply to garbage: {buf:?}");

    // An unknown minion with a fresh key is only pending; the real minion1 keeps working.
    assert_eq!(hello_reply(port, "stranger").await, MasterMessage::Pending { retry_secs: 10 });
    let r = tokio::task::block_in_place(|| c.salt(&["minion1", "test.ping"]));
    assert_eq!(r.stdout, "minion1:\n    True\n");
}

/// A stand-in master: the real minion connects to it, and the test sends crafted publishes.
#[tokio::test(flavor = "multi_thread")]
async fn minion_drops_replayed_expired_forged_and_misaddressed_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let master_key = salt_pki::KeyPair::load_or_generate(&dir.path().join("fake-master"), "master").unwrap();
    let acceptor = salt_transport::master_acceptor(master_key.pkcs8_der()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("minion"),
        format!(
            "id: m1\nroot_dir: {}\nmaster: 127.0.0.1\nmaster_port: {port}\nlog_level_logfile: info\n",
            dir.path().join("root").display()
        ),
    )
    .unwrap();
    let _minion = Daemon(std::process::Command::new(bin("salt-minion")).arg("-c").arg(&etc).arg("-l").arg("quiet").spawn().unwrap());

    let (tcp, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept()).await.unwrap().unwrap();
    let mut tls = acceptor.accept(tcp).await.unwrap();
    let hello: MinionMessage = read_frame(&mut tls, 1 << 20).await.unwrap();
    assert!(matches!(hello, MinionMessage::Hello(ref h) if h.id == "m1"));
    write_frame(&mut tls, &MasterMessage::Welcome { master_id: "fake".into() }, 1 << 20).await.unwrap();
    let grains: MinionMessage = read_frame(&mut tls, 1 << 20).await.unwrap();
    assert!(matches!(grains, MinionMessage::Grains(ref g) if g.get("id").is_some()), "{grains:?}");

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    // The target is the minion's own check: one signed publish goes to every minion it targets.
    let publish = |jid: &str, tgt: &str, expires_at_ms: u64| Publish {
        jid: jid.into(),
        fun: "test.ping".into(),
        arg: vec![],
        tgt: tgt.into(),
        tgt_type: "glob".into(),
        ret: String::new(),
        user: "root".into(),
        expires_at_ms,
        kwargs: Default::default(),
    };
    let sign = |p: &Publish| {
        let payload = salt_proto::frame::encode(p).unwrap();
        let signature = master_key.sign(&payload);
        MasterMessage::Publish(SignedPublish { payload, signature })
    };
    let good = sign(&publish("20261125000000000001", "m*", now_ms + 60_000));
    write_frame(&mut tls, &good, 1 << 20).await.unwrap();
    write_frame(&mut tls, &good, 1 << 20).await.unwrap(); // replay
    write_frame(&mut tls, &sign(&publish("20261125000000000002", "m1", now_ms - 1_000)), 1 << 20).await.unwrap();
    write_frame(&mut tls, &sign(&publish("20261125000000000003", "other", now_ms + 60_000)), 1 << 20).await.unwrap();
    let mut forged = sign(&publish("20261125000000000004", "m1", now_ms + 60_000));
    if let MasterMessage::Publish(p) = &mut forged {
        p.signature[0] ^= 1;
    }
    write_frame(&mut tls, &forged, 1 << 20).await.unwrap();
    let last = sign(&publish("20261125000000000005", "m1", now_ms + 60_000));
    write_frame(&mut tls, &last, 1 << 20).await.unwrap();

    let mut jids = Vec::new();
    while jids.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), read_frame::<MinionMessage, _>(&mut tls, 1 << 20)).await {
            Ok(Ok(MinionMessage::Return(r))) => jids.push(r.jid),
            other => panic!("{other:?}"),
        }
    }
    jids.sort();
    assert_eq!(jids, ["20261125000000000001", "20261125000000000005"]);
    // Nothing else arrives.
    assert!(tokio::time::timeout(Duration::from_millis(500), read_frame::<MinionMessage, _>(&mut tls, 1 << 20)).await.is_err());
    let log = std::fs::read_to_string(dir.path().join("root/var/log/salt/minion")).unwrap();
    for needle in ["already received", "expired", "targets glob \"other\", which is not this minion", "bad signature"] {
        assert!(log.contains(needle), "{needle} missing from the log:\n{log}");
    }
}

/// After a master restart the fleet dials back at once. A connection that finds every turn to
/// authenticate taken (256 peers in their handshakes) waits for one rather than being closed
/// (which would send the minion into its back-off for up to `recon_max`).
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_waits_for_a_turn_to_authenticate() {
    let mut c = Cluster::new("");
    c.start_master();
    let port = c.port;
    // 256 peers that never finish their TLS handshake hold every turn.
    let mut stalled = Vec::new();
    for _ in 0..256 {
        stalled.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = tokio::spawn(hello_reply(port, "latecomer"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!probe.is_finished(), "the latecomer was answered while every turn was taken");
    drop(stalled);
    let reply = tokio::time::timeout(Duration::from_secs(10), probe).await.expect("an answer once turns are free").unwrap();
    assert_eq!(reply, MasterMessage::Pending { retry_secs: 10 });
}
