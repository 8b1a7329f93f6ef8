//! The fuzz loop of one target: pick an input (a seed, a generated one, or a mutation of a
//! corpus entry), run it under `catch_unwind`, and keep the inputs the target found valid as
//! new corpus entries (a cheap stand-in for coverage feedback).
//!
//! Three ways an input can fail, each reported with the target, the seed, the iteration and
//! the input in hex, and saved under the crash directory:
//! * a panic, caught by `catch_unwind`;
//! * a hang: a watchdog thread sees one input running longer than `--hang-ms`;
//! * an abort (a stack overflow aborts the process, it cannot be caught): a `SIGABRT`/`SIGSEGV`
//!   handler writes the current input out before the process dies.
//!
//! The loop runs on a thread with a 2 MiB stack by default, tokio's worker stack size, which is
//! where the master and minion decode what they receive.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mutate::{mutate, Hints};
use crate::rng::{hash_str, Rng};
use crate::targets::Target;

/// Corpus entries beyond the seeds are capped at this many (replaced at random when full).
const MAX_CORPUS: usize = 2048;

/// Only inputs up to this size join the corpus: otherwise it drifts towards the largest
/// inputs the mutations make and every run gets slower. Large inputs still come from the
/// mutations (nesting runs, duplicated ranges) and the generators.
const MAX_CORPUS_ENTRY: usize = 4096;

pub struct Options {
    pub iterations: u64,
    pub seconds: Option<f64>,
    pub seed: u64,
    pub hang: Duration,
    pub stack_bytes: usize,
    pub crash_dir: PathBuf,
    pub keep_going: bool,
    pub quiet: bool,
}

pub struct Summary {
    pub target: &'static str,
    pub inputs: u64,
    pub valid: u64,
    pub elapsed: Duration,
    pub crashes: u64,
    pub corpus: usize,
}

/// What the watchdog and the abort handler can see of the loop.
struct Shared {
    /// The input being run (pointer/length into the loop's buffer), published before each run.
    ptr: AtomicPtr<u8>,
    len: AtomicUsize,
    /// Iteration number of the input being run.
    iteration: AtomicU64,
    /// The fuzz thread's CPU-time clock, so a loaded machine does not look like a hang.
    cpu_clock: AtomicI32,
    has_cpu_clock: AtomicBool,
    running: AtomicBool,
    done: AtomicBool,
}

static ABORT_INFO: Mutex<Option<AbortInfo>> = Mutex::new(None);
static CURRENT: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
/// Pre-rendered `path\0` and message for the abort handler, which may not allocate.
static ABORT_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
static ABORT_MSG: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static ABORT_MSG_LEN: AtomicUsize = AtomicUsize::new(0);

struct AbortInfo {
    _path: std::ffi::CString,
    _msg: Vec<u8>,
}

pub fn run(target: &'static Target, opts: &Options) -> Result<Summary, String> {
    let shared = Arc::new(Shared {
        ptr: AtomicPtr::new(std::ptr::null_mut()),
        len: AtomicUsize::new(0),
        iteration: AtomicU64::new(0),
        cpu_clock: AtomicI32::new(0),
        has_cpu_clock: AtomicBool::new(false),
        running: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let origin = Instant::now();
    std::fs::create_dir_all(&opts.crash_dir).map_err(|e| format!("cannot create {}: {e}", opts.crash_dir.display()))?;
    arm_abort_handler(target, opts, &shared);

    let watchdog = {
        let shared = shared.clone();
        let hang = opts.hang;
        let crash_dir = opts.crash_dir.clone();
        let seed = opts.seed;
        std::thread::spawn(move || watchdog(target, seed, &crash_dir, &shared, hang))
    };

    let worker = {
        let shared = shared.clone();
        let opts = Options { crash_dir: opts.crash_dir.clone(), ..*opts };
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name))
            .stack_size(opts.stack_bytes)
            .spawn(move || fuzz_loop(target, &opts, &shared, origin))
            .map_err(|e| e.to_string())?
    };
    let result = worker.join().map_err(|_| "the fuzz thread died".to_string());
    shared.done.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    CURRENT.store(std::ptr::null_mut(), Ordering::SeqCst);
    result?
}

