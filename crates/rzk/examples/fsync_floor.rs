//! The null server made durable: a ZooKeeper-protocol server that keeps nothing but
//! does what a durable server must for a write — it appends the write request to a log
//! file and answers it only once an `fdatasync` covers it — and nothing else (no tree,
//! no txns, no watches).
//!
//! What it is for: a reference for write benchmarks on this machine (`rzk bench --op
//! create|set` against it): one plain group-commit design at its leanest, with the
//! commit policy rzk's and ZooKeeper's logs use (the sync thread takes every write that
//! arrived while the previous `fdatasync` ran). It is not a proven lower bound: another
//! design (a commit delay, overlapping syncs, a run-to-completion loop with asynchronous
//! fsync) may do better. `scripts/bench-compare.sh` runs it with `FLOOR=1` beside rzk
//! and ZooKeeper and prints each server's write rate as a fraction of it.
//!
//! Usage: `fsync_floor PORT DIR` (listens on 127.0.0.1:PORT until killed). The log is
//! `DIR/fsync-floor.log`, zero-filled to 256 MiB and synced before it listens (as rzk
//! fills its log ahead, so a sync does not also allocate blocks); past that it grows.
//! Every second with writes it prints to stderr the syncs, writes per sync and mean
//! `fdatasync` time.
//!
//! Threads: connections on a two-worker tokio runtime (read, decode, answer anything
//! but a write at once, hand writes over); one sync thread (append, `fdatasync`, then
//! write each answer straight into its socket when nothing of that connection is
//! waiting to be written, else hand it to the connection's task).
//!
//! What it does not do as ZooKeeper would: session creation and closeSession are not
//! logged; closeSession closes the connection at once, and a session's writes still
//! waiting for their sync then lose their answers; anything not a write (`sync`, reads)
//! is answered at once, possibly before earlier writes of the session. `rzk bench
//! --op create|set`, its set-up and its clean-up issue none of these out of turn.

#[path = "common/answers.rs"]
mod answers;

use answers::{answer, connect_answer, is_write, next_frame, ConnError};
use bytes::BytesMut;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How much of the log is zero-filled before the server listens.
const FILLED: u64 = 256 * 1024 * 1024;

/// A connection as the sync thread sees it: its socket, its answers not yet written
/// (the sync thread writes into the socket only while this is empty, so answers keep
/// their order), and the wake-up of its task.
struct Conn {
    sock: Arc<TcpStream>,
    unwritten: Mutex<Vec<u8>>,
    ready: Notify,
}

impl Conn {
    /// Writes `bytes` into the socket now if nothing is queued before them and the
    /// socket takes them; queues the rest for the connection's task.
    fn answer(&self, bytes: &[u8]) {
        let mut queued = self
            .unwritten
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut at = 0;
        if queued.is_empty() {
            while at < bytes.len() {
                match self.sock.try_write(&bytes[at..]) {
                    Ok(n) => at += n,
                    Err(_) => break,
                }
            }
        }
        if at < bytes.len() {
            queued.extend_from_slice(&bytes[at..]);
            drop(queued);
            self.ready.notify_one();
        }
    }
}

/// The writes gathered for the next sync: their bytes and their answers; `waiting`
/// while the sync thread sleeps for work (only then does a connection wake it).
#[derive(Default)]
struct Group {
    bytes: Vec<u8>,
    answers: Vec<(Arc<Conn>, Vec<u8>)>,
    waiting: bool,
}

/// What the connections hand the sync thread.
struct Log {
    next: Mutex<Group>,
    ready: Condvar,
}

