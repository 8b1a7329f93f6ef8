//! Python's `fnmatch.fnmatch` as Salt sees it on a POSIX master: case-sensitive, the whole
//! name must match, `*` and `?` also match newlines, and a malformed `[` is a literal.
//!
//! The pattern is interpreted directly instead of being translated to a regex, so there is no
//! escaping to get wrong and no way for a pattern to fail to compile.

/// One element of a parsed glob.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `*`: any run of characters (runs of `*` collapse into one, as in Python).
    Star,
    /// `?`: exactly one character.
    Any,
    Lit(char),
    /// `[...]` / `[!...]`: inclusive ranges; a single character is a one-char range.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Tok {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Tok::Star => true,
            Tok::Any => true,
            Tok::Lit(l) => *l == c,
            Tok::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

/// Splits a pattern the way `fnmatch.translate` does.
///
/// A `[` with no `]` after it is a literal. Where the last `]` is, is known up front, so such a
/// `[` costs nothing: scanning for the `]` each time made a pattern of 64 KiB of `[` cost
/// seconds (found by salt-fuzz), and a grain target runs the glob once per grain value.
fn tokenize(pat: &[char]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let n = pat.len();
    let last_close = pat.iter().rposition(|&c| c == ']');
    let mut i = 0;
    while i < n {
        let c = pat[i];
        i += 1;
        match c {
            '*' => {
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::Any),
            '[' => {
                // A `]` right after `[` or `[!` is a member, not the end of the set.
                let mut j = i;
                if j < n && pat[j] == '!' {
                    j += 1;
                }
                if j < n && pat[j] == ']' {
                    j += 1;
                }
                if last_close.is_none_or(|last| last < j) {
                    toks.push(Tok::Lit('['));
                    continue;
                }
                while j < n && pat[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    toks.push(Tok::Lit('['));
                    continue;
                }
                let mut body = &pat[i..j];
                i = j + 1;
                let negated = body.first() == Some(&'!');
                if negated {
                    body = &body[1..];
                }
                toks.push(Tok::Class { negated, ranges: class_ranges(body) });
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    toks
}

/// `a-z` is a range unless the `-` is first or last; a reversed range (`z-a`) matches nothing,
/// which is what Python's "remove empty ranges" step amounts to.
fn class_ranges(body: &[char]) -> Vec<(char, char)> {
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < body.len() {
        let lo = body[k];
        if k + 2 < body.len() && body[k + 1] == '-' {
            let hi = body[k + 2];
            if lo <= hi {
                ranges.push((lo, hi));
            }
            k += 3;
        } else {
            ranges.push((lo, lo));
            k += 1;
        }
    }
    ranges
}

/// A glob parsed once, to be matched against many names.
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    toks: Vec<Tok>,
    /// Every token but `*` takes exactly one character, so a shorter name cannot match.
    min_len: usize,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let pat: Vec<char> = pattern.chars().collect();
        let toks = tokenize(&pat);
        let min_len = toks.iter().filter(|t| **t != Tok::Star).count();
        Glob { pattern: pattern.to_owned(), toks, min_len }
    }

    #[cfg(test)]
    pub(crate) fn pattern(&self) -> &str {
        &self.pattern
    }

    /// `fnmatch.fnmatch(name, pattern)` on POSIX (no case folding).
    pub fn matches(&self, name: &str) -> bool {
        // ASCII names (every minion id, most grain values) are matched in place: no copy per
        // name when a target runs over 50,000 minions.
        if name.is_ascii() {
            self.matches_units(name.as_bytes(), char::from)
        } else {
            self.matches_units(&name.chars().collect::<Vec<char>>(), |c| c)
        }
    }

    /// [`Glob::matches`] over a name's characters, as bytes (ASCII) or chars.
    fn matches_units<T: Copy>(&self, s: &[T], char_of: impl Fn(T) -> char) -> bool {
        let toks = &self.toks;
        // Without this, a 64 KiB target such as `*?*?*?...` cost len(name) * 64 Ki steps for
        // every minion; with it, the patterns that get that far have at most len(name)
        // single-character tokens.
        if s.len() < self.min_len {
            return false;
        }

        // Greedy matching that backtracks only to the most recent `*`: enough for globs, and
        // O(len(name) * len(pattern)) in the worst case.
        let (mut t, mut i) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if t < toks.len() {
                if toks[t] == Tok::Star {
                    star = Some((t, i));
                    t += 1;
                    continue;
                }
                if i < s.len() && toks[t].matches_one(char_of(s[i])) {
                    t += 1;
                    i += 1;
                    continue;
                }
            } else if i == s.len() {
                return true;
            }
            match star {
                Some((st, si)) if si < s.len() => {
                    star = Some((st, si + 1));
                    t = st + 1;
                    i = si + 1;
                }
                _ => return false,
            }
        }
    }
}

