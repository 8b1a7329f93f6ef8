//! The jid and minion-id validators (`salt_proto::jid`, `salt_proto::id`): whatever they accept
//! must be safe as a path component.

use salt_proto::id::{validate_minion_id, MAX_ID_LEN};
use salt_proto::jid::{is_jid, jid_datetime, jid_to_time, validate_jid};

use super::{text, Target};
use crate::rng::Rng;

pub static JID: Target = Target {
    name: "jid",
    about: "validate_jid / is_jid / jid_datetime / jid_to_time",
    seeds: jid_seeds,
    dict: &[b"_", b"0", b"9", b"/", b"..", b"\0", b"\xd9\xa0", b"\xef\xbc\x91", b"20261125003800067893", b"_123", b"-1", b"+"],
    nest: &[],
    generate: gen_jid,
    run: run_jid,
    max_len: 256,
};

pub static ID: Target = Target {
    name: "id",
    about: "validate_minion_id",
    seeds: id_seeds,
    dict: &[b".", b"..", b"/", b"-", b"_", b"@", b"\0", b"\\", b" ", b"\xc3\xa9", b"\xe2\x80\x8b", b"\xef\xbc\x8f", b"a"],
    nest: &[],
    generate: gen_id,
    run: run_id,
    max_len: 1024,
};

fn jid_seeds() -> Vec<Vec<u8>> {
    [
        "20261125003800067893",
        "20261125003800067893_123",
        "20240510093015123456",
        "99999999999999999999",
        "00000000000000000000",
        "20241301000000000000",
        "20240230000000000000",
        "20261125003800067893_",
        "2026112500380006789",
        "../../etc/passwd",
        "req",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn gen_jid(rng: &mut Rng) -> Vec<u8> {
    let len = *rng.pick(&[19usize, 20, 20, 20, 21, 22, 39, 40, 41]);
    let mut out: Vec<u8> = (0..len).map(|_| b'0' + rng.below(10) as u8).collect();
    if len > 20 && rng.one_in(2) {
        out[20] = b'_';
    }
    if rng.one_in(3) {
        let i = rng.below(out.len());
        out[i] = *rng.pick(b"_/.a\0-+ ");
    }
    out
}

fn run_jid(input: &[u8]) -> bool {
    let jid = text(input);
    let ok = validate_jid(&jid).is_ok();
    assert_eq!(ok, is_jid(&jid));
    if ok {
        assert!((20..=40).contains(&jid.len()), "accepted jid of {} bytes", jid.len());
        assert!(jid.bytes().all(|b| b.is_ascii_digit() || b == b'_'), "accepted jid {jid:?}");
    }
    let time = jid_datetime(&jid);
    assert!(ok || time.is_none(), "a time for an invalid jid {jid:?}");
    assert_eq!(jid_to_time(&jid).is_empty(), time.is_none());
    ok
}

fn id_seeds() -> Vec<Vec<u8>> {
    ["minion1", "web-01.example.com", "db_2", "user@host", "a", "", "../x", "a/b", "..", ".", "-rf", "a\0b", "héllo"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

fn gen_id(rng: &mut Rng) -> Vec<u8> {
    let len = *rng.pick(&[1usize, 2, 3, 8, 254, 255, 256, 300]);
    let alphabet = b"abcXYZ019.-_@";
    let mut out: Vec<u8> = (0..len).map(|_| *rng.pick(alphabet)).collect();
    if rng.one_in(3) {
        let i = rng.below(out.len());
        out[i] = rng.byte();
    }
    out
}

fn run_id(input: &[u8]) -> bool {
    let id = text(input);
    let ok = validate_minion_id(&id).is_ok();
    if ok {
        assert!(!id.is_empty() && id.chars().count() <= MAX_ID_LEN, "accepted id of {} chars", id.chars().count());
        assert!(id != "." && id != ".." && !id.starts_with('-') && !id.starts_with('.'), "accepted {id:?}");
        assert!(!id.contains(['/', '\\', '\0']), "accepted {id:?}");
        assert!(id.is_ascii(), "accepted non-ASCII id {id:?}");
        let path = std::path::Path::new("/cache").join(&*id);
        assert_eq!(path.parent(), Some(std::path::Path::new("/cache")), "id {id:?} escapes its directory");
    }
    ok
}
