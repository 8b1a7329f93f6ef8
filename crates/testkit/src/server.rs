//! Store servers started by a test for itself: Redis, memcached, etcd, MongoDB (SecantusDB),
//! CouchDB (pouchdb-server), Elasticsearch (osmem-server, OpenSearch's REST API), Graphite's
//! carbon-cache, rsyslogd and a mail server (aiosmtpd, see [`Kind::Smtp`]).
//!
//! Each [`Server`] runs one program on a free loopback port with its data in its own temporary
//! directory, and is killed (its whole process group: pouchdb-server runs under node,
//! secantusd under python) when dropped. [`Server::stop`] and [`Server::start`] take it down and
//! bring it back on the same port with the same data dir, for the outage tests.
//!
//! The programs come from `bash scripts/services.sh tools`, which installs them and writes
//! their paths to its env file (`SALTRS_REDIS_SERVER`, ... see [`Kind::env_var`]). Without the
//! variable, a program is looked for under `$SALTRS_SERVICES_DIR` (default
//! `/var/tmp/saltrs-services`, where that script puts the PyPI and npm ones), then on `PATH`.
//! A missing program is a reason to skip ([`crate::skip`]); one that is there but does not
//! start or answer fails the test.
//!
//! ```no_run
//! use saltrs_testkit::Server;
//! let Some(mut redis) = Server::redis() else { return }; // skipped: not installed
//! let url = redis.url(); // redis://127.0.0.1:PORT, for the returner's config
//! redis.stop(); // an outage: connections are refused
//! redis.start().unwrap(); // back on the same port, with the same data dir
//! ```

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a server gets to answer after it is started. The slowest (secantusd, pouchdb) take
/// about a second on an idle machine; this leaves room for a loaded two-core one.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Server::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often [`Server::stop`] repeats SIGTERM: secantusd often misses the first one (its main
/// thread sleeps in `Event.wait()` and does not run the handler; seen in 9 of 10 stops right
/// after a start), and takes the second.
const TERM_AGAIN: Duration = Duration::from_secs(3);
/// Where `scripts/services.sh tools` installs the PyPI and npm servers by default.
const DEFAULT_SERVICES_DIR: &str = "/var/tmp/saltrs-services";
/// Lines of a server's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 30;
/// The program a [`Kind::Smtp`] server runs (under Python, with aiosmtpd).
const SMTP_SINK: &str = include_str!("smtp_sink.py");

