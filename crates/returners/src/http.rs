//! What the stores that speak HTTP share (etcd's JSON gateway, CouchDB, Elasticsearch, and the
//! webhook returners): one way to build a client, to read an answer within a bound, and to
//! classify a failure.
//!
//! - TLS is rustls with the ring provider (as everywhere in this project), the system's roots.
//! - Every request has a deadline; every answer is read up to a bound before it is kept, so a
//!   server (or something posing as one) cannot make the master buffer without limit.
//! - A failure is either the server's (cannot connect, 5xx, 429, a login refused: retry later,
//!   the spool keeps the records) or the record's (any other 4xx: refused for good).

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Response, StatusCode};

use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// The most an answer may hold unless a call says otherwise. Write calls answer in a few
/// hundred bytes per record; a `_bulk` of 1,000 records answers in well under this.
pub(crate) const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A client for one store: connections kept alive, a deadline for each request.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client> {
    build(builder(timeout))
}

/// What [`client`] builds, for a store that adds settings of its own (trust roots, a client
/// certificate, proxies) before [`build`].
pub(crate) fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    // reqwest is built without a crypto provider of its own: ring, installed once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
}

pub(crate) fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    builder.build().map_err(|e| ReturnerError::Invalid(format!("cannot set up an HTTP client: {e}")))
}

/// The body of `response`, refused once it passes `max` bytes (read as it arrives, whatever the
/// server announced).
pub(crate) async fn body(store: &str, response: Response, max: usize) -> Result<Bytes> {
    body_within(store, response, max).await?.ok_or_else(|| too_big(store, max))
}

/// The body of `response` if it holds at most `max` bytes, `None` once it passes them (read no
/// further). A store that reads pages uses it to ask for fewer items at a time.
pub(crate) async fn body_within(store: &str, mut response: Response, max: usize) -> Result<Option<Bytes>> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Ok(None);
    }
    let mut out = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ReturnerError::Unavailable(format!("{store}: reading the answer failed: {e}")))?
    {
        if out.len() + chunk.len() > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(out)))
}

fn too_big(store: &str, max: usize) -> ReturnerError {
    ReturnerError::Unavailable(format!("{store}: the server's answer is larger than {max} bytes; refusing to read it"))
}

/// A request that got no answer: the server is down, unreachable or slow. Retry later. The
/// message names where, never a secret (a URL may carry credentials).
pub(crate) fn unreachable(store: &str, at: &str, e: &reqwest::Error, secret: &Secret) -> ReturnerError {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // reqwest's own text repeats the URL; ours names it without userinfo. Its first cause is
    // often only "client error (Connect)": the causes under it say what failed (a refused
    // connection, an unknown certificate).
    let mut causes: Vec<String> = Vec::new();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !causes.last().is_some_and(|last| last.contains(&text)) {
            causes.push(text);
        }
        cause = c.source();
    }
    let detail = secret.scrub(&if causes.is_empty() { e.to_string() } else { causes.join(": ") });
    ReturnerError::Unavailable(format!("{store}: {what} at {at}: {detail}"))
}

/// How much of a refusal's answer is read: enough for any service's error text.
const REFUSAL_BYTES: usize = 64 * 1024;

/// The refusal `response` (a status other than 2xx) stands for: [`refused`], and a 429 or 503
/// that says `Retry-After` waits that long. The answer is read within a small bound.
pub(crate) async fn refusal(store: &str, at: &str, response: Response) -> ReturnerError {
    refusal_waiting(store, at, response, |_| None).await
}

/// [`refusal`] for a service that may say how long to wait in its answer rather than in a
/// `Retry-After` header (Telegram's `parameters.retry_after`): `wait_in_answer` reads it.
pub(crate) async fn refusal_waiting(
    store: &str,
    at: &str,
    response: Response,
    wait_in_answer: impl Fn(&[u8]) -> Option<Duration>,
) -> ReturnerError {
    let status = response.status();
    let after = retry_after(response.headers(), std::time::SystemTime::now());
    let answer = match body_within(store, response, REFUSAL_BYTES).await {
        Ok(Some(answer)) => answer,
        Ok(None) => Bytes::from_static(b"(an answer too large to quote)"),
        Err(e) => return e,
    };
    let after = after.or_else(|| wait_in_answer(&answer));
    match (refused(store, at, status, &answer), after) {
        (ReturnerError::Unavailable(message), Some(after)) => ReturnerError::Throttled { message, after },
        (e, _) => e,
    }
}

/// A `Retry-After` header's wait: seconds, or an HTTP date (`now` to count from).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A server's refusal, by its status: the server's trouble (5xx, 429, 408), a login or
/// permission refused (401, 403: the store is unusable until its config changes; retried, so
/// nothing is lost meanwhile), or this record's fault (any other 4xx).
pub(crate) fn refused(store: &str, at: &str, status: StatusCode, answer: &[u8]) -> ReturnerError {
    let text = String::from_utf8_lossy(&answer[..answer.len().min(512)]).trim().to_string();
    let message = format!("{store}: {at} answered {status}: {text}");
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ReturnerError::Unavailable(format!("{store}: {at} refused the login ({status}); check the store's user and password: {text}"))
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => ReturnerError::Unavailable(message),
        s if s.is_server_error() => ReturnerError::Unavailable(message),
        _ => ReturnerError::Rejected(message),
    }
}

