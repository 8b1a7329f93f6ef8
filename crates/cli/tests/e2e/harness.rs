//! Starts masters and minions as real processes in a temporary root, and runs the CLI tools
//! against them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin(name: &str) -> PathBuf {
    let var = match name {
        "salt" => env!("CARGO_BIN_EXE_salt"),
        "salt-master" => env!("CARGO_BIN_EXE_salt-master"),
        "salt-minion" => env!("CARGO_BIN_EXE_salt-minion"),
        "salt-key" => env!("CARGO_BIN_EXE_salt-key"),
        "salt-call" => env!("CARGO_BIN_EXE_salt-call"),
        "salt-run" => env!("CARGO_BIN_EXE_salt-run"),
        "salt-returner-schema" => env!("CARGO_BIN_EXE_salt-returner-schema"),
        "salt-swarm" => env!("CARGO_BIN_EXE_salt-swarm"),
        other => panic!("unknown program {other}"),
    };
    PathBuf::from(var)
}

/// Held by the tests that load the machine for seconds (thousands of publishes or connections,
/// returns of tens of megabytes), so that two of them never run at once on CI's two cores and
/// starve the tests that measure time.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A process that is killed when the test ends, pass or fail.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub master: Option<Daemon>,
    pub minions: Vec<(String, Daemon)>,
    /// Set in the environment of every daemon this cluster starts, and so inherited by their
    /// job processes and the commands those run: what to kill when the test ends.
    tag: String,
}

/// The environment variable that marks a cluster's processes.
const CLUSTER_TAG: &str = "SALTRS_E2E_CLUSTER";

impl Drop for Cluster {
    /// Stops the daemons, then every process they left (job processes live in sessions of their
    /// own and outlive their minion, as in Salt; a test must not leave them behind).
    fn drop(&mut self) {
        self.master = None;
        self.minions.clear();
        kill_tagged(&self.tag);
    }
}