/// Which store server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Redis,
    Memcached,
    Etcd,
    /// SecantusDB's `secantusd-py`, a MongoDB wire-protocol server on WiredTiger.
    Mongo,
    /// `pouchdb-server`, CouchDB's REST API (under node).
    CouchDb,
    /// `osmem-server`, OpenSearch's REST API (a Go binary from a PyPI wheel); kept in memory.
    Elasticsearch,
    /// Graphite's `carbon-cache` (Debian `graphite-carbon`): the plaintext protocol on
    /// [`Server::port`], the pickle one on [`Server::pickle_port`], whisper files in
    /// [`Server::data_dir`] (1 s points for a day, daily ones for ten years).
    Carbon,
    /// `rsyslogd`: a local socket ([`Server::log_socket`]), UDP ([`Server::udp_port`]) and TCP
    /// ([`Server::port`], octet-counted or newline framing); every message as received, one a line,
    /// in [`Server::messages_path`]. rsyslog's defaults otherwise (messages cut at 8096 bytes).
    Rsyslog,
    /// An SMTP server on aiosmtpd (Debian's `python3-aiosmtpd`), run by a Python that has it
    /// (`SALTRS_AIOSMTPD_PYTHON`, else `/usr/bin/python3`): `smtp_sink.py`, written into the
    /// server's dir, saves each message it accepts in [`Server::maildir`] (`N.json`, the
    /// envelope; `N.eml`, the data). Its arguments (give them to [`Server::with_args`]):
    /// `--tls-cert PEM --tls-key PEM` offer STARTTLS; `--users FILE` (lines of `user:password`)
    /// requires AUTH PLAIN or LOGIN, after STARTTLS when it is offered. A recipient address
    /// holding `refuse` gets a 550, one holding `later` a 451; [`Server::smtp_refuse_next`]
    /// makes the next message's DATA get the reply it is given.
    Smtp,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Redis,
        Kind::Memcached,
        Kind::Etcd,
        Kind::Mongo,
        Kind::CouchDb,
        Kind::Elasticsearch,
        Kind::Carbon,
        Kind::Rsyslog,
        Kind::Smtp,
    ];

    /// The store's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "Redis",
            Kind::Memcached => "memcached",
            Kind::Etcd => "etcd",
            Kind::Mongo => "MongoDB",
            Kind::CouchDb => "CouchDB",
            Kind::Elasticsearch => "Elasticsearch",
            Kind::Carbon => "carbon",
            Kind::Rsyslog => "rsyslog",
            Kind::Smtp => "SMTP (aiosmtpd)",
        }
    }

    /// The program's file name.
    pub fn program(self) -> &'static str {
        match self {
            Kind::Redis => "redis-server",
            Kind::Memcached => "memcached",
            Kind::Etcd => "etcd",
            Kind::Mongo => "secantusd-py",
            Kind::CouchDb => "pouchdb-server",
            Kind::Elasticsearch => "osmem-server",
            Kind::Carbon => "carbon-cache",
            Kind::Rsyslog => "rsyslogd",
            Kind::Smtp => "python3",
        }
    }

    /// The variable that names the program's path (`scripts/services.sh tools` writes it).
    pub fn env_var(self) -> &'static str {
        match self {
            Kind::Redis => "SALTRS_REDIS_SERVER",
            Kind::Memcached => "SALTRS_MEMCACHED",
            Kind::Etcd => "SALTRS_ETCD",
            Kind::Mongo => "SALTRS_SECANTUSD",
            Kind::CouchDb => "SALTRS_POUCHDB_SERVER",
            Kind::Elasticsearch => "SALTRS_OSMEM_SERVER",
            Kind::Carbon => "SALTRS_CARBON_CACHE",
            Kind::Rsyslog => "SALTRS_RSYSLOGD",
            Kind::Smtp => "SALTRS_AIOSMTPD_PYTHON",
        }
    }

    /// Whether the data outlives [`Server::stop`]. memcached and osmem-server keep everything in
    /// memory: after a restart they are empty.
    pub fn keeps_data(self) -> bool {
        !matches!(self, Kind::Memcached | Kind::Elasticsearch)
    }

    /// How many free ports it needs besides [`Server::port`]: etcd's peer port; carbon's
    /// pickle and cache-query ports; rsyslog's UDP port.
    fn more_ports(self) -> usize {
        match self {
            Kind::Etcd | Kind::Rsyslog => 1,
            Kind::Carbon => 2,
            _ => 0,
        }
    }

    /// Where `scripts/services.sh tools` puts the program under `services`, if not on PATH.
    fn installed_paths(self, services: &Path) -> Vec<PathBuf> {
        let venv = services.join("venv");
        match self {
            Kind::Mongo => vec![venv.join("bin/secantusd-py")],
            Kind::CouchDb => vec![services.join("pouchdb/node_modules/.bin/pouchdb-server")],
            // Inside the wheel, under the venv's Python version.
            Kind::Elasticsearch => std::fs::read_dir(venv.join("lib"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
                .map(|e| e.path().join("site-packages/osmem_server/bin/osmem-server"))
                .collect(),
            // Debian's, in sbin (not on a user's PATH).
            Kind::Rsyslog => vec![PathBuf::from("/usr/sbin/rsyslogd")],

            // Debian's, which has python3-aiosmtpd (a `python3` on PATH may be another).
            Kind::Smtp => vec![PathBuf::from("/usr/bin/python3")],
            Kind::Redis | Kind::Memcached | Kind::Etcd | Kind::Carbon => Vec::new(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`Server::launch`] or [`Server::start`] has no running server.
#[derive(Debug)]
pub enum ServerError {
    /// The program is not installed: a reason to [`skip`](crate::skip) the test (the message
    /// says how to install it).
    Missing(String),
    /// The program is there but did not start or answer: a failure (the message quotes its log).
    Failed(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Missing(m) | ServerError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ServerError {}

/// One store server for one test. See the [module docs](self).
///
/// Its methods block (a start waits for the server to answer, a stop for it to exit): from an
/// async test, call them where blocking a runtime thread for a moment does no harm.
#[derive(Debug)]
pub struct Server {
    kind: Kind,
    program: PathBuf,
    port: u16,
    /// The other ports it listens on ([`Kind::more_ports`]), which must be free too.
    more_ports: Vec<u16>,
    /// Given by the test, after the ones every server of its kind gets ([`Server::launch_with`]).
    extra_args: Vec<String>,
    /// The temporary directory: `data/` and `server.log`, removed on drop.
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    started_in: Duration,
}

impl Server {
    /// A Redis server (`redis-server`; append-only file in the data dir, so data survives
    /// [`stop`](Self::stop)), or `None` after [`skip`](crate::skip)ping the test when it is not
    /// installed. Panics when it does not start.
    pub fn redis() -> Option<Server> {
        Self::or_skip(Kind::Redis)
    }

    /// A memcached server (run as user `memcache`, else `nobody`, when root); loses its data on
    /// [`stop`](Self::stop). `None` after skipping the test when it is not installed.
    pub fn memcached() -> Option<Server> {
        Self::or_skip(Kind::Memcached)
    }

    /// A single-node etcd cluster (client port [`port`](Self::port), its peer port another free
    /// one). `None` after skipping the test when it is not installed.
    pub fn etcd() -> Option<Server> {
        Self::or_skip(Kind::Etcd)
    }

    /// A MongoDB wire-protocol server (SecantusDB's `secantusd-py`, data on disk). `None` after
    /// skipping the test when it is not installed.
    pub fn mongo() -> Option<Server> {
        Self::or_skip(Kind::Mongo)
    }

    /// A CouchDB REST server (`pouchdb-server`, data on disk; it runs in the data dir, where it
    /// also writes its `config.json` and `log.txt`). `None` after skipping the test when it is
    /// not installed.
    pub fn couchdb() -> Option<Server> {
        Self::or_skip(Kind::CouchDb)
    }

    /// An Elasticsearch/OpenSearch REST server (`osmem-server`); loses its data on
    /// [`stop`](Self::stop). `None` after skipping the test when it is not installed.
    pub fn elasticsearch() -> Option<Server> {
        Self::or_skip(Kind::Elasticsearch)
    }

    /// A carbon-cache (see [`Kind::Carbon`]); its whisper files stay across
    /// [`stop`](Self::stop), but datapoints it has taken and not yet written are lost (it does
    /// not write its cache on SIGTERM). `None` after skipping the test when it is not installed.
    pub fn carbon() -> Option<Server> {
        Self::or_skip(Kind::Carbon)
    }

    /// An rsyslogd (see [`Kind::Rsyslog`]). `None` after skipping the test when it is not
    /// installed.
    pub fn rsyslog() -> Option<Server> {
        Self::or_skip(Kind::Rsyslog)
    }

    fn or_skip(kind: Kind) -> Option<Server> {
        Self::with_args(kind, &[])
    }

    /// A `kind` server started with more arguments for its program (a limit raised, a feature
    /// turned on), on every start; `None` after skipping the test when it is not installed.
    pub fn with_args(kind: Kind, extra_args: &[&str]) -> Option<Server> {
        match Self::launch_with(kind, extra_args) {
            Ok(server) => Some(server),
            Err(ServerError::Missing(why)) => {
                crate::skip(why);
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a `kind` server on a free port and waits until it answers. A port another process
    /// took in the meantime is retried with a new one.
    pub fn launch(kind: Kind) -> Result<Server, ServerError> {
        Self::launch_with(kind, &[])
    }

    /// [`launch`](Self::launch) with more arguments for the program.
    pub fn launch_with(kind: Kind, extra_args: &[&str]) -> Result<Server, ServerError> {
        Self::launch_program(kind, find_program(kind, &|name| std::env::var_os(name))?, extra_args)
    }

    fn launch_program(kind: Kind, program: PathBuf, extra_args: &[&str]) -> Result<Server, ServerError> {
        let failed = |what: &str, e: io::Error| ServerError::Failed(format!("{kind}: {what}: {e}"));
        if kind == Kind::Smtp
            && !Command::new(&program).args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        {
            return Err(ServerError::Missing(format!(
                "{} has no aiosmtpd module for the {kind} tests; install python3-aiosmtpd with `bash scripts/services.sh tools`, or set {} to a python3 that has it",
                program.display(),
                kind.env_var()
            )));
        }
        let dir =
            temp_dir(if kind == Kind::Smtp { "smtp" } else { kind.program() }).map_err(|e| failed("cannot create a temporary dir", e))?;
        if kind == Kind::Smtp {
            std::fs::write(dir.join("smtp_sink.py"), SMTP_SINK).map_err(|e| failed("cannot write smtp_sink.py", e))?;
        }
        let data = dir.join("data");
        // 0700: etcd warns about anything wider.
        std::fs::create_dir(&data)
            .and_then(|()| std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| failed("cannot create the data dir", e))?;
        let mut server = Server {
            kind,
            program,
            port: 0,
            more_ports: Vec::new(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            log: dir.join("server.log"),
            dir,
            data,
            child: None,
            started_in: Duration::ZERO,
        };
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            server.port = reserve_port();
            server.more_ports = (0..kind.more_ports()).map(|_| reserve_port()).collect();
            let log_from = std::fs::metadata(&server.log).map(|m| m.len()).unwrap_or(0);
            match server.start() {
                Ok(()) => return Ok(server),
                Err(e) if attempt < ATTEMPTS && server.collided(log_from) => {
                    eprintln!("{kind}: port {} was taken, trying another ({e})", server.port);
                    server.release_ports();
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Starts the server again after [`stop`](Self::stop) (or [`kill`](Self::kill)): same
    /// port, same data dir; waits until it answers. Does nothing while it runs.
    pub fn start(&mut self) -> Result<(), ServerError> {
        if self.child.is_some() {
            return Ok(());
        }
        // Else another process's server could answer the pings below.
        if let Some(port) = std::iter::once(self.port).chain(self.more_ports.iter().copied()).find(|&p| port_taken(p)) {
            return Err(self.failed(&format!("127.0.0.1:{port} is taken by another process")));
        }
        let began = Instant::now();
        let mut child = self.spawn().map_err(|e| self.failed(&format!("cannot run {}: {e}", self.program.display())))?;
        let deadline = began + START_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Its children may still hold the port.
                    signal_group(child.id(), "KILL");
                    return Err(self.failed(&format!("{} exited ({status}) before answering on {}", self.program.display(), self.addr())));
                }
                Ok(None) => {}
                Err(e) => return Err(self.failed(&format!("cannot wait for {}: {e}", self.program.display()))),
            }
            match self.ping() {
                Ok(()) => break,
                Err(why) if Instant::now() >= deadline => {
                    stop_group(child, Duration::ZERO);
                    let program = self.program.display();
                    return Err(self.failed(&format!("{program} did not answer on {} within {START_TIMEOUT:?} ({why})", self.addr())));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
        self.started_in = began.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server: SIGTERM to its process group (again every 3 s), SIGKILL after 10 s,
    /// and waits until the whole group is gone, so the port is free for [`start`](Self::start).
    /// Data on disk stays ([`Kind::keeps_data`]).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child, STOP_GRACE);
        }
    }

    /// Kills the server at once (SIGKILL to its process group, like a crash) and waits until it
    /// is gone. What it had not yet written to disk is lost.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child, Duration::ZERO);
        }
    }

    /// Whether it was started and not stopped (it may have died since: see [`ping`](Self::ping)).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The port clients connect to, on 127.0.0.1; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// How clients name it: `redis://127.0.0.1:P`, `memcache://127.0.0.1:P`,
    /// `mongodb://127.0.0.1:P`, or `http://127.0.0.1:P` (etcd's JSON gateway, CouchDB,
    /// Elasticsearch).
    pub fn url(&self) -> String {
        let scheme = match self.kind {
            Kind::Redis => "redis",
            Kind::Memcached => "memcache",
            Kind::Mongo => "mongodb",
            Kind::Etcd | Kind::CouchDb | Kind::Elasticsearch => "http",
            Kind::Carbon | Kind::Rsyslog => "tcp",
            Kind::Smtp => "smtp",
        };
        format!("{scheme}://{}", self.addr())
    }

    /// carbon's pickle port.
    pub fn pickle_port(&self) -> u16 {
        assert_eq!(self.kind, Kind::Carbon, "only carbon has a pickle port");
        self.more_ports[0]
    }

    /// rsyslog's UDP port (on 127.0.0.1).
    pub fn udp_port(&self) -> u16 {
        assert_eq!(self.kind, Kind::Rsyslog, "only rsyslog listens on UDP");
        self.more_ports[0]
    }

    /// rsyslog's local socket (a datagram socket, as `/dev/log`).
    pub fn log_socket(&self) -> PathBuf {
        self.dir.join("log.sock")
    }

    /// The file rsyslog writes every message to, as received (`%rawmsg%`), one a line.
    pub fn messages_path(&self) -> PathBuf {
        self.data.join("messages")
    }

    /// The server's data directory (removed on drop).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Where a [`Kind::Smtp`] server saves the messages it accepts (`N.json`, `N.eml`).
    pub fn maildir(&self) -> PathBuf {
        self.data.join("maildir")
    }

    /// Makes a [`Kind::Smtp`] server answer the next message's DATA with `reply` (a whole reply
    /// line, such as `550 5.7.1 refused`) instead of accepting it.
    pub fn smtp_refuse_next(&self, reply: &str) -> io::Result<()> {
        std::fs::write(self.data.join("refuse_next"), reply)
    }

    /// The file that collects the server's stdout and stderr, over all its starts.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How long the last [`start`](Self::start) took until the server answered.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// One exchange in the server's own protocol: Redis `PING`, memcached `version`, etcd
    /// `GET /health` (true once it has a leader), `GET /` for CouchDB and Elasticsearch; for
    /// MongoDB a TCP connection.
    pub fn ping(&self) -> io::Result<()> {
        let expect = |ok: bool, answer: &str| {
            if ok {
                Ok(())
            } else {
                Err(io::Error::other(format!("unexpected answer {answer:?}")))
            }
        };
        match self.kind {
            Kind::Redis => {
                let a = exchange(self.addr(), b"PING\r\n")?;
                expect(a.starts_with("+PONG"), &a)
            }
            Kind::Memcached => {
                let a = exchange(self.addr(), b"version\r\n")?;
                expect(a.starts_with("VERSION "), &a)
            }
            Kind::Etcd => {
                let (status, body) = http(self.addr(), "GET", "/health", "")?;
                expect(status == 200 && body.contains("true"), &body)
            }
            Kind::CouchDb | Kind::Elasticsearch => {
                let (status, body) = http(self.addr(), "GET", "/", "")?;
                expect(status == 200, &body)
            }
            Kind::Mongo => TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2)).map(drop),
            Kind::Carbon => [self.port, self.more_ports[0]].into_iter().try_for_each(|p| {
                TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, p)), Duration::from_secs(2)).map(drop)
            }),
            Kind::Rsyslog => {
                TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
                std::os::unix::net::UnixDatagram::unbound()?.connect(self.log_socket())
            }
            Kind::Smtp => {
                let a = exchange(self.addr(), b"QUIT\r\n")?;
                expect(a.starts_with("220 "), &a)
            }
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = self.own_args();
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn own_args(&self) -> Vec<String> {
        let port = self.port.to_string();
        let data = self.data.display().to_string();
        let own = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match self.kind {
            Kind::Redis => {
                own(&["--port", &port, "--bind", "127.0.0.1", "--dir", &data, "--save", "", "--appendonly", "yes", "--daemonize", "no"])
            }
            Kind::Memcached => {
                let mut args = own(&["-l", "127.0.0.1", "-p", &port, "-U", "0", "-m", "64"]);
                // memcached refuses to run as root without a user to switch to.
                if crate::is_root() {
                    let user = if user_exists("memcache") { "memcache" } else { "nobody" };
                    args.extend(own(&["-u", user]));
                }
                args
            }
            Kind::Etcd => {
                let client = format!("http://127.0.0.1:{port}");
                let peer = format!("http://127.0.0.1:{}", self.more_ports[0]);
                own(&[
                    "--name",
                    "default",
                    "--data-dir",
                    &data,
                    "--logger",
                    "zap",
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                    "--initial-cluster",
                    &format!("default={peer}"),
                ])
            }
            Kind::Mongo => own(&["--host", "127.0.0.1", "--port", &port, "--storage-path", &data]),
            Kind::CouchDb => own(&["--host", "127.0.0.1", "--port", &port, "--dir", &data]),
            // -parent-pid: it exits if this test process dies without dropping it.
            Kind::Elasticsearch => {
                own(&["-addr", &self.addr().to_string(), "-no-stdin-watch", "-parent-pid", &std::process::id().to_string()])
            }
            Kind::Smtp => {
                let script = self.dir.join("smtp_sink.py").display().to_string();
                own(&["-u", &script, "--port", &port, "--maildir", &self.maildir().display().to_string()])
            }
            Kind::Carbon => {
                let conf = self.dir.join("carbon.conf").display().to_string();
                let pid = self.dir.join("carbon-cache.pid").display().to_string();
                own(&["--config", &conf, "--pidfile", &pid, "--nodaemon", "start"])
            }
            Kind::Rsyslog => {
                let conf = self.dir.join("rsyslog.conf").display().to_string();
                let pid = self.dir.join("rsyslogd.pid").display().to_string();
                own(&["-n", "-f", &conf, "-i", &pid])
            }
        }
    }

    /// The config files of the servers that take theirs from files, written into the temporary
    /// dir before each start.
    fn write_config(&self) -> io::Result<()> {
        let dir = self.dir.display();
        let data = self.data.display();
        match self.kind {
            Kind::Carbon => {
                let [line, pickle, query] = [self.port, self.more_ports[0], self.more_ports[1]];
                // No limits that hold back or drop datapoints; no tags (they would call
                // graphite-web); no privilege drop.
                std::fs::write(
                    self.dir.join("carbon.conf"),
                    format!(
                        "[cache]\nSTORAGE_DIR = {dir}/storage/\nLOCAL_DATA_DIR = {data}/\nLOG_DIR = {dir}/log/\nPID_DIR = {dir}/\n\
                         USER =\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = 100000\nMAX_UPDATES_PER_SECOND_ON_SHUTDOWN = 100000\n\
                         MAX_CREATES_PER_MINUTE = inf\nWHISPER_FALLOCATE_CREATE = False\nENABLE_TAGS = False\n\
                         LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line}\n\
                         PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
                         CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query}\nENABLE_UDP_LISTENER = False\n"
                    ),
                )?;
                std::fs::write(self.dir.join("storage-schemas.conf"), "[all]\npattern = .*\nretentions = 1s:1d,1d:10y\n")?;
                std::fs::write(
                    self.dir.join("storage-aggregation.conf"),
                    "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = last\n",
                )
            }
            Kind::Rsyslog => {
                let (tcp, udp) = (self.port, self.more_ports[0]);
                let socket = self.log_socket();
                let messages = self.messages_path();
                let (socket, messages) = (socket.display(), messages.display());
                std::fs::write(
                    self.dir.join("rsyslog.conf"),
                    format!(
                        "global(workDirectory=\"{data}\")\n\
                         module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                         input(type=\"imuxsock\" Socket=\"{socket}\" RateLimit.Interval=\"0\")\n\
                         module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
                         module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
                         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                         action(type=\"omfile\" file=\"{messages}\" template=\"raw\")\n"
                    ),
                )
            }
            _ => Ok(()),
        }
    }

    fn spawn(&self) -> io::Result<Child> {
        self.write_config()?;
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        writeln!(log, "--- saltrs-testkit: {} {}", self.program.display(), self.args().join(" "))?;
        Command::new(&self.program)
            .args(self.args())
            // pouchdb-server writes its config.json and log.txt into its working directory.
            .current_dir(&self.data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own group, so that stopping it also stops what it started.
            .process_group(0)
            .spawn()
    }

    fn failed(&self, what: &str) -> ServerError {
        ServerError::Failed(format!("{}: {what}; the end of its log:\n{}", self.kind, self.log_tail(LOG_TAIL_LINES)))
    }

    /// After a failed first start: did another process have the port (it still does, or the
    /// server said so in the log since `log_from`)?
    fn collided(&self, log_from: u64) -> bool {
        let mut said = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let mut bytes = Vec::new();
            if io::Seek::seek(&mut f, io::SeekFrom::Start(log_from)).is_ok() && f.read_to_end(&mut bytes).is_ok() {
                said = String::from_utf8_lossy(&bytes).to_lowercase();
            }
        }
        port_taken(self.port)
            || self.more_ports.iter().any(|&p| port_taken(p))
            || said.contains("address already in use")
            || said.contains("eaddrinuse")
    }

    fn release_ports(&mut self) {
        let mut reserved = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
        reserved.remove(&self.port);
        for p in self.more_ports.drain(..) {
            reserved.remove(&p);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        self.release_ports();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The program for `kind`: from its variable, else where `scripts/services.sh tools` installs
/// it, else on PATH. `env` reads a variable (a parameter so that tests need not set any).
fn find_program(kind: Kind, env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf, ServerError> {
    let how = "install it with `bash scripts/services.sh tools`";
    let var = kind.env_var();
    if let Some(path) = env(var).filter(|p| !p.is_empty()).map(PathBuf::from) {
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(ServerError::Missing(format!(
                "{var}={} is not an executable file; {how}, or point {var} at {}",
                path.display(),
                kind.program()
            )))
        };
    }
    let services = env("SALTRS_SERVICES_DIR").filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(|| DEFAULT_SERVICES_DIR.into());
    let on_path =
        env("PATH").map(|p| std::env::split_paths(&p).map(|dir| dir.join(kind.program())).collect::<Vec<_>>()).unwrap_or_default();
    kind.installed_paths(&services).into_iter().chain(on_path).find(|p| is_executable(p)).ok_or_else(|| {
        ServerError::Missing(format!(
            "no {} for the {kind} tests (not in {}, not on PATH); {how}, or set {var} to its path",
            kind.program(),
            services.display()
        ))
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd").is_ok_and(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
}

/// A new empty directory under the system's temp dir.
fn temp_dir(what: &str) -> io::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("saltrs-{what}-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            // Left over from an earlier process with the same pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Ports handed out in this process and not yet released: the kernel may hand the same free
/// port to two tests that ask before either server binds it.
static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port that was free a moment ago (the kernel's pick for port 0) and that no other
/// server of this process holds.
fn reserve_port() -> u16 {
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port();
        if RESERVED.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// Whether a process listens on 127.0.0.1:`port` (binding it fails).
fn port_taken(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err()
}

/// Sends `signal` to process group `pgid`. The shell's `kill` builtin: std has no kill(2) for a
/// group, and `sh` is on every machine.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", "kill -s \"$0\" -- \"-$1\"", signal, &pgid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether any process of group `pgid` still runs (zombies do not count: they hold no port).
fn group_alive(pgid: u32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else { return false };
    procs.flatten().any(|p| {
        // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parens.
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else { return false };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return false };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1);
        state != Some("Z") && state != Some("X") && pgrp == Some(pgid.to_string().as_str())
    })
}

/// Stops `child`'s process group: SIGTERM (repeated every [`TERM_AGAIN`]), then SIGKILL after
/// `grace` (at once for zero), and waits until none of it runs before reaping the leader. Until it is reaped the leader's pid,
/// which is the group's id, cannot be reused, so the signals reach no one else.
fn stop_group(mut child: Child, grace: Duration) {
    let pgid = child.id();
    let wait_gone = |limit: Duration| {
        let until = Instant::now() + limit;
        while group_alive(pgid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let until = Instant::now() + grace;
    while group_alive(pgid) && Instant::now() < until {
        signal_group(pgid, "TERM");
        wait_gone(TERM_AGAIN.min(until.saturating_duration_since(Instant::now())));
    }
    signal_group(pgid, "KILL");
    wait_gone(Duration::from_secs(10));
    let _ = child.wait();
}

/// Writes `request` and reads one line back (Redis, memcached).
fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
    let mut s = connect(addr)?;
    s.write_all(request)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.ends_with(b"\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// One HTTP/1.1 request with `Connection: close`: the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
    let mut s = connect(addr)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    let status = status.ok_or_else(|| io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts `kind` (or skips), checks `hello` (what a client sees first), runs `write` before
    /// a stop and `check_after` after the restart, and prints the start times.
    fn stop_and_start_again(
        kind: Kind,
        hello: impl Fn(&Server) -> String,
        expect_hello: &str,
        write: impl Fn(&Server),
        check_after: impl Fn(&Server),
    ) {
        let mut server = match Server::launch(kind) {
            Ok(s) => s,
            Err(ServerError::Missing(why)) => return crate::skip(why),
            Err(e) => panic!("{e}"),
        };
        let first = server.started_in();
        let port = server.port();
        let answer = hello(&server);
        assert!(answer.contains(expect_hello), "{kind} said {answer:?}");
        write(&server);

        let stopping = Instant::now();
        server.stop();
        let stopped_in = stopping.elapsed();
        assert!(!server.is_running());
        let down = TcpStream::connect_timeout(&server.addr(), Duration::from_secs(2));
        assert!(down.is_err(), "{kind} still answers on {port} after stop()");
        assert!(server.ping().is_err());

        server.start().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(server.port(), port, "same port after a restart");
        let answer = hello(&server);
        assert!(answer.contains(expect_hello), "{kind} said {answer:?} after a restart");
        check_after(&server);
        eprintln!("TIMING {kind}: first start {first:?}, stop {stopped_in:?}, second start {:?} ({})", server.started_in(), server.url());
    }

    fn get(s: &Server, path: &str) -> String {
        let (status, body) = http(s.addr(), "GET", path, "").unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    #[test]
    fn redis_stops_and_starts_again_on_its_port_with_its_data() {
        stop_and_start_again(
            Kind::Redis,
            |s| exchange(s.addr(), b"PING\r\n").unwrap(),
            "+PONG",
            |s| assert_eq!(exchange(s.addr(), b"SET k v\r\n").unwrap(), "+OK\r\n"),
            |s| assert_eq!(exchange(s.addr(), b"GET k\r\n").unwrap(), "$1\r\nv\r\n"),
        );
    }

    #[test]
    fn memcached_stops_and_starts_again_on_its_port() {
        stop_and_start_again(Kind::Memcached, |s| exchange(s.addr(), b"version\r\n").unwrap(), "VERSION 1.", |_| {}, |_| {});
    }

    #[test]
    fn etcd_stops_and_starts_again_on_its_ports_with_its_data() {
        // The JSON gateway: keys and values in base64 ("key", "val").
        stop_and_start_again(
            Kind::Etcd,
            |s| get(s, "/version"),
            "\"etcdserver\":\"3.",
            |s| {
                let (status, body) = http(s.addr(), "POST", "/v3/kv/put", r#"{"key":"a2V5","value":"dmFs"}"#).unwrap();
                assert_eq!(status, 200, "{body}");
            },
            |s| {
                let (status, body) = http(s.addr(), "POST", "/v3/kv/range", r#"{"key":"a2V5"}"#).unwrap();
                assert!(status == 200 && body.contains("dmFs"), "{status} {body}");
            },
        );
    }

    #[test]
    fn mongo_stops_and_starts_again_on_its_port_with_its_data_dir() {
        stop_and_start_again(
            Kind::Mongo,
            |s| TcpStream::connect_timeout(&s.addr(), Duration::from_secs(2)).map(|_| "connected".to_string()).unwrap(),
            "connected",
            |s| assert!(s.data_dir().join("WiredTiger").exists(), "no WiredTiger files in {}", s.data_dir().display()),
            |_| {},
        );
    }

    #[test]
    fn couchdb_stops_and_starts_again_on_its_port_with_its_data() {
        stop_and_start_again(
            Kind::CouchDb,
            |s| get(s, "/"),
            "Welcome",
            |s| {
                let (status, body) = http(s.addr(), "PUT", "/salt", "").unwrap();
                assert_eq!(status, 201, "{body}");
                let (status, body) = http(s.addr(), "PUT", "/salt/jid1", r#"{"fun":"test.ping"}"#).unwrap();
                assert_eq!(status, 201, "{body}");
            },
            // Not `_all_dbs`: pouchdb-server records a new database there a moment after it
            // answers the PUT, so a stop right after may leave it out.
            |s| assert!(get(s, "/salt/jid1").contains("test.ping")),
        );
    }

    #[test]
    fn elasticsearch_stops_and_starts_again_on_its_port() {
        stop_and_start_again(Kind::Elasticsearch, |s| get(s, "/"), "\"distribution\":\"opensearch\"", |_| {}, |_| {});
    }

    #[test]
    fn carbon_stops_and_starts_again_with_its_whisper_files() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let wsp = |s: &Server| s.data_dir().join("testkit/up.wsp");
        stop_and_start_again(
            Kind::Carbon,
            |s| TcpStream::connect_timeout(&s.addr(), Duration::from_secs(2)).map(|_| "connected".to_string()).unwrap(),
            "connected",
            |s| {
                let mut c = connect(s.addr()).unwrap();
                writeln!(c, "testkit.up 1 {now}").unwrap();
                // carbon-cache writes behind, and a stop drops what it has not written yet.
                let until = Instant::now() + Duration::from_secs(30);
                while !wsp(s).exists() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                assert!(wsp(s).exists(), "no {}", wsp(s).display());
            },
            |s| assert!(wsp(s).exists(), "no {}", wsp(s).display()),
        );
    }

    #[test]
    fn rsyslog_stops_and_starts_again_and_writes_what_it_receives() {
        stop_and_start_again(
            Kind::Rsyslog,
            |s| TcpStream::connect_timeout(&s.addr(), Duration::from_secs(2)).map(|_| "connected".to_string()).unwrap(),
            "connected",
            |s| {
                let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
                sock.send_to(b"<14>Dec  1 21:40:00 testkit: hello", s.log_socket()).unwrap();
                let until = Instant::now() + Duration::from_secs(10);
                while !std::fs::read_to_string(s.messages_path()).unwrap_or_default().contains("hello") && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
            },
            |s| assert_eq!(std::fs::read_to_string(s.messages_path()).unwrap(), "<14>Dec  1 21:40:00 testkit: hello\n"),
        );
    }

    #[test]
    fn smtp_stops_and_starts_again_on_its_port_with_its_maildir() {
        stop_and_start_again(
            Kind::Smtp,
            |s| exchange(s.addr(), b"QUIT\r\n").unwrap(),
            "220 saltrs-test-smtp",
            |s| std::fs::write(s.maildir().join("1.eml"), "kept").unwrap(),
            |s| assert_eq!(std::fs::read_to_string(s.maildir().join("1.eml")).unwrap(), "kept"),
        );
    }

    #[test]
    fn a_killed_server_starts_again_and_a_dropped_one_is_gone_with_its_dir() {
        let Some(mut server) = Server::memcached() else { return };
        server.kill();
        assert!(server.ping().is_err());
        server.start().unwrap();
        server.ping().unwrap();
        let (addr, dir) = (server.addr(), server.dir.clone());
        drop(server);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn a_missing_program_says_how_to_install_it() {
        let e = find_program(Kind::Etcd, &|n: &str| (n == "PATH").then(|| "/nonexistent".into())).unwrap_err();
        assert!(matches!(e, ServerError::Missing(_)));
        let msg = e.to_string();
        assert!(msg.contains("bash scripts/services.sh tools") && msg.contains("SALTRS_ETCD"), "{msg}");
        let e = find_program(Kind::Redis, &|n: &str| (n == "SALTRS_REDIS_SERVER").then(|| "/nonexistent/redis".into())).unwrap_err();
        assert!(e.to_string().starts_with("SALTRS_REDIS_SERVER=/nonexistent/redis is not an executable file"), "{e}");
        let e = find_program(Kind::CouchDb, &|n: &str| (n == "SALTRS_SERVICES_DIR").then(|| "/nonexistent".into())).unwrap_err();
        assert!(e.to_string().contains("not in /nonexistent"), "{e}");
        // The variable wins over PATH.
        let sh = find_program(Kind::Redis, &|n: &str| (n == "SALTRS_REDIS_SERVER").then(|| "/bin/sh".into())).unwrap();
        assert_eq!(sh, Path::new("/bin/sh"));
    }

    #[test]
    fn a_server_that_exits_fails_with_the_end_of_its_log() {
        let dir = temp_dir("fake").unwrap();
        let fake = dir.join("fake-redis");
        std::fs::write(&fake, "#!/bin/sh\necho \"starting on $2\"\necho 'FATAL: no config' >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = Server::launch_program(Kind::Redis, fake, &[]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ServerError::Failed(_)), "{msg}");
        assert!(msg.contains("exited (exit status: 3) before answering"), "{msg}");
        assert!(msg.contains("starting on ") && msg.ends_with("FATAL: no config"), "{msg}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_restart_on_a_port_taken_meanwhile_fails_clearly() {
        let Some(mut server) = Server::redis() else { return };
        server.stop();
        let squatter = TcpListener::bind(server.addr()).unwrap();
        let e = server.start().unwrap_err();
        assert!(e.to_string().contains(&format!("{} is taken by another process", server.addr())), "{e}");
        drop(squatter);
        server.start().unwrap();
    }

    #[test]
    fn reserved_ports_are_not_handed_out_twice() {
        let ports: Vec<u16> = (0..50).map(|_| reserve_port()).collect();
        let unique: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        let mut reserved = RESERVED.lock().unwrap();
        for p in ports {
            reserved.remove(&p);
        }
    }
}
