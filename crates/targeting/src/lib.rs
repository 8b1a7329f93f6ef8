//! Salt's minion targeting, evaluated on the master: which accepted minions does a publish's
//! `tgt` / `tgt_type` select?
//!
//! A [`Matcher`] is built once per publish from the target (parsing, regex compilation and
//! validation happen here, and a malformed target is a [`TargetError`]) and is then asked
//! about each minion with its id and grains. The semantics follow Salt's matchers
//! (`salt/matchers/*_match.py`, `salt.utils.minions.CkMinions`, `salt.utils.data.subdict_match`):
//!
//! | `tgt_type`   | compound | meaning |
//! |--------------|----------|---------|
//! | `glob`       | bare word| Python `fnmatch` on the id: whole id, case-sensitive |
//! | `pcre`       | `E@`     | Python `re.match` on the id: anchored at the start only |
//! | `list`       | `L@`     | exact ids, a JSON array or a comma string |
//! | `grain`      | `G@`     | `key:sub:value`, value an fnmatch glob, case-insensitive |
//! | `grain_pcre` | `P@`     | the same with `re.match` |
//! | `ipcidr`     | `S@`     | address or network against the `ipv4` / `ipv6` grain |
//! | `compound`   |          | the above joined with `and`, `or`, `not`, `(`, `)` |
//!
//! Pillar (`I@`, `J@`), nodegroup (`N@`) and range (`R@`) targets are not supported and are
//! reported as errors rather than silently matching nothing.
//!
//! A caller holding the grains of many minions can answer the grain terms itself
//! ([`Matcher::grain_terms`], [`Matcher::matches_by`]): most read one top-level grain, so a term
//! needs asking once per distinct value of that grain, not once per minion (the master does this).
//!
//! An empty target matches no minion and is not an error, unlike an expression that cannot be
//! parsed. Targets longer than [`MAX_TARGET_BYTES`] are refused.

mod compound;
pub mod fnmatch;
mod grains;
mod ipcidr;
mod pcre;
pub mod pystr;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde_json::{Map, Value};

use crate::grains::{GrainPattern, OneGrain};
use crate::ipcidr::IpTarget;

pub use crate::grains::Grains;

/// The largest target expression accepted, in bytes (for an array: its strings plus one
/// separator each).
pub const MAX_TARGET_BYTES: usize = 64 * 1024;

/// Salt's `DEFAULT_TARGET_DELIM`: separates nested grain keys and the value (`os:Debian`).
pub const DEFAULT_DELIMITER: &str = ":";

/// Salt's `tgt_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetType {
    Glob,
    Pcre,
    List,
    Grain,
    GrainPcre,
    Compound,
    Ipcidr,
}

impl TargetType {
    /// The name Salt uses on the wire and in job loads (`Target-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Glob => "glob",
            TargetType::Pcre => "pcre",
            TargetType::List => "list",
            TargetType::Grain => "grain",
            TargetType::GrainPcre => "grain_pcre",
            TargetType::Compound => "compound",
            TargetType::Ipcidr => "ipcidr",
        }
    }
}

impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetType {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "glob" => TargetType::Glob,
            "pcre" => TargetType::Pcre,
            "list" => TargetType::List,
            "grain" => TargetType::Grain,
            "grain_pcre" => TargetType::GrainPcre,
            "compound" => TargetType::Compound,
            "ipcidr" => TargetType::Ipcidr,
            "pillar" | "pillar_pcre" | "pillar_exact" | "compound_pillar_exact" | "nodegroup" | "range" | "data" => {
                return Err(TargetError::new(format!("target type '{s}' is not supported")));
            }
            _ => {
                return Err(TargetError::new(format!(
                    "unknown target type '{s}' (expected glob, pcre, list, grain, grain_pcre, \
                     compound or ipcidr)"
                )));
            }
        })
    }
}

/// A target that cannot be used; the message says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    message: String,
}

impl TargetError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        TargetError { message: message.into() }
    }
}

/// A parsed target, ready to be asked about any number of minions.
#[derive(Debug, Clone)]
pub struct Matcher {
    tgt_type: TargetType,
    expr: Expr,
    /// The terms that read grains, numbered by [`Expr::Grains`].
    terms: Vec<GrainTerm>,
}

