//! I/O with memcached: its ASCII protocol over one TCP connection, kept between calls and made
//! again after a failure. A call is one exchange: every request written at once (pipelined)
//! while the answers are read, in order. Everything read is bounded: a line by
//! [`MAX_LINE`], a value by [`MAX_ITEM_READ`], an exchange by `EXCHANGE_TIMEOUT`.
//!
//! Errors: no server, a broken connection, a timeout or a full server (`out of memory`) is
//! `Unavailable` for the whole call; a value the server will not take (`object too large`, a
//! `CLIENT_ERROR`) is [`Answer::Refused`] for that request alone.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::config::{MemcacheConfig, CONNECT_TIMEOUT, EXCHANGE_TIMEOUT};
use crate::{Result, ReturnerError};

/// The longest answer line read: `VALUE <key of at most 250 bytes> <flags> <bytes> <cas>`.
const MAX_LINE: usize = 1024;
/// The largest value read. memcached's default item limit is 1 MiB, and this store never
/// writes a bigger item (it splits values, see `encode`); a server with a larger `-I` may hold
/// bigger items from other programs, which are refused rather than buffered.
pub const MAX_ITEM_READ: usize = 2 * 1024 * 1024;
/// Keys per `get` line: memcached takes long lines, but a bounded one fails no server.
pub const KEYS_PER_GET: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Set,
    Add,
    Append,
}

/// One request of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Get(Vec<String>),
    Store { verb: Verb, key: String, flags: u32, data: Vec<u8> },
    Version,
}

/// An item a `get` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: String,
    pub flags: u32,
    pub data: Vec<u8>,
}

/// The server's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Items(Vec<Item>),
    Stored,
    /// `add` on an existing key, `append` on a missing one.
    NotStored,
    Version(String),
    /// The server refused this request's data (too large, a bad key).
    Refused(String),
}

/// Why an exchange failed.
enum Failure {
    Io(io::Error),
    Timeout,
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
}

pub struct Client {
    config: MemcacheConfig,
    /// The idle connection, if any: a call takes it (or opens one) and puts it back after a
    /// clean exchange, so a broken one is never reused.
    idle: Mutex<Option<Conn>>,
}

impl Client {
    pub fn new(config: MemcacheConfig) -> Client {
        Client { config, idle: Mutex::new(None) }
    }

    pub fn config(&self) -> &MemcacheConfig {
        &self.config
    }

