//! Frames and messages: a byte stream read with `read_frame_bytes` (the 4-byte length checked
//! against `max_frame_bytes`), each frame decoded as every message type a peer may send
//! (`MinionMessage`, `MasterMessage`, `ClientRequest`, `ClientReply`, `Publish`), and a signed
//! publish's payload decoded as a `Publish`. Whatever decodes must encode and decode back to
//! itself.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use salt_proto::frame::{decode, encode, read_frame_bytes, FrameError, DEFAULT_MAX_FRAME, PRE_AUTH_MAX_FRAME};
use salt_proto::message::{
    ClientReply, ClientRequest, Hello, JobReturn, MasterMessage, MinionMessage, Publish, PublishRequest, RunnerRequest, SignedPublish,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Map, Value};

use super::{gen_value, gen_word, Target};
use crate::rng::Rng;

pub static TARGET: Target = Target {
    name: "frame",
    about: "read_frame_bytes + decode into MinionMessage, MasterMessage, ClientRequest, ClientReply, Publish",
    seeds,
    dict: &[
        b"\x00\x00\x00\x10",
        b"\xff\xff\xff\xff",
        b"\x04\x00\x00\x00",
        b"\x04\x00\x00\x01",
        b"\xa3msg",
        b"\xa5hello",
        b"\xa6return",
        b"\xa7publish",
        b"\xa3ack",
        b"\xa3req",
        b"\xa5reply",
        b"\xa6events",
        b"\xa6runner",
        b"\xa5event",
        b"\xa6grains",
        b"\xa7payload",
        b"\xa9signature",
        b"\xa8fun_args",
        b"\xa3arg",
        b"\xa3tgt",
        b"\xa6kwargs",
        b"\xa3jid",
        b"\xa2id",
        b"\xa8protocol",
        b"\xc0",
        b"\xc2",
        b"\xc3",
        b"\xc4\x00",
        b"\xc5\xff\xff",
        b"\xc6\xff\xff\xff\xff",
        b"\xd9\xff",
        b"\xda\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xdc\xff\xff",
        b"\xdd\xff\xff\xff\xff",
        b"\xde\xff\xff",
        b"\xdf\xff\xff\xff\xff",
        b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
        b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
        b"\xd4\x01\x00",
        b"\xc7\xff\x01",
        b"\xc9\xff\xff\xff\xff\x01",
    ],
    nest: &[b"\x91", b"\x81\xa1k", b"\x92\xc0", b"\xdc\x00\x01", b"\xd4\x01"],
    generate,
    run,
    max_len: 1 << 20,
};

/// Runs a future that never waits (reading from a slice is always ready).
fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn framed<T: Serialize>(msg: &T) -> Vec<u8> {
    frame(&encode(msg).expect("our own messages encode"))
}

fn sample_publish() -> Publish {
    let mut kwargs = Map::new();
    kwargs.insert("ret_config".into(), json!("alternative"));
    kwargs.insert("metadata".into(), json!({"k": [1, 2.5, null]}));
    Publish {
        jid: "20261125003800067893".into(),
        fun: "cmd.run".into(),
        arg: vec![json!("ls /"), json!({"__kwarg__": true, "cwd": "/tmp"})],
        tgt: json!("G@os:Debian and L@a,b or E@web\\d+"),
        tgt_type: "compound".into(),
        ret: "mysql,sqlite3".into(),
        user: "root".into(),
        expires_at_ms: 1_800_000_000_000,
        kwargs,
    }
}

