//! The grains the master holds for every minion it knows (what each last reported), kept small
//! at 50,000 minions and read by targets without visiting every minion's grains.
//!
//! Minions of a fleet share most grain values (`os`, `kernel`, `cpu_model`, the same `locale_info`
//! ...). So each distinct value of each top-level grain is held once, with a count of the minions
//! holding it, and a minion's grains are a row of (grain, value) numbers in the order it reported
//! them. A grain term that one top-level grain decides (nearly all: `G@os:Debian`,
//! `P@osrelease:1[12]`, `S@10.0.0.0/8`; not `G@*:x`) is asked once per distinct value of that
//! grain, when a minion holding the value is first met. Which value each minion holds is read
//! from a column of that grain's value numbers by minion, made when a target first reads the
//! grain and kept up to date as grains arrive: reading it from 50,000 rows scattered in memory
//! cost more than the matching. The matcher's semantics are untouched: it is asked the same
//! questions about the same values, only not again for a value it has answered already.

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
    /// Each minion's number, the index of its row (a minion keeps it for good).
    slots: HashMap<String, u32>,
    /// Each minion's top-level grains in the order it reported them.
    rows: Vec<Box<[(KeyId, ValueId)]>>,
    /// The values of each grain, by [`KeyId`]; a grain no minion holds any more is free for reuse.
    keys: Vec<KeyValues>,
    key_ids: HashMap<Arc<str>, KeyId>,
    free_keys: Vec<KeyId>,
    /// The row of each id of the accepted listing last matched over, kept while the listing
    /// and the set of minions stay the same: looking 50,000 ids up in `slots` for every
    /// target cost more than matching them.
    aligned: Option<Aligned>,
    /// The value of a grain for every minion, by slot, for the grains targets read lately.
    columns: HashMap<KeyId, Column>,
    /// Counts the targets matched, to know which column was used least lately.
    clock: u64,
}

/// Columns kept at most: 50,000 minions' column is 200 KB.
const MAX_COLUMNS: usize = 64;

/// In a [`Column`], a minion that does not have the grain.
const ABSENT: ValueId = ValueId::MAX;

struct Column {
    /// By slot: the minion's value of the grain, or [`ABSENT`].
    values: Vec<ValueId>,
    /// The `clock` of the last target that read it.
    used: u64,
}

struct Aligned {
    /// The listing (held, so that a new listing is never at the same address).
    ids: Arc<Vec<String>>,
    /// How many minions had grains when it was made.
    minions: usize,
    /// By position in `ids`: its slot, if it has grains.
    slots: Vec<Option<u32>>,
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
        let slot = match self.slots.get(id) {
            Some(&slot) => {
                let old = std::mem::replace(&mut self.rows[slot as usize], row);
                self.release(&old);
                slot
            }
            None => {
                self.slots.insert(id.to_string(), self.rows.len() as u32);
                self.rows.push(row);
                (self.rows.len() - 1) as u32
            }
        };
        let (rows, columns) = (&self.rows, &mut self.columns);
        for (&key, column) in columns.iter_mut() {
            column.values.resize(rows.len(), ABSENT);
            column.values[slot as usize] = value_in(&rows[slot as usize], key).unwrap_or(ABSENT);
        }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// Minion `id`'s grains as it reported them (a copy).
    pub(crate) fn get(&self, id: &str) -> Option<Map<String, Value>> {
        let row = &self.rows[*self.slots.get(id)? as usize];
        Some(row.iter().map(|&(key, value)| (self.keys[key as usize].name.to_string(), self.value(key, value).clone())).collect())
    }

