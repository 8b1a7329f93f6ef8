//! I/O with the MongoDB server: a client made on first use (the driver connects when an
//! operation needs it), a batch written with one unordered `insert_many` (the driver splits it
//! only past 48 MB or 100,000 documents), reads bounded in time and size, and errors
//! classified: a server that is down, slow or refuses the login is `Unavailable` (the spool
//! keeps the records); a document the server refuses is that record's `Rejected`.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::error::{Error as DriverError, ErrorKind};
use mongodb::{Client, Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use super::config::{MongoConfig, CONNECT_TIMEOUT};
use super::encode::{EVENTS, JOBS, RETURNS};
use crate::{Rejection, Result, ReturnerError};

/// How long one operation may take once connected (a batch of big returns included). The
/// driver has no socket timeout of its own: this bounds a server that stops answering.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);
/// The most one read gathers (the returns of one job, say): a store never buffers without end.
const MAX_READ_BYTES: usize = 512 * 1024 * 1024;
/// MongoDB's code for a duplicate key: the document is stored already (the first one wins).
const DUPLICATE_KEY: i32 = 11000;
/// Command errors that mean the login is missing or refused.
const UNAUTHORIZED: i32 = 13;
const AUTHENTICATION_FAILED: i32 = 18;

/// Salt's indexes (`mongo.indexes: true`), and `saltReturns.fun` for `get_fun`.
const INDEXES: [(&str, &str); 5] = [(RETURNS, "minion"), (RETURNS, "jid"), (RETURNS, "fun"), (JOBS, "jid"), (EVENTS, "tag")];

pub(crate) struct Connection {
    config: MongoConfig,
    db: OnceCell<Database>,
    indexes: OnceCell<()>,
}

impl Connection {
    pub fn new(config: MongoConfig) -> Connection {
        Connection { config, db: OnceCell::new(), indexes: OnceCell::new() }
    }

    pub fn config(&self) -> &MongoConfig {
        &self.config
    }

    /// The database, with its indexes made once per process when `mongo.indexes` asks (Salt
    /// makes them on every connection).
    async fn db(&self) -> Result<&Database> {
        let db = self
            .db
            .get_or_try_init(|| async {
                let options = self.config.client_options().await?;
                let client = Client::with_options(options).map_err(|e| self.error(e))?;
                // A URI's own database (`.../jobs?...`), else mongo.db.
                Ok::<_, ReturnerError>(client.default_database().unwrap_or_else(|| client.database(&self.config.db)))
            })
            .await?;
        if self.config.indexes {
            self.indexes
                .get_or_try_init(|| async {
                    for (collection, field) in INDEXES {
                        let index = IndexModel::builder().keys(doc! { field: 1 }).build();
                        self.timed(db.collection::<Document>(collection).create_index(index)).await?;
                    }
                    Ok::<_, ReturnerError>(())
                })
                .await?;
        }
        Ok(db)
    }

    fn collection(db: &Database, name: &str) -> Collection<RawDocumentBuf> {
        db.collection(name)
    }

    /// Runs one driver operation within [`OPERATION_TIMEOUT`].
    async fn timed<T>(&self, op: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>) -> Result<T> {
        self.timed_raw(op).await?.map_err(|e| self.error(e))
    }

    /// [`Connection::timed`], the driver's error left as it is.
    async fn timed_raw<T>(
        &self,
        op: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>> {
        tokio::time::timeout(OPERATION_TIMEOUT, op.into_future()).await.map_err(|_| {
            ReturnerError::Unavailable(format!(
                "mongo: MongoDB at {} did not answer within {} s",
                self.config.target(),
                OPERATION_TIMEOUT.as_secs()
            ))
        })
    }

    /// Connects, logs in and reads the collection names: one clear error for a server that is
    /// not there, a wrong password or a user without rights on the database.
    pub async fn check(&self) -> Result<()> {
        let db = self.db().await?;
        self.timed(db.list_collection_names()).await.map(drop)
    }

    /// Inserts `docs` (each with its record's place in the batch) in one unordered
    /// `insert_many`. A document already there is left as it is (`_id` says which record it
    /// is, so a batch sent again stores nothing twice); each document the server refuses is
    /// a [`Rejection`] of its record, named by `describe`.
    pub async fn insert(
        &self,
        collection: &str,
        docs: &[(usize, &RawDocumentBuf)],
        describe: impl Fn(usize) -> String,
    ) -> Result<Vec<Rejection>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db().await?;
        let coll = Self::collection(db, collection);
        let err = match self.timed_raw(coll.insert_many(docs.iter().map(|(_, d)| *d)).ordered(false)).await? {
            Ok(_) => return Ok(Vec::new()),
            Err(e) => e,
        };
        let ErrorKind::InsertMany(failure) = &*err.kind else { return Err(self.error(err)) };
        if let Some(wc) = &failure.write_concern_error {
            // Stored, maybe, but not as durably as asked: send the batch again later.
            return Err(ReturnerError::Unavailable(format!(
                "mongo: MongoDB at {} could not confirm the write: {}",
                self.config.target(),
                self.config.scrub(&wc.message)
            )));
        }
        let mut rejected = Vec::new();
        for e in failure.write_errors.iter().flatten().filter(|e| e.code != DUPLICATE_KEY) {
            let Some((index, _)) = docs.get(e.index) else { continue };
            let why = self.config.scrub(&e.message);
            rejected.push(Rejection { index: *index, reason: format!("{}: MongoDB refused it: {why}", describe(*index)) });
        }
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    /// One document by `_id`.
    pub async fn find_by_id(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        Ok(self.find(collection, doc! { "_id": id }, None, None, None).await?.pop())
    }

    /// The documents `filter` matches, sorted and limited, within [`MAX_READ_BYTES`].
    pub async fn find(
        &self,
        collection: &str,
        filter: Document,
        sort: Option<Document>,
        limit: Option<i64>,
        projection: Option<Document>,
    ) -> Result<Vec<Document>> {
        let db = self.db().await?;
        let coll = Self::collection(db, collection);
        let mut find = coll.find(filter);
        if let Some(sort) = sort {
            find = find.sort(sort);
        }
        if let Some(limit) = limit {
            find = find.limit(limit);
        }
        if let Some(projection) = projection {
            find = find.projection(projection);
        }
        let mut cursor = self.timed(find).await?;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        while self.timed(cursor.advance()).await? {
            let raw = cursor.current();
            bytes += raw.as_bytes().len();
            if bytes > MAX_READ_BYTES {
                return Err(ReturnerError::Unavailable(format!(
                    "mongo: the answer from {collection} is larger than the {} MiB one read may take",
                    MAX_READ_BYTES >> 20
                )));
            }
            out.push(Document::try_from(raw).map_err(|e| self.unreadable(collection, e))?);
        }
        Ok(out)
    }

    /// An aggregation whose answer is small (grouped ids and jids).
    pub async fn aggregate(&self, collection: &str, pipeline: Vec<Document>) -> Result<Vec<Document>> {
        let db = self.db().await?;
        let coll = db.collection::<Document>(collection);
        let mut cursor = self.timed(coll.aggregate(pipeline)).await?;
        let mut out = Vec::new();
        while self.timed(cursor.advance()).await? {
            out.push(cursor.deserialize_current().map_err(|e| self.unreadable(collection, e))?);
        }
        Ok(out)
    }

    /// The distinct values of `field` (one answer document: at most 16 MiB).
    pub async fn distinct(&self, collection: &str, field: &str) -> Result<Vec<Bson>> {
        let db = self.db().await?;
        self.timed(db.collection::<Document>(collection).distinct(field, doc! {})).await
    }

    fn unreadable(&self, collection: &str, e: impl std::fmt::Display) -> ReturnerError {
        ReturnerError::Unavailable(format!("mongo: a document in {collection} at {} is unreadable: {e}", self.config.target()))
    }

    /// A driver error as a returner error: what failed and where, never the password or URI.
    /// Everything here may pass with time (or a fixed config), so it is `Unavailable` and the
    /// records stay in the spool; refused documents are sorted out in [`Connection::insert`].
    fn error(&self, e: DriverError) -> ReturnerError {
        let at = self.config.target();
        let user = self.config.user.as_deref().unwrap_or("(none)");
        let text = self.config.scrub(&e.to_string());
        let message = match &*e.kind {
            ErrorKind::Authentication { .. } => format!("mongo: could not log in to MongoDB at {at} as user {user:?}: {text}"),
            ErrorKind::Command(c) if c.code == AUTHENTICATION_FAILED => {
                format!("mongo: could not log in to MongoDB at {at} as user {user:?}: {text}")
            }
            ErrorKind::Command(c) if c.code == UNAUTHORIZED => {
                format!("mongo: MongoDB at {at} refused user {user:?} (set mongo.user and mongo.password): {text}")
            }
            ErrorKind::ServerSelection { .. } => {
                format!("mongo: could not reach MongoDB at {at} within {} s: {text}", CONNECT_TIMEOUT.as_secs())
            }
            ErrorKind::DnsResolve { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
                format!("mongo: could not connect to MongoDB at {at}: {text}")
            }
            _ => format!("mongo: MongoDB at {at} failed: {text}"),
        };
        ReturnerError::Unavailable(message)
    }
}