impl std::fmt::Debug for Glob {
    /// The pattern as written; the tokens add nothing for a reader.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Glob").field(&self.pattern).finish()
    }
}

/// `fnmatch.fnmatch(name, pattern)` for a pattern used once.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    Glob::new(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn table() {
        // (name, pattern, expected) — expectations checked against CPython's fnmatch.fnmatch.
        let cases: &[(&str, &str, bool)] = &[
            ("web1", "web1", true),
            ("web1", "web", false),
            ("web1", "eb1", false),
            ("web1", "*", true),
            ("", "*", true),
            ("", "", true),
            ("web1", "", false),
            ("web1", "web*", true),
            ("web1", "*1", true),
            ("web1", "w*b*1", true),
            ("web1", "w**1", true),
            ("web1", "web?", true),
            ("web12", "web?", false),
            ("web1", "WEB1", false),
            ("web1", "web[0-9]", true),
            ("weba", "web[0-9]", false),
            ("weba", "web[!0-9]", true),
            ("web1", "web[!0-9]", false),
            ("web-", "web[a-]", true),
            ("web-", "web[-a]", true),
            ("webb", "web[-a]", false),
            ("web]", "web[]]", true),
            ("webx", "web[!]]", true),
            ("web]", "web[!]]", false),
            ("web[", "web[", true),
            ("web[1", "web[1", true),
            ("web!", "web[!", false),
            ("webm", "web[z-a]", false),
            ("webm", "web[!z-a]", true),
            ("web-", "web[c-a-z]", true),
            ("webz", "web[c-a-z]", true),
            ("webb", "web[c-a-z]", false),
            ("weba", "web[a--]", false),
            ("web\\", "web[\\]", true),
            ("web\\", "web\\", true),
            ("web^", "web[^]", true),
            ("a\nb", "a*b", true),
            ("a\nb", "a?b", true),
            ("héllo", "h?llo", true),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*c", false),
            ("db.example.com", "*.example.com", true),
            ("dbexample.com", "*.example.com", false),
            ("a.b", "a.b", true),
            ("axb", "a.b", false),
            ("a(b", "a(b", true),
        ];
        for &(name, pat, want) in cases {
            assert_eq!(fnmatch(name, pat), want, "fnmatch({name:?}, {pat:?})");
        }
    }

    /// Found while writing the fuzzer's target target (reading the matcher): the backtracking
    /// match costs len(name) * len(pattern), and a target may be 64 KiB. A name shorter than the
    /// pattern's single-character tokens is now refused at once.
    #[test]
    fn names_shorter_than_the_pattern_are_refused_at_once() {
        let pattern = "*?".repeat(32 * 1024);
        assert!(!fnmatch(&"a".repeat(255), &pattern));
        assert!(fnmatch(&"a".repeat(32 * 1024), &pattern));
        assert!(fnmatch("abc", "*?*?*?*"));
        assert!(!fnmatch("ab", "*?*?*?*"));
        assert!(fnmatch("", "*"));
        assert!(fnmatch("web1", "w[a-z]b?"));
        assert!(!fnmatch("web", "w[a-z]b?"));
    }

    /// Found by salt-fuzz (target target): 64 KiB of `[` took a second to parse (each `[`
    /// scanned the rest of the pattern for a `]`), and a grain target parses it once per grain
    /// value of every minion. Now unclosed `[`s are found in one pass; the meaning is the same.
    #[test]
    fn many_unclosed_brackets_are_literal_and_cheap() {
        let pattern = "[".repeat(64 * 1024);
        assert!(fnmatch(&pattern, &pattern));
        assert!(!fnmatch("[", &pattern));
        let tokens = super::tokenize(&pattern.chars().collect::<Vec<_>>());
        assert_eq!(tokens.len(), 64 * 1024);
        // A `[` before a real set is still a member of that set, as in Python.
        assert!(fnmatch("[", "[[[a]"));
        assert!(fnmatch("a", "[[[a]"));
        assert!(!fnmatch("[[a", "[[[a]"));
        assert!(fnmatch("x[", "x[[]"));
        assert!(fnmatch("[", "[[]"));
    }
}