    /// The ids of `ids` that `matcher` selects, each minion matched with the grains held for it
    /// (one without any is matched against no grains, so a grain term does not select it).
    pub(crate) fn matching(&mut self, matcher: &Matcher, ids: &Arc<Vec<String>>) -> Vec<String> {
        self.align(ids);
        self.clock += 1;
        let keys: Vec<KeyId> = matcher.grain_terms().iter().filter_map(|term| self.key_ids.get(term.key()?).copied()).collect();
        for key in keys {
            self.make_column(key);
        }
        let store = &*self;
        let slots = &store.aligned.as_ref().expect("aligned just now").slots;
        let mut terms: Vec<TermAnswers> = matcher.grain_terms().iter().map(|term| TermAnswers::new(store, term)).collect();
        ids.iter()
            .zip(slots)
            .filter(|(id, &slot)| matcher.matches_by(id, |i| terms[i].answer(store, slot)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Makes sure grain `key` has a column, marked used now, if it can: the column used least
    /// lately makes room for it, unless the target being matched reads them all (its other
    /// grains are then read from the rows).
    fn make_column(&mut self, key: KeyId) {
        if let Some(column) = self.columns.get_mut(&key) {
            column.used = self.clock;
            return;
        }
        if self.columns.len() >= MAX_COLUMNS {
            match self.columns.iter().filter(|(_, c)| c.used < self.clock).min_by_key(|(_, c)| c.used) {
                Some((&oldest, _)) => self.columns.remove(&oldest),
                None => return,
            };
        }
        let values = self.rows.iter().map(|row| value_in(row, key).unwrap_or(ABSENT)).collect();
        self.columns.insert(key, Column { values, used: self.clock });
    }

    /// Makes `aligned` give the slot of each of `ids`. A minion keeps its slot, so for the same
    /// listing only the ids that had no grains are looked up again when minions were added.
    fn align(&mut self, ids: &Arc<Vec<String>>) {
        let minions = self.slots.len();
        match &mut self.aligned {
            Some(a) if Arc::ptr_eq(&a.ids, ids) => {
                if a.minions != minions {
                    for (id, slot) in ids.iter().zip(&mut a.slots).filter(|(_, slot)| slot.is_none()) {
                        *slot = self.slots.get(id.as_str()).copied();
                    }
                    a.minions = minions;
                }
            }
            _ => {
                let slots = ids.iter().map(|id| self.slots.get(id.as_str()).copied()).collect();
                self.aligned = Some(Aligned { ids: ids.clone(), minions, slots });
            }
        }
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
                self.columns.remove(&key);
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

/// The value of grain `key` in `row`.
fn value_in(row: &[(KeyId, ValueId)], key: KeyId) -> Option<ValueId> {
    row.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
}

/// One minion's row read as grains, for a term that may read any of them (`G@*:x`).
struct RowGrains<'a> {
    store: &'a GrainStore,
    row: &'a [(KeyId, ValueId)],
}

impl Grains for RowGrains<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        let key = *self.store.key_ids.get(name)?;
        value_in(self.row, key).map(|v| self.store.value(key, v))
    }
    fn values(&self) -> impl Iterator<Item = &Value> {
        self.row.iter().map(|&(k, v)| self.store.value(k, v))
    }
    fn is_empty(&self) -> bool {
        self.row.is_empty()
    }
}

/// How one grain term of a target is answered for each minion.
enum TermAnswers<'s> {
    /// The term reads one top-level grain: its answer for each value of that grain, found when
    /// first needed.
    ByValue {
        term: &'s GrainTerm,
        /// The grain's number and its column if it has one; None when no minion holds that
        /// grain.
        key: Option<(KeyId, Option<&'s [ValueId]>)>,
        /// By [`ValueId`] of the grain: unknown yet, or the answer.
        answers: Vec<Option<bool>>,
        /// The answer for a minion without that grain.
        without: bool,
    },
    /// The term may read any grain: asked about each minion's whole row.
    Whole(&'s GrainTerm),
}

impl<'s> TermAnswers<'s> {
    /// For a term whose grain has a column, if any minion holds it (see `make_column`).
    fn new(store: &'s GrainStore, term: &'s GrainTerm) -> TermAnswers<'s> {
        let Some(name) = term.key() else { return TermAnswers::Whole(term) };
        let key = store.key_ids.get(name).map(|&k| (k, store.columns.get(&k).map(|c| &c.values[..])));
        let answers = key.map_or(0, |(k, _)| store.keys[k as usize].values.len());
        TermAnswers::ByValue { term, key, answers: vec![None; answers], without: term.matches_value(None) }
    }

    /// The answer for the minion in `slot` (None: a minion without grains).
    fn answer(&mut self, store: &GrainStore, slot: Option<u32>) -> bool {
        match self {
            TermAnswers::Whole(term) => {
                let row = slot.map_or(&[][..], |slot| &store.rows[slot as usize][..]);
                term.matches(&RowGrains { store, row })
            }
            TermAnswers::ByValue { term, key, answers, without } => {
                let Some((key, column)) = *key else { return *without };
                let value = match (slot, column) {
                    (None, _) => ABSENT,
                    (Some(slot), Some(column)) => column[slot as usize],
                    (Some(slot), None) => value_in(&store.rows[slot as usize], key).unwrap_or(ABSENT),
                };
                match value {
                    ABSENT => *without,
                    value => *answers[value as usize].get_or_insert_with(|| term.matches_value(Some(store.value(key, value)))),
                }
            }
        }
    }
}

/// `v` rebuilt with every map, list and string at its exact size. Decoding grows them by
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

    /// `ids` are the fleet's, in its order: one listing for several calls, as the master's
    /// accepted listing is.
    fn assert_same_as_walk(store: &mut GrainStore, fleet: &[(&'static str, Option<Map<String, Value>>)], ids: &Arc<Vec<String>>) {
        for &(tgt, tgt_type, delimiter) in TARGETS {
            let matcher = Matcher::new(&json!(tgt), tgt_type, delimiter).unwrap();
            assert_eq!(store.matching(&matcher, ids), walk(fleet, &matcher), "{tgt_type} {tgt:?}");
        }
    }

    fn ids_of(fleet: &[(&'static str, Option<Map<String, Value>>)]) -> Arc<Vec<String>> {
        Arc::new(fleet.iter().map(|(id, _)| id.to_string()).collect())
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
        let mut store = store_of(&fleet);
        assert_same_as_walk(&mut store, &fleet, &ids_of(&fleet));
        // Not vacuous: the table has targets that select some minions and not others.
        let m = Matcher::new(&json!("os:Debian"), TargetType::Grain, ":").unwrap();
        let some = Arc::new(vec!["web1".into(), "web2".into(), "db2".into(), "bare".into()]);
        assert_eq!(store.matching(&m, &some), ["web1", "db2"]);
    }

    #[test]
    fn grains_reported_again_replace_the_old_ones() {
        let mut fleet = fleet();
        let mut store = store_of(&fleet);
        let ids = ids_of(&fleet);
        assert_same_as_walk(&mut store, &fleet, &ids);
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
        assert_same_as_walk(&mut store, &fleet, &ids);
        for (id, g) in &fleet {
            assert_eq!(store.get(id), g.clone(), "{id}");
        }
    }

    /// Grains drawn from small pools, so minions share values, with grains missing, extra and
    /// in varied orders; `seed` steps a linear congruential generator.
    fn drawn_grains(seed: &mut u64) -> Map<String, Value> {
        let mut next = |n: u64| {
            *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (*seed >> 33) % n
        };
        let pools: [(&str, Vec<Value>); 7] = [
            ("os", vec![json!("Debian"), json!("debian"), json!("Ubuntu"), json!("Rocky")]),
            ("osrelease", vec![json!("12"), json!("11"), json!(12), json!(12.0)]),
            ("roles", vec![json!(["web"]), json!(["web", "db"]), json!([]), json!([{"name": "db"}])]),
            ("locale", vec![json!({"lang": "en_US", "enc": "UTF-8"}), json!({"enc": "UTF-8", "lang": "en_US"}), json!({})]),
            ("ipv4", vec![json!(["10.0.0.1"]), json!(["10.0.1.1", "127.0.0.1"]), json!("10.0.0.9")]),
            ("zero", vec![json!(0.0), json!(-0.0), json!(0), json!(null), json!(false)]),
            ("Debian", vec![json!(true), json!("x")]),
        ];
        let mut grains = Map::new();
        for (key, pool) in &pools {
            if next(5) > 0 {
                grains.insert(key.to_string(), pool[next(pool.len() as u64) as usize].clone());
            }
        }
        if next(2) == 0 {
            grains = grains.into_iter().rev().collect();
        }
        grains
    }

    #[test]
    fn drawn_fleets_reporting_again_and_again_select_what_the_walk_selects() {
        let names: Vec<&'static str> = (0..200).map(|i| &*Box::leak(format!("{}{i}", ["web", "db"][i % 2]).into_boxed_str())).collect();
        let mut fleet: Vec<(&'static str, Option<Map<String, Value>>)> = names.iter().map(|&id| (id, None)).collect();
        let ids = ids_of(&fleet);
        let mut store = GrainStore::default();
        let mut seed = 7;
        for round in 0..4 {
            // Each round about half the fleet reports (again); some minions never do.
            for (i, (id, grains)) in fleet.iter_mut().enumerate() {
                if i % 10 != 9 && (i + round) % 2 == 0 {
                    let drawn = drawn_grains(&mut seed);
                    store.insert(id, drawn.clone());
                    *grains = Some(drawn);
                }
            }
            assert_same_as_walk(&mut store, &fleet, &ids);
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

    #[test]
    fn a_column_follows_the_grains_and_goes_with_its_grain() {
        let mut store = GrainStore::default();
        let ids = Arc::new(vec!["m1".to_string(), "m2".to_string()]);
        let selected =
            |store: &mut GrainStore, tgt: &str| store.matching(&Matcher::new(&json!(tgt), TargetType::Grain, ":").unwrap(), &ids);
        store.insert("m1", map(json!({"only_m1": true})));
        assert_eq!(selected(&mut store, "only_m1:true"), ["m1"]);
        // The grain is gone with m1's new grains, and its number goes to the next new grain.
        store.insert("m1", map(json!({"os": "Debian"})));
        store.insert("m2", map(json!({"new": true})));
        assert_eq!(store.keys.len(), 2, "the grain's number was reused");
        assert_eq!(selected(&mut store, "new:true"), ["m2"]);
        assert!(selected(&mut store, "only_m1:true").is_empty());
        store.insert("m1", map(json!({"os": "Ubuntu", "new": true})));
        assert_eq!(selected(&mut store, "new:true"), ["m1", "m2"]);
        assert!(selected(&mut store, "os:Debian").is_empty());
    }

    #[test]
    fn a_target_reading_more_grains_than_there_are_columns() {
        let grains = |n: usize| map(Value::Object((0..MAX_COLUMNS + 10).map(|k| (format!("g{k}"), json!(k % (n + 1) == 0))).collect()));
        let fleet: Vec<(&'static str, Option<Map<String, Value>>)> = vec![("a", Some(grains(0))), ("b", Some(grains(1))), ("c", None)];
        let mut store = store_of(&fleet);
        let ids = ids_of(&fleet);
        let every = (0..MAX_COLUMNS + 10).map(|k| format!("G@g{k}:true")).collect::<Vec<_>>();
        for tgt in [every.join(" and "), every.join(" or "), format!("not ( {} )", every.join(" and "))] {
            let matcher = Matcher::new(&json!(tgt), TargetType::Compound, ":").unwrap();
            assert_eq!(store.matching(&matcher, &ids), walk(&fleet, &matcher), "{tgt}");
        }
        assert_eq!(store.columns.len(), MAX_COLUMNS);
    }
}
