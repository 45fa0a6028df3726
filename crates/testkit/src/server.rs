//! In-process rzk servers and ensembles for tests, written once for every Rust suite.
//!
//! - [`TestServer`]: one voter on `127.0.0.1:<free port>` in a fresh data directory, with
//!   short ticks and every four-letter word allowed ([`TestServerBuilder`] tweaks the
//!   [`Config`]). It can be stopped cleanly, crashed (abandoned as a killed process would
//!   be) and started again on the same data directory and port.
//! - [`TestEnsemble`]: `n` voters and optional observers on loopback, started together and
//!   waited for until one leader serves; members are reached by server id and can be
//!   stopped, crashed and restarted one by one.
//! - [`hosts_or_start`]: `RZK_TEST_HOSTS` for suites that can also run against an external
//!   server (rzk or Apache ZooKeeper), else one in-process server per test binary. A plain
//!   `cargo test` never skips a test for want of a server.
//! - [`fresh_dir`] (kept), [`scratch_dir`] (removed unless the test fails), [`free_ports`],
//!   [`four_letter`].
//!
//! Every server runs on a tokio runtime of its own, owned by a host thread, so the
//! blocking methods here may be called from synchronous tests and from any async test
//! (single- or multi-threaded runtime) alike, and a server outlives the runtime of the
//! test that started it. A crash shuts that runtime down: every task of the server
//! (listener, connections, peer links) is dropped and its sockets close, as when the
//! process is killed; what it had written to its files stays.

use rzk_proto::ServerId;
use rzk_server::config::{Config, FourLetterWhitelist, PeerRole, QuorumServer};
use rzk_server::node::{Server, ServerError};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// tickTime of a [`TestServer`] unless the builder changes it, ms.
pub const TEST_TICK_MS: u32 = 100;
/// Session timeout bounds of a [`TestServer`] with [`TEST_TICK_MS`], ms.
pub const TEST_SESSION_TIMEOUT_MS: (i32, i32) = (200, 10_000);
/// How long [`TestEnsemble`] waits for a serving leader before panicking.
pub const ENSEMBLE_SETTLE: Duration = Duration::from_secs(30);
/// How long a (re)start retries a port that is still held (e.g. by the listener of a
/// crashed server being torn down, or a connection in `TIME_WAIT`).
pub const BIND_RETRY: Duration = Duration::from_secs(5);
/// Read timeout of [`four_letter`].
pub const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);
/// tickTime of the servers `scripts/test.sh` starts for the suites that also run against
/// Apache ZooKeeper (sessions of 4 to 40 s), ms. The server [`hosts_or_start`] starts uses
/// it; so should any test server whose clients ask for session timeouts written for those
/// servers (`TestServer::builder().tick_time_ms(COMPAT_TICK_MS)`).
pub const COMPAT_TICK_MS: u32 = 2000;

/// A new empty directory `rzk-test-*` under the system temp dir. It is kept after the
/// test (for its logs); removing it is the caller's business. Panics if it cannot be
/// created.
pub fn fresh_dir() -> PathBuf {
    tempfile::Builder::new()
        .prefix("rzk-test-")
        .tempdir()
        .expect("create a temp dir")
        .keep()
}

/// A new empty directory `rzk-test-*` under the system temp dir that is removed when
/// dropped, unless the thread is panicking (then its path is printed and it is kept for
/// the failed test's files). Derefs to its path.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

/// A new [`ScratchDir`]. Panics if it cannot be created.
pub fn scratch_dir() -> ScratchDir {
    ScratchDir(fresh_dir())
}

impl ScratchDir {
    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for ScratchDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        remove_unless_panicking(&self.0, "scratch dir");
    }
}

