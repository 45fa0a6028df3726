//! Test servers for the `rzk` binary's integration tests: an rzk server (the binary under
//! test, `CARGO_BIN_EXE_rzk`) or Debian's Apache ZooKeeper (`scripts/start-apache-zk.sh`),
//! each on a free loopback port with its own data directory, that can be killed and
//! restarted on the same port and data. Dropping a server kills it and removes its
//! directory. Nothing here talks ZooKeeper beyond `ruok`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer `ruok` after starting.
const START_WAIT: Duration = Duration::from_secs(60);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir (removed by [`TestServer`]'s drop).
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!(
        "rzk-it-{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Sends a four-letter word and returns the answer ("" on failure).
pub fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rzk,
    ApacheZk,
}

enum Proc {
    Child(Child),
    Pid(u32),
    Stopped,
}

pub struct TestServer {
    pub kind: Kind,
    pub port: u16,
    pub dir: PathBuf,
    proc: Proc,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

impl TestServer {
    /// Starts an rzk server (standalone) on a free port.
    pub fn rzk() -> TestServer {
        let mut s = TestServer {
            kind: Kind::Rzk,
            port: free_port(),
            dir: temp_dir("rzk"),
            proc: Proc::Stopped,
        };
        s.start();
        s
    }

    /// Starts Debian's Apache ZooKeeper on a free port.
    pub fn apache_zk() -> TestServer {
        let mut s = TestServer {
            kind: Kind::ApacheZk,
            port: free_port(),
            dir: temp_dir("zk"),
            proc: Proc::Stopped,
        };
        s.start();
        s
    }

    pub fn by_kind(kind: Kind) -> TestServer {
        match kind {
            Kind::Rzk => TestServer::rzk(),
            Kind::ApacheZk => TestServer::apache_zk(),
        }
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and data directory; waits for `imok`.
    pub fn start(&mut self) {
        assert!(matches!(self.proc, Proc::Stopped), "server already running");
        match self.kind {
            Kind::Rzk => {
                let cfg = self.dir.join("zoo.cfg");
                std::fs::write(
                    &cfg,
                    format!(
                        "tickTime=2000\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
                         4lw.commands.whitelist=*\nextendedTypesEnabled=true\nmaxClientCnxns=0\n",
                        self.dir.join("data").display(),
                        self.port
                    ),
                )
                .expect("write zoo.cfg");
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("server.log"))
                    .expect("server log");
                let log2 = log.try_clone().expect("server log");
                let child = Command::new(env!("CARGO_BIN_EXE_rzk"))
                    .args(["server", "--config"])
                    .arg(&cfg)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(log2)
                    .spawn()
                    .expect("spawn rzk server");
                self.proc = Proc::Child(child);
            }
            Kind::ApacheZk => {
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
            }
        }
        let deadline = Instant::now() + START_WAIT;
        while four_letter(self.port, "ruok") != "imok" {
            assert!(
                Instant::now() < deadline,
                "{:?} server did not answer ruok on {}; log:\n{}",
                self.kind,
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL: a crash, nothing is flushed beyond what it synced).
    pub fn kill(&mut self) {
        match std::mem::replace(&mut self.proc, Proc::Stopped) {
            Proc::Child(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Proc::Pid(pid) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                // Wait until the process is gone so the port is free again.
                let deadline = Instant::now() + Duration::from_secs(10);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Proc::Stopped => {}
        }
    }

    /// Kill, pause, start again (same port and data).
    pub fn restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.start();
    }

    pub fn log_tail(&self) -> String {
        let name = match self.kind {
            Kind::Rzk => "server.log",
            Kind::ApacheZk => "zookeeper.log",
        };
        let log = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
