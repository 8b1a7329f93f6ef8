//! The store's reads and writes on top of the wire client: values resolved from their parts,
//! Salt's lists kept without losing entries to concurrent writers, the time index walked for
//! listings. A write is one exchange after one read of the lists it extends (and, rarely, a
//! short fix-up when another writer created a list at the same moment).
//!
//! Lists are extended with `append`, which memcached applies whole, so two writers never lose
//! each other's items. An `append` to a missing list fails: then `add` creates it, and if
//! another writer created it in between (`add` fails), `append` again. Salt's read-modify-write
//! checks membership the same way, so an item may appear twice after a race: readers drop
//! repeats.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::client::{Answer, Client, Item, Request, Verb, KEYS_PER_GET};
use super::encode::{self, ReturnRow, CHUNKED, DAYS, JIDS, MINIONS};
use crate::batch::Indexed;
use crate::{JobSummary, Load, Rejection, Result, ReturnerError};

/// Rounds of `add`/`append` fix-ups for lists that writers create at the same moment.
const LIST_FIX_ROUNDS: usize = 5;

/// One list extension of a write.
struct Append {
    key: String,
    items: Vec<String>,
    /// The records that need it (a failure refuses them).
    owners: Vec<usize>,
    /// Salt's `jids` list is kept for Salt's tools only (listings use the index): once it is
    /// full (memcached's item limit, about 45,000 jobs), it stops growing and nothing fails.
    best_effort: bool,
}

/// What a write sends: values (each for one record), then list extensions.
#[derive(Default)]
struct Plan {
    stores: Vec<(Request, usize)>,
    appends: BTreeMap<String, Append>,
    /// Parts already sent: a value stored under several keys sends its parts once.
    parts: HashSet<String>,
}

impl Plan {
    /// `value` under `key` with `verb` (`Add`: the first value stays), in parts when big.
    fn value(&mut self, owner: usize, verb: Verb, key: String, value: &str) {
        let encode::Items { parts, flags, data } = encode::items_for(value);
        for (part, bytes) in parts {
            if !self.parts.insert(part.clone()) {
                continue;
            }
            self.stores.push((Request::Store { verb: Verb::Set, key: part, flags: encode::TEXT, data: bytes }, owner));
        }
        self.stores.push((Request::Store { verb, key, flags, data }, owner));
    }

    fn append(&mut self, owner: usize, key: &str, item: &str) {
        let a = self.appends.entry(key.to_string()).or_insert_with(|| Append {
            key: key.to_string(),
            items: Vec::new(),
            owners: Vec::new(),
            best_effort: key == JIDS,
        });
        if !a.items.iter().any(|i| i == item) {
            a.items.push(item.to_string());
        }
        if !a.owners.contains(&owner) {
            a.owners.push(owner);
        }
    }

    /// A job's load: the value (the first stays), its summary, and its place in the index.
    fn load(&mut self, owner: usize, jid: &str, load: &str, summary: &str) {
        self.value(owner, Verb::Add, jid.to_string(), load);
        self.value(owner, Verb::Add, encode::summary_key(jid), summary);
        let (day, hhmm, minute) = encode::index_place(jid);
        self.append(owner, DAYS, day);
        self.append(owner, &encode::index_key(day), hhmm);
        self.append(owner, &encode::index_key(minute), jid);
        self.append(owner, JIDS, jid);
    }

    /// The lists a write extends, to read first.
    fn lists(&self) -> Vec<String> {
        self.appends.keys().cloned().collect()
    }
}

impl Client {
    /// `VERSION`: reaches the server.
    pub async fn version(&self) -> Result<String> {
        match self.exchange(&[Request::Version]).await?.pop() {
            Some(Answer::Version(v)) => Ok(v),
            other => Err(ReturnerError::Unavailable(format!("memcache: {} answered {other:?} to version", self.config().server()))),
        }
    }

