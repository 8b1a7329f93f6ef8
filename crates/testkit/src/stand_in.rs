//! A stand-in HTTP server for services that cannot run here (Slack, Splunk's HTTP Event
//! Collector, Telegram, Pushover...): the test writes, in a handler, what the real API checks
//! and what it answers; the stand-in does the HTTP/1.1, the size limits, the outages and the
//! rate limits, and records every request for the test to read.
//!
//! ```no_run
//! # async fn t() {
//! use saltrs_testkit::stand_in::{Mode, Response, StandIn};
//! let service = StandIn::builder(|req| {
//!     if req.header("authorization") != Some("Bearer xoxb-1") {
//!         return Response::json(200, r#"{"ok":false,"error":"invalid_auth"}"#);
//!     }
//!     Response::json(200, r#"{"ok":true}"#)
//! })
//! .body_limit(1 << 20) // the real API's limit: larger bodies are answered `too_large`
//! .refusal(Response::json(200, r#"{"ok":false,"error":"channel_not_found"}"#))
//! .rate_limited(|_secs| Response::json(429, r#"{"ok":false,"error":"ratelimited"}"#))
//! .start();
//! let base = service.url(); // http://127.0.0.1:PORT, the store's base URL option
//! service.set_mode(Mode::RateLimited { retry_after_secs: 1 }); // 429 + Retry-After: 1
//! service.set_mode(Mode::Down); // connections refused until Normal again
//! service.set_mode(Mode::Normal); // back on the same port
//! let sent = service.requests(); // every request that reached it, in order
//! # }
//! ```
//!
//! Bounds, as a real server has them: a request head past [`Builder::head_limit`] is answered
//! 431 and a body past [`Builder::body_limit`] (by its `Content-Length`, or as chunks arrive)
//! is answered with the [`Builder::too_large`] response (413 unless the service answers
//! otherwise), unread, and the connection closed. Connections are kept alive (HTTP/1.1's
//! default) until the client closes them or asks `Connection: close`; chunked request bodies
//! are decoded; `Expect: 100-continue` is answered.
//!
//! The stand-in runs on the tokio runtime it is started in (build it inside the test's
//! runtime); it stops when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The head limit unless [`Builder::head_limit`] sets one (nginx's and Go's are 8 KiB to 1 MiB).
pub const DEFAULT_HEAD_LIMIT: usize = 64 * 1024;
/// The body limit unless [`Builder::body_limit`] sets one.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// At most this many headers in one request (more is a 431).
const MAX_HEADERS: usize = 100;

/// How the stand-in answers, as the test sets it with [`StandIn::set_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every request goes to the handler.
    Normal,
    /// The service is gone: the listener is closed (connections are refused) and open
    /// connections are dropped, until another mode brings it back on the same port.
    Down,
    /// The service is up but overloaded: every request is answered with the
    /// [`Builder::unavailable`] response (503 unless the service answers otherwise).
    Unavailable,
    /// Every request is answered with the [`Builder::rate_limited`] response and a
    /// `Retry-After: <retry_after_secs>` header.
    RateLimited { retry_after_secs: u64 },
    /// The next request is answered with the [`Builder::refusal`] response (the service's own
    /// permanent error); the mode then goes back to [`Mode::Normal`].
    RefuseNext,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query string, as sent (not percent-decoded).
    pub path: String,
    /// The query string without its `?`, as sent; empty when there is none.
    pub query: String,
    /// The headers in the order sent, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The media type of the body (`Content-Type` without parameters), lower case.
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The body as UTF-8.
    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|e| format!("the body is not UTF-8: {e}"))
    }

    /// The body as one JSON value.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("the body is not JSON: {e}"))
    }

    /// The body as `application/x-www-form-urlencoded` pairs, decoded.
    pub fn form(&self) -> Result<Vec<(String, String)>, String> {
        url_decoded_pairs(self.text()?)
    }

    /// The query string as decoded pairs.
    pub fn query_pairs(&self) -> Result<Vec<(String, String)>, String> {
        url_decoded_pairs(&self.query)
    }
}

/// Decodes `a=1&b=x%20y` (`+` is a space) into pairs; bad `%` escapes or non-UTF-8 are errors,
/// as a strict server would refuse them.
pub fn url_decoded_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((url_decode(k)?, url_decode(v)?))
        })
        .collect()
}

fn url_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| format!("bad % escape in {s:?}"))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// An answer: status, headers, body. `Content-Length` is added when it is written.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An empty answer with this status.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A JSON body (`Content-Type: application/json; charset=utf-8`).
    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response::new(status).header("Content-Type", "application/json; charset=utf-8").body(body.into())
    }

    /// A plain-text body.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status).header("Content-Type", "text/plain; charset=utf-8").body(body.into())
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

