//! A durable queue in front of a store, so a store that is down, slow or refusing never loses
//! a record and never slows the caller.
//!
//! Records are appended as JSON lines to segment files under the spool's directory and synced
//! to disk in groups (one `fsync` for every record that arrived meanwhile); [`Spool::push`]
//! returns once its records are on disk. A delivery task reads from a saved cursor, hands the
//! store batches (`save_load`, `returner_batch`, `event_return`), and moves the cursor only
//! after the store accepted them — so a crash means redelivery, which the stores make harmless
//! (they are idempotent on the record).
//!
//! The disk is the truth, but while delivery keeps up it need not read it back: the writer
//! also hands each synced record to delivery in memory (the [`Tail`], bounded), with its place
//! on disk. Delivery takes records from there when they follow on from its cursor, and reads
//! the segments only to catch up (after a restart, or a backlog larger than the tail).
//!
//! When the disk refuses a write (full), a caller that waits ([`Spool::push`]) is told, so it
//! keeps its record (the master then does not acknowledge the return); records pushed without
//! waiting are held in memory and written once the disk takes them again.
//!
//! When the store is unavailable, delivery retries with back-off and says so once per outage.
//! Records a store rejects for good go to `dead-letter.jsonl` with the reason, and delivery moves
//! on. [`Spool::stats`] tells the depth and the age of the oldest record.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::registry::Store;
use crate::{Event, Load, ReturnerError};

/// One thing to hand to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A publish load and its minions (`save_load`).
    Load { jid: String, load: Load, minions: Vec<String> },
    /// A return (`returner`).
    Return { ret: Load },
    /// An event (`event_return`).
    Event { tag: String, data: Value },
    /// A job's end time (`update_endtime`).
    Endtime { jid: String, time: String },
}

/// A record on disk: when it was queued, and what it is (`R` is `Record` or `&Record`).
#[derive(Debug, Serialize, Deserialize)]
struct Line<R> {
    at: u64,
    #[serde(flatten)]
    record: R,
}

/// Depth and age, for the log and `salt-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records queued and not yet accepted by the store.
    pub depth: u64,
    /// Seconds since the oldest of them was queued (0 when empty).
    pub oldest_age_secs: u64,
}

/// A segment is closed once it holds this many bytes.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The most records handed to the store at once.
const BATCH: usize = 1000;
/// The longest delivery waits for records the writer is syncing to join a partial batch:
/// records that arrive together (a burst of returns) then reach the store in one transaction
/// instead of many small ones. When the writer is idle, delivery does not wait at all.
const LINGER_MAX: Duration = Duration::from_millis(20);
/// How often records held after a failed write (a full disk) are tried again.
const RETRY_HELD: Duration = Duration::from_secs(1);
/// The longest a service's `Retry-After` holds deliveries back: a bogus day-long answer must not
/// stall the spool.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(15 * 60);
/// The most records held in memory while the disk refuses them; beyond, the oldest are lost
/// (and counted in the log). Only callers that chose not to wait can lose records this way.
const HELD_MAX: usize = 100_000;
/// The most records the writer hands delivery in memory; beyond it delivery reads the disk.
const TAIL_RECORDS: usize = 4 * BATCH;

/// A record on its way to the store, with where it lies on disk.
struct Spooled {
    at: u64,
    record: Record,
    /// Where the record starts, and where the next one starts.
    start: Cursor,
    end: Cursor,
}

/// Records synced to disk and not yet taken by delivery, in disk order (possibly with gaps
/// where the tail was full; delivery then reads the gap from disk).
type Tail = std::sync::Mutex<VecDeque<Spooled>>;

struct Shared {
    dir: PathBuf,
    store: Store,
    /// Woken when records were appended.
    appended: Notify,
    /// Woken when delivery emptied the queue.
    drained: Notify,
    depth: AtomicU64,
    /// `at` of the oldest undelivered record (0 when empty).
    oldest: AtomicU64,
    tail: Tail,
    /// The writer is writing records it has received (delivery may wait for them).
    writing: std::sync::atomic::AtomicBool,
}

/// Records to append, and whom to tell when they are on disk (`None`: [`Spool::push_nowait`]).
type Push = (Vec<Record>, Option<oneshot::Sender<std::io::Result<()>>>);

