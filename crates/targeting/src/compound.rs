//! Compound targets: `G@os:Debian and web*`, `L@a,b or E@db[0-9]`, `not`, `(`, `)`.
//!
//! Salt's compound matcher replaces each word by `True`/`False`, joins the words with spaces
//! and `eval`s the result as Python. The grammar is therefore Python's: `not` binds tightest,
//! then `and`, then `or`; words are separated by whitespace only, so `(` and `)` must stand
//! alone. Before evaluating, Salt rejects `and`/`or` at the start or right after `(`, and puts an
//! implicit `and` before a `not` that follows a target or `)` (`web* not db*` means
//! `web* and not db*`; `not not x` becomes `not and not x`, a syntax error). We apply the same
//! rewrite, then parse the Python grammar into an [`Expr`] once, so each minion costs an
//! evaluation and not a parse. Anything Python would fail to evaluate is a [`TargetError`].

use std::iter::Peekable;
use std::vec::IntoIter;

use crate::fnmatch::Glob;
use crate::grains::GrainPattern;
use crate::ipcidr::IpTarget;
use crate::{grain_term, ip_term, list_ids, pcre, Expr, GrainTerm, TargetError};

/// Parenthesis nesting limit; Python's parser gives up at a similar depth, and it keeps our
/// recursive parser and evaluator far from the stack limit.
const MAX_DEPTH: usize = 100;

#[derive(Debug, PartialEq, Clone, Copy)]
enum Op {
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Op {
    fn from_word(word: &str) -> Option<Op> {
        Some(match word {
            "and" => Op::And,
            "or" => Op::Or,
            "not" => Op::Not,
            "(" => Op::Open,
            ")" => Op::Close,
            _ => return None,
        })
    }
}

#[derive(Debug)]
enum Tok {
    Op(Op),
    Term(Expr),
}

/// A token with the word it came from, for error messages.
#[derive(Debug)]
struct Item<'w> {
    tok: Tok,
    /// 1-based word position; 0 for the implicit `and` before `not`.
    pos: usize,
    word: &'w str,
}

impl Item<'_> {
    fn describe(&self) -> String {
        if self.pos == 0 {
            format!("'{}'", self.word)
        } else {
            format!("'{}' (word {})", self.word, self.pos)
        }
    }
}

/// Parses the words of a compound target (already split on whitespace); its grain terms go to
/// `terms`.
pub(crate) fn parse(words: &[&str], terms: &mut Vec<GrainTerm>) -> Result<Expr, TargetError> {
    if words.is_empty() {
        return Ok(Expr::Nothing);
    }
    let items = tokenize(words, terms)?;
    let mut parser = Parser { items: items.into_iter().peekable(), last: None, depth: 0 };
    let expr = parser.parse_or()?;
    match parser.items.next() {
        None => Ok(expr),
        Some(item) => Err(match item.tok {
            Tok::Op(Op::Close) => err(format!("unmatched ')' at word {}", item.pos)),
            _ => err(format!("expected 'and' or 'or' before {}", item.describe())),
        }),
    }
}

fn err(msg: String) -> TargetError {
    TargetError::new(format!("invalid compound target: {msg}"))
}

/// Salt's word loop: classify each word, reject leading binary operators, insert implicit `and`s.
fn tokenize<'w>(words: &[&'w str], terms: &mut Vec<GrainTerm>) -> Result<Vec<Item<'w>>, TargetError> {
    let mut items: Vec<Item<'w>> = Vec::with_capacity(words.len());
    for (i, &word) in words.iter().enumerate() {
        let pos = i + 1;
        let Some(op) = Op::from_word(word) else {
            items.push(Item { tok: Tok::Term(parse_term(word, pos, terms)?), pos, word });
            continue;
        };
        match items.last().map(|last| &last.tok) {
            None if matches!(op, Op::And | Op::Or | Op::Close) => {
                return Err(err(format!("cannot start with '{word}'")));
            }
            Some(Tok::Op(Op::Open)) if matches!(op, Op::And | Op::Or) => {
                return Err(err(format!("'{word}' (word {pos}) cannot follow '('")));
            }
            Some(Tok::Op(Op::Not)) if op == Op::Not => {
                return Err(err(format!("'not' (word {pos}) cannot follow 'not'")));
            }
            Some(Tok::Term(_) | Tok::Op(Op::Close)) if op == Op::Not => {
                items.push(Item { tok: Tok::Op(Op::And), pos: 0, word: "and" });
            }
            _ => {}
        }
        items.push(Item { tok: Tok::Op(op), pos, word });
    }
    Ok(items)
}