/// One request and the status it was answered with (in [`Mode::Normal`] the handler's).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub status: u16,
    /// The answer's body, as sent.
    pub answer: Vec<u8>,
}

type Handler = Box<dyn Fn(&Request) -> Response + Send + Sync>;
type RateLimitAnswer = Box<dyn Fn(u64) -> Response + Send + Sync>;

/// How a [`StandIn`] is set up: [`StandIn::builder`], then [`Builder::start`].
pub struct Builder {
    handler: Handler,
    head_limit: usize,
    body_limit: usize,
    too_large: Response,
    unavailable: Response,
    rate_limited: RateLimitAnswer,
    refusal: Response,
}

impl Builder {
    /// The largest request head (request line and headers) taken; past it, 431.
    pub fn head_limit(mut self, bytes: usize) -> Builder {
        self.head_limit = bytes;
        self
    }

    /// The largest request body taken, as the real API's limit; past it, [`Builder::too_large`].
    pub fn body_limit(mut self, bytes: usize) -> Builder {
        self.body_limit = bytes;
        self
    }

    /// The service's answer to a body past the limit (default: 413, plain text).
    pub fn too_large(mut self, answer: Response) -> Builder {
        self.too_large = answer;
        self
    }

    /// The service's answer in [`Mode::Unavailable`] (default: 503, plain text).
    pub fn unavailable(mut self, answer: Response) -> Builder {
        self.unavailable = answer;
        self
    }

    /// The service's answer in [`Mode::RateLimited`], given the seconds to wait (default: 429,
    /// plain text). The stand-in adds the `Retry-After` header itself.
    pub fn rate_limited(mut self, answer: impl Fn(u64) -> Response + Send + Sync + 'static) -> Builder {
        self.rate_limited = Box::new(answer);
        self
    }

    /// The service's permanent error, given in [`Mode::RefuseNext`] (default: 400, plain text).
    pub fn refusal(mut self, answer: Response) -> Builder {
        self.refusal = answer;
        self
    }

    /// Listens on a free 127.0.0.1 port, on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or when no port can be bound.
    pub fn start(self) -> StandIn {
        let runtime = Handle::current();
        let (closing, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            handler: self.handler,
            head_limit: self.head_limit,
            body_limit: self.body_limit,
            too_large: self.too_large,
            unavailable: self.unavailable,
            rate_limited: self.rate_limited,
            refusal: self.refusal,
            mode: Mutex::new(Mode::Normal),
            log: Mutex::new(Vec::new()),
            closing,
        });
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("binding the stand-in to a free port");
        let addr = listener.local_addr().expect("the stand-in's address");
        let acceptor = runtime.spawn(accept(listener, shared.clone()));
        StandIn { shared, addr, runtime, acceptor: Mutex::new(Some(acceptor)) }
    }
}

/// A running stand-in (see the [module docs](self)).
pub struct StandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runtime: Handle,
    /// The task that accepts connections; `None` while [`Mode::Down`].
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    handler: Handler,
    head_limit: usize,
    body_limit: usize,
    too_large: Response,
    unavailable: Response,
    rate_limited: RateLimitAnswer,
    refusal: Response,
    mode: Mutex<Mode>,
    log: Mutex<Vec<Exchange>>,
    /// Bumped to make every open connection end (going [`Mode::Down`], dropping the stand-in).
    closing: watch::Sender<u64>,
}