/// A term of a target that reads grains: `grain`, `grain_pcre` or `ipcidr` (`G@`, `P@`, `S@`).
///
/// Most terms read one top-level grain only ([`GrainTerm::key`]), so a master holding many
/// minions that share grain values can ask such a term once per distinct value
/// ([`GrainTerm::matches_value`]) rather than once per minion.
#[derive(Debug, Clone)]
pub struct GrainTerm(Term);

#[derive(Debug, Clone)]
enum Term {
    Pattern(GrainPattern),
    Ip(IpTarget),
}

impl GrainTerm {
    /// Does a minion with these grains match this term?
    pub fn matches<G: Grains + ?Sized>(&self, grains: &G) -> bool {
        match &self.0 {
            Term::Pattern(pattern) => pattern.matches(grains),
            Term::Ip(target) => target.matches(grains),
        }
    }

    /// The top-level grain whose value alone decides this term (`os` for `G@os:Debian`, `ipv4`
    /// for `S@10.0.0.0/8`); None when the term may read any grain (`G@*:Debian`).
    pub fn key(&self) -> Option<&str> {
        match &self.0 {
            Term::Pattern(pattern) => pattern.key(),
            Term::Ip(target) => Some(target.grain()),
        }
    }

    /// For a term with a [`GrainTerm::key`]: does a minion whose grain of that name has this
    /// value (None: it has no such grain) match? The same answer as [`GrainTerm::matches`] on
    /// any grains holding that value under that key.
    pub fn matches_value(&self, value: Option<&Value>) -> bool {
        debug_assert!(self.key().is_some(), "a term that reads every grain is asked about one");
        self.matches(&OneGrain { key: self.key().unwrap_or_default(), value })
    }
}

/// The parsed form of a target; compound targets are trees of the others.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// An empty target.
    Nothing,
    Glob(fnmatch::Glob),
    /// Anchored with `\A`, so `is_match` is Python's `re.match`.
    Pcre(Regex),
    /// `ids` in the order given (for reporting missing minions), `set` for lookups.
    List {
        ids: Vec<String>,
        set: HashSet<String>,
    },
    /// A grain, grain_pcre or ipcidr term: its index in [`Matcher`]'s terms.
    Grains(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Lists up to this long are searched, longer ones hashed.
const SHORT_LIST: usize = 8;

impl Expr {
    pub(crate) fn list(ids: Vec<String>) -> Expr {
        let set = ids.iter().cloned().collect();
        Expr::List { ids, set }
    }

    /// `grain_term(i)` answers the grain term numbered `i`.
    fn eval(&self, minion_id: &str, grain_term: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Expr::Nothing => false,
            Expr::Glob(glob) => glob.matches(minion_id),
            Expr::Pcre(re) => re.is_match(minion_id),
            // Comparing with a few ids costs less than hashing the id (once per minion).
            Expr::List { ids, .. } if ids.len() <= SHORT_LIST => ids.iter().any(|id| id == minion_id),
            Expr::List { set, .. } => set.contains(minion_id),
            Expr::Grains(term) => grain_term(*term),
            Expr::Not(inner) => !inner.eval(minion_id, grain_term),
            Expr::And(terms) => terms.iter().all(|t| t.eval(minion_id, grain_term)),
            Expr::Or(terms) => terms.iter().any(|t| t.eval(minion_id, grain_term)),
        }
    }
}

/// Adds a grain term to `terms` and returns the expression that refers to it.
pub(crate) fn grain_term(terms: &mut Vec<GrainTerm>, pattern: GrainPattern) -> Expr {
    terms.push(GrainTerm(Term::Pattern(pattern)));
    Expr::Grains(terms.len() - 1)
}

/// [`grain_term`] for an `ipcidr` term.
pub(crate) fn ip_term(terms: &mut Vec<GrainTerm>, target: IpTarget) -> Expr {
    terms.push(GrainTerm(Term::Ip(target)));
    Expr::Grains(terms.len() - 1)
}

/// Trimmed, non-empty ids from the pieces of a list target.
pub(crate) fn list_ids<'a>(pieces: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    pieces.into_iter().map(str::trim).filter(|id| !id.is_empty()).map(String::from).collect()
}

