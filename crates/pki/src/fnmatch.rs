//! Python's `fnmatch.fnmatch` on POSIX, which Salt uses to match key globs (`salt-key -a 'web*'`)
//! and autosign lines. Written out rather than borrowed from a glob crate because those add
//! syntax Salt does not have (`{a,b}`, `**`, backslash escapes) and would match ids Salt would not.
//!
//! Syntax: `*` any run of characters (including none), `?` one character, `[seq]` one character in
//! seq (ranges `a-z`; `[!seq]` negates; a `]` right after `[` or `[!` is literal; a `[` with no
//! closing `]` is literal). Everything else, backslash included, matches itself. Case-sensitive.

#[derive(Debug)]
enum Token {
    Star,
    One,
    Set {
        negated: bool,
        items: Vec<(char, char)>,
    },
    Lit(char),
}

fn compile(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            // Consecutive stars mean the same as one; collapsing them keeps matching linear.
            '*' if matches!(out.last(), Some(Token::Star)) => {}
            '*' => out.push(Token::Star),
            '?' => out.push(Token::One),
            '[' => {
                let mut j = i;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    out.push(Token::Lit('['));
                    continue;
                }
                let content = &p[i..j];
                i = j + 1;
                let (negated, body) = match content.first() {
                    Some('!') => (true, &content[1..]),
                    _ => (false, content),
                };
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        // Python drops reversed ranges such as `z-a`.
                        if body[k] <= body[k + 2] {
                            items.push((body[k], body[k + 2]));
                        }
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Token::Set { negated, items });
            }
            c => out.push(Token::Lit(c)),
        }
    }
    out
}

fn token_matches(t: &Token, c: char) -> bool {
    match t {
        Token::Star => true,
        Token::One => true,
        Token::Lit(l) => *l == c,
        Token::Set { negated, items } => {
            items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
    }
}

/// True when `name` matches the whole of `pattern`, as Python's `fnmatch.fnmatch` on POSIX.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let toks = compile(pattern);
    let s: Vec<char> = name.chars().collect();
    // Classic single-backtrack-point wildcard matching: on a mismatch, let the last star swallow
    // one more character. With collapsed stars this is enough and never exponential.
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match toks.get(ti) {
            Some(Token::Star) => {
                star = Some((ti, si));
                ti += 1;
            }
            Some(t) if token_matches(t, s[si]) => {
                ti += 1;
                si += 1;
            }
            _ => match star {
                Some((st, ss)) => {
                    ti = st + 1;
                    si = ss + 1;
                    star = Some((st, ss + 1));
                }
                None => return false,
            },
        }
    }
    toks[ti..].iter().all(|t| matches!(t, Token::Star))
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn stars_and_questions() {
        assert!(fnmatch("minion1", "*"));
        assert!(fnmatch("", "*"));
        assert!(fnmatch("minion10", "minion*"));
        assert!(fnmatch("minion10", "m*n*0"));
        assert!(!fnmatch("minion10", "m*n*1"));
        assert!(fnmatch("minion1", "minion?"));
        assert!(!fnmatch("minion10", "minion?"));
        assert!(!fnmatch("minion1", "Minion1"), "case-sensitive on POSIX");
    }

    #[test]
    fn sets_like_the_transcript_delete() {
        // `salt-key -d 'minion[2-9]'` deletes minion2..minion9 but not minion1 or minion10.
        let ids = ["minion1", "minion10", "minion2", "minion9"];
        let hit: Vec<_> = ids.iter().filter(|i| fnmatch(i, "minion[2-9]")).collect();
        assert_eq!(hit, [&"minion2", &"minion9"]);
        assert!(fnmatch("a", "[!b]"));
        assert!(!fnmatch("b", "[!b]"));
        assert!(fnmatch("]", "[]]"));
        assert!(fnmatch("x", "[!]]"));
        assert!(fnmatch("-", "[a-]"));
        assert!(!fnmatch("m", "[z-a]"), "reversed ranges are dropped");
    }

    #[test]
    fn unclosed_bracket_and_backslash_are_literal() {
        assert!(fnmatch("[abc", "[abc"));
        assert!(fnmatch("a\\b", "a\\b"));
        assert!(!fnmatch("ab", "a\\b"));
        assert!(fnmatch("a{b,c}", "a{b,c}"), "no brace alternation");
        assert!(!fnmatch("ab", "a{b,c}"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let name = "a".repeat(200);
        assert!(!fnmatch(&name, &format!("{}b", "*a".repeat(50))));
    }
}