fn fuzz_loop(target: &'static Target, opts: &Options, shared: &Shared, origin: Instant) -> Result<Summary, String> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: asks for the calling thread's own CPU-time clock id.
    if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0 {
        shared.cpu_clock.store(clock, Ordering::SeqCst);
        shared.has_cpu_clock.store(true, Ordering::SeqCst);
    }
    let mut rng = Rng::new(opts.seed ^ hash_str(target.name));
    let seeds = (target.seeds)();
    let mut corpus: Vec<Vec<u8>> = seeds.clone();
    let hints = Hints { dict: target.dict, nest: target.nest, max_len: target.max_len };
    let deadline = opts.seconds.map(|s| origin + Duration::from_secs_f64(s));
    let (mut inputs, mut valid, mut crashes) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();

    while inputs < opts.iterations {
        if inputs % 256 == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if !opts.quiet && last_report.elapsed() >= Duration::from_secs(30) {
                last_report = Instant::now();
                let secs = origin.elapsed().as_secs_f64();
                eprintln!(
                    "salt-fuzz: {}: {inputs} inputs in {secs:.0} s ({:.0}/s), {valid} valid, corpus {}",
                    target.name,
                    inputs as f64 / secs,
                    corpus.len()
                );
            }
        }
        let input = if (inputs as usize) < seeds.len() {
            seeds[inputs as usize].clone()
        } else if rng.one_in(8) {
            let mut g = (target.generate)(&mut rng);
            g.truncate(target.max_len);
            g
        } else {
            let base = rng.below(corpus.len());
            mutate(&mut rng, &corpus[base], &corpus, &hints)
        };

        shared.ptr.store(input.as_ptr() as *mut u8, Ordering::SeqCst);
        shared.len.store(input.len(), Ordering::SeqCst);
        shared.iteration.store(inputs, Ordering::SeqCst);
        shared.running.store(true, Ordering::SeqCst);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        shared.running.store(false, Ordering::SeqCst);
        inputs += 1;
        match outcome {
            Ok(true) => {
                valid += 1;
                if input.len() > MAX_CORPUS_ENTRY {
                    // Counted, not kept.
                } else if corpus.len() < seeds.len() + MAX_CORPUS {
                    corpus.push(input);
                } else if rng.one_in(16) {
                    let i = seeds.len() + rng.below(MAX_CORPUS);
                    corpus[i] = input;
                }
            }
            Ok(false) => {}
            Err(payload) => {
                crashes += 1;
                let msg = panic_message(&payload);
                let path = save(&opts.crash_dir, target.name, opts.seed, inputs - 1, "panic", &input);
                report(target.name, "PANIC", &msg, opts.seed, inputs - 1, &input, &path);
                if !opts.keep_going {
                    break;
                }
            }
        }
    }
    Ok(Summary { target: target.name, inputs, valid, elapsed: origin.elapsed(), crashes, corpus: corpus.len() })
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// CPU time used so far by the fuzz thread, when its clock is known.
fn thread_cpu(shared: &Shared) -> Option<Duration> {
    if !shared.has_cpu_clock.load(Ordering::SeqCst) {
        return None;
    }
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a plain syscall on a clock id from pthread_getcpuclockid; should the fuzz thread
    // have just ended, it fails (or reads a harmless number), which is not memory-unsafe.
    let rc = unsafe { libc::clock_gettime(shared.cpu_clock.load(Ordering::SeqCst), &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Reports an input that has used more than `hang` of CPU time (or 30 times that of wall
/// time, for an input that blocks), and ends the process.
fn watchdog(target: &Target, seed: u64, crash_dir: &Path, shared: &Shared, hang: Duration) {
    let step = (hang / 10).clamp(Duration::from_millis(10), Duration::from_millis(200));
    let mut seen: Option<(u64, Duration, Instant)> = None;
    while !shared.done.load(Ordering::SeqCst) {
        std::thread::sleep(step);
        if !shared.running.load(Ordering::SeqCst) {
            seen = None;
            continue;
        }
        let iteration = shared.iteration.load(Ordering::SeqCst);
        let cpu = thread_cpu(shared);
        let stuck = match seen {
            Some((i, cpu0, wall0)) if i == iteration => match cpu {
                Some(now) => now.saturating_sub(cpu0) >= hang || wall0.elapsed() >= hang * 30,
                None => wall0.elapsed() >= hang,
            },
            _ => {
                seen = Some((iteration, cpu.unwrap_or_default(), Instant::now()));
                false
            }
        };
        if !stuck {
            continue;
        }
        // The loop is stuck in this input, so its buffer is not going anywhere.
        let (ptr, len) = (shared.ptr.load(Ordering::SeqCst), shared.len.load(Ordering::SeqCst));
        if shared.iteration.load(Ordering::SeqCst) != iteration || !shared.running.load(Ordering::SeqCst) {
            continue;
        }
        // SAFETY: the fuzz thread keeps `input` alive and unmodified while `running` is set
        // for this iteration, which we checked above.
        let input = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        let path = save(crash_dir, target.name, seed, iteration, "hang", &input);
        let why = format!("one input ran for more than {} ms", hang.as_millis());
        let why = if cpu.is_some() { format!("{why} of CPU time") } else { why };
        report(target.name, "HANG", &why, seed, iteration, &input, &path);
        std::process::exit(3);
    }
}

fn save(dir: &Path, target: &str, seed: u64, iteration: u64, kind: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{target}-{kind}-seed{seed}-iter{iteration}.bin"));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("salt-fuzz: cannot save {}: {e}", path.display());
    }
    path
}

fn report(target: &str, kind: &str, why: &str, seed: u64, iteration: u64, input: &[u8], path: &Path) {
    eprintln!("salt-fuzz: {kind} in target {target} (seed {seed}, iteration {iteration}): {why}");
    eprintln!("salt-fuzz: input ({} bytes), saved to {}:", input.len(), path.display());
    const SHOWN: usize = 512;
    let hex: String = input.iter().take(SHOWN).map(|b| format!("{b:02x}")).collect();
    eprintln!("{hex}{}", if input.len() > SHOWN { " ..." } else { "" });
    eprintln!("salt-fuzz: replay with: salt-fuzz {target} --replay {}", path.display());
}

/// Installs `SIGABRT`/`SIGSEGV`/`SIGBUS` handlers that save the current input: a stack
/// overflow aborts the process, and this is the only chance to say which input did it.
fn arm_abort_handler(target: &Target, opts: &Options, shared: &Arc<Shared>) {
    let path = opts.crash_dir.join(format!("{}-abort-seed{}.bin", target.name, opts.seed));
    let msg = format!(
        "\nsalt-fuzz: ABORT in target {} (seed {}): the process is dying (a stack overflow?); the input is saved to {}; replay with: salt-fuzz {} --replay {}\n",
        target.name,
        opts.seed,
        path.display(),
        target.name,
        path.display()
    )
    .into_bytes();
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in path");
    ABORT_PATH.store(cpath.as_ptr() as *mut _, Ordering::SeqCst);
    ABORT_MSG.store(msg.as_ptr() as *mut _, Ordering::SeqCst);
    ABORT_MSG_LEN.store(msg.len(), Ordering::SeqCst);
    *ABORT_INFO.lock().unwrap_or_else(|e| e.into_inner()) = Some(AbortInfo { _path: cpath, _msg: msg });
    CURRENT.store(Arc::as_ptr(shared) as *mut Shared, Ordering::SeqCst);

    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        for sig in [libc::SIGABRT, libc::SIGBUS] {
            // SAFETY: a plain sigaction with a handler that only calls async-signal-safe
            // functions (open, write, close, signal, raise).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal_signal as *const () as usize;
                action.sa_flags = libc::SA_ONSTACK | libc::SA_RESETHAND;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    });
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    // SAFETY: only async-signal-safe calls; the pointers were published before the loop
    // started and stay valid for the whole run (the process dies right after this).
    unsafe {
        let shared = CURRENT.load(Ordering::SeqCst);
        let path = ABORT_PATH.load(Ordering::SeqCst);
        let msg = ABORT_MSG.load(Ordering::SeqCst);
        if !shared.is_null() && !path.is_null() && (*shared).running.load(Ordering::SeqCst) {
            let ptr = (*shared).ptr.load(Ordering::SeqCst);
            let len = (*shared).len.load(Ordering::SeqCst);
            let fd = libc::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644);
            if fd >= 0 {
                let mut off = 0;
                while off < len {
                    let n = libc::write(fd, ptr.add(off) as *const libc::c_void, len - off);
                    if n <= 0 {
                        break;
                    }
                    off += n as usize;
                }
                libc::close(fd);
            }
            if !msg.is_null() {
                libc::write(2, msg as *const libc::c_void, ABORT_MSG_LEN.load(Ordering::SeqCst));
            }
            // The input in hex, at most 512 bytes of it, without allocating.
            let mut buf = [0u8; 128];
            let shown = len.min(512);
            let digits = b"0123456789abcdef";
            let mut i = 0;
            while i < shown {
                let mut n = 0;
                while n < buf.len() && i < shown {
                    let b = *ptr.add(i);
                    buf[n] = digits[(b >> 4) as usize];
                    buf[n + 1] = digits[(b & 15) as usize];
                    n += 2;
                    i += 1;
                }
                libc::write(2, buf.as_ptr() as *const libc::c_void, n);
            }
            libc::write(2, b"\n".as_ptr() as *const libc::c_void, 1);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Runs one saved input through a target (for a crash, a hang, or a regression check).
pub fn replay(target: &'static Target, path: &Path) -> Result<(), String> {
    let input = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let started = Instant::now();
    let outcome = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input))))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "the replay thread died".to_string())?;
    let took = started.elapsed();
    match outcome {
        Ok(valid) => {
            println!("{}: no crash in {:.3} s (input {})", target.name, took.as_secs_f64(), if valid { "valid" } else { "refused" });
            Ok(())
        }
        Err(payload) => Err(format!("{}: PANIC after {:.3} s: {}", target.name, took.as_secs_f64(), panic_message(&payload))),
    }
}
