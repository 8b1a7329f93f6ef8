//! Every message that may cross a connection, as closed enums.
//!
//! Two conversations exist:
//! - minion ⇄ master over TLS: [`MinionMessage`] up, [`MasterMessage`] down. Before a minion is
//!   authenticated the master accepts only [`MinionMessage::Hello`].
//! - CLI ⇄ master over the local socket: [`ClientRequest`] up, [`ClientReply`] down.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a minion sends to the master.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "msg", rename_all = "snake_case")]
// A message lives for one read or write; boxing the return would cost an allocation per
// return to save a few hundred bytes on the stack.
#[allow(clippy::large_enum_variant)]
pub enum MinionMessage {
    /// The first message on every connection: who the minion says it is. The TLS client
    /// certificate proves it holds the key; the master checks that key against `pki_dir`.
    Hello(Hello),
    /// The minion's grains, sent once right after the master welcomed it (not in the hello, so
    /// that an unauthenticated peer is held to a frame of a few KiB).
    Grains(Map<String, Value>),
    /// The result of one job.
    Return(JobReturn),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    pub protocol: u32,
    pub id: String,
}

/// A job's result as Salt's minion sends it (`cmd: _return`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobReturn {
    pub id: String,
    pub jid: String,
    pub fun: String,
    pub fun_args: Vec<Value>,
    #[serde(rename = "return")]
    pub ret: Value,
    pub retcode: i32,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl JobReturn {
    /// The return load as Salt's master stores and fires it (`salt/job/<jid>/ret/<id>`), in
    /// Salt's key order: `cmd, id, success, return, retcode, jid, fun, fun_args, user, ...`.
    pub fn to_load(&self) -> Map<String, Value> {
        self.clone().into_load()
    }

    /// [`JobReturn::to_load`], taking the return's parts rather than copying them.
    pub fn into_load(self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("cmd".into(), "_return".into());
        m.insert("id".into(), self.id.into());
        m.insert("success".into(), self.success.into());
        m.insert("return".into(), self.ret);
        m.insert("retcode".into(), self.retcode.into());
        m.insert("jid".into(), self.jid.into());
        m.insert("fun".into(), self.fun.into());
        m.insert("fun_args".into(), Value::Array(self.fun_args));
        if let Some(user) = self.user {
            m.insert("user".into(), user.into());
        }
        if let Some(out) = self.out {
            m.insert("out".into(), out.into());
        }
        if let Some(md) = self.metadata {
            m.insert("metadata".into(), md);
        }
        m
    }
}

/// What the master sends to a minion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum MasterMessage {
    /// The minion's key is accepted; publishes will follow on this connection.
    Welcome {
        master_id: String,
    },
    /// The key waits in `minions_pre`; try again later.
    Pending {
        retry_secs: u64,
    },
    /// The key was rejected by an operator: stop trying.
    Rejected {
        reason: String,
    },
    /// Another key is already accepted for this id: stop trying.
    Denied {
        reason: String,
    },
    /// The conversation broke a rule (wrong first message, bad id, ...); the master closes.
    Refused {
        reason: String,
    },
    /// The master holds as many minions as it may (its open files limit): try again after
    /// `retry_secs`. Sent before authentication, so it costs the master no key lookup.
    Busy {
        reason: String,
        retry_secs: u64,
    },
    Publish(SignedPublish),
    /// The master has the return for `jid` on disk (job cache spool); the minion may forget it.
    Ack {
        jid: String,
    },
}

/// A [`Publish`] encoded as msgpack, and the master key's Ed25519 signature over those bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedPublish {
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// A job, signed once by the master for every minion it targets. It is bound to its target,
/// its jid and an expiry: a captured publish cannot be replayed later (expiry, and the jids a
/// minion has seen), and a minion runs it only if the target names it (each minion checks the
/// target against its own id and grains, as Salt's minions do), so a copy delivered to another
/// minion is dropped there. One signature per job rather than one per minion is what lets a
/// publish to 50,000 minions cost the master one signing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Publish {
    pub jid: String,
    pub fun: String,
    pub arg: Vec<Value>,
    pub tgt: Value,
    pub tgt_type: String,
    /// Comma-separated returner names (`--return`).
    pub ret: String,
    pub user: String,
    /// Unix time in milliseconds after which the minion must drop this publish.
    pub expires_at_ms: u64,
    /// Extras Salt carries in the publish: `ret_config`, `ret_kwargs`, `metadata`, ...
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

impl Publish {
    /// The publish data as Salt's minion sees it (what `cachedir/proc/<jid>` and
    /// `saltutil.find_job` show), in Salt's key order.
    pub fn to_pub_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("fun".into(), self.fun.clone().into());
        m.insert("arg".into(), Value::Array(self.arg.clone()));
        m.insert("tgt".into(), self.tgt.clone());
        m.insert("jid".into(), self.jid.clone().into());
        m.insert("ret".into(), self.ret.clone().into());
        m.insert("tgt_type".into(), self.tgt_type.clone().into());
        m.insert("user".into(), self.user.clone().into());
        for (k, v) in &self.kwargs {
            if matches!(k.as_str(), "metadata" | "ret_config" | "ret_kwargs") {
                m.insert(k.clone(), v.clone());
            }
        }
        // Salt 3008's resource-targeting keys, which find_job and running show.
        m.insert("resource_targets".into(), Value::Array(Vec::new()));
        m.insert("pure_resource_target".into(), false.into());
        m.insert("minion_is_target".into(), true.into());
        m
    }
}

