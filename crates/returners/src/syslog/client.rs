//! I/O with the syslog receiver, one batch at a time: a local datagram socket (as `/dev/log`:
//! each message one datagram, the sender waits while the receiver's queue is full, so nothing is
//! dropped), UDP (one datagram each; a loss on the way goes unseen, as with any UDP syslog) or
//! TCP (one connection per batch, octet-counted frames, delivered once the receiver has read to
//! our end and closed its side).
//!
//! A receiver that is not there is `Unavailable`: the spool tries the batch again, and the
//! returns this process has delivered already ([`Delivered`]) are not sent again. A message
//! the socket refuses for its size refuses its return alone (`max_message_size` too large for
//! the socket).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio::time::timeout;

use super::config::{SyslogConfig, Target, TIMEOUT};
use super::encode::Prepared;
use crate::batch::Indexed;
use crate::delivered::Delivered;
use crate::{Rejection, Result, ReturnerError};

pub struct Client {
    config: SyslogConfig,
    delivered: Delivered,
}

/// An open way to the receiver for one batch.
enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Client {
    pub fn new(config: SyslogConfig) -> Client {
        Client { config, delivered: Delivered::default() }
    }

    pub fn config(&self) -> &SyslogConfig {
        &self.config
    }

    fn down(&self, what: impl std::fmt::Display) -> ReturnerError {
        ReturnerError::Unavailable(format!("{}: {what}", self.config.server()))
    }

    async fn connect(&self) -> Result<Conn> {
        let connecting = async {
            Ok::<Conn, io::Error>(match &self.config.target {
                Target::Unix(path) => {
                    let socket = UnixDatagram::unbound()?;
                    socket.connect(path)?;
                    Conn::Unix(socket)
                }
                Target::Udp { host, port } => {
                    let addr = tokio::net::lookup_host((host.as_str(), *port))
                        .await?
                        .next()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
                    let socket = UdpSocket::bind(if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).await?;
                    socket.connect(addr).await?;
                    Conn::Udp(socket)
                }
                Target::Tcp { host, port } => Conn::Tcp(TcpStream::connect((host.as_str(), *port)).await?),
            })
        };
        match timeout(TIMEOUT, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.down(format_args!("cannot connect: {e}"))),
            Err(_) => Err(self.down(format_args!("no connection within {TIMEOUT:?}"))),
        }
    }

    /// Whether the receiver is there (a UDP one cannot say).
    pub async fn ping(&self) -> Result<()> {
        self.connect().await.map(drop)
    }

    /// Sends each prepared return not delivered before (nor earlier in this batch); a return the
    /// socket refuses for its size goes to `rejected`.
    pub async fn send(&self, batch: &[Indexed<Prepared>], rejected: &mut Vec<Rejection>) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let todo: Vec<&Indexed<Prepared>> =
            batch.iter().filter(|r| !self.delivered.contains(&r.row.key.0, &r.row.key.1) && seen.insert(&r.row.key)).collect();
        if todo.is_empty() {
            return Ok(());
        }
        match timeout(TIMEOUT, self.send_all(&todo, rejected)).await {
            Ok(result) => result,
            Err(_) => Err(self.down(format_args!("the batch was not taken within {TIMEOUT:?}"))),
        }
    }

    async fn send_all(&self, todo: &[&Indexed<Prepared>], rejected: &mut Vec<Rejection>) -> Result<()> {
        let sending = |e: io::Error| self.down(format_args!("sending: {e}"));
        match self.connect().await? {
            Conn::Tcp(stream) => {
                // Frames are small: gathered into large writes, not two system calls each.
                let mut stream = tokio::io::BufWriter::with_capacity(64 * 1024, stream);
                for r in todo {
                    for message in &r.row.messages {
                        stream.write_all(format!("{} ", message.len()).as_bytes()).await.map_err(sending)?;
                        stream.write_all(message).await.map_err(sending)?;
                    }
                }
                stream.flush().await.map_err(sending)?;
                stream.shutdown().await.map_err(sending)?;
                // The receiver closes its side once it has read ours to the end; what it says
                // (nothing, for syslog) is read and dropped a bounded amount at a time.
                let mut sink = [0u8; 4096];
                while stream.read(&mut sink).await.map_err(sending)? > 0 {}
                for r in todo {
                    self.delivered.insert(&r.row.key.0, &r.row.key.1);
                }
                Ok(())
            }
            datagrams => {
                for r in todo {
                    let mut sent = Ok(());
                    for message in &r.row.messages {
                        sent = match &datagrams {
                            Conn::Unix(s) => s.send(message).await.map(drop),
                            Conn::Udp(s) => s.send(message).await.map(drop),
                            Conn::Tcp(_) => unreachable!("handled above"),
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                    match sent {
                        Ok(()) => self.delivered.insert(&r.row.key.0, &r.row.key.1),
                        // EMSGSIZE: no retry can make this datagram fit.
                        Err(e) if e.raw_os_error() == Some(90) => rejected.push(Rejection {
                            index: r.index,
                            reason: format!(
                                "{}: a message of this return is too long for the socket ({e}); lower syslog.max_message_size",
                                self.config.server()
                            ),
                        }),
                        Err(e) => return Err(sending(e)),
                    }
                }
                Ok(())
            }
        }
    }
}
