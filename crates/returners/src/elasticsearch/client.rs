//! I/O with the cluster over its REST API: one client for all of a store's requests, the
//! hosts tried in turn, every answer read within a bound and every request within a deadline,
//! failures classified (retry later, or this document refused for good), never a password in
//! a message.
//!
//! Writes go through `_bulk`, at most [`BULK_MAX_BYTES`] per request (a larger document goes
//! alone), so a batch of 1,000 ordinary returns is one round trip. Reads that may carry big
//! documents first find the documents' ids and sizes, then fetch them in groups of a bounded
//! size ([`Client::sources`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::config::ElasticsearchConfig;
use super::encode::{self, Doc, Outcome, Server};
use super::NAME;
use crate::batch::by_size;
use crate::http;
use crate::secret::Secret;
use crate::{Result, ReturnerError};

/// Bytes of documents per `_bulk` request. Elasticsearch refuses requests over
/// `http.max_content_length` (100 MB by default, 10 MB on some hosted clusters): this stays
/// under both, and a document alone may be bigger (the server then refuses that one).
const BULK_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Documents per `_bulk` request, so that its answer (a few hundred bytes a document) stays
/// well within [`http::MAX_ANSWER_BYTES`].
const BULK_MAX_DOCS: usize = 2000;
/// Stored bytes of documents fetched per `_mget`.
const FETCH_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// The most one document read alone may hold (`get_load`): a document is at most a request,
/// and the server may escape what it sends back.
const DOC_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Answers that carry no documents (an index check, an acknowledgement).
const SMALL_ANSWER_BYTES: usize = 1024 * 1024;
/// The transfer rate a request's deadline allows for beyond `timeout`.
const BYTES_PER_SECOND: u64 = 1024 * 1024;

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

pub(crate) struct Client {
    http: reqwest::Client,
    hosts: Vec<Url>,
    /// The host that answered last: requests start there.
    current: AtomicUsize,
    username: String,
    password: Secret,
    timeout: Duration,
    /// Indices known to exist (checked, or created, once per process), and whether each is an
    /// alias (as this store makes them) or a bare index (made by someone else).
    known: Mutex<HashMap<String, bool>>,
    /// What the server can do, asked once.
    server: OnceCell<Server>,
}

/// A server's answer, read within its bound.
struct Answer {
    status: StatusCode,
    body: Bytes,
    /// The host that gave it (`http://es1:9200`), for messages.
    at: String,
}