/// Removes `dir` with everything in it, unless the thread is panicking (a test failing):
/// then prints `<what> kept: <dir>` so its files can be inspected.
fn remove_unless_panicking(dir: &std::path::Path, what: &str) {
    if std::thread::panicking() {
        eprintln!("{what} kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The ports [`free_ports`] hands out: below Linux's ephemeral range (32768-60999 by
/// default), so neither a `bind(port 0)` of an in-process server nor the local end of an
/// outgoing connection (a client, a quorum link) can take one between [`free_ports`] and
/// the member's own bind — with ephemeral ports that happened under load (CI saw an
/// ensemble member fail with "Address already in use" on its election port). The Python
/// stages use fixed ports from 21810 up.
pub const TEST_PORT_RANGE: std::ops::Range<u16> = 12000..20000;

/// `n` distinct TCP ports on 127.0.0.1 from [`TEST_PORT_RANGE`] that were free a moment
/// ago (each bound once, then released). Successive calls in one process never repeat a
/// port until the range wraps; processes start at different offsets (by PID), and a
/// port bound by anyone at the time of the call is skipped. Panics if fewer than `n`
/// free ports are found in the whole range.
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(TEST_PORT_RANGE.end - TEST_PORT_RANGE.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(2654435761) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let mut ports = Vec::with_capacity(n);
    for _ in 0..span {
        if ports.len() == n {
            break;
        }
        let off = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let Ok(port) = u16::try_from(u32::from(TEST_PORT_RANGE.start) + off) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "{n} free ports in {TEST_PORT_RANGE:?}");
    ports
}

/// Sends the four-letter word `word` (e.g. `"ruok"`, `"srvr"`) to `addr` and returns the
/// whole answer (until the server closes the connection). Blocking, with a
/// [`FOUR_LETTER_TIMEOUT`] read timeout; calling it from an async test is fine, the
/// in-process servers do not run on the test's runtime.
///
/// Errors: the connection is refused or reset, or the answer does not end in time.
pub fn four_letter(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, FOUR_LETTER_TIMEOUT)?;
    s.set_read_timeout(Some(FOUR_LETTER_TIMEOUT))?;
    s.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The servers a suite that can also run against an external server should use: the
/// comma-separated `host:port` list of `RZK_TEST_HOSTS` when it is set and not empty
/// (any server, rzk or Apache ZooKeeper; the suite must then clean up after itself),
/// else the `127.0.0.1:port` of an in-process rzk server started on first use and shared
/// by every test of the binary until it exits (its data directory is left behind). That
/// server is configured as `scripts/test.sh` configures its own: tickTime
/// [`COMPAT_TICK_MS`], every four-letter word, extended types, container checks every
/// second, no connection limit. Panics if that server does not start.
pub fn hosts_or_start() -> String {
    match std::env::var("RZK_TEST_HOSTS") {
        Ok(h) if !h.trim().is_empty() => h,
        _ => shared_server().hosts(),
    }
}

/// The in-process server behind [`hosts_or_start`] (started on first use; never stopped:
/// it lives as long as the test binary).
fn shared_server() -> &'static TestServer {
    static SHARED: OnceLock<TestServer> = OnceLock::new();
    SHARED.get_or_init(|| TestServer::builder().tick_time_ms(COMPAT_TICK_MS).start())
}

/// The configuration every [`TestServer`] starts from: client port 0 (any free port) on
/// 127.0.0.1, tickTime [`TEST_TICK_MS`], sessions of [`TEST_SESSION_TIMEOUT_MS`], every
/// four-letter word, extended types on, container checks every second, no per-IP
/// connection limit. `data_dir` and `data_log_dir` are empty until a builder picks a
/// directory.
pub fn test_config() -> Config {
    Config {
        client_port: 0,
        client_port_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        data_dir: PathBuf::new(),
        data_log_dir: PathBuf::new(),
        tick_time_ms: TEST_TICK_MS,
        min_session_timeout_ms: TEST_SESSION_TIMEOUT_MS.0,
        max_session_timeout_ms: TEST_SESSION_TIMEOUT_MS.1,
        four_letter_whitelist: FourLetterWhitelist::All,
        extended_types_enabled: true,
        container_check_interval_ms: 1000,
        max_client_cnxns: 0,
        ..Config::default()
    }
}

/// Builds a [`TestServer`]: [`test_config`] changed by [`tick_time_ms`](Self::tick_time_ms)
/// and [`configure`](Self::configure), in a fresh data directory unless
/// [`data_dir`](Self::data_dir) names one.
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    config: Config,
    dir: Option<PathBuf>,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            config: test_config(),
            dir: None,
        }
    }
}

