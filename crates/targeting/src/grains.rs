//! Grain targets (`G@` / `grain`, `P@` / `grain_pcre`): Salt's `salt.utils.data.subdict_match`.
//!
//! `key:sub:value` is tried at every split, deepest key first, so `foo:bar:baz` matches both
//! `{"foo": {"bar": "baz"}}` and `{"foo": "bar:baz"}`. Keys are looked up exactly; values are
//! compared case-insensitively (`str(value).lower()` against the lower-cased pattern), with an
//! fnmatch glob or, for PCRE, `re.match`. A list value matches if any element matches. Salt
//! also lower-cases PCRE patterns, so `\D` becomes `\d`; we do the same so results agree.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::fnmatch::Glob;
use crate::pcre::{self, RegexCache};
use crate::pystr::py_str;
use crate::TargetError;

/// Upper bound on match steps for one minion. Salt's recursion is exponential in the number of
/// delimiters when grains nest as deep as the target; past this budget the minion does not match.
const STEP_BUDGET: usize = 100_000;

/// How many candidate value patterns `new` tries to compile before calling a PCRE target invalid.
const VALIDATE_CANDIDATES: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct GrainPattern {
    /// The target split once at its delimiters, asked about every minion.
    plan: Plan,
    /// `Some` for `grain_pcre`.
    regex: Option<RegexCache>,
}

/// `key:sub:value` split at every delimiter, with each tail's lower-cased value pattern made
/// when first needed and kept: a target over 50,000 minions splits, lower-cases and parses its
/// glob once, not once per minion.
#[derive(Debug, Clone)]
struct Plan {
    expr: String,
    /// The pieces between delimiters.
    pieces: Vec<String>,
    /// Where each piece starts in `expr`, so "the pieces from idx on, joined" is a slice of it:
    /// joining them for every idx made a target with 10,000 delimiters cost a second per
    /// minion (found by salt-fuzz).
    starts: Vec<usize>,
    /// The value pattern of the tail from piece idx on, for each idx.
    values: Vec<OnceLock<ValuePattern>>,
}

impl Plan {
    fn new(expr: &str, delimiter: &str) -> Plan {
        let pieces: Vec<String> = expr.split(delimiter).map(str::to_owned).collect();
        let starts = std::iter::once(0).chain(expr.match_indices(delimiter).map(|(i, d)| i + d.len())).collect();
        let values = (0..pieces.len()).map(|_| OnceLock::new()).collect();
        Plan { expr: expr.to_owned(), pieces, starts, values }
    }

    fn tail(&self, idx: usize) -> &str {
        &self.expr[self.starts[idx]..]
    }

    fn value_pattern(&self, idx: usize, regex: bool) -> &ValuePattern {
        self.values[idx].get_or_init(|| ValuePattern::new(self.tail(idx), regex))
    }
}

/// A value pattern as `_match` uses it: lower-cased, and for a glob, parsed.
#[derive(Debug, Clone)]
struct ValuePattern {
    lower: String,
    /// `None` for `grain_pcre` (the regex cache holds the compiled form).
    glob: Option<Glob>,
}

impl ValuePattern {
    fn new(pattern: &str, regex: bool) -> ValuePattern {
        let lower = pattern.to_lowercase();
        let glob = (!regex).then(|| Glob::new(&lower));
        ValuePattern { lower, glob }
    }
}

impl GrainPattern {
    pub(crate) fn new(expr: &str, delimiter: &str, pcre: bool) -> Result<Self, TargetError> {
        let kind = if pcre { "grain_pcre" } else { "grain" };
        if delimiter.is_empty() {
            return Err(TargetError::new(format!("{kind} target delimiter must not be empty")));
        }
        if !expr.contains(delimiter) {
            return Err(TargetError::new(format!(
                "{kind} target '{expr}' has no delimiter '{delimiter}' (expected <grain>{delimiter}<value>)"
            )));
        }
        if pcre {
            validate_regex(expr, delimiter)?;
        }
        Ok(GrainPattern { plan: Plan::new(expr, delimiter), regex: pcre.then(RegexCache::default) })
    }

    pub(crate) fn matches<G: Grains + ?Sized>(&self, grains: &G) -> bool {
        let mut m = Match { regex: self.regex.as_ref(), budget: STEP_BUDGET };
        m.spend() && m.subdict_plan(grains, &self.plan)
    }

    /// The top-level grain whose value alone decides the match: the first key (`os` in
    /// `os:Debian`, `a` in `a:b:c`), unless it is `*`, which Salt reads as "any top-level
    /// value" (see [`Match::subdict_plan`]). Every other path starts with a lookup of that key.
    pub(crate) fn key(&self) -> Option<&str> {
        let first = self.plan.pieces[0].as_str();
        (first != "*").then_some(first)
    }
}