impl StandIn {
    /// A stand-in whose requests in [`Mode::Normal`] are answered by `handler`: check the
    /// request as the real API does and answer as it answers.
    pub fn builder(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Builder {
        Builder {
            handler: Box::new(handler),
            head_limit: DEFAULT_HEAD_LIMIT,
            body_limit: DEFAULT_BODY_LIMIT,
            too_large: Response::text(413, "Request Entity Too Large"),
            unavailable: Response::text(503, "Service Unavailable"),
            rate_limited: Box::new(|_| Response::text(429, "Too Many Requests")),
            refusal: Response::text(400, "Bad Request"),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.lock().unwrap()
    }

    /// Switches the mode. Into [`Mode::Down`] the listener closes and open connections drop;
    /// out of it the stand-in listens again on the same port.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound again (another process took it meanwhile).
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
        let mut acceptor = self.acceptor.lock().unwrap();
        match (mode, acceptor.is_some()) {
            (Mode::Down, true) => {
                if let Some(task) = acceptor.take() {
                    task.abort();
                }
                self.shared.closing.send_modify(|n| *n += 1);
            }
            (Mode::Down, false) | (_, true) => {}
            (_, false) => {
                let _runtime = self.runtime.enter();
                let listener = listen(self.addr).unwrap_or_else(|e| panic!("listening again on {}: {e}", self.addr));
                *acceptor = Some(self.runtime.spawn(accept(listener, self.shared.clone())));
            }
        }
    }

    /// Every request that reached the stand-in, in order, with how it was answered.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Every request that reached the stand-in, in order, whatever the answer.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().iter().map(|e| e.request.clone()).collect()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Waits until at least `count` requests have arrived, or `timeout` passed; gives the
    /// number that arrived.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.shared.log.lock().unwrap().len();
            if n >= count || Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// So a test can hand the suite its stand-in as it is, or inside what it keeps it in.
impl AsRef<StandIn> for StandIn {
    fn as_ref(&self) -> &StandIn {
        self
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(task) = self.acceptor.lock().unwrap().take() {
            task.abort();
        }
        self.shared.closing.send_modify(|n| *n += 1);
    }
}

/// A listener on `addr`, with `SO_REUSEADDR` so that coming back up on the same port is not
/// refused by the closed connections still in TIME_WAIT.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, or similar: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let closing = shared.closing.subscribe();
        tokio::spawn(serve(stream, shared.clone(), closing));
    }
}

/// Serves one connection until the client closes it, asks to, or the stand-in goes down.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>, mut closing: watch::Receiver<u64>) {
    let mut buffered = Vec::new();
    loop {
        let read = tokio::select! {
            read = read_request(&mut stream, &mut buffered, &shared) => read,
            _ = closing.changed() => return,
        };
        let (request, keep_alive) = match read {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(Refused(answer)) => {
                let _ = write_response(&mut stream, &answer, false).await;
                linger(stream).await;
                return;
            }
        };
        if shared.mode.lock().unwrap().eq(&Mode::Down) {
            // Went down while this request was on its way: drop it unanswered, as a dead
            // server would.
            return;
        }
        let answer = answer(&shared, &request);
        shared.log.lock().unwrap().push(Exchange { request, status: answer.status, answer: answer.body.clone() });
        if write_response(&mut stream, &answer, keep_alive).await.is_err() || !keep_alive {
            return;
        }
    }
}

/// After a refusal, reads and drops what the client still sends (the body not read) for a
/// while before closing, as nginx's lingering close does: closing with unread bytes resets the
/// connection, and the client may then lose the answer.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} }).await;
}

/// What the stand-in answers `request` in its current mode.
fn answer(shared: &Shared, request: &Request) -> Response {
    let mode = {
        let mut mode = shared.mode.lock().unwrap();
        let now = *mode;
        if now == Mode::RefuseNext {
            *mode = Mode::Normal;
        }
        now
    };
    match mode {
        Mode::Normal | Mode::Down => (shared.handler)(request),
        Mode::Unavailable => shared.unavailable.clone(),
        Mode::RateLimited { retry_after_secs } => {
            (shared.rate_limited)(retry_after_secs).header("Retry-After", retry_after_secs.to_string())
        }
        Mode::RefuseNext => shared.refusal.clone(),
    }
}

/// A request the stand-in refuses before the handler sees it (too large, malformed), with the
/// answer; the connection is then closed.
struct Refused(Response);