/// A spool for one store; clone freely.
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Push>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir` for `store`, and starts writing and delivering.
    /// Records left by an earlier run are delivered first.
    pub fn open(dir: &Path, store: Store) -> std::io::Result<Spool> {
        Spool::open_with(dir, store, SEGMENT_BYTES)
    }

    /// [`Spool::open`] with segments closed at `segment_bytes` (small ones in tests).
    fn open_with(dir: &Path, store: Store, segment_bytes: u64) -> std::io::Result<Spool> {
        salt_proto::private::create_dir_all(dir)?;
        repair_tail(dir)?;
        let cursor = Cursor::load(dir)?;
        let (depth, oldest) = count_from(dir, &cursor)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            store,
            appended: Notify::new(),
            drained: Notify::new(),
            depth: AtomicU64::new(depth),
            oldest: AtomicU64::new(oldest),
            tail: Tail::default(),
            writing: Default::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer::open(dir, segment_bytes)?;
        tokio::spawn(write_loop(shared.clone(), writer, rx));
        tokio::spawn(deliver_loop(shared.clone(), cursor));
        Ok(Spool { shared, tx })
    }

    /// Queues `records`; returns once they are on disk.
    pub async fn push(&self, records: Vec<Record>) -> std::io::Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx.send((records, Some(done))).map_err(|_| std::io::Error::other("the spool has stopped"))?;
        wait.await.map_err(|_| std::io::Error::other("the spool has stopped"))?
    }

    /// Queues `records` without waiting for the disk. Should the disk refuse them (full), they
    /// are held in memory and written as soon as it takes them again.
    pub fn push_nowait(&self, records: Vec<Record>) {
        if self.tx.send((records, None)).is_err() {
            tracing::error!("the spool in {} has stopped; records could not be queued", self.shared.dir.display());
        }
    }

    pub fn stats(&self) -> SpoolStats {
        let depth = self.shared.depth.load(Ordering::Relaxed);
        let oldest = self.shared.oldest.load(Ordering::Relaxed);
        let oldest_age_secs = if depth == 0 || oldest == 0 { 0 } else { now_secs().saturating_sub(oldest) };
        SpoolStats { depth, oldest_age_secs }
    }

    /// The store this spool feeds.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Waits until everything queued so far was delivered, or `timeout` passed. True if empty.
    pub async fn flush(&self, timeout: Duration) -> bool {
        // An empty push makes sure everything sent before is on disk and counted.
        let _ = self.push(Vec::new()).await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let drained = self.shared.drained.notified();
            if self.shared.depth.load(Ordering::Relaxed) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.shared.depth.load(Ordering::Relaxed) == 0;
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("segment-{seq:020}.jsonl"))
}

/// Segment numbers present in `dir`, ascending.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("segment-")?.strip_suffix(".jsonl")?.parse().ok()
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// A crash can leave half a line at the end of the last segment: cut it off.
fn repair_tail(dir: &Path) -> std::io::Result<()> {
    let Some(&last) = segments(dir)?.last() else { return Ok(()) };
    let path = segment_path(dir, last);
    let bytes = std::fs::read(&path)?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
    if keep < bytes.len() {
        tracing::warn!("spool {}: dropping {} bytes of an incomplete record left by a crash", path.display(), bytes.len() - keep);
        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
    }
    Ok(())
}

/// Where delivery stands: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    seq: u64,
    offset: u64,
}

impl Cursor {
    fn load(dir: &Path) -> std::io::Result<Cursor> {
        let first = segments(dir)?.first().copied().unwrap_or(0);
        let saved = std::fs::read_to_string(dir.join("cursor")).ok().and_then(|text| {
            let (seq, offset) = text.trim().split_once(' ')?;
            Some(Cursor { seq: seq.parse().ok()?, offset: offset.parse().ok()? })
        });
        Ok(match saved {
            Some(c) if c.seq >= first => c,
            _ => Cursor { seq: first, offset: 0 },
        })
    }

    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("cursor.tmp");
        let mut f = salt_proto::private::create(&tmp)?;
        write!(f, "{} {}", self.seq, self.offset)?;
        f.sync_all()?;
        std::fs::rename(tmp, dir.join("cursor"))
    }
}

/// How many records lie after `cursor`, and when the first of them was queued.
fn count_from(dir: &Path, cursor: &Cursor) -> std::io::Result<(u64, u64)> {
    let mut depth = 0;
    let mut oldest = 0;
    for seq in segments(dir)?.into_iter().filter(|s| *s >= cursor.seq) {
        let mut f = std::fs::File::open(segment_path(dir, seq))?;
        if seq == cursor.seq {
            f.seek(SeekFrom::Start(cursor.offset))?;
        }
        for line in BufReader::new(f).lines() {
            let line = line?;
            if oldest == 0 {
                oldest = serde_json::from_str::<Line<Record>>(&line).map(|l| l.at).unwrap_or(0);
            }
            depth += 1;
        }
    }
    Ok((depth, oldest))
}

/// Appends to the newest segment, starting a new one when it is full.
struct Writer {
    dir: PathBuf,
    seq: u64,
    file: std::fs::File,
    len: u64,
    segment_bytes: u64,
}

impl Writer {
    fn open(dir: &Path, segment_bytes: u64) -> std::io::Result<Writer> {
        let seq = segments(dir)?.last().copied().unwrap_or(0);
        let file = salt_proto::private::append(&segment_path(dir, seq))?;
        let len = file.metadata()?.len();
        Ok(Writer { dir: dir.to_path_buf(), seq, file, len, segment_bytes })
    }

    /// Appends `bytes` (whole records) to one segment; returns where they start.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<Cursor> {
        if self.len >= self.segment_bytes {
            self.file.sync_data()?;
            self.seq += 1;
            self.file = salt_proto::private::append(&segment_path(&self.dir, self.seq))?;
            self.len = 0;
        }
        let start = Cursor { seq: self.seq, offset: self.len };
        if let Err(e) = self.file.write_all(bytes) {
            // A partial write (a full disk) leaves half a record: cut it off, or the next
            // records would be glued to it.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        Ok(start)
    }
}

/// Group commit: everything that arrived while the previous sync ran is written and synced once.
/// A failed write fails the pushes that wait for it; records pushed without waiting are held
/// and written first in the next group (retried every [`RETRY_HELD`] meanwhile), in order.
async fn write_loop(shared: Arc<Shared>, mut writer: Writer, mut rx: mpsc::UnboundedReceiver<Push>) {
    let mut pushes = Vec::new();
    let mut held: Vec<Record> = Vec::new();
    let mut failing = false;
    let mut closed = false;
    while !closed {
        // Closed (every Spool dropped): what is held gets one last try.
        closed = if held.is_empty() {
            rx.recv_many(&mut pushes, 4096).await == 0
        } else {
            matches!(tokio::time::timeout(RETRY_HELD, rx.recv_many(&mut pushes, 4096)).await, Ok(0))
        };
        if closed && held.is_empty() {
            break;
        }
        shared.writing.store(true, Ordering::Release);
        let at = now_secs();
        let mut buf = Vec::new();
        // Each record, where its line ends in `buf`, and whether it is held should the write fail.
        let mut lines: Vec<(Record, usize, bool)> = Vec::new();
        let mut dones = Vec::with_capacity(pushes.len());
        let groups = std::iter::once((std::mem::take(&mut held), None)).chain(pushes.drain(..));
        for (records, done) in groups {
            let hold = done.is_none();
            dones.extend(done);
            for record in records {
                match serde_json::to_writer(&mut buf, &Line { at, record: &record }) {
                    Ok(()) => {
                        buf.push(b'\n');
                        lines.push((record, buf.len(), hold));
                    }
                    // Cannot happen with JSON values; never worth failing the others for.
                    Err(e) => tracing::error!("spool {}: cannot encode a record, dropped: {e}", shared.dir.display()),
                }
            }
        }
        let result =
            if buf.is_empty() { Ok(None) } else { writer.append(&buf).and_then(|start| writer.file.sync_data().map(|()| Some(start))) };
        // Cleared before delivery is woken (below), so it does not wait for a group that is done.
        shared.writing.store(false, Ordering::Release);
        match &result {
            Ok(written) => {
                if std::mem::take(&mut failing) {
                    tracing::warn!("spool {}: writing to disk works again", shared.dir.display());
                }
                if let Some(start) = written {
                    let _ = shared.oldest.compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
                    shared.depth.fetch_add(lines.len() as u64, Ordering::Relaxed);
                    hand_to_delivery(&shared.tail, at, *start, lines.into_iter().map(|(r, end, _)| (r, end)).collect());
                    shared.appended.notify_one();
                }
            }
            Err(e) => {
                held = lines.into_iter().filter(|(_, _, hold)| *hold).map(|(r, _, _)| r).collect();
                if held.len() > HELD_MAX {
                    let lost = held.len() - HELD_MAX;
                    held.drain(..lost);
                    tracing::error!("spool {}: {lost} records lost: more than {HELD_MAX} wait for the disk", shared.dir.display());
                }
                shared.appended.notify_one(); // a delivery waiting for these records stops waiting
                if !std::mem::replace(&mut failing, true) {
                    tracing::error!(
                        "spool {}: cannot write to disk: {e}; callers that wait are told, the others' records ({}) are held in memory and retried",
                        shared.dir.display(),
                        held.len()
                    );
                }
            }
        }
        for done in dones {
            let _ = done.send(match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
    if !held.is_empty() {
        tracing::error!("spool {}: stopped with {} records it could not write", shared.dir.display(), held.len());
    }
}

/// Puts the records just synced at `start` into the tail, as many as fit.
fn hand_to_delivery(tail: &Tail, at: u64, start: Cursor, lines: Vec<(Record, usize)>) {
    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    let room = TAIL_RECORDS.saturating_sub(tail.len());
    let mut line_start = start;
    for (record, line_end) in lines.into_iter().take(room) {
        let end = Cursor { seq: start.seq, offset: start.offset + line_end as u64 };
        tail.push_back(Spooled { at, record, start: line_start, end });
        line_start = end;
    }
}

/// Reads up to `max` records after `cursor` from the segments. A line that is not a record
/// (damage on disk) goes to the dead-letter file and out of the count.
fn read_batch(shared: &Shared, cursor: Cursor, max: usize) -> std::io::Result<Vec<Spooled>> {
    let dir = &shared.dir;
    let mut out = Vec::new();
    let mut cur = cursor;
    for seq in segments(dir)?.into_iter().filter(|s| *s >= cursor.seq) {
        if seq != cur.seq {
            cur = Cursor { seq, offset: 0 };
        }
        let mut f = std::fs::File::open(segment_path(dir, seq))?;
        f.seek(SeekFrom::Start(cur.offset))?;
        let mut reader = BufReader::new(f);
        let mut text = String::new();
        loop {
            if out.len() >= max {
                return Ok(out);
            }
            text.clear();
            let n = reader.read_line(&mut text)?;
            if n == 0 || !text.ends_with('\n') {
                break; // end of segment, or a record still being written
            }
            let start = cur;
            cur.offset += n as u64;
            match serde_json::from_str::<Line<Record>>(&text) {
                Ok(line) => out.push(Spooled { at: line.at, record: line.record, start, end: cur }),
                Err(e) => {
                    tracing::error!("spool {}: an unreadable record is moved to dead-letter.jsonl: {e}", dir.display());
                    write_dead_letter(dir, Value::String(text.trim_end().to_string()), &format!("unreadable: {e}"));
                    shared.depth.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(out)
}

/// Up to `max` records after `cursor`: from the tail when they follow on from it, else from
/// disk (what the tail skipped, or left by an earlier run).
fn next_records(shared: &Shared, cursor: Cursor, max: usize) -> std::io::Result<Vec<Spooled>> {
    {
        let mut tail = shared.tail.lock().unwrap_or_else(|e| e.into_inner());
        // Read from disk already (the tail was full when delivery caught up past them).
        while tail.front().is_some_and(|r| r.start < cursor) {
            tail.pop_front();
        }
        if tail.front().is_some_and(|r| r.start == cursor) {
            let mut out: Vec<Spooled> = Vec::new();
            while out.len() < max && tail.front().is_some_and(|r| out.last().map_or(cursor, |l| l.end) == r.start) {
                out.extend(tail.pop_front());
            }
            return Ok(out);
        }
    }
    read_batch(shared, cursor, max)
}

async fn deliver_loop(shared: Arc<Shared>, mut cursor: Cursor) {
    let mut delay = Duration::from_millis(100);
    let mut outage: Option<String> = None;
    // Records taken but not yet accepted by the store (kept across retries).
    let mut batch: Vec<Spooled> = Vec::new();
    // Segments below this one are removed already (none at start: an earlier run may have left some).
    let mut delivered_segments_below = 0;
    loop {
        let appended = shared.appended.notified();
        if batch.is_empty() {
            match next_records(&shared, cursor, BATCH) {
                Ok(b) => batch = b,
                Err(e) => {
                    tracing::error!("spool {}: cannot read: {e}", shared.dir.display());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            if batch.is_empty() {
                shared.oldest.store(0, Ordering::Relaxed);
                shared.drained.notify_waiters();
                appended.await;
                continue;
            }
            shared.oldest.store(batch[0].at, Ordering::Relaxed);
            let deadline = tokio::time::Instant::now() + LINGER_MAX;
            while batch.len() < BATCH && shared.writing.load(Ordering::Acquire) {
                let appended = shared.appended.notified();
                if tokio::time::timeout_at(deadline, appended).await.is_err() {
                    break;
                }
                let end = batch.last().expect("batch is not empty").end;
                match next_records(&shared, end, BATCH - batch.len()) {
                    Ok(more) => batch.extend(more),
                    Err(e) => tracing::error!("spool {}: cannot read: {e}", shared.dir.display()),
                }
            }
        }
        let records: Vec<&Record> = batch.iter().map(|s| &s.record).collect();
        match deliver(&shared.store, &records).await {
            Ok(rejected) => {
                if let Some(reason) = outage.take() {
                    tracing::warn!("returner '{}' is available again (it failed with: {reason})", shared.store.as_sink().name());
                }
                delay = Duration::from_millis(100);
                for (record, reason) in rejected {
                    dead_letter(&shared.dir, record, &reason);
                }
                cursor = batch.last().expect("batch is not empty").end;
                if let Err(e) = cursor.save(&shared.dir) {
                    tracing::error!("spool {}: cannot save the cursor: {e}", shared.dir.display());
                }
                if cursor.seq > delivered_segments_below {
                    remove_delivered_segments(&shared.dir, cursor.seq);
                    delivered_segments_below = cursor.seq;
                }
                shared.depth.fetch_sub(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
            }
            Err(e) => {
                if outage.is_none() {
                    tracing::error!(
                        "returner '{}' is unavailable: {e}; {} records are spooled in {} and will be retried",
                        shared.store.as_sink().name(),
                        shared.depth.load(Ordering::Relaxed),
                        shared.dir.display()
                    );
                    outage = Some(e.to_string());
                }
                // A service that said how long to wait (429 with Retry-After) is left alone that
                // long, within reason; else the backoff doubles up to 30 s.
                tokio::time::sleep(e.retry_after().map_or(delay, |asked| asked.min(RETRY_AFTER_MAX))).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Segments before `current` are fully delivered.
fn remove_delivered_segments(dir: &Path, current: u64) {
    for seq in segments(dir).unwrap_or_default().into_iter().filter(|s| *s < current) {
        let _ = std::fs::remove_file(segment_path(dir, seq));
    }
}

fn dead_letter(dir: &Path, record: &Record, reason: &str) {
    tracing::error!("spool {}: the store rejected a record for good ({reason}); it is kept in dead-letter.jsonl", dir.display());
    write_dead_letter(dir, serde_json::to_value(record).unwrap_or(Value::Null), reason);
}

/// Appends `record` (a record, or the text of an unreadable line) with `reason` to
/// `dead-letter.jsonl`.
fn write_dead_letter(dir: &Path, record: Value, reason: &str) {
    let mut line = Map::new();
    line.insert("at".into(), now_secs().into());
    line.insert("reason".into(), reason.into());
    line.insert("record".into(), record);
    let write = salt_proto::private::append(&dir.join("dead-letter.jsonl")).and_then(|mut f| {
        serde_json::to_writer(&mut f, &Value::Object(line))?;
        f.write_all(b"\n")?;
        f.sync_data()
    });
    if let Err(e) = write {
        tracing::error!("spool {}: cannot write the dead-letter file: {e}", dir.display());
    }
}

/// Hands `records` to the store in order, each run of one kind as one batch. `Ok` carries the
/// records the store rejected for good (they go to the dead-letter file); `Err` means try again.
async fn deliver<'r>(store: &Store, records: &[&'r Record]) -> Result<Vec<(&'r Record, String)>, ReturnerError> {
    let mut rejected = Vec::new();
    let mut queue: VecDeque<&Record> = records.iter().copied().collect();
    while let Some(first) = queue.pop_front() {
        let mut run = vec![first];
        while queue.front().is_some_and(|r| std::mem::discriminant(*r) == std::mem::discriminant(first)) {
            run.push(queue.pop_front().expect("front exists"));
        }
        let result = match first {
            // One call per record: each gets its own outcome, so a failure is never hidden by a
            // later success, and only the record a store refuses goes to the dead-letter file.
            Record::Load { .. } | Record::Endtime { .. } => {
                for r in run {
                    let result = match (r, store) {
                        (Record::Load { jid, load, minions }, Store::JobCache(cache)) => cache.save_load(jid, load, Some(minions)).await,
                        (Record::Endtime { jid, time }, Store::JobCache(cache)) => cache.update_endtime(jid, time).await,
                        (_, Store::Sink(sink)) => Err(ReturnerError::Invalid(format!("returner '{}' keeps no jobs", sink.name()))),
                        (Record::Return { .. } | Record::Event { .. }, _) => unreachable!("a run holds one kind"),
                    };
                    match result {
                        Ok(()) => {}
                        Err(e) if e.retry_later() => return Err(e),
                        Err(e) => rejected.push((r, e.to_string())),
                    }
                }
                continue;
            }
            Record::Return { .. } => {
                let rets: Vec<Load> =
                    run.iter().filter_map(|r| if let Record::Return { ret } = r { Some(ret.clone()) } else { None }).collect();
                store.as_sink().returner_batch(&rets).await
            }
            Record::Event { .. } => {
                let events: Vec<Event> = run
                    .iter()
                    .filter_map(|r| {
                        if let Record::Event { tag, data } = r {
                            Some(Event { tag: tag.clone(), data: data.clone() })
                        } else {
                            None
                        }
                    })
                    .collect();
                store.as_sink().event_return(&events).await
            }
        };
        match result {
            // Only the records the store named go to the dead-letter file; the rest are stored.
            Ok(refused) => rejected.extend(refused.into_iter().filter_map(|r| run.get(r.index).map(|rec| (*rec, r.reason)))),
            Err(e) if e.retry_later() => return Err(e),
            // Refused whole (an unsupported call, say): every record of the run, with the reason.
            Err(e) => {
                let reason = e.to_string();
                rejected.extend(run.into_iter().map(|r| (r, reason.clone())));
            }
        }
    }
    Ok(rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Entry;
    use crate::{Capability, JobCache, Rejection, Result as RResult, Sink};
    use async_trait::async_trait;
    use serde_json::json;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// A store that can be switched off, and records what it accepted.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        got: Mutex<Vec<Load>>,
    }

    static FLAKY: Entry = Entry::unlisted("flaky", &[Capability::Returner]);

    #[async_trait]
    impl Sink for Flaky {
        fn entry(&self) -> &'static Entry {
            &FLAKY
        }
        async fn returner_batch(&self, rets: &[Load]) -> RResult<Vec<Rejection>> {
            if self.down.load(Ordering::Relaxed) {
                return Err(ReturnerError::Unavailable("connection refused".into()));
            }
            let mut got = self.got.lock().unwrap();
            let mut rejected = Vec::new();
            for (index, r) in rets.iter().enumerate() {
                if r.get("bad").is_some() {
                    rejected.push(Rejection { index, reason: "bad record".into() });
                } else if !got.contains(r) {
                    got.push(r.clone());
                }
            }
            Ok(rejected)
        }
    }

    fn flaky(store: &Arc<Flaky>) -> Store {
        Store::Sink(store.clone())
    }

    fn ret(n: u64) -> Record {
        Record::Return { ret: json!({"jid": format!("{n:020}"), "id": "m", "return": n}).as_object().unwrap().clone() }
    }

    /// End times: `unavailable` jids fail with a retry-later error, `refused` ones for good.
    #[derive(Default)]
    struct EndTimes {
        unavailable: Vec<&'static str>,
        refused: Vec<&'static str>,
        stored: Mutex<Vec<String>>,
    }

    static END_TIMES: Entry = Entry::unlisted("endtimes", &[Capability::UpdateEndtime]);

    #[async_trait]
    impl Sink for EndTimes {
        fn entry(&self) -> &'static Entry {
            &END_TIMES
        }
        async fn returner_batch(&self, _: &[Load]) -> RResult<Vec<Rejection>> {
            unreachable!("only end times here")
        }
    }

    #[async_trait]
    impl JobCache for EndTimes {
        async fn prep_jid(&self, _: bool, _: Option<&str>) -> RResult<String> {
            unreachable!()
        }
        async fn save_load(&self, _: &str, _: &Load, _: Option<&[String]>) -> RResult<()> {
            unreachable!()
        }
        async fn get_load(&self, _: &str) -> RResult<Option<Load>> {
            unreachable!()
        }
        async fn get_jid(&self, _: &str) -> RResult<Map<String, Value>> {
            unreachable!()
        }
        async fn get_jids(&self, _: &crate::JobQuery) -> RResult<Vec<crate::JobSummary>> {
            unreachable!()
        }
        async fn update_endtime(&self, jid: &str, _time: &str) -> RResult<()> {
            if self.unavailable.contains(&jid) {
                return Err(ReturnerError::Unavailable("connection refused".into()));
            }
            if self.refused.contains(&jid) {
                return Err(ReturnerError::Rejected("no such job".into()));
            }
            self.stored.lock().unwrap().push(jid.to_string());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failed_end_time_is_not_hidden_by_a_later_success() {
        let end = |jid: &str| Record::Endtime { jid: jid.into(), time: "2026, Dec 01 12:00:00.000000".into() };
        let (first, second, third) = (end("20261201120000000001"), end("20261201120000000002"), end("20261201120000000003"));
        // Retry later: the whole batch is retried (what went through is idempotent).
        let store = Arc::new(EndTimes { unavailable: vec!["20261201120000000001"], ..Default::default() });
        assert!(matches!(deliver(&Store::JobCache(store), &[&first, &second]).await, Err(ReturnerError::Unavailable(_))));
        // Refused for good: only that record is rejected, the others are stored.
        let store = Arc::new(EndTimes { refused: vec!["20261201120000000002"], ..Default::default() });
        let rejected = deliver(&Store::JobCache(store.clone()), &[&first, &second, &third]).await.unwrap();
        assert_eq!(rejected.len(), 1);
        assert!(matches!(rejected[0].0, Record::Endtime { jid, .. } if jid == "20261201120000000002"), "{rejected:?}");
        assert_eq!(*store.stored.lock().unwrap(), ["20261201120000000001", "20261201120000000003"]);
    }

    /// Refuses its first batch with a `Retry-After`, and notes when each try came.
    #[derive(Default)]
    struct Throttling {
        tries: Mutex<Vec<std::time::Instant>>,
    }

    #[async_trait]
    impl Sink for Throttling {
        fn entry(&self) -> &'static Entry {
            &FLAKY
        }
        async fn returner_batch(&self, _: &[Load]) -> RResult<Vec<Rejection>> {
            let mut tries = self.tries.lock().unwrap();
            tries.push(std::time::Instant::now());
            if tries.len() == 1 {
                return Err(ReturnerError::Throttled { message: "429 Too Many Requests".into(), after: Duration::from_millis(1500) });
            }
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_service_that_asks_to_wait_is_left_alone_that_long() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Throttling::default());
        let spool = Spool::open(dir.path(), Store::Sink(store.clone())).unwrap();
        spool.push(vec![ret(1)]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(30)).await);
        let tries = store.tries.lock().unwrap();
        assert_eq!(tries.len(), 2, "tried again once, after the wait");
        // The backoff alone would have tried again after 100 ms.
        assert!(tries[1] - tries[0] >= Duration::from_millis(1500), "{:?}", tries[1] - tries[0]);
    }

    #[tokio::test]
    async fn outage_then_recovery_delivers_everything_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::Relaxed);
        let spool = Spool::open(dir.path(), flaky(&store)).unwrap();
        for n in 0..2500 {
            spool.push_nowait(vec![ret(n)]);
        }
        spool.push(Vec::new()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(spool.stats().depth, 2500);
        assert!(store.got.lock().unwrap().is_empty());
        store.down.store(false, Ordering::Relaxed);
        assert!(spool.flush(Duration::from_secs(30)).await);
        let got = store.got.lock().unwrap();
        assert_eq!(got.len(), 2500);
        assert_eq!(got[2499]["return"], 2499);
        assert_eq!(spool.stats(), SpoolStats { depth: 0, oldest_age_secs: 0 });
    }

    #[tokio::test]
    async fn records_survive_a_restart_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(Flaky::default());
            store.down.store(true, Ordering::Relaxed);
            let spool = Spool::open(dir.path(), flaky(&store)).unwrap();
            spool.push(vec![ret(1), ret(2)]).await.unwrap();
        }
        // A crash in the middle of a write.
        let seg = segment_path(dir.path(), 0);
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"at\":1,\"kind\":\"ret").unwrap();
        drop(f);
        let store = Arc::new(Flaky::default());
        let spool = Spool::open(dir.path(), flaky(&store)).unwrap();
        assert!(spool.flush(Duration::from_secs(10)).await);
        assert_eq!(store.got.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn rejected_records_go_to_the_dead_letter_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        let spool = Spool::open(dir.path(), flaky(&store)).unwrap();
        let bad = Record::Return { ret: json!({"jid": "1", "id": "m", "bad": true}).as_object().unwrap().clone() };
        // One batch: only the bad record is dead-lettered, its neighbours are stored.
        spool.push(vec![ret(6), bad, ret(7)]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(10)).await);
        spool.push(vec![ret(8)]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(10)).await);
        let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
        assert!(dead.contains("bad record") && dead.contains("\"bad\":true"), "{dead}");
        assert_eq!(dead.lines().count(), 1, "{dead}");
        assert_eq!(returned_numbers(&store), [6, 7, 8]);
    }

    fn returned_numbers(store: &Flaky) -> Vec<u64> {
        store.got.lock().unwrap().iter().map(|r| r["return"].as_u64().unwrap()).collect()
    }

    #[tokio::test]
    async fn a_backlog_beyond_the_tail_and_across_segments_arrives_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::Relaxed);
        // Small segments: each push of 50 records fills one, so the backlog spans over a hundred.
        let spool = Spool::open_with(dir.path(), flaky(&store), 1024).unwrap();
        let n = TAIL_RECORDS as u64 * 2 + 123;
        for first in (0..n).step_by(50) {
            spool.push((first..n.min(first + 50)).map(ret).collect()).await.unwrap();
        }
        assert!(segments(dir.path()).unwrap().len() > 100);
        assert_eq!(spool.stats().depth, n);
        store.down.store(false, Ordering::Relaxed);
        assert!(spool.flush(Duration::from_secs(60)).await);
        // Records that keep arriving while it catches up follow on, still in order.
        for i in n..n + 500 {
            spool.push_nowait(vec![ret(i)]);
        }
        assert!(spool.flush(Duration::from_secs(60)).await);
        assert_eq!(returned_numbers(&store), (0..n + 500).collect::<Vec<_>>());
        assert_eq!(segments(dir.path()).unwrap().len(), 1, "delivered segments are removed");
    }

    #[tokio::test]
    async fn a_damaged_line_goes_to_the_dead_letter_file_and_the_rest_arrives() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(Flaky::default());
            store.down.store(true, Ordering::Relaxed);
            let spool = Spool::open(dir.path(), flaky(&store)).unwrap();
            spool.push(vec![ret(1)]).await.unwrap();
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(segment_path(dir.path(), 0)).unwrap();
        f.write_all(b"not a record\n").unwrap();
        drop(f);
        let store = Arc::new(Flaky::default());
        let spool = Spool::open(dir.path(), flaky(&store)).unwrap();
        assert_eq!(spool.stats().depth, 2);
        spool.push(vec![ret(2)]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(10)).await, "the damaged line is out of the count");
        assert_eq!(returned_numbers(&store), vec![1, 2]);
        let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
        assert!(dead.contains("\"record\":\"not a record\"") && dead.contains("unreadable"), "{dead}");
    }
}
