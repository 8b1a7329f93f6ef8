//! Talking to CouchDB: the database and the design documents made when missing, `_bulk_docs`
//! with each document's outcome, reads in pages whose answers stay within a bound, and the
//! server's refusals classified (down or the login refused: retry later; anything else wrong
//! with a document: that record refused).

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::config::CouchDbConfig;
use super::encode::{jobs_design, salt_design, JOBS_DESIGN, SALT_DESIGN};
use crate::http::{self, MAX_ANSWER_BYTES};
use crate::{Result, ReturnerError};

const STORE: &str = "couchdb";
/// A request's deadline; a bulk write of many large documents takes a while.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Rows per page of a read (fewer when they would not fit one answer).
pub const PAGE: usize = 500;
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// Where a read of rows starts.
#[derive(Debug, Clone)]
pub enum From {
    Start,
    /// At this key (JSON).
    Key(Value),
    /// Just past this row (read before).
    After(Value),
}

/// What a request got.
pub enum Reply {
    Json(Value),
    /// The answer is larger than asked for: ask for less.
    TooBig,
    /// A status the caller may expect (404, 409, 412); [`Client::refused`] otherwise.
    Refused(StatusCode, Vec<u8>),
}

pub struct Client {
    http: reqwest::Client,
    config: CouchDbConfig,
    /// `<url><db>/`.
    db: Url,
    /// `scheme://host:port/db`, how errors name the database.
    at: String,
    /// The database and the design documents are known to exist.
    ready: Mutex<bool>,
}

impl Client {
    pub fn new(config: CouchDbConfig) -> Result<Client> {
        let mut db = config.url.clone();
        db.path_segments_mut()
            .map_err(|_| ReturnerError::Invalid(format!("couchdb.url {} cannot hold a database", config.url)))?
            .pop_if_empty()
            .push(&config.db)
            .push("");
        let at = format!("{}/{}", http::where_(&config.url), config.db);
        Ok(Client { http: http::client(REQUEST_TIMEOUT)?, db, at, config, ready: Mutex::new(false) })
    }

    /// `<db>/<path>` (path segments given already encoded, with a query).
    pub fn url(&self, path: &str) -> Url {
        self.db.join(path).unwrap_or_else(|_| self.db.clone())
    }

    /// A document's URL.
    pub fn doc_url(&self, id: &str) -> Url {
        let mut url = self.db.clone();
        if let Some(design) = id.strip_prefix("_design/") {
            url.path_segments_mut().expect("an http URL").pop_if_empty().push("_design").push(design);
        } else {
            url.path_segments_mut().expect("an http URL").pop_if_empty().push(id);
        }
        url
    }

