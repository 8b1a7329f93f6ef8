//! `smtp`: a mail for each return (Salt's `salt/returners/smtp_return.py`), and for each event
//! with `event_return` (Salt's sends every event's `data` through the same template).
//!
//! As Salt: the headers `From`, `To`, `Date`, `Subject` and nothing else for a text of ASCII;
//! the subject and body rendered with Jinja, the return's keys as variables, values printed as
//! Python prints them; the default body `id`, `function`, `function args`, `jid`, `return`
//! lines; `fields` add the return's values to the subject; `tls` is STARTTLS; the options are
//! in [`config`].
//!
//! Where we differ from Salt, on purpose:
//! - `gpgowner` (OpenPGP encryption) is not supported: set, the store does not open (Salt
//!   without python-gnupg sent the mail in clear without a word); `renderer` is jinja only
//!   (minijinja, a Jinja2 dialect: Salt's own filters such as `yaml_encode` are not there).
//! - Subject `fields` are added after the subject template is rendered, so a value that holds
//!   `{{` is not rendered as a template; the subject is one line, cut to 900 bytes.
//! - A body over 1 MiB is cut, and says so at its end (`[cut: N bytes in all, ...]`): a 10 MB
//!   return is no mail. A body that is not ASCII in short lines goes in base64 with its MIME
//!   headers (Salt's smtplib refused non-ASCII, and servers refuse lines over 1,000 bytes), a
//!   non-ASCII subject as RFC 2047 words.
//! - A batch goes over one connection. A return delivered again (the spool retrying, a minion
//!   sending twice) within the last 10,000 is not mailed twice.
//! - Failures are classified (see [`client`]): a relay down, a 4xx or a refused login is
//!   retried by the spool; a 5xx refuses that mail for good, with the server's words.
//! - `ca_file`: a PEM file of certificates to trust for STARTTLS (Salt used the system's).

pub mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

pub use config::{RelayConfig, SmtpConfig};

use self::client::{Mail, Relay};
use self::encode::Renderer;
use crate::batch::{prepare_all, Indexed};
use crate::delivered::Delivered;
use crate::notify;
use crate::options::Lookup;
use crate::record::{describe, ReturnRecord};
use crate::registry::{Entry, Store};
use crate::{Capability, Event, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "smtp";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[Capability::Returner, Capability::EventReturn],
    open: |lookup| async move { Ok(Store::Sink(Arc::new(Smtp::open(lookup)?))) }.boxed(),
    schema: None,
};

/// The most a mail's body carries; a longer one is cut, saying so.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct Smtp {
    config: SmtpConfig,
    relay: Relay,
    renderer: Renderer,
    delivered: Delivered,
}

/// A mail to send for a record of a batch.
struct Outgoing {
    mail: Mail,
    /// (jid, id) of a return, remembered once it is sent; `None` for an event.
    delivery: Option<(String, String)>,
    /// How the record is named in a refusal.
    what: String,
}

impl Smtp {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Smtp> {
        Self::open_with(SmtpConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: SmtpConfig) -> Result<Smtp> {
        let renderer = Renderer::new(&config.subject, &config.fields, config.template.as_ref().map(|(_, text)| text.clone()))
            .map_err(|e| ReturnerError::Invalid(format!("smtp: {e}")))?;
        Ok(Smtp { relay: Relay::new(config.relay.clone())?, config, renderer, delivered: Delivered::default() })
    }

    /// The mail for `ret` (a return, or an event's data).
    fn mail(&self, ret: &Load) -> std::result::Result<Mail, String> {
        let subject = self.renderer.subject(ret)?;
        let body = self.renderer.body(ret)?;
        let to = self.config.to.join(", ");
        let date = encode::date_now();
        let headers = [("From", self.config.from.as_str()), ("To", to.as_str()), ("Date", date.as_str()), ("Subject", subject.as_str())];
        let text = encode::message(&headers, None, &notify::cut(&body, MAX_BODY_BYTES));
        Ok(Mail { from: self.config.from.clone(), to: self.config.to.clone(), text })
    }

    /// Sends `outgoing` over one connection: the records the relay refused for good.
    async fn send_all(&self, outgoing: Vec<Indexed<Outgoing>>) -> Result<Vec<Rejection>> {
        let mut refused = Vec::new();
        if outgoing.is_empty() {
            return Ok(refused);
        }
        let mut session = self.relay.session().await?;
        for Indexed { index, row } in outgoing {
            if let Some((jid, id)) = &row.delivery {
                // The same return twice in one batch.
                if self.delivered.contains(jid, id) {
                    continue;
                }
            }
            match session.send(&row.mail).await {
                Ok(()) => {
                    if let Some((jid, id)) = &row.delivery {
                        self.delivered.insert(jid, id);
                    }
                }
                Err(ReturnerError::Rejected(why)) => refused.push(Rejection { index, reason: format!("{}: {why}", row.what) }),
                Err(e) => return Err(e),
            }
        }
        session.quit().await;
        Ok(refused)
    }
}

#[async_trait]
impl Sink for Smtp {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Connects, with STARTTLS and the login when set: a relay that cannot take mail says why.
    async fn check(&self) -> Result<()> {
        self.relay.session().await?.quit().await;
        Ok(())
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(rets, |ret| {
            let Some(record) = ReturnRecord::parse(ret)? else { return Ok(None) };
            if self.delivered.contains(&record.jid, record.id) {
                return Ok(None);
            }
            let what = describe(record.id, &record.jid);
            let mail = self.mail(&record.full).map_err(|e| format!("{what}: {e}"))?;
            Ok(Some(Outgoing { mail, delivery: Some((record.jid.clone(), record.id.to_string())), what }))
        });
        rejected.extend(self.send_all(rows).await?);
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    /// A mail for each event whose `data` is not empty, as Salt's `event_return`.
    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(events, |event| {
            let what = format!("the event {}", event.tag);
            let Some(data) = encode::event_data(&event.data).map_err(|e| format!("{what}: {e}"))? else { return Ok(None) };
            let mail = self.mail(data).map_err(|e| format!("{what}: {e}"))?;
            Ok(Some(Outgoing { mail, delivery: None, what }))
        });
        rejected.extend(self.send_all(rows).await?);
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }
}