/// A minion's top-level grains as the matcher reads them. A [`Map`] is one; the master keeps
/// its minions' grains in a compact, shared form and lets the matcher read them through this.
pub trait Grains {
    /// The value of the top-level grain `key`.
    fn get(&self, key: &str) -> Option<&Value>;
    /// Every top-level value, in the minion's order (a `*:` wildcard looks at each in turn).
    fn values(&self) -> impl Iterator<Item = &Value>;
    fn is_empty(&self) -> bool;
}

impl Grains for Map<String, Value> {
    fn get(&self, key: &str) -> Option<&Value> {
        Map::get(self, key)
    }
    fn values(&self) -> impl Iterator<Item = &Value> {
        Map::values(self)
    }
    fn is_empty(&self) -> bool {
        Map::is_empty(self)
    }
}

/// Grains of which only one top-level grain is known: what a term whose answer depends on
/// that grain alone (see [`GrainPattern::key`]) needs to be asked.
pub(crate) struct OneGrain<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: Option<&'a Value>,
}

impl Grains for OneGrain<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.value.filter(|_| key == self.key)
    }
    fn values(&self) -> impl Iterator<Item = &Value> {
        self.value.into_iter()
    }
    fn is_empty(&self) -> bool {
        self.value.is_none()
    }
}

/// A PCRE grain target is malformed when none of the value parts Salt could try compiles.
/// The error names the part after the last delimiter, the usual home of the regex.
fn validate_regex(expr: &str, delimiter: &str) -> Result<(), TargetError> {
    let mut first_err = None;
    for (pos, _) in expr.rmatch_indices(delimiter).take(VALIDATE_CANDIDATES) {
        let candidate = &expr[pos + delimiter.len()..];
        match pcre::compile(&candidate.to_lowercase()) {
            Ok(_) => return Ok(()),
            Err(e) => {
                // A longer candidate holds this one as its tail, so it is too big as well:
                // stop, rather than compile up to 64 huge patterns (found by salt-fuzz:
                // `k` + 64 `:` + `(?:\w{500}){500}` took 40 s to refuse).
                let too_big = matches!(e, regex::Error::CompiledTooBig(_));
                first_err.get_or_insert((candidate, e));
                if too_big {
                    break;
                }
            }
        }
    }
    let (candidate, err) = first_err.expect("expr contains the delimiter");
    Err(TargetError::new(format!("grain_pcre target '{expr}': invalid regular expression '{candidate}': {err}")))
}

/// State of one minion's match: which value matcher to use and the remaining step budget.
struct Match<'a> {
    regex: Option<&'a RegexCache>,
    budget: usize,
}