/// One target word: `X@pattern`, `X<delim>@pattern` or a bare glob.
fn parse_term(word: &str, pos: usize, terms: &mut Vec<GrainTerm>) -> Result<Expr, TargetError> {
    let Some((engine, delimiter, pattern)) = split_engine(word) else {
        return Ok(Expr::Glob(Glob::new(word)));
    };
    let context = |e: TargetError| err(format!("word {pos} '{word}': {e}"));
    let unsupported = |what: &str| err(format!("word {pos} '{word}': {what} targeting is not supported"));
    let delimiter = delimiter.map(String::from);
    let delimiter = delimiter.as_deref().unwrap_or(crate::DEFAULT_DELIMITER);
    match engine {
        'G' => GrainPattern::new(pattern, delimiter, false).map(|p| grain_term(terms, p)).map_err(context),
        'P' => GrainPattern::new(pattern, delimiter, true).map(|p| grain_term(terms, p)).map_err(context),
        'L' => Ok(Expr::list(list_ids(pattern.split(',')))),
        'E' => pcre::compile(pattern).map(Expr::Pcre).map_err(|e| err(format!("word {pos} '{word}': invalid regular expression: {e}"))),
        'S' => IpTarget::parse(pattern).map(|t| ip_term(terms, t)).map_err(context),
        'I' | 'J' => Err(unsupported("pillar (I@/J@)")),
        'N' => Err(unsupported("nodegroup (N@)")),
        'R' => Err(unsupported("range (R@)")),
        _ => unreachable!("split_engine only returns known engines"),
    }
}

/// `(engine letter, its own delimiter, pattern)` of an `X@pattern` word.
type EngineWord<'a> = (char, Option<char>, &'a str);

/// Salt's `TARGET_REX`: an engine letter, for `G`/`P`/`I`/`J` an optional one-character
/// delimiter, `@`, and a non-empty pattern. Anything else (`X@y`, `G@`) is a plain glob.
fn split_engine(word: &str) -> Option<EngineWord<'_>> {
    let engine = word.chars().next().filter(|c| "GPIJLNSER".contains(*c))?;
    let rest = &word[1..];
    if "GPIJ".contains(engine) {
        // The regex tries the delimiter first, so `G@@x` is grain `x` with delimiter `@`.
        if let Some(delim) = rest.chars().next().filter(|c| *c != '\n') {
            if let Some(pattern) = rest[delim.len_utf8()..].strip_prefix('@') {
                if !pattern.is_empty() {
                    return Some((engine, Some(delim), pattern));
                }
            }
        }
    }
    rest.strip_prefix('@').filter(|p| !p.is_empty()).map(|p| (engine, None, p))
}

struct Parser<'w> {
    items: Peekable<IntoIter<Item<'w>>>,
    /// The last item consumed, to say where an expression ended too early.
    last: Option<(usize, &'w str)>,
    depth: usize,
}