fn sample_return() -> JobReturn {
    JobReturn {
        id: "web1".into(),
        jid: "20261125003800067893_123".into(),
        fun: "test.arg".into(),
        fun_args: vec![json!(1), json!("two"), json!({"__kwarg__": true, "a": "b"})],
        ret: json!({"args": [1, "two"], "kwargs": {"a": "b"}, "big": u64::MAX, "neg": i64::MIN, "f": 1.5}),
        retcode: -1,
        success: false,
        user: Some("sudo_alice".into()),
        out: Some("nested".into()),
        metadata: Some(json!({"tag": "x"})),
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let grains: Map<String, Value> = json!({
        "os": "Debian", "os_family": "Debian", "ipv4": ["10.0.0.5", "127.0.0.1"], "roles": ["web", "db"],
        "nested": {"a": {"b": [1, {"c": "d"}]}}, "num": 3, "float": 1.5, "none": null,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let publish = sample_publish();
    let signed = SignedPublish { payload: encode(&publish).expect("encodes"), signature: vec![0xab; 64] };
    let mut out = vec![
        framed(&MinionMessage::Hello(Hello { protocol: 1, id: "web1".into() })),
        framed(&MinionMessage::Grains(grains)),
        framed(&MinionMessage::Return(sample_return())),
        framed(&MasterMessage::Welcome { master_id: "master".into() }),
        framed(&MasterMessage::Pending { retry_secs: 10 }),
        framed(&MasterMessage::Rejected { reason: "rejected".into() }),
        framed(&MasterMessage::Denied { reason: "another key".into() }),
        framed(&MasterMessage::Refused { reason: "bad hello".into() }),
        framed(&MasterMessage::Busy { reason: "full".into(), retry_secs: 60 }),
        framed(&MasterMessage::Publish(signed)),
        framed(&MasterMessage::Ack { jid: "20261125003800067893".into() }),
        framed(&ClientRequest::Publish(PublishRequest {
            tgt: json!(["a", "b"]),
            tgt_type: "list".into(),
            fun: "test.ping".into(),
            arg: vec![],
            ret: String::new(),
            kwargs: Map::new(),
        })),
        framed(&ClientRequest::Runner(RunnerRequest { fun: "jobs.list_jobs".into(), arg: vec![json!({"__kwarg__": true, "limit": 5})] })),
        framed(&ClientRequest::Events { tagmatch: "salt/job/*".into() }),
        framed(&ClientReply::Published {
            jid: "20261125003800067893".into(),
            minions: vec!["a".into(), "b".into()],
            missing: vec!["ghost".into()],
            not_connected: vec![],
        }),
        framed(&ClientReply::NoMinions { error: "No minions matched the target.".into() }),
        framed(&ClientReply::Event { tag: "salt/job/1/ret/a".into(), data: json!({"return": true}) }),
        framed(&ClientReply::RunnerReturn { jid: "j".into(), data: json!([1, 2]), outputter: Some("nested".into()), retcode: 0 }),
        framed(&ClientReply::Refused { reason: "publisher_acl".into() }),
        framed(&ClientReply::Error { message: "boom".into() }),
        framed(&publish),
    ];
    // Two frames back to back, and an empty stream.
    let two = [out[0].clone(), out[2].clone()].concat();
    out.push(two);
    out.push(Vec::new());
    out
}

/// A well-formed message with random contents, or one whose value nests deeply.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let value = |rng: &mut Rng| gen_value(rng, 4);
    let word = gen_word;
    let mut bytes = match rng.below(8) {
        0 => {
            let grains = match value(rng) {
                Value::Object(m) => m,
                other => std::iter::once((word(rng), other)).collect(),
            };
            if rng.below(2) == 0 {
                framed(&MinionMessage::Hello(Hello { protocol: rng.next_u64() as u32, id: word(rng) }))
            } else {
                framed(&MinionMessage::Grains(grains))
            }
        }
        1 => {
            let mut r = sample_return();
            r.ret = value(rng);
            r.fun_args = vec![value(rng), value(rng)];
            r.id = word(rng);
            framed(&MinionMessage::Return(r))
        }
        2 => {
            let mut p = sample_publish();
            p.arg = vec![value(rng)];
            p.tgt = value(rng);
            p.jid = word(rng);
            let payload = encode(&p).expect("encodes");
            framed(&MasterMessage::Publish(SignedPublish { payload, signature: vec![rng.byte(); rng.below(80)] }))
        }
        3 => framed(&ClientRequest::Publish(PublishRequest {
            tgt: value(rng),
            tgt_type: word(rng),
            fun: word(rng),
            arg: vec![value(rng)],
            ret: word(rng),
            kwargs: value(rng).as_object().cloned().unwrap_or_default(),
        })),
        4 => framed(&ClientReply::Event { tag: word(rng), data: value(rng) }),
        5 => deep(rng),
        6 => {
            // A frame whose announced length disagrees with what follows.
            let mut f = framed(&ClientReply::Error { message: word(rng) });
            let any = rng.next_u64() as u32;
            let len = *rng.pick(&[0u32, 1, 3, u32::MAX, DEFAULT_MAX_FRAME as u32, DEFAULT_MAX_FRAME as u32 + 1, any]);
            f[..4].copy_from_slice(&len.to_be_bytes());
            f
        }
        _ => framed(&value(rng)),
    };
    if rng.one_in(8) {
        let extra = generate(rng);
        bytes.extend_from_slice(&extra);
    }
    bytes
}

/// Messages whose free-form values (grains, arguments, event data) nest `depth` levels deep,
/// around rmp-serde's limit of 1024 and far past it.
fn deep(rng: &mut Rng) -> Vec<u8> {
    let depth = *rng.pick(&[100usize, 128, 129, 500, 1000, 1022, 1023, 1024, 1025, 2000, 50_000]);
    const OPENERS: &[&[u8]] = &[b"\x91", b"\x81\xa1k", b"\xdc\x00\x01", b"\xde\x00\x01\xa1k"];
    let opener: &[u8] = OPENERS[rng.below(OPENERS.len())];
    let mut nested = Vec::with_capacity(depth * opener.len() + 1);
    for _ in 0..depth {
        nested.extend_from_slice(opener);
    }
    nested.push(0xc0);
    // Maps with the tag first, as our encoder writes them; the nested value goes last.
    let head: &[u8] = match rng.below(4) {
        0 => b"\x82\xa3msg\xa6grains\xa1k",
        1 => b"\x83\xa5reply\xa5event\xa3tag\xa1t\xa4data",
        2 => b"\x86\xa3req\xa7publish\xa3tgt\xa1*\xa8tgt_type\xa4glob\xa3fun\xa9test.ping\xa6kwargs\x80\xa3arg\x91",
        _ => {
            b"\x89\xa3msg\xa6return\xa2id\xa1m\xa3jid\xa1j\xa3fun\xa1f\xa8fun_args\x90\xa7retcode\x00\xa7success\xc3\xa4user\xa1u\xa6return"
        }
    };
    frame(&[head, &nested].concat())
}

/// Decodes as `T`; what decodes must survive an encode/decode round trip unchanged.
fn check<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(payload: &[u8]) -> Option<T> {
    let msg: T = decode(payload).ok()?;
    let again = encode(&msg).unwrap_or_else(|e| panic!("a decoded {} does not encode: {e}", std::any::type_name::<T>()));
    let back: T = decode(&again).unwrap_or_else(|e| panic!("a re-encoded {} does not decode: {e}", std::any::type_name::<T>()));
    assert_eq!(back, msg, "{} changed in an encode/decode round trip", std::any::type_name::<T>());
    Some(msg)
}

thread_local! {
    static COUNT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn run(input: &[u8]) -> bool {
    // Mostly the pre-auth limit, as most peers a master sees before they authenticate; one
    // input in 64 runs with the full limit (the buffer follows the bytes that arrive, so a
    // large announced length costs nothing).
    let n = COUNT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let max = if n.is_multiple_of(64) { DEFAULT_MAX_FRAME } else { PRE_AUTH_MAX_FRAME };
    let mut rest = input;
    let mut any = false;
    for _ in 0..16 {
        let payload = match now(read_frame_bytes(&mut rest, max)) {
            Ok(p) => p,
            Err(FrameError::TooLarge { len, max }) => {
                assert!(len > max, "TooLarge for {len} <= {max}");
                break;
            }
            Err(_) => break,
        };
        if let Some(m) = check::<MinionMessage>(&payload) {
            any = true;
            if let MinionMessage::Return(r) = m {
                let load = r.to_load();
                assert_eq!(load.get("cmd"), Some(&json!("_return")));
            }
        }
        if let Some(m) = check::<MasterMessage>(&payload) {
            any = true;
            if let MasterMessage::Publish(sp) = m {
                if let Some(p) = check::<Publish>(&sp.payload) {
                    let _ = p.to_pub_data();
                }
            }
        }
        any |= check::<ClientRequest>(&payload).is_some();
        any |= check::<ClientReply>(&payload).is_some();
        if let Some(p) = check::<Publish>(&payload) {
            any = true;
            let data = p.to_pub_data();
            assert_eq!(data.get("jid"), Some(&Value::String(p.jid.clone())));
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_decodes() {
        for (i, seed) in seeds().iter().enumerate() {
            if !seed.is_empty() {
                assert!(run(seed), "seed {i} does not decode");
            }
        }
    }
}
