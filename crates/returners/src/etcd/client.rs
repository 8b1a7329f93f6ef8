//! Talking to etcd through its v3 JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, `/v3/lease/grant`,
//! `/v3/auth/authenticate`; keys and values in base64): a login when the server wants one, a
//! lease per TTL window, reads in pages whose answers stay within a bound, and etcd's errors
//! classified (the server down or the login refused: retry later; a record too large: refused).

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::config::Endpoint;
use super::encode::{self, after, b64, unb64};
use crate::http::{self, MAX_ANSWER_BYTES};
use crate::secret::Secret;
use crate::{Result, ReturnerError};

const STORE: &str = "etcd";
/// A request's deadline: etcd answers in milliseconds; a 10 MB value takes a moment.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Keys per page of a range read (fewer when their values are large).
pub const PAGE: usize = 512;
/// An error answer is read this far, for its message.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// A key and its value as read.
#[derive(Debug, Clone)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// One etcd server (its JSON gateway), with the login's token.
pub struct Connection {
    http: reqwest::Client,
    base: String,
    /// `scheme://host:port`, how errors name the server.
    at: String,
    login: Option<(String, Secret)>,
    token: Mutex<Token>,
}

#[derive(Clone)]
enum Token {
    /// Not asked yet (or expired).
    Unknown,
    /// The server has auth disabled, or we have no login.
    NotNeeded,
    Valid(String),
}

