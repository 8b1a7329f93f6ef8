//! `salt -b N` / `-b N%`: a batch job, run as Salt 3008 runs one.
//!
//! The master resolves the target once and assigns one jid ([`ClientRequest::Batch`]); the CLI
//! then sends the job to a few minions at a time under that jid ([`ClientRequest::Slice`]),
//! keeping `N` of them busy: each return frees a place, after `--batch-wait` seconds. So
//! `jobs.list_job <jid>` shows every minion of every slice and `jobs.lookup_jid <jid>` every
//! return. Only this connection may send slices of its jid; the master checks that.
//!
//! What Salt prints, kept: `Minion <id> did not respond. No job will be sent.` for targets that
//! are down when the batch starts (Salt pings first; here the master knows who is connected),
//! `\nExecuting run on [...]\n` per slice, and each return as it comes, shaped as Salt's batch
//! shapes it: `{"retcode": .., "jid": .., "<id>": <return>}`, which the nested outputter prints
//! as the `jid:`, `<id>:` and `retcode:` blocks. A minion that does not return within the
//! timeout (and is not running the job any more, as `saltutil.find_job` tells) is printed as an
//! empty return and its place goes to the next one. The exit code is the highest retcode
//! returned; a minion that did not return does not raise it (as in Salt).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use salt_config::Config;
use salt_output::Outputter;
use salt_proto::frame::{read_frame, write_frame};
use salt_proto::message::{ClientReply, ClientRequest, PublishRequest};
use serde_json::{json, Map, Value};
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::output::Printer;
use crate::salt::{ctrl_c_text, interrupted, read_frames, send, Progress, Shown, Wait, MASTER_DOWN, NO_MINIONS};

/// How many minions a batch keeps busy: `-b 3`, or a share of the targets, `-b 10%` (Salt also
/// takes `%10`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Size {
    Count(usize),
    Percent(f64),
}

impl Size {
    pub(crate) fn parse(text: &str) -> Result<Size, String> {
        let invalid = || format!("Invalid batch data sent: {text}\nData must be in the form of %10, 10% or 3");
        if text.contains('%') {
            let percent: f64 = text.trim_matches('%').trim().parse().map_err(|_| invalid())?;
            if !percent.is_finite() || percent <= 0.0 {
                return Err(invalid());
            }
            Ok(Size::Percent(percent))
        } else {
            text.trim().parse().ok().filter(|n| *n > 0).map(Size::Count).ok_or_else(invalid)
        }
    }

    /// Salt's `get_bnum`: a share rounds down, except that under one minion it rounds up; never
    /// less than one.
    pub(crate) fn of(self, targets: usize) -> usize {
        match self {
            Size::Count(n) => n,
            Size::Percent(p) => {
                let share = p / 100.0 * targets as f64;
                (if share < 1.0 { share.ceil() } else { share.floor() }) as usize
            }
        }
        .max(1)
    }
}

/// The batch flags, checked.
pub(crate) struct Options {
    size: Size,
    /// `--batch-wait`.
    wait: Duration,
}

impl Options {
    pub(crate) fn new(size: &str, wait_secs: f64, run_async: bool) -> Result<Options, String> {
        if run_async {
            return Err("salt: error: --async cannot be combined with --batch-size".into());
        }
        if !(wait_secs.is_finite() && wait_secs >= 0.0) {
            return Err(format!("salt: error: --batch-wait must be a number of seconds, not {wait_secs}"));
        }
        Ok(Options { size: Size::parse(size)?, wait: Duration::from_secs_f64(wait_secs) })
    }
}

/// Everything a batch run needs besides the request.
pub(crate) struct Run {
    pub batch: Options,
    pub timeout: Duration,
    pub gather: Duration,
    pub static_output: bool,
}

/// How many minions `request`'s target matches (for `batch_safe_limit`): the master resolves it
/// as for a batch, which sends nothing; the batch is dropped with the connection. `None` if the
/// master cannot say (the publish that follows reports why).
pub(crate) async fn count_targets(request: PublishRequest, config: &Config) -> Option<usize> {
    let mut stream = UnixStream::connect(salt_master::control_socket_path(config)).await.ok()?;
    let max = salt_proto::frame::DEFAULT_MAX_FRAME;
    write_frame(&mut stream, &ClientRequest::Batch(request), max).await.ok()?;
    match read_frame::<ClientReply, _>(&mut stream, max).await.ok()? {
        ClientReply::Published { minions, .. } => Some(minions.len()),
        ClientReply::NoMinions { .. } => Some(0),
        _ => None,
    }
}

