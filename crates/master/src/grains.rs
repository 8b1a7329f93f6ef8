//! The grains the master holds for every minion it knows (what each last reported), kept small
//! at 50,000 minions and read by targets without visiting every minion's grains.
//!
//! Minions of a fleet share most grain values (`os`, `kernel`, `cpu_model`, the same `locale_info`
//! ...). So each distinct value of each top-level grain is held once, with a count of the minions
//! holding it, and a minion's grains are a row of (grain, value) numbers in the order it reported
//! them. A grain term that one top-level grain decides (nearly all: `G@os:Debian`,
//! `P@osrelease:1[12]`, `S@10.0.0.0/8`; not `G@*:x`) is asked once per distinct value of that
//! grain, when a minion holding the value is first met, and each minion then costs a look in its
//! row. The matcher's semantics are untouched: it is asked the same questions about the same
//! values, only not again for a value it has answered already.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use salt_targeting::{GrainTerm, Grains, Matcher};
use serde_json::{Map, Value};

/// A top-level grain name, numbered.
type KeyId = u32;
/// A distinct value of one top-level grain, numbered within that grain.
type ValueId = u32;

#[derive(Default)]
pub(crate) struct GrainStore {
    /// Each minion's top-level grains in the order it reported them.
    rows: HashMap<String, Box<[(KeyId, ValueId)]>>,
    /// The values of each grain, by [`KeyId`]; a grain no minion holds any more is free for reuse.
    keys: Vec<KeyValues>,
    key_ids: HashMap<Arc<str>, KeyId>,
    free_keys: Vec<KeyId>,
}

/// The distinct values of one top-level grain.
#[derive(Default)]
struct KeyValues {
    name: Arc<str>,
    /// By [`ValueId`]; None for a number free for reuse (listed in `free`).
    values: Vec<Option<Held>>,
    ids: HashMap<Arc<Content>, ValueId>,
    free: Vec<ValueId>,
}

struct Held {
    value: Arc<Content>,
    /// How many minions' rows hold it; at 0 it is forgotten.
    holders: u32,
}

/// A grain value compared and hashed by its exact content, including what Python's `str()` of
/// it shows (a grain glob may read that): the order of a mapping's keys, the sign of a zero.
/// `Value`'s own equality says `{"a":1,"b":2} == {"b":2,"a":1}` and `0.0 == -0.0`.
struct Content(Value);

impl PartialEq for Content {
    fn eq(&self, other: &Content) -> bool {
        same(&self.0, &other.0)
    }
}
impl Eq for Content {}

impl Hash for Content {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(&self.0, state);
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => number_bits(a) == number_bits(b),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)),
        (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb)),
        _ => false,
    }
}

fn hash_value<H: Hasher>(value: &Value, state: &mut H) {
    std::mem::discriminant(value).hash(state);
    match value {
        Value::Null => {}
        Value::Bool(b) => b.hash(state),
        Value::Number(n) => number_bits(n).hash(state),
        Value::String(s) => s.hash(state),
        Value::Array(items) => {
            items.len().hash(state);
            items.iter().for_each(|v| hash_value(v, state));
        }
        Value::Object(map) => {
            map.len().hash(state);
            for (k, v) in map {
                k.hash(state);
                hash_value(v, state);
            }
        }
    }
}

/// A number as (kind, bits): 1 and 1.0 differ, as they print differently.
fn number_bits(n: &serde_json::Number) -> (u8, u64) {
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => (0, u),
        (None, Some(i), _) => (1, i as u64),
        (None, None, f) => (2, f.unwrap_or_default().to_bits()),
    }
}

impl KeyValues {
    /// The number of `value`, counting one more holder.
    fn hold(&mut self, value: Value) -> ValueId {
        let content = Content(value);
        if let Some(&id) = self.ids.get(&content) {
            self.held_mut(id).holders += 1;
            return id;
        }
        let content = Arc::new(Content(compact_value(content.0)));
        let held = Some(Held { value: content.clone(), holders: 1 });
        let id = match self.free.pop() {
            Some(id) => {
                self.values[id as usize] = held;
                id
            }
            None => {
                self.values.push(held);
                (self.values.len() - 1) as ValueId
            }
        };
        self.ids.insert(content, id);
        id
    }

    /// One holder of value `id` fewer; the value is forgotten with its last holder.
    fn release(&mut self, id: ValueId) {
        let held = self.held_mut(id);
        held.holders -= 1;
        if held.holders == 0 {
            let value = held.value.clone();
            self.ids.remove(&value);
            self.values[id as usize] = None;
            self.free.push(id);
        }
    }

    fn held_mut(&mut self, id: ValueId) -> &mut Held {
        self.values[id as usize].as_mut().expect("a row names only held values")
    }