impl TestServerBuilder {
    /// tickTime in ms; the session timeout bounds follow ZooKeeper's defaults for it
    /// (2 and 20 ticks).
    pub fn tick_time_ms(mut self, ms: u32) -> Self {
        self.config.tick_time_ms = ms;
        self.config.min_session_timeout_ms = 2 * ms as i32;
        self.config.max_session_timeout_ms = 20 * ms as i32;
        self
    }

    /// Changes the configuration (anything: limits, snapCount, whitelist, unknown keys).
    /// Setting `data_dir` here is the same as [`data_dir`](Self::data_dir).
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        if !self.config.data_dir.as_os_str().is_empty() && self.dir.is_none() {
            self.dir = Some(self.config.data_dir.clone());
        }
        self
    }

    /// Runs on `dir` (data and log dir alike), e.g. one a test prepared or will inspect.
    /// The directory is the caller's: it is never removed.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The configuration [`start`](Self::start) would use, with a new [`fresh_dir`] if
    /// none was chosen (kept, like every `fresh_dir`).
    pub fn build_config(self) -> Config {
        self.resolve().0
    }

    fn resolve(self) -> (Config, bool) {
        let mut config = self.config;
        let owned = self.dir.is_none();
        let dir = self.dir.unwrap_or_else(fresh_dir);
        if config.data_log_dir.as_os_str().is_empty() || config.data_log_dir == config.data_dir {
            config.data_log_dir = dir.clone();
        }
        config.data_dir = dir;
        (config, owned)
    }

    /// Starts the server and returns once it serves. Panics (with the server's error) if
    /// it does not start; see [`try_start`](Self::try_start).
    pub fn start(self) -> TestServer {
        self.try_start().expect("in-process rzk server starts")
    }

    /// Starts the server and returns once it serves (a member of an ensemble: once its
    /// ports are open; see [`TestEnsemble`]).
    ///
    /// Errors: as [`Server::start`] (the data directory cannot be recovered, a port
    /// cannot be bound within [`BIND_RETRY`], a thread cannot start).
    pub fn try_start(self) -> Result<TestServer, ServerError> {
        let (config, owns_dir) = self.resolve();
        TestServer::launch(config, owns_dir)
    }
}

/// A running server's runtime: a host thread owns the tokio runtime and shuts it down
/// when told (outside any async context, so the caller may be async).
#[derive(Debug)]
struct Host {
    handle: tokio::runtime::Handle,
    /// Tells the host thread to shut the runtime down, waiting at most that long for its
    /// tasks.
    exit: mpsc::Sender<Duration>,
    thread: Option<JoinHandle<()>>,
}

impl Host {
    fn spawn(name: String) -> std::io::Result<Host> {
        let (tx, rx) = mpsc::channel();
        let (exit, exit_rx) = mpsc::channel::<Duration>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(name)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(rt.handle().clone()));
                // Dropping the sender (the TestServer is gone) also ends the runtime.
                let grace = exit_rx.recv().unwrap_or(Duration::ZERO);
                rt.shutdown_timeout(grace);
            })?;
        let handle = rx
            .recv()
            .map_err(|_| std::io::Error::other("server runtime thread died"))??;
        Ok(Host {
            handle,
            exit,
            thread: Some(thread),
        })
    }

    /// Runs `fut` on this runtime and blocks until it finishes.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("the task on the server's runtime finished")
    }

    /// Shuts the runtime down (its tasks are dropped; `grace` bounds the wait for them)
    /// and joins the host thread.
    fn end(mut self, grace: Duration) {
        let _ = self.exit.send(grace);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.exit.send(Duration::from_secs(1));
            let _ = t.join();
        }
    }
}

#[derive(Debug)]
struct Running {
    server: Server,
    host: Host,
}