/// Which minion goes next: Salt's slot accounting. `size` places; a minion holds one from the
/// moment its slice is sent until it returns or is given up on, and with `--batch-wait` the
/// place stays empty that much longer.
struct Schedule {
    size: usize,
    to_run: VecDeque<String>,
    active: usize,
    /// When each place held back by `--batch-wait` frees, earliest first.
    cooling: VecDeque<Instant>,
    wait: Duration,
}

impl Schedule {
    fn new(size: usize, minions: Vec<String>, wait: Duration) -> Schedule {
        Schedule { size, to_run: minions.into(), active: 0, cooling: VecDeque::new(), wait }
    }

    /// The minions to send the job to now (none if every place is taken).
    fn next_slice(&mut self, now: Instant) -> Vec<String> {
        while self.cooling.front().is_some_and(|t| *t <= now) {
            self.cooling.pop_front();
        }
        let free = self.size.saturating_sub(self.active + self.cooling.len());
        let slice: Vec<String> = self.to_run.drain(..free.min(self.to_run.len())).collect();
        self.active += slice.len();
        slice
    }

    /// `n` minions are done (returned or given up on).
    fn finished(&mut self, n: usize, now: Instant) {
        self.active -= n;
        if !self.wait.is_zero() {
            self.cooling.extend(std::iter::repeat_n(now + self.wait, n));
        }
    }

    /// When a place held back by `--batch-wait` frees, if a minion waits for it.
    fn next_free_at(&self) -> Option<Instant> {
        self.cooling.front().copied().filter(|_| !self.to_run.is_empty())
    }

    fn done(&self) -> bool {
        self.to_run.is_empty() && self.active == 0
    }
}

/// A reply the master owes this connection, in the order the requests went.
enum Owed {
    Slice(u64),
    Poll(u64),
}

