//! I/O: a small SMTP client (RFC 5321) for smtp and highstate: EHLO, STARTTLS (rustls),
//! AUTH PLAIN or LOGIN, then any number of mails over one connection.
//!
//! Our own rather than lettre's: every reply is read within a bound (a line, a whole reply),
//! and a failure is classified from the server's own reply code, its words kept:
//! - cannot connect, no answer in time, a 4xx reply, a refused login, no STARTTLS when asked:
//!   the relay's trouble, [`ReturnerError::Unavailable`] (the spool retries);
//! - a 5xx reply to a mail (its sender, all its recipients, its data): that mail is refused
//!   for good, [`ReturnerError::Rejected`] with the server's words.
//!
//! The password is only ever sent base64-encoded in AUTH, never logged, and scrubbed from
//! anything the server says back.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::config::RelayConfig;
use crate::{Result, ReturnerError};

/// How long one step (connecting, one command and its reply, the mail's data) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest reply line read (RFC 5321 allows 512), and the most lines in one reply (an
/// EHLO lists its extensions, a few dozen at most).
const MAX_LINE_BYTES: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

/// One mail for the relay: the envelope and the text ([`super::encode::message`]).
pub(crate) struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub text: Vec<u8>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A relay's settings and its TLS setup, made once.
pub(crate) struct Relay {
    config: RelayConfig,
    tls: Arc<rustls::ClientConfig>,
}

/// A server's reply: its code and its lines' text.
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn is(&self, class: u16) -> bool {
        self.code / 100 == class
    }
}

impl Relay {
    pub(crate) fn new(config: RelayConfig) -> Result<Relay> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| ReturnerError::Invalid(format!("smtp: cannot read the CA file {}: {e}", path.display())))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(ReturnerError::Invalid(format!("smtp: no certificate in the CA file {}", path.display())));
                }
            }
            None => {
                // Unreadable system certificates are left out; a relay they would vouch for
                // then fails its handshake, with that said.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Ok(Relay { config, tls: Arc::new(tls) })
    }

    /// Connects, greets, turns on TLS when asked and logs in: a session ready for mails.
    pub(crate) async fn session(&self) -> Result<Session<'_>> {
        let at = self.config.at();
        let tcp = within(&at, "connecting", TcpStream::connect((self.config.host.as_str(), self.config.port)))
            .await?
            .map_err(|e| ReturnerError::Unavailable(format!("smtp: cannot connect to {at}: {e}")))?;
        let mut session = Session { relay: self, io: BufReader::new(Box::new(tcp)), extensions: Vec::new() };
        let greeting = session.reply("the greeting").await?;
        if !greeting.is(2) {
            return Err(session.unavailable("the greeting", &greeting));
        }
        session.ehlo().await?;
        if self.config.starttls {
            session.starttls().await?;
        }
        if let Some((user, password)) = self.config.login() {
            session.login(user, password.expose()).await?;
        }
        Ok(session)
    }
}

/// A step within [`STEP_TIMEOUT`], or the relay is unavailable.
async fn within<T>(at: &str, what: &str, step: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .map_err(|_| ReturnerError::Unavailable(format!("smtp: {at} did not answer in time ({what})")))
}

/// One connection to the relay.
pub(crate) struct Session<'a> {
    relay: &'a Relay,
    io: BufReader<Box<dyn Io>>,
    /// What EHLO offered (`STARTTLS`, `AUTH PLAIN LOGIN`, ...), upper case.
    extensions: Vec<String>,
}