/// An in-process rzk server (see the [module docs](self)). Built by
/// [`TestServer::builder`] or [`TestServer::start`].
///
/// Dropping a running `TestServer` crashes it ([`crash`](Self::crash)). A data directory
/// the builder created is removed on drop, unless the thread is panicking (the path is
/// printed so a failed test's files can be inspected).
#[derive(Debug)]
pub struct TestServer {
    /// The configuration of the next (re)start; `client_port` is the bound port once the
    /// server has started, so a restart listens on the same address.
    config: Config,
    addr: SocketAddr,
    owns_dir: bool,
    running: Option<Running>,
}

impl TestServer {
    /// A builder on [`test_config`].
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Starts a server on [`test_config`] in a fresh data directory; panics if it does
    /// not start.
    pub fn start() -> TestServer {
        TestServer::builder().start()
    }

    /// Starts a server on exactly `config` (its data directory is the caller's and is kept).
    ///
    /// Errors: as [`TestServerBuilder::try_start`].
    pub fn try_start_with(config: Config) -> Result<TestServer, ServerError> {
        TestServer::launch(config, false)
    }

    fn launch(config: Config, owns_dir: bool) -> Result<TestServer, ServerError> {
        let mut s = TestServer {
            addr: config.client_addr(),
            config,
            owns_dir,
            running: None,
        };
        s.boot()?;
        Ok(s)
    }

    /// Starts the server on `self.config`, retrying ports still held for [`BIND_RETRY`].
    fn boot(&mut self) -> Result<(), ServerError> {
        assert!(self.running.is_none(), "the server is already running");
        let name = format!("rzk-test-{}", self.config.server_id());
        let deadline = Instant::now() + BIND_RETRY;
        loop {
            let host = Host::spawn(name.clone()).expect("start the server's runtime thread");
            match host.run(Server::start(self.config.clone())) {
                Ok(server) => {
                    self.addr = server
                        .local_addr()
                        .expect("a test server's configuration has a client port");
                    self.config.client_port = self.addr.port();
                    self.running = Some(Running { server, host });
                    return Ok(());
                }
                Err(e) if is_bind_error(&e) && Instant::now() < deadline => {
                    host.end(Duration::ZERO);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    host.end(Duration::ZERO);
                    return Err(e);
                }
            }
        }
    }

    /// The client address, e.g. `127.0.0.1:41877` (the same across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The client address as a connect string, `"127.0.0.1:41877"`.
    pub fn hosts(&self) -> String {
        self.addr.to_string()
    }

    /// The configuration of the running server (and of the next restart).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data directory (also the log directory unless the config says otherwise).
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The server id (`myid`; 1 for a lone voter).
    pub fn id(&self) -> u64 {
        member_id(self.config.server_id())
    }

    /// Whether the server is running (started and neither stopped nor crashed).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The running server, for its shared state (tree, sessions, stats, quorum status).
    /// Panics if it is stopped.
    pub fn server(&self) -> &Server {
        &self
            .running
            .as_ref()
            .expect("the test server is not running")
            .server
    }

    /// Clean shutdown ([`Server::shutdown`]): stops accepting, closes every connection
    /// (sessions stay), drains the write pipeline; then its runtime ends. Blocks until
    /// done. Does nothing if the server is not running.
    pub fn stop(&mut self) {
        if let Some(Running { server, host }) = self.running.take() {
            host.run(server.shutdown());
            host.end(Duration::from_secs(5));
        }
    }

    /// Crash: the server is dropped without shutdown (it halts at once, writing nothing
    /// more) and every task of its runtime is dropped, closing its sockets, as when the
    /// process is killed with SIGKILL. Blocks until its sockets are closed. Does nothing if
    /// the server is not running.
    pub fn crash(&mut self) {
        if let Some(Running { server, host }) = self.running.take() {
            drop(server);
            host.end(Duration::from_secs(1));
        }
    }

    /// Starts the server again on the same data directory and client address (stopping it
    /// cleanly first if it runs); returns once it serves. Panics if it does not start.
    pub fn restart(&mut self) {
        self.try_restart_with(|_| {})
            .expect("in-process rzk server restarts");
    }

    /// [`restart`](Self::restart) with a changed configuration (kept for later restarts).
    pub fn restart_with(&mut self, f: impl FnOnce(&mut Config)) {
        self.try_restart_with(f)
            .expect("in-process rzk server restarts");
    }