pub(crate) async fn run(request: PublishRequest, opts: Run, config: &Config, mut printer: Printer) -> i32 {
    let socket = salt_master::control_socket_path(config);
    let Ok(stream) = UnixStream::connect(&socket).await else {
        eprintln!("{MASTER_DOWN}");
        return 2;
    };
    let (mut reader, mut writer) = stream.into_split();
    let max = salt_proto::frame::DEFAULT_MAX_FRAME;
    if write_frame(&mut writer, &ClientRequest::Batch(request), max).await.is_err() {
        eprintln!("{MASTER_DOWN}");
        return 2;
    }
    let (jid, minions, not_connected) = match read_frame::<ClientReply, _>(&mut reader, max).await {
        Ok(ClientReply::Published { jid, minions, not_connected, .. }) => (jid, minions, not_connected),
        Ok(ClientReply::NoMinions { .. }) => {
            // Salt's batch: the text of the ping that found no one, then its own; exit 0.
            println!("{NO_MINIONS}");
            println!("No minions matched the target.");
            return 0;
        }
        Ok(ClientReply::Refused { reason }) => {
            eprintln!("{reason}");
            return 2;
        }
        Ok(ClientReply::Error { message }) => {
            eprintln!("ERROR: {message}");
            return 2;
        }
        Ok(_) | Err(_) => {
            eprintln!("{MASTER_DOWN}");
            return 2;
        }
    };
    let mut live: Vec<String> = minions.into_iter().filter(|m| !not_connected.contains(m)).collect();
    live.sort();
    if live.is_empty() {
        // As Salt: no one answered the ping, so nothing is said and nothing is run.
        return 0;
    }
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let quiet = opts.static_output;
    if !quiet {
        let mut down = not_connected.clone();
        down.sort();
        for id in down {
            println!("Minion {id} did not respond. No job will be sent.");
        }
    }

    let mut schedule = Schedule::new(opts.batch.size.of(live.len()), live.clone(), opts.batch.wait);
    let mut slices: BTreeMap<u64, Wait> = BTreeMap::new();
    let mut next_slice_id = 0u64;
    // Which slice a minion of the batch, or a find_job poll's jid, belongs to.
    let mut slice_of: HashMap<String, u64> = HashMap::new();
    let mut poll_of: HashMap<String, u64> = HashMap::new();
    let mut owed: VecDeque<Owed> = VecDeque::new();
    let mut frames = read_frames(reader, max);
    let mut progress = Progress::new(live.len());
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut returned = 0usize;
    let mut highest_retcode = 0i64;
    let mut collected = Map::new();

    loop {
        let now = Instant::now();
        // Slices whose every minion returned or was given up on: the silent ones are shown as
        // Salt shows them, an empty return, and their places free.
        let finished: Vec<u64> = slices.iter().filter(|(_, w)| w.done()).map(|(id, _)| *id).collect();
        for id in finished {
            let wait = slices.remove(&id).expect("listed above");
            let silent = wait.missing();
            for minion in &silent {
                slice_of.remove(minion);
                progress.clear();
                let empty = json!({ minion.clone(): {} });
                if quiet {
                    collected.insert(minion.clone(), json!({}));
                } else {
                    let out = printer.outputter(None, Outputter::Nested);
                    printer.print(out, &empty, 0);
                }
            }
            poll_of.retain(|_, slice| *slice != id);
            schedule.finished(silent.len(), now);
        }
        if schedule.done() && slices.is_empty() {
            break;
        }
        let next = schedule.next_slice(now);
        if !next.is_empty() {
            if !quiet {
                progress.clear();
                println!("\nExecuting run on {}\n", salt_output::pyrepr::repr(&json!(next)));
            }
            let id = next_slice_id;
            next_slice_id += 1;
            for minion in &next {
                slice_of.insert(minion.clone(), id);
            }
            slices.insert(id, Wait::new(&jid, &next, &[], opts.timeout, opts.gather));
            owed.push_back(Owed::Slice(id));
            if write_frame(&mut writer, &ClientRequest::Slice { jid: jid.clone(), minions: next }, max).await.is_err() {
                eprintln!("ERROR: the connection to the master was lost while running batch job {jid}");
                return 2;
            }
            continue;
        }

        let wake = slices.values().map(Wait::deadline).chain(schedule.next_free_at()).min();
        let wake = wake.unwrap_or_else(|| now + Duration::from_secs(3600));
        tokio::select! {
            _ = tick.tick() => progress.show(returned),
            _ = interrupted(&mut interrupt) => {
                progress.clear();
                eprintln!("{}", ctrl_c_text(&jid));
                return 1;
            }
            frame = frames.recv() => match frame {
                Some(Ok(ClientReply::Event { tag, data })) => {
                    let Some((event_jid, minion)) = return_tag(&tag) else { continue };
                    let slice = if event_jid == jid { slice_of.get(minion) } else { poll_of.get(event_jid) };
                    let Some(wait) = slice.and_then(|id| slices.get_mut(id)) else { continue };
                    let Some((minion, shown)) = wait.on_event(&tag, data) else { continue };
                    slice_of.remove(&minion);
                    returned += 1;
                    highest_retcode = highest_retcode.max(shown.retcode);
                    progress.clear();
                    if quiet {
                        collected.insert(minion, shown.ret);
                    } else {
                        print_return(&mut printer, &jid, &minion, shown);
                    }
                    schedule.finished(1, Instant::now());
                }
                Some(Ok(reply @ (ClientReply::Published { .. } | ClientReply::Refused { .. } | ClientReply::Error { .. } | ClientReply::NoMinions { .. }))) => {
                    match (owed.pop_front(), reply) {
                        (Some(Owed::Slice(id)), ClientReply::Published { not_connected, .. }) => {
                            if let Some(wait) = slices.get_mut(&id) {
                                wait.mark_not_connected(&not_connected);
                            }
                        }
                        (Some(Owed::Poll(id)), ClientReply::Published { jid: poll_jid, .. }) => {
                            if let Some(wait) = slices.get_mut(&id) {
                                poll_of.insert(poll_jid.clone(), id);
                                wait.on_poll_published(poll_jid);
                            }
                        }
                        // A find_job poll that did not go out: its minions are given up on
                        // when its time is up, as if none answered.
                        (Some(Owed::Poll(_)), _) => {}
                        (Some(Owed::Slice(_)), ClientReply::Refused { reason }) => {
                            progress.clear();
                            eprintln!("{reason}");
                            return 2;
                        }
                        (_, other) => {
                            progress.clear();
                            eprintln!("ERROR: the master did not send batch job {jid} on: {other:?}");
                            return 2;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    progress.clear();
                    eprintln!("ERROR: the connection to the master was lost while running batch job {jid}");
                    return 2;
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                for (id, wait) in slices.iter_mut().filter(|(_, w)| w.deadline() <= now) {
                    if let Some(ask) = wait.on_deadline() {
                        owed.push_back(Owed::Poll(*id));
                        let poll = PublishRequest {
                            tgt: json!(ask),
                            tgt_type: "list".into(),
                            fun: "saltutil.find_job".into(),
                            arg: vec![json!(jid)],
                            ret: String::new(),
                            kwargs: Map::new(),
                        };
                        if send(&mut writer, poll).await.is_err() {
                            eprintln!("ERROR: the connection to the master was lost while running batch job {jid}");
                            return 2;
                        }
                    }
                }
            }
        }
    }
    progress.clear();

    if quiet {
        // Salt's `salt -s -b`: every return at the end, in one output; exit 0 unless none came.
        if collected.is_empty() {
            eprintln!("ERROR: No return received");
            return 2;
        }
        let out = printer.outputter(None, Outputter::Nested);
        printer.print(out, &Value::Object(collected), 0);
        return 0;
    }
    highest_retcode.clamp(0, i32::MAX as i64) as i32
}

/// `(jid, minion)` of a `salt/job/<jid>/ret/<minion>` tag.
fn return_tag(tag: &str) -> Option<(&str, &str)> {
    let rest = tag.strip_prefix("salt/job/")?;
    let (jid, rest) = rest.split_once('/')?;
    Some((jid, rest.strip_prefix("ret/")?))
}

/// One return as Salt's batch prints it: the return under the minion's id, beside the job's
/// `jid` and the `retcode` (in Salt's key order; `nested` sorts them).
fn print_return(printer: &mut Printer, jid: &str, minion: &str, shown: Shown) {
    let mut data = Map::new();
    data.insert("retcode".into(), shown.retcode.into());
    data.insert("jid".into(), jid.into());
    data.insert(minion.into(), shown.ret);
    let out = printer.outputter(shown.out.as_deref(), Outputter::Nested);
    printer.print(out, &Value::Object(data), shown.retcode);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_salt_reads_them() {
        assert_eq!(Size::parse("3"), Ok(Size::Count(3)));
        assert_eq!(Size::parse("10%"), Ok(Size::Percent(10.0)));
        assert_eq!(Size::parse("%10"), Ok(Size::Percent(10.0)));
        for bad in ["x", "3.5", "0", "-1", "%", "0%", "nan%"] {
            let e = Size::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("Invalid batch data sent: {bad}\n")), "{bad}: {e}");
        }
        // get_bnum: 40% of 5 is 2; 10% of 5 is half a minion, so one; 50% of 5 rounds down.
        assert_eq!(Size::Percent(40.0).of(5), 2);
        assert_eq!(Size::Percent(10.0).of(5), 1);
        assert_eq!(Size::Percent(50.0).of(5), 2);
        assert_eq!(Size::Percent(100.0).of(5), 5);
        assert_eq!(Size::Count(2).of(5), 2);
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_returned_minions_place_goes_to_the_next_one() {
        let now = Instant::now();
        let mut s = Schedule::new(2, ids(&["a", "b", "c", "d", "e"]), Duration::ZERO);
        assert_eq!(s.next_slice(now), ids(&["a", "b"]));
        assert!(s.next_slice(now).is_empty(), "both places taken");
        s.finished(1, now);
        assert_eq!(s.next_slice(now), ids(&["c"]));
        s.finished(2, now);
        assert_eq!(s.next_slice(now), ids(&["d", "e"]));
        assert!(!s.done());
        s.finished(2, now);
        assert!(s.done());
    }

    #[test]
    fn batch_wait_holds_a_place_back_after_a_return() {
        let now = Instant::now();
        let mut s = Schedule::new(2, ids(&["a", "b", "c"]), Duration::from_secs(3));
        assert_eq!(s.next_slice(now), ids(&["a", "b"]));
        s.finished(1, now);
        assert!(s.next_slice(now + Duration::from_secs(2)).is_empty(), "still cooling");
        assert_eq!(s.next_free_at(), Some(now + Duration::from_secs(3)));
        assert_eq!(s.next_slice(now + Duration::from_secs(3)), ids(&["c"]));
        assert_eq!(s.next_free_at(), None, "no one left to wait for");
    }

    #[test]
    fn return_tags() {
        assert_eq!(return_tag("salt/job/20240101/ret/m1"), Some(("20240101", "m1")));
        assert_eq!(return_tag("salt/job/20240101/new"), None);
        assert_eq!(return_tag("salt/auth"), None);
    }
}