/// Serves one connection until the client closes it, sends closeSession, or sends a
/// frame that is not ZooKeeper's.
async fn serve(
    sock: TcpStream,
    next_session: Arc<AtomicI64>,
    log: Arc<Log>,
) -> Result<(), ConnError> {
    sock.set_nodelay(true)?;
    let me = Arc::new(Conn {
        sock: Arc::new(sock),
        unwritten: Mutex::new(Vec::new()),
        ready: Notify::new(),
    });
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut connected = false;
    let mut open = true;
    while open {
        tokio::select! {
            readable = me.sock.readable() => {
                readable?;
                let mut scratch = [0u8; 16 * 1024];
                match me.sock.try_read(&mut scratch) {
                    Ok(0) => return Ok(()),
                    Ok(n) => buf.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e.into()),
                }
                let mut wrote = false;
                let mut now = Vec::new();
                while open {
                    let Some(body) = next_frame(&mut buf)? else {
                        break;
                    };
                    if !connected {
                        connect_answer(&body, &next_session, &mut now)?;
                        connected = true;
                        continue;
                    }
                    let mut answer_bytes = Vec::new();
                    open = answer(&body, &mut answer_bytes)?;
                    if is_write(&body) {
                        let mut next = log.next.lock().unwrap_or_else(PoisonError::into_inner);
                        next.bytes.extend_from_slice(&body);
                        next.answers.push((me.clone(), answer_bytes));
                        wrote |= next.waiting;
                    } else {
                        now.extend_from_slice(&answer_bytes);
                    }
                }
                if wrote {
                    log.ready.notify_one();
                }
                if !now.is_empty() {
                    me.unwritten
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&now);
                }
            }
            () = me.ready.notified() => {}
        }
        flush(&me).await?;
    }
    Ok(())
}

/// Writes what is queued for the connection, in order, holding the queue so the sync
/// thread cannot write past it.
async fn flush(me: &Conn) -> Result<(), ConnError> {
    loop {
        {
            let mut queued = me.unwritten.lock().unwrap_or_else(PoisonError::into_inner);
            while !queued.is_empty() {
                match me.sock.try_write(&queued) {
                    Ok(n) => {
                        queued.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if queued.is_empty() {
                return Ok(());
            }
        }
        me.sock.writable().await?;
    }
}

/// The sync thread: takes every write gathered so far, appends it, `fdatasync`s, and
/// answers each. Returns only on an I/O error.
fn sync_loop(log: &Log, file: &std::fs::File) -> std::io::Result<()> {
    let (mut at, mut grew) = (0u64, false);
    let (mut syncs, mut writes, mut sync_time, mut since) =
        (0u64, 0u64, Duration::ZERO, Instant::now());
    loop {
        let group = {
            let mut next = log.next.lock().unwrap_or_else(PoisonError::into_inner);
            while next.answers.is_empty() {
                next.waiting = true;
                next = log.ready.wait(next).unwrap_or_else(PoisonError::into_inner);
            }
            next.waiting = false;
            std::mem::take(&mut *next)
        };
        file.write_all_at(&group.bytes, at)?;
        at += group.bytes.len() as u64;
        if at > FILLED && !grew {
            grew = true;
            eprintln!(
                "fsync_floor: past the zero-filled {} MiB: the log grows now",
                FILLED >> 20
            );
        }
        let t = Instant::now();
        file.sync_data()?;
        sync_time += t.elapsed();
        syncs += 1;
        writes += group.answers.len() as u64;
        for (conn, answer_bytes) in group.answers {
            conn.answer(&answer_bytes);
        }
        if since.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "fsync_floor: {syncs} syncs/s, {:.1} writes per sync, fdatasync {:.0} us",
                writes as f64 / syncs as f64,
                sync_time.as_micros() as f64 / syncs as f64
            );
            (syncs, writes, sync_time, since) = (0, 0, Duration::ZERO, Instant::now());
        }
    }
}

/// Creates the log at `path`, zero-filled to [`FILLED`] and synced.
fn zero_filled_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let zeros = vec![0u8; 1024 * 1024];
    let mut at = 0;
    while at < FILLED {
        file.write_all_at(&zeros, at)?;
        at += zeros.len() as u64;
    }
    file.sync_all()?;
    Ok(file)
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(dir)) = (
        args.next().and_then(|p| p.parse::<u16>().ok()),
        args.next().map(std::path::PathBuf::from),
    ) else {
        eprintln!("usage: fsync_floor PORT DIR");
        return std::process::ExitCode::from(2);
    };
    let path = dir.join("fsync-floor.log");
    let file = match zero_filled_log(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fsync_floor: {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    let log = Arc::new(Log {
        next: Mutex::new(Group::default()),
        ready: Condvar::new(),
    });
    let syncer = log.clone();
    std::thread::spawn(move || {
        if let Err(e) = sync_loop(&syncer, &file) {
            eprintln!("fsync_floor: {}: {e}", path.display());
            std::process::exit(1);
        }
    });
    let next_session = Arc::new(AtomicI64::new(1));
    answers::listen("fsync_floor", port, Some(2), move |sock| {
        serve(sock, next_session.clone(), log.clone())
    })
}