impl<'w> Parser<'w> {
    fn next(&mut self) -> Option<Item<'w>> {
        let item = self.items.next()?;
        self.last = Some((item.pos, item.word));
        Some(item)
    }

    fn peek_op(&mut self, op: Op) -> bool {
        matches!(self.items.peek(), Some(Item { tok: Tok::Op(o), .. }) if *o == op)
    }

    fn parse_or(&mut self) -> Result<Expr, TargetError> {
        let mut terms = vec![self.parse_and()?];
        while self.peek_op(Op::Or) {
            self.next();
            terms.push(self.parse_and()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::Or(terms) })
    }

    fn parse_and(&mut self) -> Result<Expr, TargetError> {
        let mut terms = vec![self.parse_not()?];
        while self.peek_op(Op::And) {
            self.next();
            terms.push(self.parse_not()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::And(terms) })
    }

    fn parse_not(&mut self) -> Result<Expr, TargetError> {
        if self.peek_op(Op::Not) {
            self.next();
            return Ok(Expr::Not(Box::new(self.parse_not()?)));
        }
        self.parse_atom()
    }

    fn parse_atom(&mut self) -> Result<Expr, TargetError> {
        let Some(item) = self.next() else {
            return Err(match self.last {
                Some((pos, word)) if pos > 0 => err(format!("ends after '{word}' (word {pos})")),
                Some((_, word)) => err(format!("ends after '{word}'")),
                None => err("is empty".to_owned()),
            });
        };
        match item.tok {
            Tok::Term(expr) => Ok(expr),
            Tok::Op(Op::Open) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(err(format!("parentheses nested deeper than {MAX_DEPTH}")));
                }
                if self.peek_op(Op::Close) {
                    return Err(err(format!("empty parentheses at word {}", item.pos)));
                }
                let inner = self.parse_or()?;
                match self.next() {
                    Some(Item { tok: Tok::Op(Op::Close), .. }) => {
                        self.depth -= 1;
                        Ok(inner)
                    }
                    None => Err(err(format!("'(' at word {} is never closed", item.pos))),
                    Some(other) => Err(err(format!("expected 'and', 'or' or ')' before {}", other.describe()))),
                }
            }
            Tok::Op(Op::Close) => Err(err(format!("unexpected ')' at word {}", item.pos))),
            Tok::Op(_) => Err(err(format!("{} needs a target or '(' before it", item.describe()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines() {
        let cases: &[(&str, Option<EngineWord>)] = &[
            ("G@os:Debian", Some(('G', None, "os:Debian"))),
            ("G|@os|Debian", Some(('G', Some('|'), "os|Debian"))),
            ("G@@x", Some(('G', Some('@'), "x"))),
            ("G@@", Some(('G', None, "@"))),
            ("G@", None),
            ("P@os:D.*", Some(('P', None, "os:D.*"))),
            ("L@a,b", Some(('L', None, "a,b"))),
            ("L|@a,b", None),
            ("E@web\\d", Some(('E', None, "web\\d"))),
            ("S@10.0.0.0/8", Some(('S', None, "10.0.0.0/8"))),
            ("N@group", Some(('N', None, "group"))),
            ("X@foo", None),
            ("g@os:Debian", None),
            ("web*", None),
            ("@", None),
            ("", None),
            ("Gé@k", Some(('G', Some('é'), "k"))),
        ];
        for &(word, want) in cases {
            assert_eq!(split_engine(word), want, "{word:?}");
        }
    }

    /// Renders the parsed tree so precedence is visible in the tests: a grain term shows as
    /// `G`, an ipcidr term (which reads `ipv4`) as `S`.
    fn show(expr: &Expr, terms: &[GrainTerm]) -> String {
        let all = |v: &[Expr]| v.iter().map(|e| show(e, terms)).collect::<Vec<_>>().join(",");
        match expr {
            Expr::Nothing => "nothing".into(),
            Expr::Glob(g) => g.pattern().to_owned(),
            Expr::Pcre(_) => "E".into(),
            Expr::List { .. } => "L".into(),
            Expr::Grains(i) if terms[*i].key() == Some("ipv4") => "S".into(),
            Expr::Grains(_) => "G".into(),
            Expr::Not(e) => format!("not({})", show(e, terms)),
            Expr::And(v) => format!("and({})", all(v)),
            Expr::Or(v) => format!("or({})", all(v)),
        }
    }

    fn parse_str(text: &str) -> Result<String, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut terms = Vec::new();
        parse(&words, &mut terms).map(|e| show(&e, &terms)).map_err(|e| e.to_string())
    }

    #[test]
    fn precedence() {
        let cases: &[(&str, &str)] = &[
            ("a", "a"),
            ("a and b", "and(a,b)"),
            ("a or b and c", "or(a,and(b,c))"),
            ("a and b or c", "or(and(a,b),c)"),
            ("not a and b", "and(not(a),b)"),
            ("not a or b", "or(not(a),b)"),
            ("not ( a or b )", "not(or(a,b))"),
            ("a not b", "and(a,not(b))"),
            ("a or b not c", "or(a,and(b,not(c)))"),
            ("( a or b ) not c", "and(or(a,b),not(c))"),
            ("( a )", "a"),
            ("( ( a ) )", "a"),
            ("a and ( b or c ) and d", "and(a,or(b,c),d)"),
            ("a and not not_a_keyword", "and(a,not(not_a_keyword))"),
            ("AND", "AND"),
            ("G@os:Debian and web*", "and(G,web*)"),
            ("L@a,b or E@db[0-9]", "or(L,E)"),
            ("not S@10.0.0.0/8", "not(S)"),
            ("P@os:deb.* or G|@os|Debian", "or(G,G)"),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_str(text), Ok(want.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn malformed() {
        let cases: &[(&str, &str)] = &[
            ("and a", "invalid compound target: cannot start with 'and'"),
            ("or a", "invalid compound target: cannot start with 'or'"),
            (") a", "invalid compound target: cannot start with ')'"),
            ("a and", "invalid compound target: ends after 'and' (word 2)"),
            ("a or", "invalid compound target: ends after 'or' (word 2)"),
            ("not", "invalid compound target: ends after 'not' (word 1)"),
            ("a not", "invalid compound target: ends after 'not' (word 2)"),
            ("( a", "invalid compound target: '(' at word 1 is never closed"),
            ("( a or ( b )", "invalid compound target: '(' at word 1 is never closed"),
            ("a )", "invalid compound target: unmatched ')' at word 2"),
            ("( a ) )", "invalid compound target: unmatched ')' at word 4"),
            ("( )", "invalid compound target: empty parentheses at word 1"),
            ("( and a )", "invalid compound target: 'and' (word 2) cannot follow '('"),
            ("not not a", "invalid compound target: 'not' (word 2) cannot follow 'not'"),
            ("a b", "invalid compound target: expected 'and' or 'or' before 'b' (word 2)"),
            ("a ( b )", "invalid compound target: expected 'and' or 'or' before '(' (word 2)"),
            ("( a b )", "invalid compound target: expected 'and', 'or' or ')' before 'b' (word 3)"),
            ("a and or b", "invalid compound target: 'or' (word 3) needs a target or '(' before it"),
            ("a and and b", "invalid compound target: 'and' (word 3) needs a target or '(' before it"),
            ("a and )", "invalid compound target: unexpected ')' at word 3"),
            ("G@os", "invalid compound target: word 1 'G@os': grain target 'os' has no delimiter ':' (expected <grain>:<value>)"),
            ("I@role:web", "invalid compound target: word 1 'I@role:web': pillar (I@/J@) targeting is not supported"),
            ("a or N@group", "invalid compound target: word 3 'N@group': nodegroup (N@) targeting is not supported"),
            ("R@%foo", "invalid compound target: word 1 'R@%foo': range (R@) targeting is not supported"),
            ("S@10.0.0.1/8", "invalid compound target: word 1 'S@10.0.0.1/8': invalid IP/CIDR target '10.0.0.1/8': has host bits set"),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_str(text), Err(want.to_owned()), "{text:?}");
        }
        let err = parse_str("E@web(").unwrap_err();
        assert!(err.starts_with("invalid compound target: word 1 'E@web(': invalid regular expression:"), "{err}");
    }

    #[test]
    fn nesting_limit() {
        let deep = format!("{} a {}", "( ".repeat(MAX_DEPTH), ") ".repeat(MAX_DEPTH));
        assert_eq!(parse_str(&deep), Ok("a".to_owned()));
        let too_deep = format!("{} a {}", "( ".repeat(MAX_DEPTH + 1), ") ".repeat(MAX_DEPTH + 1));
        assert_eq!(parse_str(&too_deep), Err(format!("invalid compound target: parentheses nested deeper than {MAX_DEPTH}")));
    }
}
