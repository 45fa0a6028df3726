//! Servers for the `rzk` binary's integration tests: an in-process rzk server
//! (`rzk_testkit::server::TestServer`) or, as the oracle, Debian's Apache ZooKeeper
//! started as a process by `scripts/start-apache-zk.sh`. Either listens on a free loopback
//! port with a data directory of its own, and can be crashed (the process killed with
//! SIGKILL, the in-process server abandoned without shutdown) and started again on the
//! same port and data. Dropping a server crashes it and removes its directory. Nothing
//! here talks ZooKeeper beyond `ruok`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rzk_testkit::server::{four_letter, free_ports, fresh_dir, TestServer, COMPAT_TICK_MS};

/// How long Apache ZooKeeper may take to answer `ruok` after starting (a JVM).
const START_WAIT: Duration = Duration::from_secs(60);

/// An rzk server for these tests: in-process, configured as `scripts/test.sh` configures
/// the servers the client suites run against (tickTime 2000: sessions up to 40 s).
pub fn rzk_server() -> TestServer {
    TestServer::builder().tick_time_ms(COMPAT_TICK_MS).start()
}

/// True when the Apache ZooKeeper oracle can be started here (java and Debian's jars).
pub fn apache_zk_available() -> bool {
    Path::new("/usr/share/java/zookeeper.jar").exists()
        && Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

/// Oracle tests run when `RZK_TEST_ORACLE=1` (they start a JVM, seconds each).
pub fn oracle_enabled() -> bool {
    std::env::var("RZK_TEST_ORACLE").is_ok_and(|v| v == "1") && apache_zk_available()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rzk,
    ApacheZk,
}

/// A server of either kind.
pub enum Server {
    Rzk(Box<TestServer>),
    ApacheZk(ApacheZk),
}

impl Server {
    /// Starts a server of `kind`; returns once it serves. Panics if it does not start.
    pub fn by_kind(kind: Kind) -> Server {
        match kind {
            Kind::Rzk => Server::Rzk(Box::new(rzk_server())),
            Kind::ApacheZk => Server::ApacheZk(ApacheZk::start()),
        }
    }

    /// `127.0.0.1:PORT` (the same across restarts).
    pub fn addr(&self) -> String {
        match self {
            Server::Rzk(s) => s.hosts(),
            Server::ApacheZk(z) => format!("127.0.0.1:{}", z.port),
        }
    }

    /// Crashes the server: SIGKILL for the process; the in-process server is abandoned
    /// without shutdown and its sockets close. Nothing more is written.
    pub fn kill(&mut self) {
        match self {
            Server::Rzk(s) => s.crash(),
            Server::ApacheZk(z) => z.kill(),
        }
    }

    /// Starts the server again on the same port and data directory; waits until it
    /// serves.
    pub fn start(&mut self) {
        match self {
            Server::Rzk(s) => s.restart(),
            Server::ApacheZk(z) => z.boot(),
        }
    }

    /// Kill, pause, start again (same port and data).
    pub fn restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.start();
    }
}

enum Proc {
    Pid(u32),
    Stopped,
}

/// Debian's Apache ZooKeeper as a process, on a free port and a fresh directory (removed
/// on drop).
pub struct ApacheZk {
    pub port: u16,
    pub dir: PathBuf,
    proc: Proc,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl ApacheZk {
    /// Starts it (`extendedTypesEnabled=true`); returns once it answers `ruok`.
    pub fn start() -> ApacheZk {
        let mut z = ApacheZk {
            port: free_ports(1)[0],
            dir: fresh_dir(),
            proc: Proc::Stopped,
        };
        z.boot();
        z
    }

    /// (Re)starts the process on the same port and data directory; waits for `imok`.
    pub fn boot(&mut self) {
        assert!(matches!(self.proc, Proc::Stopped), "server already running");
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/start-apache-zk.sh"))
            .arg(self.port.to_string())
            .arg(&self.dir)
            .arg("extendedTypesEnabled=true")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run start-apache-zk.sh");
        assert!(out.status.success(), "start-apache-zk.sh failed");
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("start-apache-zk.sh prints the pid");
        self.proc = Proc::Pid(pid);
        let addr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + START_WAIT;
        // `srvr` names a mode once the server serves: ZooKeeper answers `ruok` before
        // its ZooKeeperServer runs, and refuses sessions until then (a loaded CI run:
        // `rzk bench` got no session within its 5 s connect timeout).
        while !four_letter(addr, "srvr").is_ok_and(|a| a.contains("Mode: ")) {
            assert!(
                Instant::now() < deadline,
                "Apache ZooKeeper did not serve on {}; log:\n{}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then waits until the process is gone so the port is free again.
    pub fn kill(&mut self) {
        if let Proc::Pid(pid) = std::mem::replace(&mut self.proc, Proc::Stopped) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The last 30 lines of its log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("zookeeper.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