impl Match<'_> {
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// `subdict_match(data, expr, delimiter)`.
    fn subdict<G: Grains + ?Sized>(&mut self, data: &G, expr: &str, delimiter: &str) -> bool {
        if !self.spend() {
            return false;
        }
        self.subdict_plan(data, &Plan::new(expr, delimiter))
    }

    /// [`Match::subdict`] with the expression already split (the caller spent the call's step).
    fn subdict_plan<G: Grains + ?Sized>(&mut self, data: &G, plan: &Plan) -> bool {
        if plan.pieces.len() == 1 {
            return false;
        }
        for idx in (1..plan.pieces.len()).rev() {
            // Each split costs a traversal, so it is charged too.
            if !self.spend() {
                return false;
            }
            let keys = &plan.pieces[..idx];
            if idx == 1 && keys[0] == "*" {
                // `*:...` matches against the whole mapping with the whole expression, which
                // `dict_match` reads as "any top-level value".
                if !data.is_empty() && self.dict_match(data, &plan.expr) {
                    return true;
                }
                continue;
            }
            let matchstr = plan.tail(idx);
            let found = match traverse(data, keys) {
                // Salt's "not found" default is `{}`, so a genuinely empty mapping is skipped too.
                None => continue,
                Some(Value::Object(map)) if map.is_empty() => continue,
                Some(found) => found,
            };
            let regex = self.regex.is_some();
            let hit = match found {
                Value::Object(map) => self.dict_match(map, matchstr),
                Value::Array(items) => items.iter().any(|member| {
                    matches!(member, Value::Object(map) if self.dict_match(map, matchstr))
                        || self.value_match(member, plan.value_pattern(idx, regex))
                }),
                scalar => self.value_match(scalar, plan.value_pattern(idx, regex)),
            };
            if hit {
                return true;
            }
        }
        false
    }

    /// `_dict_match(target, pattern)`: a key that exists, a deeper `sub:value`, or with a `*:`
    /// prefix, any value anywhere below. Salt hard-codes `:` here whatever the delimiter.
    fn dict_match<G: Grains + ?Sized>(&mut self, target: &G, pattern: &str) -> bool {
        if !self.spend() {
            return false;
        }
        let (wildcard, pattern) = match pattern.strip_prefix("*:") {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if pattern == "*" || target.get(pattern).is_some() || self.subdict(target, pattern, ":") {
            return true;
        }
        if wildcard {
            for value in target.values() {
                let hit = match value {
                    Value::Object(map) => self.dict_match(map, pattern),
                    Value::Array(items) => items.iter().any(|item| self.value_match_str(item, pattern)),
                    scalar => self.value_match_str(scalar, pattern),
                };
                if hit {
                    return true;
                }
            }
        }
        false
    }

    /// `_match(target, pattern)`: case-insensitive glob or `re.match` on `str(value)`.
    fn value_match(&mut self, value: &Value, pattern: &ValuePattern) -> bool {
        if !self.spend() {
            return false;
        }
        // A string already in lower case (most grain values) is matched as it is.
        let text = match value {
            Value::String(s) if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Borrowed(s.as_str()),
            other => Cow::Owned(py_str(other).to_lowercase()),
        };
        match (&pattern.glob, self.regex) {
            (Some(glob), _) => glob.matches(&text),
            (None, Some(cache)) => cache.is_match(&pattern.lower, &text),
            (None, None) => false,
        }
    }

    /// [`Match::value_match`] with a pattern met once (under a `*:` wildcard).
    fn value_match_str(&mut self, value: &Value, pattern: &str) -> bool {
        self.value_match(value, &ValuePattern::new(pattern, self.regex.is_some()))
    }
}

/// `traverse_dict_and_list(data, key, default={})`: `None` stands for the default.
/// In lists a numeric key is an index (negative counts from the end); any other key is looked
/// up in the first embedded mapping that has it.
fn traverse<'a, G: Grains + ?Sized>(data: &'a G, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let mut ptr = data.get(first)?;
    for key in rest {
        ptr = match ptr {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => match py_int(key) {
                Some(idx) => {
                    let len = items.len() as i128;
                    let idx = if idx < 0 { len + idx } else { idx };
                    if idx < 0 || idx >= len {
                        return None;
                    }
                    &items[idx as usize]
                }
                None => items.iter().filter_map(Value::as_object).find_map(|m| m.get(key))?,
            },
            // Indexing a string or number raises TypeError in Python: the default.
            _ => return None,
        };
    }
    Some(ptr)
}