impl Connection {
    pub fn new(endpoint: &Endpoint) -> Result<Connection> {
        let mut builder = http::builder(REQUEST_TIMEOUT);
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| ReturnerError::Invalid(format!("etcd: cannot read {}: {e}", path.display())))
        };
        if let Some(ca) = &endpoint.ca {
            let roots = reqwest::Certificate::from_pem_bundle(&read(ca)?)
                .map_err(|e| ReturnerError::Invalid(format!("etcd.ca {}: not a PEM certificate: {e}", ca.display())))?;
            builder = builder.tls_certs_only(roots);
        }
        if let (Some(cert), Some(key)) = (&endpoint.client_cert, &endpoint.client_key) {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ReturnerError::Invalid(format!("etcd.client_cert {} / etcd.client_key {}: {e}", cert.display(), key.display()))
            })?;
            builder = builder.identity(identity);
        }
        let http = http::build(builder)?;
        let base = endpoint.base_url();
        Ok(Connection {
            http,
            at: base.clone(),
            base,
            login: endpoint.username.clone().map(|u| (u, endpoint.password.clone())),
            token: Mutex::new(if endpoint.username.is_some() { Token::Unknown } else { Token::NotNeeded }),
        })
    }

    fn secret(&self) -> Secret {
        self.login.as_ref().map(|(_, p)| p.clone()).unwrap_or_default()
    }

    /// The token to send, after logging in when there is a login and no token yet.
    async fn token(&self) -> Result<Option<String>> {
        let mut token = self.token.lock().await;
        if let Token::Unknown = *token {
            *token = self.authenticate().await?;
        }
        Ok(match &*token {
            Token::Valid(t) => Some(t.clone()),
            _ => None,
        })
    }

    async fn authenticate(&self) -> Result<Token> {
        let Some((user, password)) = &self.login else { return Ok(Token::NotNeeded) };
        let body = json!({"name": user, "password": password.expose()}).to_string();
        let path = "/v3/auth/authenticate";
        let response = self.post(path, Bytes::from(body), None).await?;
        let status = response.status();
        if status.is_success() {
            let answer: Value = serde_json::from_slice(&http::body(STORE, response, MAX_ERROR_BYTES).await?)
                .map_err(|e| ReturnerError::Unavailable(format!("etcd: {}{path} answered with something else than JSON: {e}", self.at)))?;
            return match answer.get("token").and_then(Value::as_str) {
                Some(t) => Ok(Token::Valid(t.to_string())),
                None => Err(ReturnerError::Unavailable(format!("etcd: {}{path} gave no token", self.at))),
            };
        }
        let answer = http::body(STORE, response, MAX_ERROR_BYTES).await.unwrap_or_default();
        if message(&answer).contains("authentication is not enabled") {
            // etcd.username is set for a server without auth: fine, no token.
            return Ok(Token::NotNeeded);
        }
        Err(self.refused(path, status, &answer))
    }

    async fn post(&self, path: &str, body: Bytes, token: Option<&str>) -> Result<reqwest::Response> {
        let mut request = self.http.post(format!("{}{path}", self.base)).header(CONTENT_TYPE, "application/json").body(body);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token);
        }
        request.send().await.map_err(|e| http::unreachable(STORE, &self.at, &e, &self.secret()))
    }

    /// Posts `body` to `path`: the JSON answer, or `None` when it is larger than `max` bytes.
    /// An expired token is renewed once.
    pub async fn call_within(&self, path: &str, body: &Value, max: usize) -> Result<Option<Value>> {
        let body = Bytes::from(body.to_string());
        for renewed in [false, true] {
            let token = self.token().await?;
            let response = self.post(path, body.clone(), token.as_deref()).await?;
            let status = response.status();
            if status.is_success() {
                let Some(answer) = http::body_within(STORE, response, max).await? else { return Ok(None) };
                return serde_json::from_slice(&answer).map(Some).map_err(|e| {
                    ReturnerError::Unavailable(format!("etcd: {}{path} answered with something else than JSON: {e}", self.at))
                });
            }
            let answer = http::body(STORE, response, MAX_ERROR_BYTES).await.unwrap_or_default();
            // A token expires (5 minutes idle by default), and is stale once the server's users
            // or roles change: log in again.
            let stale = status == StatusCode::UNAUTHORIZED || message(&answer).contains("revision of auth store is old");
            if stale && token.is_some() && !renewed {
                *self.token.lock().await = Token::Unknown;
                continue;
            }
            return Err(self.refused(path, status, &answer));
        }
        unreachable!("the second attempt returns")
    }

    pub async fn call(&self, path: &str, body: &Value) -> Result<Value> {
        self.call_within(path, body, MAX_ANSWER_BYTES).await?.ok_or_else(|| {
            ReturnerError::Unavailable(format!("etcd: {}{path}: the answer is larger than {MAX_ANSWER_BYTES} bytes", self.at))
        })
    }

    /// etcd's refusal, classified: a login problem or the server's trouble is worth retrying
    /// later; a record too large, or anything else the server says is wrong with the request,
    /// refuses it.
    fn refused(&self, path: &str, status: StatusCode, answer: &[u8]) -> ReturnerError {
        let what = message(answer);
        let user = self.login.as_ref().map_or("(none)", |(u, _)| u.as_str());
        let login = |why: &str| ReturnerError::Unavailable(format!("etcd: {} {why} ({what})", self.at));
        if what.contains("user name is empty") {
            login("has auth enabled: set etcd.username and etcd.password")
        } else if what.contains("authentication failed") {
            login(&format!("refused the login of user '{user}': check etcd.username and etcd.password"))
        } else if what.contains("invalid auth token") || what.contains("permission denied") {
            login(&format!("refused user '{user}' access to the returner's keys"))
        } else if what.contains("request is too large") || what.contains("received message larger than max") {
            ReturnerError::Rejected(format!(
                "etcd: {} refused a request as too large (its --max-request-bytes, 1.5 MiB by default; etcd's own limit of a value)",
                self.at
            ))
        } else {
            http::refused(STORE, &format!("{}{path}", self.at), status, answer)
        }
    }

    /// Logs in (when there is a login) and reads one key under `prefix`: what every call needs.
    pub async fn check(&self, prefix: &[u8]) -> Result<()> {
        let body = range_body(prefix, &encode::prefix_end(prefix), 1, true);
        self.call("/v3/kv/range", &body).await.map(drop)
    }

    /// Up to `limit` keys in `[start, end)` in key order (fewer when their values would not fit
    /// one answer), and whether there are more.
    pub async fn range(&self, start: &[u8], end: &[u8], limit: usize, keys_only: bool) -> Result<(Vec<Kv>, bool)> {
        let mut limit = limit.max(1);
        loop {
            let body = range_body(start, end, limit, keys_only);
            match self.call_within("/v3/kv/range", &body, MAX_ANSWER_BYTES).await? {
                Some(answer) => {
                    let kvs = kvs(&answer)?;
                    let more = answer.get("more").and_then(Value::as_bool).unwrap_or(false);
                    return Ok((kvs, more));
                }
                None if limit > 1 => limit /= 2,
                None => return Err(self.too_big()),
            }
        }
    }

    /// Every key in `[start, end)`, page by page.
    pub async fn scan(&self, start: &[u8], end: &[u8], keys_only: bool) -> Result<Vec<Kv>> {
        let mut out = Vec::new();
        let mut from = start.to_vec();
        loop {
            let (page, more) = self.range(&from, end, PAGE, keys_only).await?;
            if let Some(last) = page.last() {
                from = after(&last.key);
            }
            let done = !more || page.is_empty();
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// The values of `keys` (`None` for a missing one), many per transaction, fewer when they
    /// would not fit one answer.
    pub async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        let mut rest = keys;
        let mut group = encode::MAX_TXN_OPS;
        while !rest.is_empty() {
            let now = &rest[..group.min(rest.len())];
            let ops: Vec<Value> = now.iter().map(|k| json!({"request_range": {"key": b64(k)}})).collect();
            match self.call_within("/v3/kv/txn", &json!({"success": ops}), MAX_ANSWER_BYTES).await? {
                Some(answer) => {
                    let responses = answer.get("responses").and_then(Value::as_array).cloned().unwrap_or_default();
                    if responses.len() != now.len() {
                        return Err(ReturnerError::Unavailable(format!(
                            "etcd: {} answered {} of {} reads",
                            self.at,
                            responses.len(),
                            now.len()
                        )));
                    }
                    for r in &responses {
                        out.push(kvs(&r["response_range"])?.into_iter().next().map(|kv| kv.value));
                    }
                    rest = &rest[now.len()..];
                }
                None if group > 1 => group /= 2,
                None => return Err(self.too_big()),
            }
        }
        Ok(out)
    }

    fn too_big(&self) -> ReturnerError {
        ReturnerError::Unavailable(format!("etcd: {} holds a value larger than {MAX_ANSWER_BYTES} bytes; refusing to read it", self.at))
    }
}