/// What the CLI (or a runner) asks of the master over the local socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "req", rename_all = "snake_case")]
pub enum ClientRequest {
    /// Publish a job and stream its return events back on this connection.
    Publish(PublishRequest),
    /// Start a batch job (`salt -b`): the master resolves the target and checks the caller's
    /// rights as for a publish, assigns the jid every slice goes out under, and streams that
    /// jid's events; it sends nothing until a [`ClientRequest::Slice`] names the minions.
    Batch(PublishRequest),
    /// Send the batch job `jid` to `minions`, a part of its targets. Only the connection that
    /// started the batch may: a jid is never reused by anyone else.
    Slice { jid: String, minions: Vec<String> },
    /// Run a runner (`jobs.list_jobs`, `manage.up`, ...) on the master.
    Runner(RunnerRequest),
    /// Stream every event whose tag matches `tagmatch` (an fnmatch glob) until the caller hangs up.
    Events { tagmatch: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunnerRequest {
    /// `jobs.list_jobs`, ...
    pub fun: String,
    /// Salt-style arguments: positional values and a trailing `__kwarg__` dict.
    pub arg: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishRequest {
    pub tgt: Value,
    pub tgt_type: String,
    pub fun: String,
    pub arg: Vec<Value>,
    #[serde(default)]
    pub ret: String,
    /// CLI extras stored with the job (`show_timeout`, `show_jid`, `delimiter`, `ret_config`, ...).
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

/// The master's answers on the local socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ClientReply {
    /// The job went out (for [`ClientRequest::Batch`]: it may go out; for a slice: `minions`
    /// are the slice's). `minions` are all the targeted ones; `missing`, as in Salt, the ids a
    /// list target named that have no accepted key; `not_connected`, the targeted minions that
    /// had no connection, so no copy of the job could reach them.
    Published {
        jid: String,
        minions: Vec<String>,
        missing: Vec<String>,
        not_connected: Vec<String>,
    },
    /// The target matched no accepted minion; no jid was assigned.
    NoMinions {
        error: String,
    },
    /// An event for a job this connection published (`salt/job/<jid>/ret/<id>`).
    Event {
        tag: String,
        data: Value,
    },
    /// What a runner returned. `outputter` is the runner's preferred outputter, if any.
    RunnerReturn {
        jid: String,
        data: Value,
        outputter: Option<String>,
        retcode: i32,
    },
    /// The caller may not do this (publisher_acl).
    Refused {
        reason: String,
    },
    Error {
        message: String,
    },
}

/// [`ClientReply::Event`] built from borrowed parts, encoding to the same bytes: the master
/// sends one event to every client watching its job without copying the event's data for each.
#[derive(Debug, Serialize)]
#[serde(tag = "reply", rename = "event")]
pub struct EventReply<'a> {
    pub tag: &'a str,
    pub data: &'a Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode, encode};

    #[test]
    fn a_borrowed_event_reply_encodes_as_the_owned_one() {
        let data = serde_json::json!({"id": "m1", "return": {"a": [1, 2.5, null]}, "_stamp": "x"});
        let owned = ClientReply::Event { tag: "salt/job/1/ret/m1".into(), data: data.clone() };
        let borrowed = EventReply { tag: "salt/job/1/ret/m1", data: &data };
        assert_eq!(encode(&borrowed).unwrap(), encode(&owned).unwrap());
        assert_eq!(decode::<ClientReply>(&encode(&borrowed).unwrap()).unwrap(), owned);
    }

    #[test]
    fn messages_round_trip_through_msgpack() {
        let msgs = vec![
            MinionMessage::Hello(Hello { protocol: 1, id: "m1".into() }),
            MinionMessage::Grains(Map::new()),
            MinionMessage::Return(JobReturn {
                id: "m1".into(),
                jid: "20261125003800067893".into(),
                fun: "test.ping".into(),
                fun_args: vec![],
                ret: Value::Bool(true),
                retcode: 0,
                success: true,
                user: Some("root".into()),
                out: None,
                metadata: None,
            }),
        ];
        for m in msgs {
            let back: MinionMessage = decode(&encode(&m).unwrap()).unwrap();
            assert_eq!(back, m);
        }
        let p = MasterMessage::Publish(SignedPublish { payload: vec![1, 2, 3], signature: vec![9; 64] });
        let back: MasterMessage = decode(&encode(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn unknown_message_types_are_rejected() {
        let bogus = encode(&serde_json::json!({"msg": "run_anything", "fun": "cmd.run"})).unwrap();
        assert!(decode::<MinionMessage>(&bogus).is_err());
    }

    #[test]
    fn return_load_has_salts_key_order() {
        let r = JobReturn {
            id: "m1".into(),
            jid: "j".into(),
            fun: "test.ping".into(),
            fun_args: vec![],
            ret: Value::Bool(true),
            retcode: 0,
            success: true,
            user: Some("root".into()),
            out: None,
            metadata: None,
        };
        let keys: Vec<_> = r.to_load().keys().cloned().collect();
        assert_eq!(keys, ["cmd", "id", "success", "return", "retcode", "jid", "fun", "fun_args", "user"]);
    }
}
