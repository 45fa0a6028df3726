//! The scheduler policies `rzk server` gives its threads (Linux): the connection threads
//! (`rzk-net`, tokio's workers) and the driver (`rzk-quorum`) in `SCHED_BATCH`, the disk
//! and apply threads (`rzk-quorum-disk`, `rzk-quorum-apply`) left in the policy the
//! server started with, so that their once-per-group-commit wake-ups still preempt a
//! connection thread (docs/ARCHITECTURE.md, "Threads and locks";
//! `rzk_server::node::sched`). Also: a server started under another policy keeps it in
//! every thread.
//!
//! Run: `cargo test -p rzk --test sched_policy`
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rzk_testkit::server::{four_letter, free_ports, fresh_dir};

const SCHED_OTHER: i64 = 0;
const SCHED_BATCH: i64 = 3;
const SCHED_IDLE: i64 = 5;

/// A policy a process can be started in without privileges.
#[derive(Clone, Copy)]
enum Policy {
    Other,
    Idle,
}

impl Policy {
    fn flag(self) -> &'static str {
        match self {
            Policy::Other => "--other",
            Policy::Idle => "--idle",
        }
    }
}

/// A `rzk server` process, killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `rzk server` on a free loopback port in `policy` and waits until it answers
/// `ruok`.
fn start(policy: Policy) -> Server {
    let dir = fresh_dir();
    let port = free_ports(1)[0];
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=ruok\n",
            dir.join("data").display()
        ),
    )
    .expect("write zoo.cfg");
    // `chrt` (util-linux) sets the policy and execs the server: the same process.
    let mut cmd = Command::new("chrt");
    cmd.arg(policy.flag())
        .arg("0")
        .arg(env!("CARGO_BIN_EXE_rzk"))
        .arg("server")
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Server {
        child: cmd.spawn().expect("start rzk server"),
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let deadline = Instant::now() + Duration::from_secs(30);
    while four_letter(addr, "ruok").map_or(true, |a| a != "imok") {
        assert!(Instant::now() < deadline, "rzk server did not answer ruok");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Each thread name of process `pid` with the policies its threads have
/// (`/proc/<pid>/task/<tid>/stat`, field 41).
fn policies(pid: u32) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("list threads") {
        let task = task.expect("thread entry").path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the name (which may hold spaces) start at field 3.
        let rest = stat.rsplit_once(')').expect("stat has a name").1;
        let policy: i64 = rest
            .split_whitespace()
            .nth(41 - 3)
            .expect("stat has a policy field")
            .parse()
            .expect("numeric policy");
        out.entry(comm.trim().to_owned()).or_default().push(policy);
    }
    out
}

fn policy_of<'a>(p: &'a BTreeMap<String, Vec<i64>>, thread: &str) -> &'a [i64] {
    p.get(thread)
        .unwrap_or_else(|| panic!("no thread {thread:?} in {p:?}"))
}

#[test]
fn connection_threads_and_the_driver_are_batch_the_disk_and_applier_are_not() {
    let server = start(Policy::Other);
    let p = policies(server.child.id());
    let net = policy_of(&p, "rzk-net");
    assert!(!net.is_empty());
    assert!(net.iter().all(|&x| x == SCHED_BATCH), "rzk-net: {p:?}");
    assert_eq!(policy_of(&p, "rzk-quorum"), [SCHED_BATCH], "{p:?}");
    // Thread names are cut to 15 bytes.
    assert_eq!(policy_of(&p, "rzk-quorum-disk"), [SCHED_OTHER], "{p:?}");
    assert_eq!(policy_of(&p, "rzk-quorum-appl"), [SCHED_OTHER], "{p:?}");
}

#[test]
fn a_server_started_in_another_policy_keeps_it_in_every_thread() {
    // SCHED_IDLE needs no privilege (as `chrt -i 0 rzk server` would set it).
    let server = start(Policy::Idle);
    let p = policies(server.child.id());
    for (name, ps) in &p {
        assert!(ps.iter().all(|&x| x == SCHED_IDLE), "{name}: {p:?}");
    }
    assert!(
        p.contains_key("rzk-net") && p.contains_key("rzk-quorum-disk"),
        "{p:?}"
    );
}