    fn value(&self, id: ValueId) -> &Value {
        &self.values[id as usize].as_ref().expect("a row names only held values").value.0
    }

    fn is_unused(&self) -> bool {
        self.ids.is_empty()
    }
}

impl GrainStore {
    /// Keeps `grains` as what minion `id` holds now, in place of what it held before.
    pub(crate) fn insert(&mut self, id: &str, grains: Map<String, Value>) {
        // Held before the old row is released, so a value that did not change keeps its number.
        let row: Box<[(KeyId, ValueId)]> = grains
            .into_iter()
            .map(|(name, value)| {
                let key = self.key_id(name);
                (key, self.keys[key as usize].hold(value))
            })
            .collect();
        let old = match self.rows.get_mut(id) {
            Some(slot) => Some(std::mem::replace(slot, row)),
            None => self.rows.insert(id.to_string(), row),
        };
        if let Some(old) = old {
            self.release(&old);
        }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    /// Minion `id`'s grains as it reported them (a copy).
    pub(crate) fn get(&self, id: &str) -> Option<Map<String, Value>> {
        let row = self.rows.get(id)?;
        Some(row.iter().map(|&(key, value)| (self.keys[key as usize].name.to_string(), self.value(key, value).clone())).collect())
    }

    /// The ids of `ids` that `matcher` selects, each minion matched with the grains held for it
    /// (one without any is matched against no grains, so a grain term does not select it).
    pub(crate) fn matching(&self, matcher: &Matcher, ids: &[String]) -> Vec<String> {
        let mut terms: Vec<TermAnswers> = matcher.grain_terms().iter().map(|term| TermAnswers::new(self, term)).collect();
        ids.iter()
            .filter(|id| {
                let mut row = None;
                matcher.matches_by(id, |i| {
                    let row: &[(KeyId, ValueId)] = row.get_or_insert_with(|| self.rows.get(id.as_str()).map_or(&[][..], |r| &r[..]));
                    terms[i].answer(self, row)
                })
            })
            .cloned()
            .collect()
    }

    fn key_id(&mut self, name: String) -> KeyId {
        if let Some(&id) = self.key_ids.get(name.as_str()) {
            return id;
        }
        let name: Arc<str> = name.into();
        let values = KeyValues { name: name.clone(), ..Default::default() };
        let id = match self.free_keys.pop() {
            Some(id) => {
                self.keys[id as usize] = values;
                id
            }
            None => {
                self.keys.push(values);
                (self.keys.len() - 1) as KeyId
            }
        };
        self.key_ids.insert(name, id);
        id
    }

    fn release(&mut self, row: &[(KeyId, ValueId)]) {
        for &(key, value) in row {
            let values = &mut self.keys[key as usize];
            values.release(value);
            if values.is_unused() {
                self.key_ids.remove(&values.name);
                self.keys[key as usize] = KeyValues::default();
                self.free_keys.push(key);
            }
        }
    }

    fn value(&self, key: KeyId, value: ValueId) -> &Value {
        self.keys[key as usize].value(value)
    }
}

/// One minion's row read as grains, for a term that may read any of them (`G@*:x`).
struct RowGrains<'a> {
    store: &'a GrainStore,
    row: &'a [(KeyId, ValueId)],
}

impl Grains for RowGrains<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        let key = *self.store.key_ids.get(name)?;
        self.row.iter().find(|(k, _)| *k == key).map(|&(k, v)| self.store.value(k, v))
    }
    fn values(&self) -> impl Iterator<Item = &Value> {
        self.row.iter().map(|&(k, v)| self.store.value(k, v))
    }
    fn is_empty(&self) -> bool {
        self.row.is_empty()
    }
}

/// How one grain term of a target is answered for each minion.
enum TermAnswers<'t> {
    /// The term reads one top-level grain: its answer for each value of that grain, found when
    /// first needed.
    ByValue {
        term: &'t GrainTerm,
        /// None when no minion holds that grain.
        key: Option<KeyId>,
        /// By [`ValueId`] of the key: unknown yet, or the answer.
        answers: Vec<Option<bool>>,
        /// The answer for a minion without that grain.
        without: bool,
    },
    /// The term may read any grain: asked about each minion's whole row.
    Whole(&'t GrainTerm),
}

