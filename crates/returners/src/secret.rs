//! A secret (a password, a token) that never prints: `{:?}` and `{}` show it redacted, so a
//! config logged or put into an error cannot leak it. Only [`Secret::expose`] hands it out,
//! where a driver needs it.

use std::fmt;

use crate::redact::{scrub, REDACTED};

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the driver that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `message` (a driver's error, which may echo a connection string) without the secret.
    pub fn scrub(&self, message: &str) -> String {
        scrub(message, &self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { REDACTED })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "" } else { REDACTED })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), format!("{REDACTED} {REDACTED}"));
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s.scrub("login salt:hunter2 refused"), format!("login salt:{REDACTED} refused"));
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }
}