/// Python's `int(text)` for ASCII input: surrounding whitespace, a sign, and `_` between digits.
/// Values too large for `i128` saturate, which is out of range for any list anyway.
fn py_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes[0] == b'_' || bytes[bytes.len() - 1] == b'_' {
        return None;
    }
    let mut value: i128 = 0;
    let mut prev_underscore = false;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                value = value.saturating_mul(10).saturating_add(i128::from(b - b'0'));
                prev_underscore = false;
            }
            b'_' if !prev_underscore => prev_underscore = true,
            _ => return None,
        }
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grains() -> Map<String, Value> {
        json!({
            "os": "Debian",
            "os_family": "Debian",
            "osrelease": "12",
            "osmajorrelease": 12,
            "virtual": "physical",
            "empty": {},
            "empty_list": [],
            "is_proxy": false,
            "nothing": null,
            "float": 1.5,
            "roles": ["web", "DB", "cache:redis"],
            "kernel": "Linux",
            "url": "http://example.com:8080",
            "ip_interfaces": {"eth0": ["10.0.0.5", "fe80::1"], "lo": ["127.0.0.1"]},
            "ipv4": ["10.0.0.5", "127.0.0.1"],
            "locale_info": {"defaultlanguage": "en_US", "defaultencoding": "UTF-8"},
            "disks": [{"name": "sda", "size": 100}, {"name": "sdb", "model": "X"}],
            "nested": {"a": {"b": {"c": "deep"}}},
            "with:colon": "v",
            "pipes": {"x": "y"},
            "nested_list": [["a", "b"]]
        })
        .as_object()
        .unwrap()
        .clone()
    }

    /// The answer from the pattern's key alone (None for a pattern without one): what the
    /// master's index asks instead of the whole grains.
    fn matches_by_key(pattern: &GrainPattern, grains: &Map<String, Value>) -> Option<bool> {
        let key = pattern.key()?;
        Some(pattern.matches(&OneGrain { key, value: grains.get(key) }))
    }

    #[test]
    fn a_pattern_with_a_key_reads_that_grain_only() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("os:Debian", ":", Some("os")),
            ("nested:a:b:c:deep", ":", Some("nested")),
            ("*:Debian", ":", None),
            ("*:a:b", ":", None),
            ("**:x", ":", Some("**")),
            ("os|Debian", "|", Some("os")),
            ("os:x|y", "|", Some("os:x")),
            (":x", ":", Some("")),
        ];
        for &(expr, delim, want) in cases {
            assert_eq!(GrainPattern::new(expr, delim, false).unwrap().key(), want, "{expr}");
        }
        // Whatever the other grains are, a pattern with a key answers from that grain alone.
        let mut other = grains();
        other.insert("os".into(), json!("Ubuntu"));
        other.retain(|k, _| k == "os" || k == "roles");
        for expr in ["os:Ubuntu", "os:Debian", "roles:web", "kernel:*", "*:Ubuntu"] {
            let pattern = GrainPattern::new(expr, ":", false).unwrap();
            if let Some(by_key) = matches_by_key(&pattern, &other) {
                assert_eq!(by_key, pattern.matches(&other), "{expr}");
            }
        }
    }

    #[test]
    fn glob_table() {
        // (expression, delimiter, expected): Salt 3007 subdict_match results.
        let cases: &[(&str, &str, bool)] = &[
            ("os:Debian", ":", true),
            ("os:debian", ":", true),
            ("os:DEBIAN", ":", true),
            ("os:Deb*", ":", true),
            ("os:Ubuntu", ":", false),
            ("os:*", ":", true),
            ("os:", ":", false),
            ("missing:*", ":", false),
            ("OS:Debian", ":", false),
            ("osmajorrelease:12", ":", true),
            ("osmajorrelease:1?", ":", true),
            ("is_proxy:false", ":", true),
            ("is_proxy:False", ":", true),
            ("nothing:None", ":", true),
            ("float:1.5", ":", true),
            ("roles:web", ":", true),
            ("roles:db", ":", true),
            ("roles:we*", ":", true),
            ("roles:mail", ":", false),
            ("roles:cache:redis", ":", true),
            ("roles:0", ":", false),
            ("url:http://example.com:8080", ":", true),
            ("url:http*", ":", true),
            ("ip_interfaces:eth0:10.0.0.5", ":", true),
            ("ip_interfaces:eth0:10.0.0.*", ":", true),
            ("ip_interfaces:eth0:fe80::1", ":", true),
            ("ip_interfaces:eth1:10.0.0.5", ":", false),
            ("ip_interfaces:eth0", ":", true),
            ("ip_interfaces:eth0:0:10.0.0.5", ":", true),
            ("ip_interfaces:eth0:-1:fe80::1", ":", true),
            ("ip_interfaces:eth0:5:fe80::1", ":", false),
            ("ip_interfaces:*", ":", true),
            ("ip_interfaces:nope", ":", false),
            ("locale_info:defaultencoding:utf-8", ":", true),
            ("locale_info:defaultencoding", ":", true),
            ("nested:a:b:c:deep", ":", true),
            ("nested:a:b:c:DEEP", ":", true),
            ("nested:a:b:c", ":", true),
            ("nested:a:x:c:deep", ":", false),
            ("disks:name:sdb", ":", true),
            ("disks:sdb", ":", false),
            ("disks:name", ":", true),
            ("disks:model:x", ":", true),
            ("disks:1:model:x", ":", true),
            ("empty:*", ":", false),
            ("empty_list:*", ":", false),
            ("*:Debian", ":", true),
            // The `*:` wildcard looks one mapping deep only.
            ("*:deep", ":", false),
            ("*:defaultlanguage", ":", true),
            ("*:en_us", ":", false),
            ("*:10.0.0.5", ":", true),
            ("*:nowhere", ":", false),
            ("*:os", ":", true),
            // A nested list is compared as its Python repr; `[` would start a glob class.
            ("nested_list:?'a', 'b'?", ":", true),
            ("nested_list:['a', 'b']", ":", false),
            ("os|Debian", "|", true),
            ("ip_interfaces|eth0|10.0.0.5", "|", true),
            ("pipes|x|y", "|", true),
            ("*|Debian", "|", false),
            ("with:colon:v", ":", false),
        ];
        for &(expr, delim, want) in cases {
            let pattern = GrainPattern::new(expr, delim, false).unwrap();
            assert_eq!(pattern.matches(&grains()), want, "G@{expr} (delimiter {delim:?})");
            assert_eq!(matches_by_key(&pattern, &grains()), Some(want).filter(|_| pattern.key().is_some()), "G@{expr} by key");
        }
    }

    #[test]
    fn pcre_table() {
        let cases: &[(&str, bool)] = &[
            ("os:Deb.*", true),
            ("os:deb", true),
            ("os:ian", false),
            ("os:(debian|ubuntu)$", true),
            ("os:DEBIAN$", true),
            ("roles:d.", true),
            ("roles:^c", true),
            ("osmajorrelease:1[0-9]", true),
            ("ip_interfaces:eth0:10\\.0\\.0\\.\\d+", true),
            // Salt lower-cases the pattern: `\D` becomes `\d`, so this matches digits.
            ("osrelease:\\D+", true),
            ("os:\\D+", false),
        ];
        for &(expr, want) in cases {
            let pattern = GrainPattern::new(expr, ":", true).unwrap();
            assert_eq!(pattern.matches(&grains()), want, "P@{expr}");
            assert_eq!(matches_by_key(&pattern, &grains()), Some(want), "P@{expr} by key");
        }
    }

    #[test]
    fn malformed() {
        let err = GrainPattern::new("os", ":", false).unwrap_err();
        assert_eq!(err.to_string(), "grain target 'os' has no delimiter ':' (expected <grain>:<value>)");
        assert!(GrainPattern::new("os:x", "", false).is_err());
        assert!(GrainPattern::new("os:Debian", "|", false).is_err());
        let err = GrainPattern::new("os:Deb(", ":", true).unwrap_err().to_string();
        assert!(err.starts_with("grain_pcre target 'os:Deb(': invalid regular expression 'Deb(':"), "{err}");
        // Only the split after the first delimiter compiles; Salt could still match with it.
        assert!(GrainPattern::new("os:(a|b:c)", ":", true).is_ok());
        // A bad glob is never an error: fnmatch treats a stray `[` as a literal.
        assert!(GrainPattern::new("os:[", ":", false).is_ok());
    }

    #[test]
    fn pathological_nesting_stops_at_the_budget() {
        // Nested {"a": {"a": ...}} 60 deep and a target with 60 delimiters: Salt's recursion would
        // take about 2^60 steps; the budget turns that into a quick non-match.
        let mut value = json!("end");
        for _ in 0..60 {
            value = json!({ "a": value });
        }
        let data = json!({ "a": value }).as_object().unwrap().clone();
        let expr = format!("{}nomatch", "a:".repeat(60));
        let started = std::time::Instant::now();
        assert!(!GrainPattern::new(&expr, ":", false).unwrap().matches(&data));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn python_int() {
        let cases: &[(&str, Option<i128>)] = &[
            ("0", Some(0)),
            ("12", Some(12)),
            ("-1", Some(-1)),
            ("+3", Some(3)),
            (" 4 ", Some(4)),
            ("1_000", Some(1000)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("", None),
            ("-", None),
            ("x1", None),
            ("1.0", None),
        ];
        for &(text, want) in cases {
            assert_eq!(py_int(text), want, "int({text:?})");
        }
    }

    /// Found by salt-fuzz (target target): `G@nested:a:b:` followed by 10,000 `(?:` took a
    /// second per minion, re-joining the rest of the expression for each of its 10,000
    /// delimiters. The rest is now a slice; the answers are the same.
    #[test]
    fn a_huge_regex_is_compiled_once_not_per_delimiter() {
        let expr = format!("k{}(?:\\w{{500}}){{500}}", ":".repeat(64));
        let err = GrainPattern::new(&expr, ":", true).unwrap_err();
        assert!(err.to_string().contains("invalid regular expression"), "{err}");
        assert!(GrainPattern::new("os:deb.*", ":", true).is_ok());
    }

    #[test]
    fn many_delimiters_cost_one_pass() {
        let many = format!("os:{}", "x:".repeat(20_000));
        let pattern = GrainPattern::new(&many, ":", false).unwrap();
        assert!(!pattern.matches(&grains()));
        assert!(GrainPattern::new("os:Deb*", ":", false).unwrap().matches(&grains()));
        let nested = format!("roles:{}", "web:".repeat(10_000));
        assert!(!GrainPattern::new(&nested, ":", false).unwrap().matches(&grains()));
        let colons = format!("os:{}", ":".repeat(20_000));
        assert!(!GrainPattern::new(&colons, ":", false).unwrap().matches(&grains()));
    }
}