impl<'t> TermAnswers<'t> {
    fn new(store: &GrainStore, term: &'t GrainTerm) -> TermAnswers<'t> {
        let Some(name) = term.key() else { return TermAnswers::Whole(term) };
        let key = store.key_ids.get(name).copied();
        let answers = key.map_or(0, |k| store.keys[k as usize].values.len());
        TermAnswers::ByValue { term, key, answers: vec![None; answers], without: term.matches_value(None) }
    }

    fn answer(&mut self, store: &GrainStore, row: &[(KeyId, ValueId)]) -> bool {
        match self {
            TermAnswers::Whole(term) => term.matches(&RowGrains { store, row }),
            TermAnswers::ByValue { term, key, answers, without } => {
                let Some(&(key, value)) = key.and_then(|key| row.iter().find(|(k, _)| *k == key)) else { return *without };
                *answers[value as usize].get_or_insert_with(|| term.matches_value(Some(store.value(key, value))))
            }
        }
    }
}

/// `map` rebuilt with every map, list and string at its exact size. Decoding grows them by
/// doubling, and the master holds the grains of every minion it knows (50,000 of them).
fn compact_value(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (mut k, v) in map {
                k.shrink_to_fit();
                out.insert(k, compact_value(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(compact_value).collect::<Vec<_>>().into_boxed_slice().into_vec()),
        Value::String(mut s) => {
            s.shrink_to_fit();
            Value::String(s)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salt_targeting::TargetType;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().expect("grains are an object").clone()
    }

    /// Grains of a small, varied fleet: shared and unique values, nested maps and lists, values
    /// equal to `Value`'s `==` but printed differently, and no grains at all for `bare`.
    fn fleet() -> Vec<(&'static str, Option<Map<String, Value>>)> {
        vec![
            (
                "web1",
                Some(map(json!({"os": "Debian", "osrelease": "12", "roles": ["web", "DB"], "ipv4": ["10.0.0.1"],
                "ip_interfaces": {"eth0": ["10.0.0.1"]}, "locale": {"lang": "en_US", "enc": "UTF-8"}, "zero": 0.0, "n": 1}))),
            ),
            (
                "web2",
                Some(map(json!({"os": "Ubuntu", "osrelease": "22.04", "roles": ["web"], "ipv4": ["10.0.0.2"],
                "ip_interfaces": {"eth0": ["10.0.0.2"]}, "locale": {"enc": "UTF-8", "lang": "en_US"}, "zero": -0.0, "n": 1.0}))),
            ),
            (
                "db1",
                Some(map(json!({"os": "Debian", "osrelease": "11", "roles": [{"name": "db"}], "ipv4": ["10.0.1.1"],
                "nested": {"a": {"b": "deep"}}, "list_of_lists": [["a", "b"]], "n": -1}))),
            ),
            ("db2", Some(map(json!({"os": "debian", "with:colon": "v", "flag": false, "none": null})))),
            ("empty", Some(Map::new())),
            ("bare", None),
            ("Web3", Some(map(json!({"os": "Rocky", "zero": 0.0, "locale": {"lang": "en_US", "enc": "UTF-8"}})))),
        ]
    }

    const TARGETS: &[(&str, TargetType, &str)] = &[
        ("os:Debian", TargetType::Grain, ":"),
        ("os:deb*", TargetType::Grain, ":"),
        ("os:*", TargetType::Grain, ":"),
        ("nosuch:*", TargetType::Grain, ":"),
        ("roles:web", TargetType::Grain, ":"),
        ("roles:db", TargetType::Grain, ":"),
        ("roles:name:db", TargetType::Grain, ":"),
        ("ip_interfaces:eth0:10.0.0.*", TargetType::Grain, ":"),
        ("locale:lang:en_us", TargetType::Grain, ":"),
        ("locale:*", TargetType::Grain, ":"),
        ("nested:a:b:deep", TargetType::Grain, ":"),
        ("list_of_lists:?'a', 'b'?", TargetType::Grain, ":"),
        ("zero:-*", TargetType::Grain, ":"),
        ("zero:0.0", TargetType::Grain, ":"),
        ("n:1", TargetType::Grain, ":"),
        ("n:1.0", TargetType::Grain, ":"),
        ("n:-1", TargetType::Grain, ":"),
        ("flag:false", TargetType::Grain, ":"),
        ("none:None", TargetType::Grain, ":"),
        ("with:colon:v", TargetType::Grain, ":"),
        ("*:Debian", TargetType::Grain, ":"),
        ("*:lang", TargetType::Grain, ":"),
        ("os|Debian", TargetType::Grain, "|"),
        ("locale|lang|en*", TargetType::Grain, "|"),
        ("os:(debian|rocky)$", TargetType::GrainPcre, ":"),
        ("osrelease:1[12]", TargetType::GrainPcre, ":"),
        ("10.0.0.0/24", TargetType::Ipcidr, ":"),
        ("G@os:Debian and web*", TargetType::Compound, ":"),
        ("G@os:Debian and web* or L@db2,bare", TargetType::Compound, ":"),
        ("not G@os:Debian", TargetType::Compound, ":"),
        ("not G@os:Debian and not G@*:Debian", TargetType::Compound, ":"),
        ("( G@roles:web or P@os:rock ) and not S@10.0.0.2", TargetType::Compound, ":"),
        ("G|@locale|enc|utf-8 and not E@web", TargetType::Compound, ":"),
        ("web*", TargetType::Glob, ":"),
    ];

    /// What the plain walk gives: each minion's whole grains asked of the matcher (no grains
    /// read as an empty map, as the master always did).
    fn walk(fleet: &[(&'static str, Option<Map<String, Value>>)], matcher: &Matcher) -> Vec<String> {
        let none = Map::new();
        fleet.iter().filter(|(id, g)| matcher.matches(id, g.as_ref().unwrap_or(&none))).map(|(id, _)| id.to_string()).collect()
    }

    fn assert_same_as_walk(store: &GrainStore, fleet: &[(&'static str, Option<Map<String, Value>>)]) {
        let ids: Vec<String> = fleet.iter().map(|(id, _)| id.to_string()).collect();
        for &(tgt, tgt_type, delimiter) in TARGETS {
            let matcher = Matcher::new(&json!(tgt), tgt_type, delimiter).unwrap();
            assert_eq!(store.matching(&matcher, &ids), walk(fleet, &matcher), "{tgt_type} {tgt:?}");
        }
    }

    fn store_of(fleet: &[(&'static str, Option<Map<String, Value>>)]) -> GrainStore {
        let mut store = GrainStore::default();
        for (id, grains) in fleet {
            if let Some(g) = grains {
                store.insert(id, g.clone());
            }
        }
        store
    }

    #[test]
    fn indexed_targets_select_what_the_walk_selects() {
        let fleet = fleet();
        let store = store_of(&fleet);
        assert_same_as_walk(&store, &fleet);
        // Not vacuous: the table has targets that select some minions and not others.
        let m = Matcher::new(&json!("os:Debian"), TargetType::Grain, ":").unwrap();
        assert_eq!(store.matching(&m, &["web1".into(), "web2".into(), "db2".into(), "bare".into()]), ["web1", "db2"]);
    }

    #[test]
    fn grains_reported_again_replace_the_old_ones() {
        let mut fleet = fleet();
        let mut store = store_of(&fleet);
        // web1 moves to Ubuntu and drops grains; db1 takes web2's grains; bare reports at last;
        // Web3 reports nothing any more (an empty map).
        let web2 = fleet[1].1.clone();
        fleet[0].1 = Some(map(json!({"os": "Ubuntu", "roles": ["cache"], "new": "x"})));
        fleet[2].1 = web2;
        fleet[5].1 = Some(map(json!({"os": "Debian", "ipv4": ["10.0.0.9"]})));
        fleet[6].1 = Some(Map::new());
        for i in [0, 2, 5, 6] {
            let (id, g) = &fleet[i];
            store.insert(id, g.clone().unwrap());
        }
        assert_same_as_walk(&store, &fleet);
        for (id, g) in &fleet {
            assert_eq!(store.get(id), g.clone(), "{id}");
        }
    }

    #[test]
    fn a_value_is_held_once_and_forgotten_with_its_last_holder() {
        let mut store = GrainStore::default();
        for i in 0..100 {
            store.insert(&format!("m{i}"), map(json!({"os": "Debian", "id": format!("m{i}"), "locale": {"a": 1, "b": 2}})));
        }
        let values = |store: &GrainStore, name: &str| store.key_ids.get(name).map_or(0, |&k| store.keys[k as usize].ids.len());
        assert_eq!(values(&store, "os"), 1);
        assert_eq!(values(&store, "locale"), 1);
        assert_eq!(values(&store, "id"), 100);
        // Same content in another key order is another value (it prints differently).
        store.insert("m0", map(json!({"os": "Debian", "id": "m0", "locale": {"b": 2, "a": 1}})));
        assert_eq!(values(&store, "locale"), 2);
        // A grain no minion holds any more is forgotten, and its numbers are reused.
        store.insert("m1", map(json!({"only_m1": true})));
        assert!(store.key_ids.contains_key("only_m1"));
        store.insert("m1", map(json!({"os": "Debian"})));
        assert!(!store.key_ids.contains_key("only_m1"));
        assert_eq!(values(&store, "id"), 99);
        store.insert("m1", map(json!({"other": 1})));
        assert_eq!(store.keys.len(), 4, "the freed grain's number was reused");
        assert_eq!(store.get("m0").unwrap(), map(json!({"os": "Debian", "id": "m0", "locale": {"b": 2, "a": 1}})));
        assert!(store.get("nobody").is_none());
    }
}