    /// The items found for `keys` (a `get` per [`KEYS_PER_GET`] keys, one exchange).
    async fn get(&self, keys: &[String]) -> Result<Vec<Item>> {
        let requests: Vec<Request> = keys.chunks(KEYS_PER_GET).map(|k| Request::Get(k.to_vec())).collect();
        let mut items = Vec::new();
        for answer in self.exchange(&requests).await? {
            match answer {
                Answer::Items(found) => items.extend(found),
                other => return Err(ReturnerError::Unavailable(format!("memcache: {} refused a get: {other:?}", self.config().server()))),
            }
        }
        Ok(items)
    }

    /// The values stored under `keys`, by key, values in parts put together. A key without a
    /// value (never written, or evicted: a value missing a part counts as evicted) is absent.
    pub async fn read_values(&self, keys: &[String]) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        let mut chunked = Vec::new();
        for item in self.get(keys).await? {
            if item.flags == CHUNKED {
                let (parts, bytes) = encode::parts_of(&item.data).map_err(|e| self.unreadable(&item.key, e))?;
                chunked.push((item.key, parts, bytes));
            } else {
                out.insert(item.key.clone(), self.text(item)?);
            }
        }
        if chunked.is_empty() {
            return Ok(out);
        }
        let wanted: Vec<String> = chunked.iter().flat_map(|(_, parts, _)| parts.iter().cloned()).collect();
        let mut found: HashMap<String, Vec<u8>> = self.get(&wanted).await?.into_iter().map(|i| (i.key, i.data)).collect();
        'values: for (key, parts, bytes) in chunked {
            let mut value = Vec::with_capacity(bytes);
            for part in &parts {
                let Some(data) = found.remove(part) else {
                    tracing::warn!("memcache: {key} has lost part {part} (evicted): the value is gone");
                    continue 'values;
                };
                value.extend(data);
            }
            if value.len() != bytes {
                return Err(self.unreadable(&key, format!("its parts hold {} bytes, not {bytes}", value.len())));
            }
            out.insert(key.clone(), self.text(Item { key, flags: CHUNKED, data: value })?);
        }
        Ok(out)
    }

    fn text(&self, item: Item) -> Result<String> {
        String::from_utf8(item.data).map_err(|_| self.unreadable(&item.key, "not UTF-8 text".into()))
    }

    /// Stored data this store cannot read (another program's value under one of its keys).
    fn unreadable(&self, key: &str, what: String) -> ReturnerError {
        ReturnerError::Unavailable(format!("memcache: the value of {key} in {} is unreadable: {what}", self.config().server()))
    }

    /// The items of the lists under `keys`.
    async fn read_lists(&self, keys: &[String]) -> Result<HashMap<String, Vec<String>>> {
        Ok(self.read_values(keys).await?.into_iter().map(|(k, v)| (k, encode::parse_list(&v))).collect())
    }

    pub async fn read_list(&self, key: &str) -> Result<Vec<String>> {
        Ok(self.read_lists(&[key.to_string()]).await?.remove(key).unwrap_or_default())
    }

    /// Sends `plan`: its values, then what its lists lack. Gives the records refused, with why.
    async fn run(&self, plan: Plan) -> Result<Vec<(usize, String)>> {
        let current = self.read_lists(&plan.lists()).await?;
        let mut appends: Vec<Append> = plan
            .appends
            .into_values()
            .filter_map(|mut a| {
                let have: HashSet<&String> = current.get(&a.key).map(|l| l.iter().collect()).unwrap_or_default();
                a.items.retain(|i| !have.contains(i));
                (!a.items.is_empty()).then_some(a)
            })
            .collect();
        let mut requests: Vec<Request> = plan.stores.iter().map(|(r, _)| r.clone()).collect();
        requests.extend(appends.iter().map(|a| list_request(Verb::Append, a)));
        let answers = self.exchange(&requests).await?;
        let mut refused = Vec::new();
        for ((_, owner), answer) in plan.stores.iter().zip(&answers) {
            if let Answer::Refused(why) = answer {
                refused.push((*owner, why.clone()));
            }
        }
        // Lists: create the missing ones, append again to those created meanwhile. An append
        // refused on a list that exists (an `add` said so) means the list is full: memcached
        // answers NOT_STORED when an append would pass its item size, as for a missing key.
        let mut pending: Vec<(Verb, Answer)> = answers[plan.stores.len()..].iter().map(|a| (Verb::Append, a.clone())).collect();
        let mut exists: Vec<bool> = vec![false; appends.len()];
        for _ in 0..LIST_FIX_ROUNDS {
            let mut retry = Vec::new();
            for ((a, (verb, answer)), known) in appends.into_iter().zip(pending).zip(exists) {
                match answer {
                    Answer::Stored => {}
                    Answer::NotStored if verb == Verb::Append && known => {
                        if !a.best_effort {
                            let why = format!("the list {} in memcached is full (its item size); this record is not listed there", a.key);
                            refused.extend(a.owners.iter().map(|o| (*o, why.clone())));
                        }
                    }
                    // `add` refused: the list exists now; append to it.
                    Answer::NotStored if verb == Verb::Add => retry.push((Verb::Append, a, true)),
                    Answer::NotStored => retry.push((Verb::Add, a, false)),
                    Answer::Refused(_) if a.best_effort => {}
                    Answer::Refused(why) => {
                        refused.extend(a.owners.iter().map(|o| (*o, format!("the list {} in memcached: {why}", a.key))))
                    }
                    other => return Err(ReturnerError::Unavailable(format!("memcache: unexpected answer {other:?} to a store"))),
                }
            }
            if retry.is_empty() {
                return Ok(refused);
            }
            let requests: Vec<Request> = retry.iter().map(|(verb, a, _)| list_request(*verb, a)).collect();
            let answers = self.exchange(&requests).await?;
            pending = retry.iter().map(|(verb, _, _)| *verb).zip(answers).collect();
            exists = retry.iter().map(|(_, _, known)| *known).collect();
            appends = retry.into_iter().map(|(_, a, _)| a).collect();
        }
        Err(ReturnerError::Unavailable(format!(
            "memcache: lists in {} kept changing under this write ({LIST_FIX_ROUNDS} rounds); it is retried",
            self.config().server()
        )))
    }

    /// Stores the prepared returns; a return the server refuses goes to `rejected`.
    pub async fn write_returns(&self, rows: &[Indexed<ReturnRow>], rejected: &mut Vec<Rejection>) -> Result<()> {
        // `<fun>:<minion>` is the latest return: of several in one batch, the one of the latest jid.
        let mut latest: HashMap<(&str, &str), &str> = HashMap::new();
        for Indexed { row, .. } in rows {
            let jid = latest.entry((row.fun.as_str(), row.id.as_str())).or_insert(row.jid.as_str());
            if row.jid.as_str() > *jid {
                *jid = row.jid.as_str();
            }
        }
        let mut plan = Plan::default();
        for Indexed { index, row } in rows {
            plan.value(*index, Verb::Add, encode::return_key(&row.jid, &row.id), &row.json);
            if latest[&(row.fun.as_str(), row.id.as_str())] == row.jid {
                plan.value(*index, Verb::Set, encode::fun_key(&row.fun, &row.id), &row.json);
            }
            if let Some(summary) = &row.req_summary {
                plan.load(*index, &row.jid, &row.json, summary);
            }
            plan.append(*index, MINIONS, &row.id);
            plan.append(*index, JIDS, &row.jid);
        }
        let mut seen = HashSet::new();
        for (index, why) in self.run(plan).await? {
            if seen.insert(index) {
                let row = &rows.iter().find(|r| r.index == index).expect("every request has its record").row;
                rejected.push(Rejection { index, reason: format!("{}: memcached refused it: {why}", row.describe()) });
            }
        }
        rejected.sort_by_key(|r| r.index);
        Ok(())
    }

    /// Stores a job's load (the first one stays) and lists it.
    pub async fn write_load(&self, jid: &str, load: &Load) -> Result<()> {
        let text = crate::json::dumps_map(load);
        if text.len() > encode::MAX_VALUE_BYTES {
            return Err(ReturnerError::Rejected(format!(
                "memcache: the load of {jid} is more than the {} bytes this store keeps",
                encode::MAX_VALUE_BYTES
            )));
        }
        let mut plan = Plan::default();
        plan.load(0, jid, &text, &crate::summary::encode_summary(load));
        match self.run(plan).await?.pop() {
            Some((_, why)) => Err(ReturnerError::Rejected(format!("memcache: the load of {jid}: memcached refused it: {why}"))),
            None => Ok(()),
        }
    }

    /// `{minion: stored return}` for the keys `<prefix>:<minion>` of every minion in `minions`.
    pub async fn read_by_minion(&self, prefix: &str) -> Result<Map<String, Value>> {
        let mut minions = self.read_list(MINIONS).await?;
        minions.sort();
        let keys: Vec<String> = minions.iter().map(|m| format!("{prefix}:{m}")).filter(|k| encode::check_key(k).is_ok()).collect();
        let mut values = self.read_values(&keys).await?;
        let mut out = Map::new();
        for (m, key) in minions.iter().map(|m| (m, format!("{prefix}:{m}"))) {
            if let Some(text) = values.remove(&key) {
                out.insert(m.clone(), Value::Object(self.object(&key, &text)?));
            }
        }
        Ok(out)
    }

    /// A stored JSON object.
    pub fn object(&self, key: &str, text: &str) -> Result<Map<String, Value>> {
        match serde_json::from_str(text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(self.unreadable(key, "not a JSON object".into())),
            Err(e) => Err(self.unreadable(key, format!("not JSON: {e}"))),
        }
    }

    /// Up to `limit` listed jobs with `lo <(=) jid < hi`, in jid order, from the time index:
    /// days, then their minutes, then those minutes' jids, newest (or oldest) first.
    pub async fn read_summaries(
        &self,
        lo: &str,
        lo_inclusive: bool,
        hi: Option<&str>,
        oldest_first: bool,
        limit: usize,
    ) -> Result<Vec<JobSummary>> {
        let within = |jid: &str| (if lo_inclusive { jid >= lo } else { jid > lo }) && hi.is_none_or(|h| jid < h);
        // A stamp (a day, a minute) may hold jids in range when its prefix is within the range's.
        let may_hold =
            |stamp: &str| stamp >= &lo[..stamp.len().min(lo.len())] && hi.is_none_or(|h| stamp <= &h[..stamp.len().min(h.len())]);
        let order = |v: &mut Vec<String>| {
            v.sort();
            if !oldest_first {
                v.reverse();
            }
        };
        let mut days = self.read_list(DAYS).await?;
        days.retain(|d| d.len() == 8 && may_hold(d));
        order(&mut days);
        let mut out = Vec::new();
        for day in days {
            let mut minutes: Vec<String> = self
                .read_list(&encode::index_key(&day))
                .await?
                .into_iter()
                .map(|hhmm| format!("{day}{hhmm}"))
                .filter(|m| m.len() == 12 && may_hold(m))
                .collect();
            order(&mut minutes);
            for group in minutes.chunks(KEYS_PER_GET) {
                let keys: Vec<String> = group.iter().map(|m| encode::index_key(m)).collect();
                let mut lists = self.read_lists(&keys).await?;
                let mut jids: Vec<String> = keys.iter().flat_map(|k| lists.remove(k).unwrap_or_default()).filter(|j| within(j)).collect();
                order(&mut jids);
                jids.dedup();
                for page in jids.chunks(KEYS_PER_GET) {
                    let keys: Vec<String> = page.iter().map(|j| encode::summary_key(j)).collect();
                    let mut found = self.read_values(&keys).await?;
                    for (jid, key) in page.iter().zip(&keys) {
                        // No summary: the job's load is not stored yet, or was evicted.
                        if let Some(job) = found.remove(key).and_then(|s| crate::summary::decode_summary(jid, &s)) {
                            out.push(job);
                            if out.len() == limit {
                                return Ok(out);
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn list_request(verb: Verb, a: &Append) -> Request {
    Request::Store { verb, key: a.key.clone(), flags: encode::TEXT, data: encode::list_text(&a.items).into_bytes() }
}