impl Client {
    /// A client for `config`'s hosts; nothing is sent yet. A CA bundle that cannot be read is
    /// an error now.
    pub(crate) fn new(config: &ElasticsearchConfig) -> Result<Client> {
        let invalid = |what: String| ReturnerError::Invalid(format!("{NAME}: {what}"));
        // As Python's client: `timeout` for each wait on the server (a stalled one is found that
        // soon), while a request's whole deadline allows for the bytes it moves.
        let mut builder = http::builder(config.timeout).read_timeout(config.timeout);
        if let Some(path) = &config.ca_certs {
            let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot read ca_certs {}: {e}", path.display())))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|roots| !roots.is_empty())
                .ok_or_else(|| invalid(format!("ca_certs {} holds no PEM certificate", path.display())))?;
            // As Python's client: the bundle replaces the system's roots.
            builder = builder.tls_certs_only(roots);
        }
        if !config.verify_certs {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        for p in &config.proxies {
            let proxy = match p.scheme.as_str() {
                "http" => reqwest::Proxy::http(&p.url),
                "https" => reqwest::Proxy::https(&p.url),
                _ => reqwest::Proxy::all(&p.url),
            }
            .map_err(|e| invalid(format!("proxy {} is not usable: {e}", config.password.scrub(&p.url))))?;
            builder = builder.proxy(proxy);
        }
        Ok(Client {
            http: http::build(builder)?,
            hosts: config.hosts.clone(),
            current: AtomicUsize::new(0),
            username: config.username.clone(),
            password: config.password.clone(),
            timeout: config.timeout,
            known: Mutex::new(HashMap::new()),
            server: OnceCell::new(),
        })
    }

    /// What the server is and can do (`GET /`, once): it answers, takes the login, and is one
    /// this store can use.
    pub(crate) async fn server(&self) -> Result<Server> {
        self.server
            .get_or_try_init(|| async {
                let answer = self.send(Method::GET, &[], &[], None, SMALL_ANSWER_BYTES).await?;
                let at = answer.at.clone();
                // An old server is unusable until it is upgraded: the spool keeps the records.
                Server::from_info(&self.ok_json(answer)?).map_err(|why| ReturnerError::Unavailable(format!("{NAME}: {at}: {why}")))
            })
            .await
            .copied()
    }

    /// Makes sure `alias` exists: if there is neither an alias nor an index of that name,
    /// creates `<alias>-v1` from `definition` with the alias, in one request (Salt's
    /// `_ensure_index` makes two). Once per process, or after [`Client::forget`].
    pub(crate) async fn ensure(&self, alias: &str, definition: Value) -> Result<()> {
        if self.known().contains_key(alias) {
            return Ok(());
        }
        let is_alias = self.send(Method::HEAD, &["_alias", alias], &[], None, SMALL_ANSWER_BYTES).await?;
        let found = match is_alias.status {
            s if s.is_success() => Some(true),
            StatusCode::NOT_FOUND => {
                let index = self.send(Method::HEAD, &[alias], &[], None, SMALL_ANSWER_BYTES).await?;
                match index.status {
                    s if s.is_success() => Some(false),
                    StatusCode::NOT_FOUND => None,
                    _ => return Err(self.refused(&index)),
                }
            }
            _ => return Err(self.refused(&is_alias)),
        };
        if found.is_none() {
            let mut definition = definition;
            definition["aliases"] = json!({ alias: {} });
            let index = format!("{alias}-v1");
            let created = self.send(Method::PUT, &[&index], &[], Some(json_body(&definition)), SMALL_ANSWER_BYTES).await?;
            // Another writer may have created it meanwhile.
            let raced =
                created.status == StatusCode::BAD_REQUEST && String::from_utf8_lossy(&created.body).contains("resource_already_exists");
            if !created.status.is_success() && !raced {
                return Err(self.refused(&created));
            }
        }
        self.known().insert(alias.to_string(), found.unwrap_or(true));
        Ok(())
    }

    /// Forgets that `index` exists (it was deleted): the next [`Client::ensure`] checks again.
    pub(crate) fn forget(&self, index: &str) {
        self.known().remove(index);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates `docs` with `_bulk` requests of bounded size, and says what became of each:
    /// [`Outcome::Stored`], [`Outcome::Refused`] or [`Outcome::IndexGone`]. `Err` when the
    /// server cannot take them now (the caller writes them all again later: `create` makes
    /// that harmless).
    pub(crate) async fn write(&self, docs: &[Doc]) -> Result<Vec<Outcome>> {
        let mut all = Vec::with_capacity(docs.len());
        for chunk in by_size(docs, BULK_MAX_BYTES, Doc::bytes).into_iter().flat_map(|c| c.chunks(BULK_MAX_DOCS)) {
            let outcomes = match self.bulk(chunk).await {
                Ok(outcomes) => outcomes,
                // The server refused the request as a whole (a document over its size limit):
                // each document alone, to find the one it refuses.
                Err(ReturnerError::Rejected(_)) if chunk.len() > 1 => {
                    let mut outcomes = Vec::with_capacity(chunk.len());
                    for doc in chunk {
                        outcomes.push(match self.bulk(std::slice::from_ref(doc)).await {
                            Ok(mut one) => one.pop().unwrap_or(Outcome::Stored),
                            Err(ReturnerError::Rejected(why)) => Outcome::Refused(why),
                            Err(e) => return Err(e),
                        });
                    }
                    outcomes
                }
                Err(ReturnerError::Rejected(why)) => vec![Outcome::Refused(why)],
                Err(e) => return Err(e),
            };
            for outcome in outcomes {
                if let Outcome::RetryLater(why) = outcome {
                    return Err(ReturnerError::Unavailable(format!("{NAME}: {why}")));
                }
                all.push(outcome);
            }
        }
        Ok(all)
    }

    async fn bulk(&self, docs: &[Doc]) -> Result<Vec<Outcome>> {
        let require_alias = self.server().await?.require_alias;
        let body = Bytes::from(encode::bulk_body(docs, |index| require_alias && self.known().get(index).copied().unwrap_or(false)));
        let answer = self.send(Method::POST, &["_bulk"], &[], Some((body, NDJSON)), http::MAX_ANSWER_BYTES).await?;
        let at = answer.at.clone();
        let outcomes = encode::bulk_outcomes(&self.ok_json(answer)?, docs.len())
            .map_err(|e| ReturnerError::Unavailable(format!("{NAME}: {at} gave {e}")))?;
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                Outcome::RetryLater(why) => Outcome::RetryLater(format!("{at} could not store a document now: {why}")),
                Outcome::Refused(why) => Outcome::Refused(format!("{at} refused the document: {why}")),
                stored => stored,
            })
            .collect())
    }

    /// Makes what was written to `indices` visible to searches (Elasticsearch shows new
    /// documents to searches within a second; a reader that just wrote wants them now). Writes
    /// never ask for this, so a burst of returns costs the cluster nothing. A user without the
    /// right to refresh reads what the cluster refreshed by itself.
    pub(crate) async fn refresh(&self, indices: &[&str]) -> Result<()> {
        let answer =
            self.send(Method::POST, &[&indices.join(","), "_refresh"], &[("ignore_unavailable", "true")], None, SMALL_ANSWER_BYTES).await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            StatusCode::FORBIDDEN => Ok(()),
            _ => Err(self.refused(&answer)),
        }
    }

    /// `_search` over `indices` (missing ones count as empty). `body` asks for ids, sizes or
    /// aggregations only: documents come through [`Client::sources`].
    pub(crate) async fn search(&self, indices: &[&str], body: &Value) -> Result<Value> {
        let path = [&indices.join(","), "_search"];
        let answer =
            self.send(Method::POST, &path, &[("ignore_unavailable", "true")], Some(json_body(body)), http::MAX_ANSWER_BYTES).await?;
        let at = answer.at.clone();
        let found = self.ok_json(answer)?;
        // Some shards did not answer: the results are partial, and a job would look smaller
        // than it is.
        if found.pointer("/_shards/failed").and_then(Value::as_u64).unwrap_or(0) > 0 {
            let why = encode::error_text(found.pointer("/_shards/failures/0/reason"));
            return Err(ReturnerError::Unavailable(format!("{NAME}: {at}: a search failed on some shards: {why}")));
        }
        Ok(found)
    }

    /// The `_source` of one document, None when it (or its index) does not exist.
    pub(crate) async fn source(&self, index: &str, id: &str) -> Result<Option<Value>> {
        let answer = self.send(Method::GET, &[index, "_doc", id], &[], None, DOC_MAX_BYTES).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let doc = self.ok_json(answer)?;
        Ok(doc.get("found").and_then(Value::as_bool).unwrap_or(false).then(|| doc.get("_source").cloned()).flatten())
    }

    /// The sources of the documents `ids` of `index` (each with the size it was stored with),
    /// `fields` of them only when given, in the order of `ids`; documents gone meanwhile are
    /// left out. Fetched in groups of about [`FETCH_GROUP_BYTES`], each answer bounded by what
    /// its documents hold.
    pub(crate) async fn sources(&self, index: &str, ids: &[(String, usize)], fields: Option<&[&str]>) -> Result<Vec<(String, Value)>> {
        let mut out = Vec::with_capacity(ids.len());
        for group in by_size(ids, FETCH_GROUP_BYTES, |(_, bytes)| *bytes) {
            let stored: usize = group.iter().map(|(_, bytes)| *bytes).sum();
            let bound = http::MAX_ANSWER_BYTES.max(stored.saturating_mul(4));
            let docs: Vec<Value> = group
                .iter()
                .map(|(id, _)| match fields {
                    Some(fields) => json!({"_id": id, "_source": fields}),
                    None => json!({"_id": id}),
                })
                .collect();
            let answer = self.send(Method::POST, &[index, "_mget"], &[], Some(json_body(&json!({ "docs": docs }))), bound).await?;
            if answer.status == StatusCode::NOT_FOUND {
                continue;
            }
            let at = answer.at.clone();
            let mut found = self.ok_json(answer)?;
            let docs = found
                .get_mut("docs")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| ReturnerError::Unavailable(format!("{NAME}: {at} gave an _mget answer without docs")))?;
            for doc in docs.iter_mut().filter(|d| d.get("found") == Some(&Value::Bool(true))) {
                if let (Some(Value::String(id)), Some(source)) = (doc.get("_id").cloned(), doc.get_mut("_source")) {
                    out.push((id, source.take()));
                }
            }
        }
        Ok(out)
    }

    /// Deletes what `query` matches in `indices`; returns how many documents went.
    pub(crate) async fn delete_by_query(&self, indices: &[&str], query: &Value) -> Result<u64> {
        let path = [&indices.join(","), "_delete_by_query"];
        let params = [("ignore_unavailable", "true"), ("conflicts", "proceed")];
        let answer = self.send(Method::POST, &path, &params, Some(json_body(query)), http::MAX_ANSWER_BYTES).await?;
        let at = answer.at.clone();
        let done = self.ok_json(answer)?;
        if let Some(failure) = done.get("failures").and_then(Value::as_array).and_then(|f| f.first()) {
            let why = encode::error_text(failure.get("cause"));
            return Err(ReturnerError::Unavailable(format!("{NAME}: {at}: deleting old jobs failed in part: {why}")));
        }
        Ok(done.get("deleted").and_then(Value::as_u64).unwrap_or(0))
    }

    /// The type `field` has in the mapping of the index behind `alias` (None: unmapped, or no
    /// such index).
    pub(crate) async fn field_type(&self, alias: &str, field: &str) -> Result<Option<String>> {
        let answer = self.send(Method::GET, &[alias, "_mapping"], &[], None, http::MAX_ANSWER_BYTES).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let mappings = self.ok_json(answer)?;
        let ty = mappings
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|index| index.pointer(&format!("/mappings/properties/{field}/type")));
        Ok(ty.and_then(Value::as_str).map(str::to_string))
    }

    /// One request, to each host in turn until one answers; the answer read up to `max` bytes.
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<(Bytes, &'static str)>,
        max: usize,
    ) -> Result<Answer> {
        let sent = body.as_ref().map_or(0, |(b, _)| b.len());
        // Time for the transfer as well as for the server: a 10 MB return is not a hang.
        let deadline = self.timeout + Duration::from_secs(((sent + max) as u64).div_ceil(BYTES_PER_SECOND));
        let first = self.current.load(Ordering::Relaxed);
        let mut failure = None;
        for k in 0..self.hosts.len() {
            let i = (first + k) % self.hosts.len();
            let host = &self.hosts[i];
            let at = http::where_(host);
            let mut request = self.http.request(method.clone(), url(host, path, query)).timeout(deadline);
            if !self.username.is_empty() {
                request = request.basic_auth(&self.username, Some(self.password.expose()));
            }
            if let Some((bytes, content_type)) = &body {
                request = request.header(CONTENT_TYPE, *content_type).body(bytes.clone());
            }
            match request.send().await {
                Ok(response) => {
                    self.current.store(i, Ordering::Relaxed);
                    let status = response.status();
                    let body = http::body(NAME, response, max).await?;
                    return Ok(Answer { status, body, at });
                }
                // Every request is safe to repeat on another host (documents are created by id).
                Err(e) => failure = Some(http::unreachable(NAME, &at, &e, &self.password)),
            }
        }
        Err(failure.unwrap_or_else(|| ReturnerError::Invalid(format!("{NAME}: no hosts configured"))))
    }

    /// The JSON of a successful answer; a refusal as an error.
    fn ok_json(&self, answer: Answer) -> Result<Value> {
        if !answer.status.is_success() {
            return Err(self.refused(&answer));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| ReturnerError::Unavailable(format!("{NAME}: {} answered with something that is not JSON: {e}", answer.at)))
    }

    /// The server's refusal as an error (see [`http::refused`]), with Elasticsearch's own
    /// `type: reason` when it gave one.
    fn refused(&self, answer: &Answer) -> ReturnerError {
        let reason = serde_json::from_slice::<Value>(&answer.body).ok().map(|v| encode::error_text(v.get("error")));
        let text = reason.filter(|r| !r.is_empty()).unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
        let text = self.password.scrub(&text);
        http::refused(NAME, &answer.at, answer.status, text.as_bytes())
    }
}

fn json_body(value: &Value) -> (Bytes, &'static str) {
    (Bytes::from(value.to_string()), JSON)
}

/// `host` + the path segments (each percent-encoded) + the query.
fn url(host: &Url, path: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = host.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_prefix_and_encode_segments() {
        let host = Url::parse("https://es.example.com:9243/prefix/").unwrap();
        assert_eq!(
            url(&host, &["a,b", "_search"], &[("ignore_unavailable", "true")]).as_str(),
            "https://es.example.com:9243/prefix/a,b/_search?ignore_unavailable=true"
        );
        let host = Url::parse("http://127.0.0.1:9200/").unwrap();
        assert_eq!(url(&host, &[], &[]).as_str(), "http://127.0.0.1:9200/");
        assert_eq!(url(&host, &["idx", "_doc", "a/b?c"], &[]).as_str(), "http://127.0.0.1:9200/idx/_doc/a%2Fb%3Fc");
    }
}
