//! Minion id validation. An id names files under `pki_dir` and the job cache, so it is checked
//! before any use: a strict character set and length, never a path component like `..`.

use thiserror::Error;

/// Longest id we accept (a DNS name is at most 253 characters).
pub const MAX_ID_LEN: usize = 255;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("minion id is empty")]
    Empty,
    #[error("minion id is {0} characters long; the limit is {MAX_ID_LEN}")]
    TooLong(usize),
    #[error("minion id {0:?} contains {1:?}; allowed are letters, digits, '.', '-', '_' and '@'")]
    BadChar(String, char),
    #[error("minion id {0:?} may not start with '.' or '-'")]
    BadStart(String),
}

/// Checks a minion id: 1..=255 characters of `[A-Za-z0-9._@-]`, not starting with `.` or `-`
/// (so `.`, `..` and option-like ids are impossible).
pub fn validate_minion_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    let len = id.chars().count();
    if len > MAX_ID_LEN {
        return Err(IdError::TooLong(len));
    }
    if id.starts_with('.') || id.starts_with('-') {
        let shown: String = id.chars().take(64).collect();
        return Err(IdError::BadStart(shown));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))) {
        let shown: String = id.chars().take(64).collect();
        return Err(IdError::BadChar(shown, c));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["minion1", "web-01.example.com", "db_2", "user@host", "a"] {
            assert_eq!(validate_minion_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn rejects_paths_empty_and_long() {
        assert_eq!(validate_minion_id(""), Err(IdError::Empty));
        assert!(matches!(validate_minion_id("../x"), Err(IdError::BadStart(_))));
        assert!(matches!(validate_minion_id("a/b"), Err(IdError::BadChar(_, '/'))));
        assert!(matches!(validate_minion_id(".."), Err(IdError::BadStart(_))));
        assert!(matches!(validate_minion_id("a\0b"), Err(IdError::BadChar(_, '\0'))));
        assert_eq!(validate_minion_id(&"x".repeat(10_000)), Err(IdError::TooLong(10_000)));
        assert!(validate_minion_id(&"x".repeat(255)).is_ok());
    }
}