    /// [`restart_with`](Self::restart_with) that returns the error of a start that fails
    /// (e.g. a damaged data directory); the server is then not running.
    ///
    /// Errors: as [`TestServerBuilder::try_start`].
    pub fn try_restart_with(&mut self, f: impl FnOnce(&mut Config)) -> Result<(), ServerError> {
        self.stop();
        f(&mut self.config);
        self.boot()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.crash();
        if self.owns_dir {
            let what = format!("test server {}: data dir", self.addr);
            remove_unless_panicking(&self.config.data_dir, &what);
        }
    }
}

/// A port still in use (by the listener of a crashed server being torn down).
/// A member's id as the test API numbers members (`server.N`/`myid` are never negative:
/// the configuration parses them unsigned).
fn member_id(id: ServerId) -> u64 {
    u64::try_from(id.0).unwrap_or_default()
}

fn is_bind_error(e: &ServerError) -> bool {
    use rzk_server::node::QuorumError;
    let in_use = |s: &std::io::Error| s.kind() == std::io::ErrorKind::AddrInUse;
    match e {
        ServerError::Bind { source, .. } => in_use(source),
        ServerError::Quorum(QuorumError::Bind { source, .. }) => in_use(source),
        _ => false,
    }
}

/// A change to one member's configuration: `f(server id, config)`.
type MemberTweak = Box<dyn Fn(u64, &mut Config)>;

/// Builds a [`TestEnsemble`] of `voters` voters and [`observers`](Self::observers)
/// observers on 127.0.0.1: server ids `1..=voters` are voters, the next ones observers;
/// each member starts from [`test_config`] (client port 0, its own fresh data dir) with
/// `server.N` lines for every member on free quorum and election ports, initLimit 10 and
/// syncLimit 5 ticks.
pub struct TestEnsembleBuilder {
    voters: usize,
    observers: usize,
    configure: Vec<MemberTweak>,
}

impl TestEnsembleBuilder {
    /// Adds `n` observers (ids after the voters').
    pub fn observers(mut self, n: usize) -> Self {
        self.observers = n;
        self
    }

    /// Changes every member's configuration: `f(server id, config)`.
    pub fn configure(mut self, f: impl Fn(u64, &mut Config) + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// The members' configurations in id order, each in a new [`fresh_dir`] (kept), e.g.
    /// to prepare the directories before [`TestEnsemble::start_with`] or to open storage
    /// as a member would.
    pub fn build_configs(self) -> Vec<Config> {
        let n = self.voters + self.observers;
        let ports = free_ports(2 * n);
        let servers: BTreeMap<ServerId, QuorumServer> = (0..n)
            .map(|i| {
                let id = ServerId(i as i64 + 1);
                let server = QuorumServer {
                    id,
                    host: "127.0.0.1".into(),
                    quorum_port: ports[2 * i],
                    election_port: ports[2 * i + 1],
                    role: if i < self.voters {
                        PeerRole::Participant
                    } else {
                        PeerRole::Observer
                    },
                    client_addr: None,
                };
                (id, server)
            })
            .collect();
        servers
            .keys()
            .map(|&id| {
                let dir = fresh_dir();
                let mut c = Config {
                    data_dir: dir.clone(),
                    data_log_dir: dir,
                    servers: servers.clone(),
                    my_id: Some(id),
                    init_limit: Some(10),
                    sync_limit: Some(5),
                    ..test_config()
                };
                for f in &self.configure {
                    f(member_id(id), &mut c);
                }
                c
            })
            .collect()
    }

    /// Starts every member and waits until one leader serves and every member serves
    /// (see [`TestEnsemble::wait_serving`]). Panics if a member does not start or the
    /// ensemble does not settle within [`ENSEMBLE_SETTLE`].
    pub fn start(self) -> TestEnsemble {
        let mut e = TestEnsemble::start_with(self.build_configs());
        for m in e.members.values_mut() {
            m.owns_dir = true;
        }
        e
    }
}

/// An in-process ensemble (see the [module docs](self)): members by server id, each a
/// [`TestServer`] with its own runtime. Dropping it crashes every member still running;
/// directories the builder created are removed as [`TestServer`]'s are.
#[derive(Debug)]
pub struct TestEnsemble {
    members: BTreeMap<u64, TestServer>,
}

impl TestEnsemble {
    /// A builder of `voters` voters (no observers yet).
    pub fn builder(voters: usize) -> TestEnsembleBuilder {
        TestEnsembleBuilder {
            voters,
            observers: 0,
            configure: Vec::new(),
        }
    }