/// A lease shared by the writes of a short window, so that a batch costs no extra round trip
/// most of the time.
pub struct Leases {
    ttl: Option<Duration>,
    current: Mutex<Option<(i64, Instant)>>,
}

impl Leases {
    pub fn new(ttl: Option<Duration>) -> Leases {
        Leases { ttl, current: Mutex::new(None) }
    }

    /// The window a lease is reused for: keys written in it live between `ttl` and
    /// `ttl + window`.
    fn window(ttl: Duration) -> Duration {
        (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// The lease for a write now (`None`: keys live forever).
    pub async fn get(&self, conn: &Connection) -> Result<Option<i64>> {
        let Some(ttl) = self.ttl else { return Ok(None) };
        let mut current = self.current.lock().await;
        if let Some((id, until)) = *current {
            if Instant::now() < until {
                return Ok(Some(id));
            }
        }
        let window = Self::window(ttl);
        let answer = conn.call("/v3/lease/grant", &json!({"TTL": (ttl + window).as_secs()})).await?;
        let id = int(&answer["ID"])
            .ok_or_else(|| ReturnerError::Unavailable(format!("etcd: {} granted a lease without an ID: {answer}", conn.at)))?;
        *current = Some((id, Instant::now() + window));
        Ok(Some(id))
    }

    /// Forgets the lease (etcd lost it: it expired, or was revoked).
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }

    /// Whether a write failed because its lease is gone.
    pub fn is_gone(e: &ReturnerError) -> bool {
        e.to_string().contains("requested lease not found")
    }
}

fn range_body(start: &[u8], end: &[u8], limit: usize, keys_only: bool) -> Value {
    json!({"key": b64(start), "range_end": b64(end), "limit": limit, "keys_only": keys_only})
}

/// etcd's JSON gives 64-bit numbers as strings.
fn int(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64())
}

/// The `kvs` of a range answer (missing when there are none).
fn kvs(answer: &Value) -> Result<Vec<Kv>> {
    let bad = |e: String| ReturnerError::Unavailable(format!("etcd: a range answer is malformed: {e}"));
    let Some(list) = answer.get("kvs").and_then(Value::as_array) else { return Ok(Vec::new()) };
    list.iter()
        .map(|kv| {
            let field = |name: &str| kv.get(name).and_then(Value::as_str).map(unb64).transpose().map(Option::unwrap_or_default);
            Ok(Kv { key: field("key").map_err(bad)?, value: field("value").map_err(bad)? })
        })
        .collect()
}

/// The message of a gateway error (`{"error", "message", "code"}`), or the answer's text.
fn message(answer: &[u8]) -> String {
    serde_json::from_slice::<Value>(answer)
        .ok()
        .and_then(|v| v.get("message").or_else(|| v.get("error")).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&answer[..answer.len().min(512)]).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_etcd_writes_them() {
        let answer = json!({"header": {"revision": "5"}, "kvs": [{"key": "L2EvMQ==", "create_revision": "2", "value": "aGVsbG8="},
                                                              {"key": "L2EvMg=="}], "more": true, "count": "4"});
        let got = kvs(&answer).unwrap();
        assert_eq!((got[0].key.as_slice(), got[0].value.as_slice()), (&b"/a/1"[..], &b"hello"[..]));
        assert_eq!((got[1].key.as_slice(), got[1].value.len()), (&b"/a/2"[..], 0));
        assert!(kvs(&json!({"header": {}})).unwrap().is_empty());
        assert_eq!(int(&json!("2228897204331476513")), Some(2228897204331476513));
        assert_eq!(message(br#"{"error":"etcdserver: x","message":"etcdserver: x","code":3}"#), "etcdserver: x");
        assert_eq!(Leases::window(Duration::from_secs(86400)), Duration::from_secs(60));
        assert_eq!(Leases::window(Duration::from_secs(5)), Duration::from_secs(1));
    }
}