/// Reads one request from `stream` (bytes already read past the previous one are in
/// `buffered`). `None` when the client closed the connection between requests. Also says
/// whether the connection stays open after the answer.
async fn read_request(stream: &mut TcpStream, buffered: &mut Vec<u8>, shared: &Shared) -> Result<Option<(Request, bool)>, Refused> {
    let bad = |why: &str| Refused(Response::text(400, format!("Bad Request: {why}")));
    // The head: up to the blank line, within the head limit.
    let head_len = loop {
        if let Some(at) = find(buffered, b"\r\n\r\n") {
            break at + 4;
        }
        if buffered.len() > shared.head_limit {
            return Err(Refused(Response::text(431, "Request Header Fields Too Large")));
        }
        if read_more(stream, buffered).await? == 0 {
            return if buffered.is_empty() { Ok(None) } else { Err(bad("the connection closed inside the head")) };
        }
    };
    if head_len > shared.head_limit {
        return Err(Refused(Response::text(431, "Request Header Fields Too Large")));
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(&buffered[..head_len]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete head")),
        Err(httparse::Error::TooManyHeaders) => return Err(Refused(Response::text(431, "Request Header Fields Too Large"))),
        Err(e) => return Err(bad(&e.to_string())),
    }
    let method = parsed.method.unwrap_or_default().to_string();
    let target = parsed.path.unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let http10 = parsed.version == Some(0);
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| bad("a header value is not UTF-8"))?;
        headers.push((h.name.to_string(), value.to_string()));
    }
    buffered.drain(..head_len);
    let mut request = Request { method, path, query, headers, body: Vec::new() };

    let connection = request.header("connection").map(str::to_ascii_lowercase).unwrap_or_default();
    let keep_alive = if http10 { connection.contains("keep-alive") } else { !connection.contains("close") };
    let chunked = request.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        Some(v) => Some(v.trim().parse::<usize>().map_err(|_| bad("Content-Length is not a number"))?),
        None => None,
    };
    if length.is_some_and(|n| n > shared.body_limit) {
        return Err(Refused(shared.too_large.clone()));
    }
    if request.header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.map_err(|_| bad("write failed"))?;
    }
    request.body = if chunked {
        read_chunked(stream, buffered, shared).await?
    } else {
        let n = length.unwrap_or(0);
        while buffered.len() < n {
            if read_more(stream, buffered).await? == 0 {
                return Err(bad("the connection closed inside the body"));
            }
        }
        buffered.drain(..n).collect()
    };
    Ok(Some((request, keep_alive)))
}

/// A chunked body, de-chunked, within the body limit (trailers are read and dropped).
async fn read_chunked(stream: &mut TcpStream, buffered: &mut Vec<u8>, shared: &Shared) -> Result<Vec<u8>, Refused> {
    let bad = |why: &str| Refused(Response::text(400, format!("Bad Request: {why}")));
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(at) = find(buffered, b"\r\n") {
                break at;
            }
            if buffered.len() > 1024 {
                return Err(bad("a chunk size line is too long"));
            }
            if read_more(stream, buffered).await? == 0 {
                return Err(bad("the connection closed inside the body"));
            }
        };
        let line = std::str::from_utf8(&buffered[..line_end]).map_err(|_| bad("a chunk size is not text"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("a chunk size is not hex"))?;
        buffered.drain(..line_end + 2);
        if size == 0 {
            // Trailers, if any, up to the blank line.
            loop {
                if let Some(at) = find(buffered, b"\r\n") {
                    buffered.drain(..at + 2);
                    if at == 0 {
                        return Ok(body);
                    }
                    continue;
                }
                if buffered.len() > shared.head_limit {
                    return Err(Refused(Response::text(431, "Request Header Fields Too Large")));
                }
                if read_more(stream, buffered).await? == 0 {
                    return Err(bad("the connection closed inside the trailers"));
                }
            }
        }
        if body.len().saturating_add(size) > shared.body_limit {
            return Err(Refused(shared.too_large.clone()));
        }
        while buffered.len() < size + 2 {
            if read_more(stream, buffered).await? == 0 {
                return Err(bad("the connection closed inside a chunk"));
            }
        }
        if &buffered[size..size + 2] != b"\r\n" {
            return Err(bad("a chunk does not end with CRLF"));
        }
        body.extend_from_slice(&buffered[..size]);
        buffered.drain(..size + 2);
    }
}