    /// Starts `voters` voters and waits until they serve; panics if they do not.
    pub fn start(voters: usize) -> TestEnsemble {
        TestEnsemble::builder(voters).start()
    }

    /// Starts members on exactly `configs` (their directories are the caller's and are
    /// kept) and waits until they serve; panics if a member does not start or the
    /// ensemble does not settle within [`ENSEMBLE_SETTLE`].
    pub fn start_with(configs: Vec<Config>) -> TestEnsemble {
        let mut members = BTreeMap::new();
        for c in configs {
            let id = member_id(c.server_id());
            let s = TestServer::try_start_with(c)
                .unwrap_or_else(|e| panic!("ensemble member {id} starts: {e}"));
            members.insert(id, s);
        }
        let e = TestEnsemble { members };
        e.wait_serving();
        e
    }

    /// The server ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    /// Member `id`; panics if there is none.
    pub fn member(&self, id: u64) -> &TestServer {
        self.members
            .get(&id)
            .unwrap_or_else(|| panic!("no ensemble member {id}"))
    }

    /// Member `id`, to stop, crash or restart it; panics if there is none.
    pub fn member_mut(&mut self, id: u64) -> &mut TestServer {
        self.members
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no ensemble member {id}"))
    }

    /// Every member, by id.
    pub fn members(&self) -> impl Iterator<Item = (u64, &TestServer)> {
        self.members.iter().map(|(id, s)| (*id, s))
    }

    /// The running members' client addresses as a connect string, in id order
    /// (`"127.0.0.1:p1,127.0.0.1:p2,..."`).
    pub fn hosts(&self) -> String {
        self.members
            .values()
            .filter(|s| s.is_running())
            .map(|s| s.hosts())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The id of the running member that leads and serves now, if any.
    pub fn leader(&self) -> Option<u64> {
        self.modes()
            .into_iter()
            .find(|(_, m)| *m == "leader")
            .map(|(id, _)| id)
    }

    /// Each member's mode: `leader`, `follower`, `observer`, `looking`, `not serving` or
    /// `stopped`.
    pub fn modes(&self) -> Vec<(u64, &'static str)> {
        self.members
            .iter()
            .map(|(id, s)| {
                let mode = match &s.running {
                    None => "stopped",
                    Some(r) => {
                        let q = &r.server.shared().quorum;
                        if q.is_serving() {
                            q.mode_name()
                        } else {
                            "not serving"
                        }
                    }
                };
                (*id, mode)
            })
            .collect()
    }

    /// Blocks until exactly one running member leads and every running member serves
    /// (voters as leader or follower, observers as observer); returns the leader's id.
    /// Panics, listing the members' modes, after [`ENSEMBLE_SETTLE`].
    pub fn wait_serving(&self) -> u64 {
        let deadline = Instant::now() + ENSEMBLE_SETTLE;
        loop {
            let modes = self.modes();
            let running: Vec<&(u64, &str)> =
                modes.iter().filter(|(_, m)| *m != "stopped").collect();
            let leaders: Vec<u64> = running
                .iter()
                .filter(|(_, m)| *m == "leader")
                .map(|(id, _)| *id)
                .collect();
            let all_serve = running
                .iter()
                .all(|(_, m)| matches!(*m, "leader" | "follower" | "observer"));
            if leaders.len() == 1 && all_serve {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "ensemble did not settle in {ENSEMBLE_SETTLE:?}: {modes:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops every member cleanly (blocking).
    pub fn stop(&mut self) {
        for s in self.members.values_mut() {
            s.stop();
        }
    }
}