/// Python's `str.split()`: Rust's whitespace plus the ASCII separators `\x1c`..`\x1f`.
fn split_words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)).filter(|w| !w.is_empty()).collect()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Matcher {
    /// Parses a publish target.
    ///
    /// `tgt` is a string; `list` also takes a JSON array of ids and `compound` a JSON array of
    /// words (as Salt accepts a Python list). `null` and `""` are the empty target.
    /// `delimiter` separates grain keys for `grain` / `grain_pcre` (Salt's default is
    /// [`DEFAULT_DELIMITER`]); compound `G@` / `P@` words use `:` unless they name their own
    /// (`G|@os|Debian`), as in Salt.
    pub fn new(tgt: &Value, tgt_type: TargetType, delimiter: &str) -> Result<Matcher, TargetError> {
        let size = match tgt {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(|v| v.as_str().map_or(0, str::len) + 1).sum(),
            _ => 0,
        };
        if size > MAX_TARGET_BYTES {
            return Err(TargetError::new(format!("target expression is {size} bytes, over the {MAX_TARGET_BYTES}-byte limit")));
        }

        let mut terms = Vec::new();
        let expr = match (tgt, tgt_type) {
            (Value::Null, _) => Expr::Nothing,
            (Value::String(s), _) if s.is_empty() => Expr::Nothing,
            (Value::Array(items), TargetType::List | TargetType::Compound) => {
                let mut words = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let word = item.as_str().ok_or_else(|| {
                        TargetError::new(format!("{tgt_type} target element {} is {}, not a string", i + 1, json_kind(item)))
                    })?;
                    words.push(word);
                }
                if tgt_type == TargetType::List {
                    Expr::list(list_ids(words))
                } else {
                    compound::parse(&words, &mut terms)?
                }
            }
            (Value::String(s), tgt_type) => Self::parse_str(s, tgt_type, delimiter, &mut terms)?,
            (other, tgt_type) => {
                return Err(TargetError::new(format!("{tgt_type} target must be a string, not {}", json_kind(other))));
            }
        };
        Ok(Matcher { tgt_type, expr, terms })
    }

    fn parse_str(s: &str, tgt_type: TargetType, delimiter: &str, terms: &mut Vec<GrainTerm>) -> Result<Expr, TargetError> {
        Ok(match tgt_type {
            TargetType::Glob => Expr::Glob(fnmatch::Glob::new(s)),
            TargetType::Pcre => {
                Expr::Pcre(pcre::compile(s).map_err(|e| TargetError::new(format!("pcre target '{s}': invalid regular expression: {e}")))?)
            }
            TargetType::List => Expr::list(list_ids(s.split(','))),
            TargetType::Grain => grain_term(terms, GrainPattern::new(s, delimiter, false)?),
            TargetType::GrainPcre => grain_term(terms, GrainPattern::new(s, delimiter, true)?),
            TargetType::Ipcidr => ip_term(terms, IpTarget::parse(s)?),
            TargetType::Compound => compound::parse(&split_words(s), terms)?,
        })
    }

    /// Does the minion with this id and these grains match?
    pub fn matches(&self, minion_id: &str, grains: &Map<String, Value>) -> bool {
        self.matches_in(minion_id, grains)
    }

    /// [`Matcher::matches`] for grains held in another form than a [`Map`].
    pub fn matches_in<G: Grains + ?Sized>(&self, minion_id: &str, grains: &G) -> bool {
        self.matches_by(minion_id, |term| self.terms[term].matches(grains))
    }

    /// Does the minion with this id match, when `grain_term(i)` answers the grain term `i` of
    /// [`Matcher::grain_terms`] for it? For a caller that answers grain terms from an index of
    /// its own (it is asked only about the terms the answer depends on, in no fixed order).
    pub fn matches_by(&self, minion_id: &str, mut grain_term: impl FnMut(usize) -> bool) -> bool {
        self.expr.eval(minion_id, &mut grain_term)
    }

    /// The terms of this target that read grains, in the order [`Matcher::matches_by`] numbers them.
    pub fn grain_terms(&self) -> &[GrainTerm] {
        &self.terms
    }

    /// Salt's "greedy" answer for a minion whose grains the master does not have (not yet in
    /// the minion data cache): every grain or ipcidr term counts as a match, so the minion is
    /// targeted and decides for itself, while `not G@...` still excludes it. Id-only targets
    /// answer exactly as [`Matcher::matches`].
    pub fn matches_without_grains(&self, minion_id: &str) -> bool {
        self.matches_by(minion_id, |_| true)
    }

    /// Whether the answer depends on grains (a grain, grain_pcre or ipcidr target or term).
    pub fn uses_grains(&self) -> bool {
        !self.terms.is_empty()
    }

    pub fn tgt_type(&self) -> TargetType {
        self.tgt_type
    }

    /// For a `list` target, the ids in the order given (trimmed, empties dropped), so the
    /// caller can report the ones that are not accepted minions (Salt's `missing`).
    pub fn listed_ids(&self) -> Option<&[String]> {
        match (&self.expr, self.tgt_type) {
            (Expr::List { ids, .. }, TargetType::List) => Some(ids),
            (Expr::Nothing, TargetType::List) => Some(&[]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grains(value: Value) -> Map<String, Value> {
        value.as_object().expect("grains are an object").clone()
    }

    /// Minion ids and grains shared by the table tests.
    fn minions() -> Vec<(&'static str, Map<String, Value>)> {
        vec![
            ("web1", grains(json!({"os": "Debian", "roles": ["web"], "ipv4": ["10.0.0.1"], "env": "prod"}))),
            ("web2", grains(json!({"os": "Ubuntu", "roles": ["web", "cache"], "ipv4": ["10.0.0.2"], "env": "dev"}))),
            ("db1", grains(json!({"os": "Debian", "roles": ["db"], "ipv4": ["10.0.1.1"], "env": "prod"}))),
            ("db2.example.com", grains(json!({"os": "CentOS", "ipv4": ["192.168.1.9"]}))),
            ("Web3", grains(json!({}))),
        ]
    }

    /// The ids (in `minions()` order) that `tgt` selects.
    fn selected(tgt: Value, tgt_type: TargetType) -> Vec<&'static str> {
        let matcher = Matcher::new(&tgt, tgt_type, DEFAULT_DELIMITER).unwrap_or_else(|e| panic!("{tgt_type} {tgt}: {e}"));
        minions().into_iter().filter(|(id, g)| matcher.matches(id, g)).map(|(id, _)| id).collect()
    }

    fn error(tgt: Value, tgt_type: TargetType) -> String {
        Matcher::new(&tgt, tgt_type, DEFAULT_DELIMITER).unwrap_err().to_string()
    }

    const ALL: &[&str] = &["web1", "web2", "db1", "db2.example.com", "Web3"];

    #[test]
    fn target_type_names() {
        for t in [
            TargetType::Glob,
            TargetType::Pcre,
            TargetType::List,
            TargetType::Grain,
            TargetType::GrainPcre,
            TargetType::Compound,
            TargetType::Ipcidr,
        ] {
            assert_eq!(t.as_str().parse::<TargetType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!("pillar".parse::<TargetType>().unwrap_err().to_string(), "target type 'pillar' is not supported");
        assert_eq!(
            "Glob".parse::<TargetType>().unwrap_err().to_string(),
            "unknown target type 'Glob' (expected glob, pcre, list, grain, grain_pcre, compound or ipcidr)"
        );
    }

    #[test]
    fn glob() {
        use TargetType::Glob;
        let cases: &[(&str, &[&str])] = &[
            ("*", ALL),
            ("web*", &["web1", "web2"]),
            ("Web*", &["Web3"]),
            ("web?", &["web1", "web2"]),
            ("web[2-3]", &["web2"]),
            ("[!w]*", &["db1", "db2.example.com", "Web3"]),
            ("*.example.com", &["db2.example.com"]),
            ("db", &[]),
            ("web1", &["web1"]),
            ("", &[]),
        ];
        for &(tgt, want) in cases {
            assert_eq!(selected(json!(tgt), Glob), want, "glob {tgt:?}");
        }
        assert_eq!(selected(Value::Null, Glob), Vec::<&str>::new());
        assert_eq!(error(json!(["web1"]), Glob), "glob target must be a string, not an array");
        assert_eq!(error(json!(5), Glob), "glob target must be a string, not a number");
    }

    #[test]
    fn pcre() {
        use TargetType::Pcre;
        let cases: &[(&str, &[&str])] = &[
            ("web", &["web1", "web2"]),
            ("web\\d$", &["web1", "web2"]),
            ("eb", &[]),
            (".*eb", &["web1", "web2", "Web3"]),
            ("(?i)web", &["web1", "web2", "Web3"]),
            ("db|web1", &["web1", "db1", "db2.example.com"]),
            ("db2\\.example", &["db2.example.com"]),
            ("", &[]),
        ];
        for &(tgt, want) in cases {
            assert_eq!(selected(json!(tgt), Pcre), want, "pcre {tgt:?}");
        }
        let err = error(json!("web("), Pcre);
        assert!(err.starts_with("pcre target 'web(': invalid regular expression:"), "{err}");
        let err = error(json!("(?<=a)b"), Pcre);
        assert!(err.contains("look-around"), "{err}");
    }

    #[test]
    fn list() {
        use TargetType::List;
        let cases: &[(Value, &[&str])] = &[
            (json!("web1,db1"), &["web1", "db1"]),
            (json!("web1"), &["web1"]),
            (json!(" web1 , db1 ,"), &["web1", "db1"]),
            (json!("web1,,nosuch"), &["web1"]),
            (json!("web*"), &[]),
            (json!("WEB1"), &[]),
            (json!(["web2", " Web3 "]), &["web2", "Web3"]),
            (json!([]), &[]),
            (json!(""), &[]),
            (json!(","), &[]),
        ];
        for (tgt, want) in cases {
            assert_eq!(selected(tgt.clone(), List), *want, "list {tgt}");
        }
        let m = Matcher::new(&json!("b, a,,b,nosuch"), List, ":").unwrap();
        assert_eq!(m.listed_ids().unwrap(), ["b", "a", "b", "nosuch"]);
        assert_eq!(Matcher::new(&json!(""), List, ":").unwrap().listed_ids(), Some(&[][..]));
        assert_eq!(Matcher::new(&json!("x"), TargetType::Glob, ":").unwrap().listed_ids(), None);
        assert_eq!(error(json!(["a", 1]), List), "list target element 2 is a number, not a string");
    }

    #[test]
    fn grain_and_grain_pcre() {
        use TargetType::{Grain, GrainPcre};
        let cases: &[(&str, TargetType, &[&str])] = &[
            ("os:Debian", Grain, &["web1", "db1"]),
            ("os:debian", Grain, &["web1", "db1"]),
            ("os:*u*", Grain, &["web2"]),
            ("roles:web", Grain, &["web1", "web2"]),
            ("roles:cache", Grain, &["web2"]),
            ("nosuch:*", Grain, &[]),
            ("os:Deb.*", Grain, &[]),
            ("os:(debian|centos)", GrainPcre, &["web1", "db1", "db2.example.com"]),
            ("os:ubu", GrainPcre, &["web2"]),
            ("env:PROD$", GrainPcre, &["web1", "db1"]),
            ("", Grain, &[]),
        ];
        for &(tgt, t, want) in cases {
            assert_eq!(selected(json!(tgt), t), want, "{t} {tgt:?}");
        }
        assert_eq!(error(json!("os"), Grain), "grain target 'os' has no delimiter ':' (expected <grain>:<value>)");
        assert_eq!(error(json!("Debian"), GrainPcre), "grain_pcre target 'Debian' has no delimiter ':' (expected <grain>:<value>)");

        // A custom delimiter applies to grain targets.
        let m = Matcher::new(&json!("os|Debian"), Grain, "|").unwrap();
        assert!(m.matches("web1", &minions()[0].1));
        assert!(Matcher::new(&json!("os:Debian"), Grain, "|").is_err());
        assert!(Matcher::new(&json!("os:Debian"), Grain, "").is_err());
    }

    #[test]
    fn ipcidr() {
        use TargetType::Ipcidr;
        assert_eq!(selected(json!("10.0.0.0/24"), Ipcidr), ["web1", "web2"]);
        assert_eq!(selected(json!("10.0.0.0/16"), Ipcidr), ["web1", "web2", "db1"]);
        assert_eq!(selected(json!("192.168.1.9"), Ipcidr), ["db2.example.com"]);
        assert_eq!(error(json!("10.0.0.1/24"), Ipcidr), "invalid IP/CIDR target '10.0.0.1/24': has host bits set");
    }

    #[test]
    fn compound() {
        use TargetType::Compound;
        let cases: &[(Value, &[&str])] = &[
            (json!("G@os:Debian and web*"), &["web1"]),
            (json!("G@os:Debian or web*"), &["web1", "web2", "db1"]),
            (json!("L@web2,db1 or E@db[0-9]"), &["web2", "db1", "db2.example.com"]),
            (json!("web* and not G@os:Debian"), &["web2"]),
            (json!("web* not G@os:Debian"), &["web2"]),
            (json!("not web*"), &["db1", "db2.example.com", "Web3"]),
            (json!("not web* and not db*"), &["Web3"]),
            (json!("not ( web* or db* )"), &["Web3"]),
            // `not` binds tighter than `and`, `and` tighter than `or`.
            (json!("db1 or web* and G@os:Ubuntu"), &["web2", "db1"]),
            (json!("( db1 or web* ) and G@os:Ubuntu"), &["web2"]),
            (json!("not db1 or web1"), &["web1", "web2", "db2.example.com", "Web3"]),
            (json!("P@os:(debian|centos) and not E@web"), &["db1", "db2.example.com"]),
            (json!("G|@roles|cache"), &["web2"]),
            (json!("S@10.0.0.0/24 and not web1"), &["web2"]),
            (json!("J*"), &[]),
            (json!("X@web1"), &[]),
            (json!("  web1\tor\n db1  "), &["web1", "db1"]),
            (json!("web1\u{1f}or\u{1f}db1"), &["web1", "db1"]),
            (json!(["G@os:Debian", "and", "not", "db*"]), &["web1"]),
            (json!(""), &[]),
            (json!("   "), &[]),
            (json!([]), &[]),
        ];
        for (tgt, want) in cases {
            assert_eq!(selected(tgt.clone(), Compound), *want, "compound {tgt}");
        }
        assert_eq!(error(json!("web* and"), Compound), "invalid compound target: ends after 'and' (word 2)");
        assert_eq!(error(json!("( web*"), Compound), "invalid compound target: '(' at word 1 is never closed");
        assert_eq!(error(json!(["web*", 3]), Compound), "compound target element 2 is a number, not a string");
        // The top-level delimiter does not apply inside compound targets, as in Salt.
        let m = Matcher::new(&json!("G@os:Debian"), Compound, "|").unwrap();
        assert!(m.matches("web1", &minions()[0].1));
    }

    #[test]
    fn size_limit() {
        let big = "a".repeat(MAX_TARGET_BYTES + 1);
        assert_eq!(
            error(json!(big), TargetType::Glob),
            format!("target expression is {} bytes, over the 65536-byte limit", MAX_TARGET_BYTES + 1)
        );
        let just_fits = "a".repeat(MAX_TARGET_BYTES);
        assert!(Matcher::new(&json!(just_fits), TargetType::Glob, ":").is_ok());
        let many: Vec<String> = (0..10_000).map(|i| format!("minion{i}")).collect();
        assert!(error(json!(many), TargetType::List).contains("over the 65536-byte limit"));
    }

    #[test]
    fn without_grains_is_greedy() {
        let m = Matcher::new(&json!("G@os:Debian and web*"), TargetType::Compound, ":").unwrap();
        assert!(m.uses_grains());
        assert!(m.matches_without_grains("web9"));
        assert!(!m.matches_without_grains("db9"));
        let m = Matcher::new(&json!("web* and not G@os:Debian"), TargetType::Compound, ":").unwrap();
        assert!(!m.matches_without_grains("web9"));
        let m = Matcher::new(&json!("web*"), TargetType::Glob, ":").unwrap();
        assert!(!m.uses_grains());
        assert!(m.matches_without_grains("web9"));
        assert!(!m.matches_without_grains("db9"));
        assert!(Matcher::new(&json!("S@10.0.0.0/8"), TargetType::Compound, ":").unwrap().uses_grains());
    }

    #[test]
    fn grain_terms_answered_by_value_select_what_the_grains_select() {
        for tgt in ["G@os:Debian and web*", "P@os:(debian|centos) or G@roles:cache", "S@10.0.0.0/24 or not G@env:prod", "G@*:Debian"] {
            let m = Matcher::new(&json!(tgt), TargetType::Compound, ":").unwrap();
            assert!(!m.grain_terms().is_empty());
            for (id, g) in minions() {
                let by_value = m.matches_by(id, |i| {
                    let term = &m.grain_terms()[i];
                    match term.key() {
                        Some(key) => term.matches_value(g.get(key)),
                        None => term.matches(&g),
                    }
                });
                assert_eq!(by_value, m.matches(id, &g), "{tgt} on {id}");
            }
        }
        let keys = |tgt: &str| {
            let m = Matcher::new(&json!(tgt), TargetType::Compound, ":").unwrap();
            m.grain_terms().iter().map(|t| t.key().map(str::to_owned)).collect::<Vec<_>>()
        };
        assert_eq!(keys("G@os:Debian and S@::1 or G|@a|b:c or web*"), [Some("os".into()), Some("ipv6".into()), Some("a".into())]);
        assert_eq!(keys("G@*:Debian or L@a"), [None]);
    }

    #[test]
    fn matcher_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Matcher>();
        assert_send_sync::<TargetError>();
    }
}
