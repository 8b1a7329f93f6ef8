//! The return record every store writes: a minion's return checked once, here, before any
//! store turns it into a row, a document or a key.

use std::borrow::Cow;

use serde_json::Value;

use crate::Load;

/// A return that passed the checks every store needs: a valid minion id and jid, a function
/// name and a `return`. Salt's two special jids are handled here, once:
/// - `nocache` (a job whose returns Salt's master drops): [`ReturnRecord::parse`] gives `None`;
/// - `req` (a job the minion started itself): a new jid from the process's clock, put into the
///   record, and [`ReturnRecord::req`] set so stores that keep loads save the return as the
///   job's load, as Salt's returners do.
#[derive(Debug, Clone)]
pub struct ReturnRecord<'a> {
    pub id: &'a str,
    pub jid: String,
    /// Every minion return names its function; a store whose schema needs it asks
    /// [`ReturnRecord::fun`], local_cache stores none when missing (as Salt's).
    pub fun_given: Option<&'a str>,
    /// `ret["return"]`.
    pub value: &'a Value,
    /// The whole return, with `jid` set (a copy only for `req`).
    pub full: Cow<'a, Load>,
    /// The jid was `req`: this return is also its job's load.
    pub req: bool,
}

impl<'a> ReturnRecord<'a> {
    /// Checks `ret`; `Ok(None)` for a return that says not to store it, `Err` says why a
    /// return cannot be stored (the caller rejects that record alone).
    pub fn parse(ret: &'a Load) -> Result<Option<ReturnRecord<'a>>, String> {
        let id = ret.get("id").and_then(Value::as_str).ok_or("a return needs a string 'id'")?;
        salt_proto::id::validate_minion_id(id).map_err(|e| e.to_string())?;
        let jid = ret.get("jid").and_then(Value::as_str).ok_or_else(|| format!("the return of {id} needs a string 'jid'"))?;
        // Salt's master drops these before any store sees them; a direct caller gets the same.
        if jid == "nocache" {
            return Ok(None);
        }
        let fun_given = match ret.get("fun") {
            None => None,
            Some(Value::String(f)) => Some(f.as_str()),
            Some(_) => return Err(format!("the return of {id} needs a string 'fun'")),
        };
        let value = ret.get("return").ok_or_else(|| format!("the return of {id} has no 'return'"))?;
        let (jid, full, req) = match jid {
            "req" => {
                let jid = salt_proto::jid::new_jid(false);
                let mut with_jid = ret.clone();
                with_jid.insert("jid".into(), Value::String(jid.clone()));
                (jid, Cow::Owned(with_jid), true)
            }
            j => {
                salt_proto::jid::validate_jid(j).map_err(|e| e.to_string())?;
                (j.to_string(), Cow::Borrowed(ret), false)
            }
        };
        Ok(Some(ReturnRecord { id, jid, fun_given, value, full, req }))
    }

    /// The function, for stores whose schema needs one.
    pub fn fun(&self) -> Result<&'a str, String> {
        self.fun_given.ok_or_else(|| format!("the return of {} needs a string 'fun'", self.id))
    }

    /// `ret.get("success")`, as given (stores write it in their own way).
    pub fn success(&self) -> Option<&Value> {
        self.full.get("success")
    }
}

/// `prep_jid` as Salt's external job caches do it: nothing is recorded (a job exists once its
/// load or a return does) and `nocache` is not kept; a passed jid is checked, else a new one
/// comes from the process's clock.
pub(crate) fn prep_jid(passed_jid: Option<&str>, unique_jid: bool) -> crate::Result<String> {
    match passed_jid {
        Some(jid) => {
            salt_proto::jid::validate_jid(jid).map_err(|e| crate::ReturnerError::Invalid(e.to_string()))?;
            Ok(jid.to_string())
        }
        None => Ok(salt_proto::jid::new_jid(unique_jid)),
    }
}

/// How a return is named in a rejection.
pub(crate) fn describe(id: &str, jid: &str) -> String {
    format!("return of {id} for {jid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fun_is_optional_until_a_store_needs_it() {
        let ret = obj(json!({"id": "m1", "jid": "20261125003808100453", "return": true}));
        let r = ReturnRecord::parse(&ret).unwrap().unwrap();
        assert_eq!(r.fun_given, None);
        assert!(r.fun().unwrap_err().contains("needs a string 'fun'"));
    }

    #[test]
    fn checks_and_special_jids() {
        let ret = obj(json!({"id": "m1", "jid": "20261125003808100453", "fun": "test.ping", "return": true}));
        let r = ReturnRecord::parse(&ret).unwrap().unwrap();
        assert_eq!((r.id, r.jid.as_str(), r.fun(), r.req), ("m1", "20261125003808100453", Ok("test.ping"), false));
        assert!(matches!(r.full, Cow::Borrowed(_)));

        let req = obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "return": true}));
        let r = ReturnRecord::parse(&req).unwrap().unwrap();
        assert!(r.req && salt_proto::jid::is_jid(&r.jid));
        assert_eq!(r.full["jid"], json!(r.jid));
        // Two req returns get two jids from the one clock.
        assert_ne!(ReturnRecord::parse(&req).unwrap().unwrap().jid, r.jid);

        let nocache = obj(json!({"id": "m1", "jid": "nocache", "fun": "f", "return": 1}));
        assert!(ReturnRecord::parse(&nocache).unwrap().is_none());
        for (bad, why) in [
            (json!({"jid": "20261125003808100453", "fun": "f", "return": 1}), "string 'id'"),
            (json!({"id": "../x", "jid": "20261125003808100453", "fun": "f", "return": 1}), "minion id"),
            (json!({"id": "m1", "jid": "../x", "fun": "f", "return": 1}), "invalid jid"),
            (json!({"id": "m1", "jid": "20261125003808100453", "fun": 1, "return": 1}), "string 'fun'"),
            (json!({"id": "m1", "jid": "20261125003808100453", "fun": "f"}), "no 'return'"),
        ] {
            let err = ReturnRecord::parse(bad.as_object().unwrap()).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