async fn read_more(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Result<usize, Refused> {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(n) => {
            buffered.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        // A reset connection: nothing to answer; an empty head makes the caller end quietly.
        Err(_) => Ok(0),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn write_response(stream: &mut TcpStream, answer: &Response, keep_alive: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&answer.body);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends raw bytes on a fresh connection and reads until the server closes it or `answers`
    /// responses (counted by their status lines) came back.
    async fn exchange(stand_in: &StandIn, raw: &[u8], answers: usize) -> String {
        let mut stream = TcpStream::connect(stand_in.addr()).await.unwrap();
        stream.write_all(raw).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while String::from_utf8_lossy(&got).matches("HTTP/1.1 ").count() < answers || !complete(&got) {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.unwrap() {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8(got).unwrap()
    }

    /// Whether the last response in `bytes` has all of its body.
    fn complete(bytes: &[u8]) -> bool {
        let text = String::from_utf8_lossy(bytes);
        let Some(last) = text.rfind("HTTP/1.1 ") else { return false };
        let last = &text[last..];
        let Some(head_end) = last.find("\r\n\r\n") else { return false };
        let length =
            last[..head_end].lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        last.len() >= head_end + 4 + length
    }

    fn echo() -> Builder {
        StandIn::builder(|req| {
            if req.header("authorization") != Some("Bearer good") {
                return Response::json(401, r#"{"error":"invalid_auth"}"#);
            }
            Response::json(200, format!(r#"{{"got":{}}}"#, req.body.len()))
        })
    }

    #[tokio::test]
    async fn a_request_is_recorded_and_answered_by_the_handler() {
        let s = echo().start();
        let out = exchange(&s, b"POST /api/x?a=1&b=x%20y HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"k\":1}", 1).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with(r#"{"got":7}"#), "{out}");
        let reqs = s.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("POST", "/api/x"));
        assert_eq!(reqs[0].query_pairs().unwrap(), vec![("a".into(), "1".into()), ("b".into(), "x y".into())]);
        assert_eq!(reqs[0].content_type().as_deref(), Some("application/json"));
        assert_eq!(reqs[0].json().unwrap()["k"], 1);
        assert_eq!(s.exchanges()[0].status, 200);
    }

    #[tokio::test]
    async fn keep_alive_serves_several_requests_on_one_connection_and_chunks_are_joined() {
        let s = echo().start();
        let raw = b"POST / HTTP/1.1\r\nAuthorization: Bearer good\r\nContent-Length: 3\r\n\r\nabc\
                    POST / HTTP/1.1\r\nAuthorization: Bearer good\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n3;x=y\r\nfgh\r\n0\r\n\r\n";
        let out = exchange(&s, raw, 2).await;
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        let bodies: Vec<Vec<u8>> = s.requests().into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, vec![b"abc".to_vec(), b"defgh".to_vec()]);
    }

    #[tokio::test]
    async fn bodies_past_the_limit_get_the_services_too_large_answer_unread() {
        let s = echo().body_limit(4).too_large(Response::json(413, r#"{"text":"Content too large"}"#)).start();
        let out = exchange(&s, b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345", 1).await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(out.contains("Connection: close") && out.ends_with(r#"{"text":"Content too large"}"#), "{out}");
        let out = exchange(&s, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 1).await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
        let s = echo().head_limit(64).start();
        assert!(exchange(&s, long.as_bytes(), 1).await.starts_with("HTTP/1.1 431 "));
        assert!(s.requests().is_empty(), "refused before the handler, and not recorded");
    }

    #[tokio::test]
    async fn the_modes_rate_limit_refuse_once_answer_503_and_go_down_and_up() {
        let s = echo()
            .rate_limited(|secs| Response::json(429, format!(r#"{{"error":"ratelimited","wait":{secs}}}"#)))
            .refusal(Response::json(404, r#"{"error":"channel_not_found"}"#))
            .unavailable(Response::json(503, r#"{"text":"Server is busy","code":9}"#))
            .start();
        let req = b"POST / HTTP/1.1\r\nAuthorization: Bearer good\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        s.set_mode(Mode::RateLimited { retry_after_secs: 7 });
        let out = exchange(&s, req, 1).await;
        assert!(out.starts_with("HTTP/1.1 429 ") && out.contains("Retry-After: 7\r\n") && out.ends_with(r#""wait":7}"#), "{out}");
        s.set_mode(Mode::Unavailable);
        assert!(exchange(&s, req, 1).await.ends_with(r#"{"text":"Server is busy","code":9}"#));
        s.set_mode(Mode::RefuseNext);
        assert!(exchange(&s, req, 1).await.starts_with("HTTP/1.1 404 "));
        assert_eq!(s.mode(), Mode::Normal, "a refusal is for the next request only");
        assert!(exchange(&s, req, 1).await.starts_with("HTTP/1.1 200 "));

        // An open keep-alive connection is dropped when the service goes down.
        let mut open = TcpStream::connect(s.addr()).await.unwrap();
        s.set_mode(Mode::Down);
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let refused = TcpStream::connect(s.addr()).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        s.set_mode(Mode::Normal);
        assert!(exchange(&s, req, 1).await.starts_with("HTTP/1.1 200 "), "back on the same port");
        let statuses: Vec<u16> = s.exchanges().iter().map(|e| e.status).collect();
        assert_eq!(statuses, vec![429, 503, 404, 200, 200]);
    }

    #[test]
    fn form_bodies_decode_and_bad_escapes_are_errors() {
        assert_eq!(
            url_decoded_pairs("payload=%7B%22a%22%3A+1%7D&x").unwrap(),
            vec![("payload".into(), r#"{"a": 1}"#.into()), ("x".into(), "".into())]
        );
        assert!(url_decoded_pairs("a=%zz").is_err());
        assert!(url_decoded_pairs("a=%ff").is_err());
    }
}