    /// One request; an answer larger than `max` is not read.
    pub async fn call(&self, method: Method, url: Url, body: Option<Bytes>, max: usize) -> Result<Reply> {
        let mut request = self.http.request(method, url);
        if let Some(user) = &self.config.username {
            request = request.basic_auth(user, Some(self.config.password.expose()));
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| http::unreachable(STORE, &self.at, &e, &self.config.password))?;
        let status = response.status();
        if !status.is_success() {
            return Ok(Reply::Refused(status, http::body(STORE, response, MAX_ERROR_BYTES).await.unwrap_or_default().to_vec()));
        }
        match http::body_within(STORE, response, max).await? {
            None => Ok(Reply::TooBig),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Reply::Json)
                .map_err(|e| ReturnerError::Unavailable(format!("couchdb: {} answered with something else than JSON: {e}", self.at))),
        }
    }

    /// A request whose every refusal is an error.
    pub async fn json(&self, method: Method, url: Url, body: Option<Bytes>) -> Result<Value> {
        match self.call(method, url, body, MAX_ANSWER_BYTES).await? {
            Reply::Json(v) => Ok(v),
            Reply::TooBig => Err(self.too_big()),
            Reply::Refused(status, answer) => Err(self.refused(status, &answer)),
        }
    }

    /// The server's refusal: a login refused or its trouble is worth retrying later, a missing
    /// database too (it is made again); anything else refuses what was sent.
    pub fn refused(&self, status: StatusCode, answer: &[u8]) -> ReturnerError {
        if status == StatusCode::NOT_FOUND {
            return ReturnerError::Unavailable(format!("couchdb: {} is missing (it is created again on the next call)", self.at));
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let who = self.config.username.as_deref().map_or("no login".to_string(), |u| format!("user '{u}'"));
            let text = String::from_utf8_lossy(&answer[..answer.len().min(512)]).trim().to_string();
            return ReturnerError::Unavailable(format!(
                "couchdb: {} refused the login ({status}, {who}); check the user and password in couchdb.url: {text}",
                self.at
            ));
        }
        http::refused(STORE, &self.at, status, answer)
    }

    pub fn too_big(&self) -> ReturnerError {
        ReturnerError::Unavailable(format!(
            "couchdb: {} holds a document larger than {MAX_ANSWER_BYTES} bytes; refusing to read it",
            self.at
        ))
    }

    /// Makes the database and the design documents when missing, once.
    pub async fn ensure(&self) -> Result<()> {
        let mut ready = self.ready.lock().await;
        if *ready {
            return Ok(());
        }
        match self.call(Method::PUT, self.db.clone(), None, MAX_ERROR_BYTES).await? {
            Reply::Json(_) => tracing::info!("couchdb: created the database {}", self.at),
            // 412: it exists.
            Reply::Refused(StatusCode::PRECONDITION_FAILED, _) | Reply::TooBig => {}
            Reply::Refused(status, answer) => return Err(self.refused(status, &answer)),
        }
        self.ensure_design(SALT_DESIGN, salt_design(), false).await?;
        self.ensure_design(JOBS_DESIGN, jobs_design(), true).await?;
        *ready = true;
        Ok(())
    }

    /// Forgets that the database exists (it was deleted behind the store's back).
    pub async fn forget_ready(&self) {
        *self.ready.lock().await = false;
    }

    /// Puts the design document `id` when missing, or when `ours` and its views differ (an
    /// older version of the store's).
    async fn ensure_design(&self, id: &str, mut design: Value, ours: bool) -> Result<()> {
        let url = self.doc_url(id);
        match self.call(Method::GET, url.clone(), None, MAX_ANSWER_BYTES).await? {
            Reply::Json(stored) if !ours || stored.get("views") == design.get("views") => return Ok(()),
            Reply::Json(stored) => design["_rev"] = stored["_rev"].clone(),
            Reply::Refused(StatusCode::NOT_FOUND, _) => {}
            Reply::TooBig => return Err(self.too_big()),
            Reply::Refused(status, answer) => return Err(self.refused(status, &answer)),
        }
        match self.call(Method::PUT, url, Some(Bytes::from(design.to_string())), MAX_ERROR_BYTES).await? {
            // 409: another process put it meanwhile.
            Reply::Json(_) | Reply::TooBig | Reply::Refused(StatusCode::CONFLICT, _) => Ok(()),
            Reply::Refused(status, answer) => Err(self.refused(status, &answer)),
        }
    }

    /// `_bulk_docs` of `docs` (JSON texts): each document's outcome, in order.
    pub async fn bulk(&self, docs: &[&str]) -> Result<Vec<Value>> {
        let mut body = String::with_capacity(docs.iter().map(|d| d.len() + 2).sum::<usize>() + 16);
        body.push_str("{\"docs\": [");
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                body.push_str(", ");
            }
            body.push_str(doc);
        }
        body.push_str("]}");
        let answer = self.json(Method::POST, self.url("_bulk_docs"), Some(Bytes::from(body))).await?;
        let outcomes = answer.as_array().cloned().unwrap_or_default();
        if outcomes.len() != docs.len() {
            return Err(ReturnerError::Unavailable(format!(
                "couchdb: {} answered {} outcomes for {} documents",
                self.at,
                outcomes.len(),
                docs.len()
            )));
        }
        Ok(outcomes)
    }

    /// The rows of a view or `_all_docs`, page by page `from` where to start, each page a GET of
    /// `path` with `query` plus the paging parameters; fewer rows a page while a page's answer
    /// is too big. Stops after `want` rows when given.
    pub async fn rows(&self, path: &str, query: &[(&str, String)], from: From, want: Option<usize>) -> Result<Vec<Value>> {
        let mut out: Vec<Value> = Vec::new();
        let mut page = PAGE;
        loop {
            let limit = want.map_or(page, |w| page.min(w - out.len()));
            let mut url = self.url(path);
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in query {
                    q.append_pair(k, v);
                }
                q.append_pair("limit", &limit.to_string());
                match (out.last(), &from) {
                    (None, From::Start) => {}
                    (None, From::Key(key)) => {
                        q.append_pair("startkey", &key.to_string());
                    }
                    // Past a row: its key (and, in a map view, its document).
                    (Some(row), _) | (None, From::After(row)) => {
                        q.append_pair("startkey", &row["key"].to_string());
                        if let Some(docid) = row.get("id").and_then(Value::as_str) {
                            q.append_pair("startkey_docid", docid);
                        }
                        q.append_pair("skip", "1");
                    }
                }
            }
            let rows = match self.call(Method::GET, url, None, MAX_ANSWER_BYTES).await? {
                Reply::Json(v) => v.get("rows").and_then(Value::as_array).cloned().unwrap_or_default(),
                Reply::TooBig if page > 1 => {
                    page /= 2;
                    continue;
                }
                Reply::TooBig => return Err(self.too_big()),
                Reply::Refused(status, answer) => return Err(self.refused(status, &answer)),
            };
            let full = rows.len() == limit;
            out.extend(rows);
            if !full || limit == 0 || want.is_some_and(|w| out.len() >= w) {
                return Ok(out);
            }
        }
    }

    /// The documents `ids` (`None` for a missing or deleted one), many per request, fewer when
    /// they would not fit one answer.
    pub async fn docs(&self, ids: &[String]) -> Result<Vec<Option<Value>>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut rest = ids;
        let mut group = PAGE;
        while !rest.is_empty() {
            let now = &rest[..group.min(rest.len())];
            let body = Bytes::from(json!({"keys": now}).to_string());
            match self.call(Method::POST, self.url("_all_docs?include_docs=true"), Some(body), MAX_ANSWER_BYTES).await? {
                Reply::Json(v) => {
                    let rows = v.get("rows").and_then(Value::as_array).cloned().unwrap_or_default();
                    if rows.len() != now.len() {
                        return Err(ReturnerError::Unavailable(format!(
                            "couchdb: {} answered {} of {} documents",
                            self.at,
                            rows.len(),
                            now.len()
                        )));
                    }
                    out.extend(rows.into_iter().map(|mut r| Some(r.get_mut("doc")?.take()).filter(Value::is_object)));
                    rest = &rest[now.len()..];
                }
                Reply::TooBig if group > 1 => group /= 2,
                Reply::TooBig => return Err(self.too_big()),
                Reply::Refused(status, answer) => return Err(self.refused(status, &answer)),
            }
        }
        Ok(out)
    }
}