fn kill_tagged(tag: &str) {
    let needle = format!("{CLUSTER_TAG}={tag}\0");
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    for pid in procs.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            // SAFETY: kill takes a pid and a signal number.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Cluster {
    /// A master with `extra` appended to its config (YAML lines), not yet started.
    pub fn new(extra: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let root = dir.path().join("root");
        std::fs::write(
            etc.join("master"),
            format!("root_dir: {}\ninterface: 127.0.0.1\nret_port: {port}\nlog_level_logfile: debug\n{extra}\n", root.display()),
        )
        .unwrap();
        let tag = format!("{}-{}", std::process::id(), dir.path().display());
        Cluster { dir, port, master: None, minions: Vec::new(), tag }
    }

    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn master_pki(&self) -> PathBuf {
        self.root().join("etc/salt/pki/master")
    }

    pub fn start_master(&mut self) {
        self.start_master_in(Command::new(bin("salt-master")));
    }

    /// Starts the master with at most `limit` open files (soft and hard), as a host with a
    /// low descriptor limit would.
    pub fn start_master_with_open_files(&mut self, limit: u64) {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(bin("salt-master"));
        // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.start_master_in(cmd);
    }

    fn start_master_in(&mut self, mut cmd: Command) {
        // A master killed with SIGKILL leaves its socket; wait for the new one, not that.
        let sock = self.root().join("var/run/salt/master/master.sock");
        let _ = std::fs::remove_file(&sock);
        let child = cmd
            .env(CLUSTER_TAG, &self.tag)
            .arg("-c")
            .arg(self.etc())
            .arg("-l")
            .arg("warning")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.master = Some(Daemon(child));
        wait_for(|| sock.exists(), Duration::from_secs(20), "the master's control socket");
    }

    pub fn stop_master(&mut self) {
        self.master = None;
    }

    /// Starts `salt-swarm` with `args` after `-c <its config dir>`, its minions dialling this
    /// master, their files under `<dir>/root-swarm`. Its standard output goes to
    /// [`Cluster::swarm_stdout`].
    pub fn start_swarm(&self, args: &[&str]) -> Daemon {
        let etc = self.dir.path().join("etc-swarm");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("minion"),
            format!(
                "master: 127.0.0.1\nmaster_port: {}\nroot_dir: {}\nacceptance_wait_time: 1\nrecon_default: 200\nrecon_max: 1000\nlog_level_logfile: info\n",
                self.port,
                self.dir.path().join("root-swarm").display()
            ),
        )
        .unwrap();
        let out = std::fs::File::create(self.dir.path().join("swarm.out")).unwrap();
        let child = Command::new(bin("salt-swarm"))
            .env(CLUSTER_TAG, &self.tag)
            .arg("-c")
            .arg(&etc)
            .args(args)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon(child)
    }

    pub fn swarm_stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("swarm.out")).unwrap_or_default()
    }

    pub fn swarm_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("root-swarm/var/log/salt/minion")).unwrap_or_default()
    }

    /// The config dir of minion `id`.
    pub fn minion_etc(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("etc-{id}"))
    }

    pub fn minion_root(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("root-{id}"))
    }

    /// Writes the minion's config and starts it.
    pub fn start_minion(&mut self, id: &str, extra: &str) {
        let etc = self.minion_etc(id);
        std::fs::create_dir_all(&etc).unwrap();
        let config = etc.join("minion");
        if !config.exists() {
            std::fs::write(
                &config,
                format!(
                    "id: {id}\nroot_dir: {}\nmaster: 127.0.0.1\nmaster_port: {}\nacceptance_wait_time: 1\nrecon_default: 100\nrecon_max: 1000\nlog_level_logfile: debug\n{extra}\n",
                    self.minion_root(id).display(),
                    self.port
                ),
            )
            .unwrap();
        }
        // Its standard output is kept: the `local` returner prints there.
        let stdout = std::fs::OpenOptions::new().create(true).append(true).open(self.minion_stdout_path(id)).unwrap();
        let child = Command::new(bin("salt-minion"))
            .env(CLUSTER_TAG, &self.tag)
            .arg("-c")
            .arg(&etc)
            .arg("-l")
            .arg("quiet")
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.minions.push((id.to_string(), Daemon(child)));
    }

    fn minion_stdout_path(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("stdout-{id}"))
    }

    /// What minion `id` printed on its standard output.
    pub fn minion_stdout(&self, id: &str) -> String {
        std::fs::read_to_string(self.minion_stdout_path(id)).unwrap_or_default()
    }

    /// Minion `id`'s `cachedir` (its `proc` and `outbox` directories are in it).
    pub fn minion_cachedir(&self, id: &str) -> PathBuf {
        self.minion_root(id).join("var/cache/salt/minion")
    }

    pub fn stop_minion(&mut self, id: &str) {
        self.minions.retain(|(m, _)| m != id);
    }

    pub fn minion_log(&self, id: &str) -> String {
        std::fs::read_to_string(self.minion_root(id).join("var/log/salt/minion")).unwrap_or_default()
    }

    pub fn master_log(&self) -> String {
        std::fs::read_to_string(self.root().join("var/log/salt/master")).unwrap_or_default()
    }

    /// Starts minions and accepts their keys, then waits until each answers test.ping.
    pub fn start_accepted(&mut self, ids: &[&str]) {
        self.start_accepted_with(ids, "");
    }

    /// [`Cluster::start_accepted`], each minion with `extra` in its config.
    pub fn start_accepted_with(&mut self, ids: &[&str], extra: &str) {
        for id in ids {
            self.start_minion(id, extra);
        }
        for id in ids {
            let pre = self.master_pki().join("minions_pre").join(id);
            wait_for(|| pre.exists(), Duration::from_secs(20), &format!("{id}'s key in minions_pre"));
            let r = self.salt_key(&["-a", id, "-y"]);
            assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        }
        for id in ids {
            self.wait_connected(id);
        }
    }

    pub fn wait_connected(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.salt(&[id, "test.ping", "-t", "2", "--out", "json"]);
            if r.code == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{id} never answered: {}{}", r.stdout, r.stderr);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `salt-run jobs.lookup_jid <jid>` until it prints `want` (the job cache is written
    /// behind the CLI); fails after `timeout`.
    pub fn wait_lookup(&self, jid: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.salt_run(&["jobs.lookup_jid", jid]);
            if r.stdout == want {
                return;
            }
            assert!(Instant::now() < deadline, "job {jid}: wanted {want:?}, the job cache has {:?} {}", r.stdout, r.stderr);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn salt(&self, args: &[&str]) -> Run {
        run(bin("salt"), &self.etc(), args)
    }

    /// Opens the config to other users (as an admin does for `publisher_acl`): the test's
    /// directory and `etc` become 0755, the master file 0644.
    pub fn open_config_to_all(&self) {
        use std::os::unix::fs::PermissionsExt;
        for dir in [self.dir.path().to_path_buf(), self.etc()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(self.etc().join("master"), std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// `salt` run as the unprivileged user `nobody` (see [`Cluster::open_config_to_all`]).
    pub fn salt_as_nobody(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(bin("salt")).arg("-c").arg(self.etc()).args(args);
        cmd.stdin(Stdio::null()).output().unwrap().into()
    }

    pub fn salt_run(&self, args: &[&str]) -> Run {
        run(bin("salt-run"), &self.etc(), args)
    }

    pub fn salt_key(&self, args: &[&str]) -> Run {
        run(bin("salt-key"), &self.etc(), args)
    }
}

pub fn run(program: PathBuf, etc: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(program);
    cmd.arg("-c").arg(etc).args(args).stdin(Stdio::null());
    let out = cmd.output().unwrap();
    out.into()
}

/// `salt-run state.event` running in the background, its lines read as they come. `ready`
/// returns once the stream is live, so a test never sleeps and hopes it subscribed in time;
/// every read has a timeout, so a missed event fails the test rather than hanging it.
pub struct EventWatch {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl EventWatch {
    /// Every event of the cluster's master, from now on (once [`EventWatch::ready`] returned).
    pub fn start(c: &Cluster) -> EventWatch {
        let mut child = Command::new(bin("salt-run"))
            .arg("-c")
            .arg(c.etc())
            .args(["state.event", "*"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut watch = EventWatch { child, lines };
        watch.ready(c);
        watch
    }

    /// Runs a runner (which fires `salt/run/<jid>/new`) until the stream shows an event, then
    /// drops what came so far.
    fn ready(&mut self, c: &Cluster) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            c.salt_run(&["manage.present"]);
            if self.lines.recv_timeout(Duration::from_millis(300)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the event stream never started");
        }
        while self.lines.recv_timeout(Duration::from_millis(200)).is_ok() {}
    }

    /// The next event whose tag `wanted` accepts, as (tag, data); fails after `timeout`.
    pub fn expect(&mut self, wanted: impl Fn(&str) -> bool, timeout: Duration) -> (String, serde_json::Value) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no such event within {timeout:?}"));
            let (tag, data) = line.split_once('\t').unwrap_or((line.as_str(), "null"));
            if wanted(tag) {
                return (tag.to_string(), serde_json::from_str(data).unwrap_or(serde_json::Value::Null));
            }
        }
    }

    /// The tags of the events that came within `quiet` of each other, until none came.
    pub fn drain(&mut self, quiet: Duration) -> Vec<String> {
        std::iter::from_fn(|| self.lines.recv_timeout(quiet).ok()).map(|l| l.split('\t').next().unwrap_or_default().to_string()).collect()
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of `text`, newest first: what a failed assertion shows of a log.
pub fn last_lines(text: &str, n: usize) -> String {
    text.lines().rev().take(n).collect::<Vec<_>>().join("\n")
}

pub fn wait_for(mut cond: impl FnMut() -> bool, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A small tmpfs to fill (a full disk), shared with the returners' tests; skips without root.
pub use saltrs_testkit::Tmpfs;

/// A TCP forwarder that can cut a server off (refusing and dropping every connection) and bring
/// it back: an outage for a server that cannot be stopped, or that forgets its data when it is.
pub struct Outage {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Outage {
    pub fn new(target: (String, u16)) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)) else { continue };
                conns2.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut a, mut b) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = a.read(&mut buf) {
                            if n == 0 || b.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = b.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Outage { port, up, conns }
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// What a minion sends for a `test.ping` of job `jid`, for tests that speak the protocol
/// themselves.
pub fn ping_return(id: &str, jid: &str) -> salt_proto::message::JobReturn {
    salt_proto::message::JobReturn {
        id: id.into(),
        jid: jid.into(),
        fun: "test.ping".into(),
        fun_args: vec![],
        ret: true.into(),
        retcode: 0,
        success: true,
        user: None,
        out: None,
        metadata: None,
    }
}