    async fn connect(&self) -> Result<Conn> {
        let addr = (self.config.host.as_str(), self.config.port);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| self.unavailable(format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| self.unavailable(format!("could not connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Ok(Conn { reader: BufReader::new(r), writer: BufWriter::new(w) })
    }

    /// Sends `requests` in one exchange and gives each its answer, in order.
    pub async fn exchange(&self, requests: &[Request]) -> Result<Vec<Answer>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let taken = self.idle.lock().await.take();
        let reused = taken.is_some();
        let mut conn = match taken {
            Some(c) => c,
            None => self.connect().await?,
        };
        let mut answers = self.timed_exchange(&mut conn, requests).await;
        if reused && matches!(&answers, Err(Failure::Io(e)) if e.kind() != io::ErrorKind::InvalidData) {
            // The idle connection went stale (the server restarted, a proxy timed it out):
            // once more on a new one. Every write here may be repeated harmlessly.
            conn = self.connect().await?;
            answers = self.timed_exchange(&mut conn, requests).await;
        }
        let answers = answers.map_err(|f| match f {
            Failure::Io(e) => self.unavailable(e.to_string()),
            Failure::Timeout => self.unavailable(format!("no answer within {} s", EXCHANGE_TIMEOUT.as_secs())),
        })?;
        // A full server is worth trying again later; the connection itself is fine.
        if let Some(full) = answers.iter().find_map(|a| match a {
            Answer::Refused(why) if why.contains("out of memory") => Some(why.clone()),
            _ => None,
        }) {
            *self.idle.lock().await = Some(conn);
            return Err(self.unavailable(full));
        }
        *self.idle.lock().await = Some(conn);
        Ok(answers)
    }

    async fn timed_exchange(&self, conn: &mut Conn, requests: &[Request]) -> std::result::Result<Vec<Answer>, Failure> {
        match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(conn, requests)).await {
            Ok(Ok(answers)) => Ok(answers),
            Ok(Err(e)) => Err(Failure::Io(e)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    fn unavailable(&self, what: String) -> ReturnerError {
        ReturnerError::Unavailable(format!("memcache: {}: {what}", self.config.server()))
    }
}

/// Writes every request while reading the answers: memcached stops reading when its answers
/// are not read, so writing first and reading after could stall both sides.
async fn exchange(conn: &mut Conn, requests: &[Request]) -> io::Result<Vec<Answer>> {
    let Conn { reader, writer } = conn;
    let write = async {
        for r in requests {
            write_request(writer, r).await?;
        }
        writer.flush().await
    };
    let read = async {
        let mut answers = Vec::with_capacity(requests.len());
        for r in requests {
            answers.push(read_answer(reader, r).await?);
        }
        Ok::<_, io::Error>(answers)
    };
    let ((), answers) = tokio::try_join!(write, read)?;
    Ok(answers)
}

async fn write_request(w: &mut BufWriter<OwnedWriteHalf>, r: &Request) -> io::Result<()> {
    match r {
        Request::Get(keys) => {
            w.write_all(b"get").await?;
            for k in keys {
                w.write_all(b" ").await?;
                w.write_all(k.as_bytes()).await?;
            }
            w.write_all(b"\r\n").await
        }
        Request::Store { verb, key, flags, data } => {
            let verb = match verb {
                Verb::Set => "set",
                Verb::Add => "add",
                Verb::Append => "append",
            };
            w.write_all(format!("{verb} {key} {flags} 0 {}\r\n", data.len()).as_bytes()).await?;
            w.write_all(data).await?;
            w.write_all(b"\r\n").await
        }
        Request::Version => w.write_all(b"version\r\n").await,
    }
}

fn protocol(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One line without its `\r\n`, at most [`MAX_LINE`] bytes.
async fn read_line(r: &mut BufReader<OwnedReadHalf>) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(protocol(format!("an answer line longer than {MAX_LINE} bytes")));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| protocol("an answer line that is not UTF-8".into()))
}

/// An error line as an answer (`SERVER_ERROR`, `CLIENT_ERROR`), if it is one.
fn error_line(line: &str) -> Option<Answer> {
    (line.starts_with("SERVER_ERROR") || line.starts_with("CLIENT_ERROR") || line == "ERROR").then(|| Answer::Refused(line.to_string()))
}

async fn read_answer(r: &mut BufReader<OwnedReadHalf>, request: &Request) -> io::Result<Answer> {
    match request {
        Request::Get(_) => {
            let mut items = Vec::new();
            loop {
                let line = read_line(r).await?;
                if line == "END" {
                    return Ok(Answer::Items(items));
                }
                if let Some(err) = error_line(&line) {
                    return Ok(err);
                }
                let mut parts = line.split(' ');
                let (Some("VALUE"), Some(key), Some(flags), Some(len)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                    return Err(protocol(format!("unexpected answer to get: {line:?}")));
                };
                let flags = flags.parse().map_err(|_| protocol(format!("bad flags in {line:?}")))?;
                let len: usize = len.parse().map_err(|_| protocol(format!("bad length in {line:?}")))?;
                if len > MAX_ITEM_READ {
                    // Not read: the connection is dropped with this error.
                    return Err(protocol(format!("item {key} is {len} bytes, more than the {MAX_ITEM_READ} this client reads")));
                }
                let mut data = vec![0; len + 2];
                r.read_exact(&mut data).await?;
                if !data.ends_with(b"\r\n") {
                    return Err(protocol(format!("item {key} does not end its data block")));
                }
                data.truncate(len);
                items.push(Item { key: key.to_string(), flags, data });
            }
        }
        Request::Store { .. } => {
            let line = read_line(r).await?;
            match line.as_str() {
                "STORED" => Ok(Answer::Stored),
                "NOT_STORED" => Ok(Answer::NotStored),
                _ => error_line(&line).ok_or_else(|| protocol(format!("unexpected answer to a store: {line:?}"))),
            }
        }
        Request::Version => {
            let line = read_line(r).await?;
            match line.strip_prefix("VERSION ") {
                Some(v) => Ok(Answer::Version(v.to_string())),
                None => error_line(&line).ok_or_else(|| protocol(format!("unexpected answer to version: {line:?}"))),
            }
        }
    }
}
