//! Python `re.match` on top of the `regex` crate: the match must start at the beginning of the
//! text but may end anywhere.
//!
//! Python's `re` and the `regex` crate share most syntax; patterns that need look-around or
//! back-references are rejected by `regex` with a message saying so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::{Regex, RegexBuilder};

/// The largest compiled form a target regex may take (the `regex` crate's default is 10 MiB).
/// Ids and grain values are short strings. At the default, a pattern such as
/// `(?:\w{100}){100}` took over a second to be refused, twice per target (found by
/// salt-fuzz); a smaller limit refuses it ten times sooner.
pub(crate) const SIZE_LIMIT: usize = 1 << 20;

/// Compiles `pattern` so that `is_match` behaves like `re.match(pattern, text)`.
pub(crate) fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    // Check the pattern's syntax alone first: a pattern such as `a)|(b` must be rejected, not
    // spliced into the anchoring group where it would parse as something else. A size limit
    // of 0 stops right after parsing, so this costs no compilation.
    if let Err(e @ regex::Error::Syntax(_)) = RegexBuilder::new(pattern).size_limit(0).build() {
        return Err(e);
    }
    RegexBuilder::new(&format!(r"\A(?:{pattern})")).size_limit(SIZE_LIMIT).build()
}

/// Compiled patterns for grain PCRE targets, keyed by pattern text.
///
/// A grain target's regex is not one string known up front: Salt tries every split of
/// `key:sub:value` and lower-cases the candidate value part, so patterns are compiled on first
/// use and remembered (including the ones that fail, which never match).
#[derive(Debug, Default)]
pub(crate) struct RegexCache {
    compiled: Mutex<HashMap<String, Option<Arc<Regex>>>>,
}

/// Enough for every split of any realistic target; past it we compile without remembering.
const CACHE_CAPACITY: usize = 256;

impl RegexCache {
    pub(crate) fn is_match(&self, pattern: &str, text: &str) -> bool {
        let regex = {
            let mut map = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(pattern) {
                Some(found) => found.clone(),
                None => {
                    let compiled = compile(pattern).ok().map(Arc::new);
                    if map.len() < CACHE_CAPACITY {
                        map.insert(pattern.to_owned(), compiled.clone());
                    }
                    compiled
                }
            }
        };
        regex.is_some_and(|re| re.is_match(text))
    }
}

impl Clone for RegexCache {
    /// A clone starts empty: the cache is an optimisation, not state.
    fn clone(&self) -> Self {
        RegexCache::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_match_semantics() {
        // (pattern, text, expected) as Python's bool(re.match(pattern, text)).
        let cases: &[(&str, &str, bool)] = &[
            ("web", "web1", true),
            ("web", "aweb1", false),
            ("web1$", "web1", true),
            ("web1$", "web12", false),
            ("web[0-9]+", "web12", true),
            ("", "anything", true),
            (".*", "", true),
            ("db|web", "web1", true),
            ("b|ab", "ab", true),
            ("(?i)WEB", "web1", true),
            ("WEB", "web1", false),
            ("(?P<n>w)eb", "web", true),
            ("\\d+", "12ab", true),
            ("\\d+", "ab12", false),
        ];
        for &(pat, text, want) in cases {
            let re = compile(pat).unwrap();
            assert_eq!(re.is_match(text), want, "re.match({pat:?}, {text:?})");
        }
    }

    /// Found by salt-fuzz (target target): patterns that compile to a huge program took
    /// seconds to refuse. They are refused against a 1 MiB limit, and still with a clear error.
    #[test]
    fn huge_patterns_are_refused_quickly() {
        let err = compile(r"(?:\w{100}){100}").unwrap_err();
        assert!(matches!(err, regex::Error::CompiledTooBig(SIZE_LIMIT)), "{err}");
        // Ordinary patterns are far below the limit.
        assert!(compile(r"web[0-9]{1,3}\.example\.(com|org)").is_ok());
        assert!(compile("").is_ok());
    }

    #[test]
    fn group_injection_is_rejected() {
        // Spliced into `\A(?:...)` this would compile to `\A(?:a)|(b)`, matching "b" anywhere.
        assert!(compile("a)|(b").is_err());
        assert!(compile("(a").is_err());
        assert!(compile("(?=a)").is_err());
    }

    #[test]
    fn cache_remembers_failures_and_matches() {
        let cache = RegexCache::default();
        assert!(cache.is_match("deb.*", "debian"));
        assert!(!cache.is_match("deb.*", "ubuntu"));
        assert!(!cache.is_match("deb(", "deb("));
        assert_eq!(cache.compiled.lock().unwrap().len(), 2);
        assert!(cache.clone().compiled.lock().unwrap().is_empty());
    }
}