impl Session<'_> {
    fn at(&self) -> String {
        self.relay.config.at()
    }

    /// The server's words, without the password (a server might echo what it was sent).
    fn words(&self, reply: &Reply) -> String {
        self.relay.config.password.scrub(&format!("{} {}", reply.code, reply.text))
    }

    fn unavailable(&self, step: &str, reply: &Reply) -> ReturnerError {
        ReturnerError::Unavailable(format!("smtp: {} answered {step} with {}", self.at(), self.words(reply)))
    }

    /// A reply to `step`, read within the bounds.
    async fn reply(&mut self, step: &str) -> Result<Reply> {
        let at = self.at();
        let broken = |why: String| ReturnerError::Unavailable(format!("smtp: {at}: {why} (reading the reply to {step})"));
        let mut text = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = Vec::new();
            let read = within(&at, step, (&mut self.io).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line)).await?;
            read.map_err(|e| broken(format!("the connection failed: {e}")))?;
            if line.is_empty() {
                return Err(broken("the server closed the connection".into()));
            }
            if !line.ends_with(b"\n") {
                return Err(broken(format!("a reply line longer than {MAX_LINE_BYTES} bytes")));
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(broken(format!("not an SMTP reply: {:?}", line.chars().take(80).collect::<String>())));
            };
            text.push(line.get(4..).unwrap_or_default().to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text: text.join(" / ") });
            }
        }
        Err(broken(format!("a reply of more than {MAX_REPLY_LINES} lines")))
    }

    async fn write(&mut self, bytes: &[u8], step: &str) -> Result<()> {
        let at = self.at();
        let io = self.io.get_mut();
        let sent = within(&at, step, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await?;
        sent.map_err(|e| ReturnerError::Unavailable(format!("smtp: {at}: the connection failed ({step}): {e}")))
    }

    /// Sends `line` (a command without its CRLF) and reads the reply; `step` names it in
    /// errors (never the command itself, which may carry a login).
    async fn command(&mut self, line: &str, step: &str) -> Result<Reply> {
        self.write(format!("{line}\r\n").as_bytes(), step).await?;
        self.reply(step).await
    }

    async fn ehlo(&mut self) -> Result<()> {
        let reply = self.command(&format!("EHLO {}", client_name()), "EHLO").await?;
        if !reply.is(2) {
            return Err(self.unavailable("EHLO", &reply));
        }
        // The first line greets; each other one names an extension.
        self.extensions = reply.text.split(" / ").skip(1).map(|e| e.trim().to_ascii_uppercase()).collect();
        Ok(())
    }

    fn offers(&self, extension: &str) -> Option<&str> {
        self.extensions.iter().map(String::as_str).find(|e| *e == extension || e.starts_with(&format!("{extension} ")))
    }

    async fn starttls(&mut self) -> Result<()> {
        let at = self.at();
        if self.offers("STARTTLS").is_none() {
            return Err(ReturnerError::Unavailable(format!("smtp: {at} does not offer STARTTLS, and smtp.tls asks for it")));
        }
        let reply = self.command("STARTTLS", "STARTTLS").await?;
        if !reply.is(2) {
            return Err(self.unavailable("STARTTLS", &reply));
        }
        // Anything the server sent after its reply would be taken as said over TLS.
        if !self.io.buffer().is_empty() {
            return Err(ReturnerError::Unavailable(format!("smtp: {at} sent more than its reply to STARTTLS; not going on")));
        }
        let name = rustls_pki_types::ServerName::try_from(self.relay.config.host.clone())
            .map_err(|e| ReturnerError::Invalid(format!("smtp: {:?} is not a host name for TLS: {e}", self.relay.config.host)))?;
        let plain = std::mem::replace(&mut self.io, BufReader::new(Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()))));
        let connector = tokio_rustls::TlsConnector::from(self.relay.tls.clone());
        let tls = within(&at, "the TLS handshake", connector.connect(name, plain.into_inner()))
            .await?
            .map_err(|e| ReturnerError::Unavailable(format!("smtp: the TLS handshake with {at} failed: {e}")))?;
        self.io = BufReader::new(Box::new(tls));
        tracing::debug!("smtp: TLS with {at}");
        // What was offered in clear no longer counts.
        self.ehlo().await
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let at = self.at();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mechanisms = self.offers("AUTH").unwrap_or_default().to_string();
        let reply = if mechanisms.split(' ').any(|m| m == "PLAIN") {
            self.command(&format!("AUTH PLAIN {}", b64(&format!("\0{user}\0{password}"))), "AUTH PLAIN").await?
        } else if mechanisms.split(' ').any(|m| m == "LOGIN") {
            let mut reply = self.command("AUTH LOGIN", "AUTH LOGIN").await?;
            if reply.code == 334 {
                reply = self.command(&b64(user), "AUTH LOGIN (the user)").await?;
            }
            if reply.code == 334 {
                reply = self.command(&b64(password), "AUTH LOGIN (the password)").await?;
            }
            reply
        } else if mechanisms.is_empty() {
            let hint = if self.relay.config.starttls { "" } else { " (many servers offer it only after STARTTLS: set tls to True)" };
            return Err(ReturnerError::Unavailable(format!("smtp: {at} offers no AUTH, and a username and password are set{hint}")));
        } else {
            return Err(ReturnerError::Unavailable(format!(
                "smtp: {at} offers AUTH {mechanisms}; this client speaks PLAIN and LOGIN only"
            )));
        };
        if reply.code != 235 {
            return Err(ReturnerError::Unavailable(format!(
                "smtp: {at} refused the login of {user}; check the username and password: {}",
                self.words(&reply)
            )));
        }
        tracing::debug!("smtp: logged in to {at} as {user}");
        Ok(())
    }

    /// Sends one mail. `Rejected` refuses this mail alone (the session goes on after a RSET);
    /// `Unavailable`, the relay failed: the session is done.
    pub(crate) async fn send(&mut self, mail: &Mail) -> Result<()> {
        match self.try_send(mail).await {
            Err(ReturnerError::Rejected(why)) => {
                let reset = self.command("RSET", "RSET").await?;
                if !reset.is(2) {
                    return Err(self.unavailable("RSET", &reset));
                }
                Err(ReturnerError::Rejected(why))
            }
            other => other,
        }
    }

    async fn try_send(&mut self, mail: &Mail) -> Result<()> {
        let at = self.at();
        // A reply to a mail: 2xx or 3xx goes on, 4xx is the relay's trouble, 5xx refuses it.
        let judge = |session: &Self, step: &str, reply: &Reply| -> Result<()> {
            match reply.code / 100 {
                2 | 3 => Ok(()),
                5 => Err(ReturnerError::Rejected(format!("smtp: {at} refused the mail ({step}): {}", session.words(reply)))),
                _ => Err(session.unavailable(step, reply)),
            }
        };
        let reply = self.command(&format!("MAIL FROM:<{}>", envelope_address(&mail.from)), "MAIL FROM").await?;
        judge(self, "MAIL FROM", &reply)?;
        let mut refused = Vec::new();
        for to in &mail.to {
            let reply = self.command(&format!("RCPT TO:<{}>", envelope_address(to)), "RCPT TO").await?;
            if !reply.is(2) {
                refused.push((to.as_str(), reply));
            }
        }
        if refused.len() == mail.to.len() {
            // As smtplib: the mail fails only when every recipient is refused; the worst reply
            // (a 4xx, worth retrying) decides.
            let (to, reply) = refused.iter().min_by_key(|(_, r)| r.code).expect("a mail has recipients");
            return judge(self, &format!("RCPT TO {to}"), reply);
        }
        for (to, reply) in &refused {
            tracing::warn!("smtp: {at} refused the recipient {to}: {}; the mail goes to the others", self.words(reply));
        }
        let reply = self.command("DATA", "DATA").await?;
        if reply.code != 354 {
            judge(self, "DATA", &reply)?;
            return Err(self.unavailable("DATA", &reply));
        }
        self.write(&dot_stuffed(&mail.text), "the mail's data").await?;
        let reply = self.reply("the mail's data").await?;
        judge(self, "the end of the data", &reply)
    }

    pub(crate) async fn quit(mut self) {
        // The mails are sent; a relay that does not say goodbye loses nothing.
        let _ = self.command("QUIT", "QUIT").await;
    }
}

/// The address inside `Name <addr>`, or the whole (Salt's smtplib takes either).
fn envelope_address(address: &str) -> &str {
    match (address.rfind('<'), address.rfind('>')) {
        (Some(open), Some(close)) if open < close => address[open + 1..close].trim(),
        _ => address.trim(),
    }
}

/// The name this host gives in EHLO: its host name when it is one, else a literal.
fn client_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "[127.0.0.1]".into())
}

/// The DATA of `text` (CRLF lines): a line that starts with `.` gets another, and `.` ends it.
fn dot_stuffed(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut line_start = true;
    for &b in text {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_dot_stuffed_and_ended() {
        assert_eq!(dot_stuffed(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuffed(b".start\r\nend"), b"..start\r\nend\r\n.\r\n");
    }

    #[test]
    fn envelope_addresses() {
        assert_eq!(envelope_address("Salt Master <salt@example.com>"), "salt@example.com");
        assert_eq!(envelope_address(" ops@example.com "), "ops@example.com");
    }
}
