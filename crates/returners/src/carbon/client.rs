//! I/O with carbon: one TCP connection per batch. The batch is written, our side shut, and the
//! answer read to its end: carbon closes its side once it has read everything we sent, so a
//! batch counts as delivered only when carbon has it, not when our kernel has buffered it.
//! Carbon answers nothing on these ports; whatever it sends is read and dropped, a bounded
//! amount at a time. Every step has a deadline; any failure is `Unavailable` (carbon down,
//! the batch is tried again later: the same datapoints, so nothing is counted twice).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::config::{CarbonConfig, CONNECT_TIMEOUT, SEND_TIMEOUT};
use crate::{Result, ReturnerError};

pub struct Client {
    config: CarbonConfig,
}

impl Client {
    pub fn new(config: CarbonConfig) -> Client {
        Client { config }
    }

    pub fn config(&self) -> &CarbonConfig {
        &self.config
    }

    fn down(&self, what: impl std::fmt::Display) -> ReturnerError {
        ReturnerError::Unavailable(format!("{}: {what}", self.config.server()))
    }

    async fn connect(&self) -> Result<TcpStream> {
        let addr = (self.config.host.as_str(), self.config.port);
        match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(self.down(format_args!("cannot connect: {e}"))),
            Err(_) => Err(self.down(format_args!("no connection within {CONNECT_TIMEOUT:?}"))),
        }
    }

    /// Whether carbon takes connections.
    pub async fn ping(&self) -> Result<()> {
        self.connect().await.map(drop)
    }

    /// Sends `payload` on a new connection and waits until carbon has read it all.
    pub async fn send(&self, payload: &[u8]) -> Result<()> {
        if payload.is_empty() {
            return Ok(());
        }
        let mut stream = self.connect().await?;
        let exchange = async {
            stream.write_all(payload).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        match timeout(SEND_TIMEOUT, exchange).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.down(format_args!("sending {} bytes: {e}", payload.len()))),
            Err(_) => Err(self.down(format_args!("{} bytes not taken within {SEND_TIMEOUT:?}", payload.len()))),
        }
    }
}