/// An http(s) base URL of `store`'s option `key`, ending in `/` so paths join under it.
pub(crate) fn base_url(store: &str, key: &str, text: &str) -> Result<reqwest::Url> {
    let bad = |why: &str| ReturnerError::Invalid(format!("{store}: {store}.{key} {why}"));
    let mut url = reqwest::Url::parse(text.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("must be an http(s) URL of a server"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// POSTs the form `body` to `url`, a webhook whose URL is itself the secret (`secret`): a 2xx
/// is delivered, any other answer is [`refusal`]; errors name the server only ([`where_`]).
pub(crate) async fn post_form(client: &reqwest::Client, store: &str, url: &reqwest::Url, secret: &Secret, body: String) -> Result<()> {
    let at = where_(url);
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(store, &at, &e, secret))?;
    if response.status().is_success() {
        return Ok(());
    }
    Err(refusal(store, &at, response).await)
}

/// `pairs` as an `application/x-www-form-urlencoded` body (`a=1&b=x+y%21`).
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("form:").expect("a URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

/// `error` without `secret` in its text (a service may echo a token it was sent).
pub(crate) fn scrubbed(error: ReturnerError, secret: &Secret) -> ReturnerError {
    match error {
        ReturnerError::Unavailable(m) => ReturnerError::Unavailable(secret.scrub(&m)),
        ReturnerError::Throttled { message, after } => ReturnerError::Throttled { message: secret.scrub(&message), after },
        ReturnerError::Rejected(m) => ReturnerError::Rejected(secret.scrub(&m)),
        ReturnerError::Invalid(m) => ReturnerError::Invalid(secret.scrub(&m)),
        other => other,
    }
}

/// `scheme://host:port` of `url`, without userinfo, path or query: how errors name a server.
pub(crate) fn where_(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let at = "http://127.0.0.1:9200";
        assert!(refused("es", at, StatusCode::SERVICE_UNAVAILABLE, b"").retry_later());
        assert!(refused("es", at, StatusCode::TOO_MANY_REQUESTS, b"").retry_later());
        assert!(refused("es", at, StatusCode::UNAUTHORIZED, b"").retry_later());
        assert!(refused("es", at, StatusCode::FORBIDDEN, b"").to_string().contains("refused the login"));
        let bad = refused("es", at, StatusCode::BAD_REQUEST, br#"{"error": "mapper_parsing_exception"}"#);
        assert!(matches!(&bad, ReturnerError::Rejected(m) if m.contains("mapper_parsing_exception")), "{bad:?}");
        let long = vec![b'x'; 10_000];
        assert!(refused("es", at, StatusCode::BAD_REQUEST, &long).to_string().len() < 700);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
            retry_after(&h, now)
        };
        assert_eq!(with("30"), Some(Duration::from_secs(30)));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:10 GMT"), Some(Duration::from_secs(10)));
        assert_eq!(with("Wed, 21 Oct 2015 07:27:00 GMT"), Some(Duration::ZERO), "a date past is now");
        assert_eq!(with("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn form_bodies_are_encoded() {
        assert_eq!(
            form(&[("payload", r#"{"text": "a&b=c 😀"}"#), ("x", "")]),
            "payload=%7B%22text%22%3A+%22a%26b%3Dc+%F0%9F%98%80%22%7D&x="
        );
    }

    #[test]
    fn servers_are_named_without_credentials() {
        let url = reqwest::Url::parse("https://salt:hunter2@es.example.com:9243/salt-master-job-cache/_doc/1?refresh=true").unwrap();
        assert_eq!(where_(&url), "https://es.example.com:9243");
        let url = reqwest::Url::parse("http://127.0.0.1/").unwrap();
        assert_eq!(where_(&url), "http://127.0.0.1:80");
    }

    #[tokio::test]
    async fn answers_are_bounded_and_refusals_are_quick() {
        // A server that announces and sends more than the bound.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = vec![b'a'; 64 * 1024];
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            }
        });
        let c = client(Duration::from_secs(5)).unwrap();
        let r = c.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap();
        let err = body("es", r, 1024).await.unwrap_err();
        assert!(err.retry_later() && err.to_string().contains("larger than 1024 bytes"), "{err}");
        let r = c.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap();
        assert!(body_within("es", r, 1024).await.unwrap().is_none(), "too big: ask for less");
        let r = c.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap();
        assert_eq!(body("es", r, 1024 * 1024).await.unwrap().len(), 64 * 1024);
        // Nothing listens: one clear, retryable error.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = c.get(format!("http://127.0.0.1:{closed}/")).send().await.unwrap_err();
        let err = unreachable("es", &format!("http://127.0.0.1:{closed}"), &e, &Secret::default());
        assert!(err.retry_later() && err.to_string().starts_with("es: cannot connect at http://127.0.0.1:"), "{err}");
    }
}
