//! The null server made durable: a ZooKeeper-protocol server that stores nothing but
//! still does what any durable server must for a write — it appends each write request
//! to a log file and answers it only once an `fdatasync` covers it (group commit: one
//! thread syncs every write gathered while the previous sync ran), with no tree, no
//! txns, no watches.
//!
//! What it is for: the durable ceiling of a write benchmark on this machine (`rzk bench
//! --op create|set` against it): what the client, loopback TCP and this disk's flush
//! latency alone allow, on the cores a real server would share with the client.
//! `scripts/bench-compare.sh` runs it with `FLOOR=1` beside rzk and ZooKeeper and
//! prints each server's write rate as a fraction of it. Reads are answered at once, as
//! the null server answers everything (`null_server.rs`, whose answers this copies).
//!
//! Usage: `fsync_floor PORT DIR` (listens on 127.0.0.1:PORT until killed; the log is
//! `DIR/fsync-floor.log`, preallocated to 512 MiB sparse, as ZooKeeper preallocates
//! its logs; overwritten at each start).
//!
//! Threads: connections on a two-worker tokio runtime (read, decode, answer reads at
//! once, hand writes over); one sync thread (append, `fdatasync`, hand the answers back
//! to their connections, which write them).

use bytes::{Buf, BytesMut};
use rzk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, Stat};
use rzk_proto::{Jute, OpCode, Reader};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The largest frame accepted (ZooKeeper's `jute.maxbuffer` default plus headers).
const MAX_FRAME: usize = 1024 * 1024 + 1024;
/// ZooKeeper's UNIMPLEMENTED error code.
const UNIMPLEMENTED: i32 = -6;

/// Why a connection was closed before its client closed it.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame length {0} is outside 0..={MAX_FRAME}")]
    FrameLength(i32),
    #[error("undecodable frame: {0}")]
    Decode(#[from] rzk_proto::DecodeError),
}

/// Appends one length-prefixed frame to `out`, its body written by `write`.
fn frame(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Answers one request frame (`body`: after the length) into `out`. Returns false
/// when the connection should close after `out` is written (closeSession).
fn answer(body: &[u8], out: &mut Vec<u8>) -> Result<bool, ConnError> {
    let mut r = Reader::new(body);
    let xid: i32 = r.read()?;
    let opcode: i32 = r.read()?;
    let op = OpCode::from_i32(opcode);
    let ok = |err| ReplyHeader { xid, zxid: 0, err };
    let mut open = true;
    frame(out, |w| match op {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl)
        | Some(OpCode::Sync) => match r.read::<String>() {
            Ok(path) => {
                ok(0).write(w);
                path.write(w);
                if !matches!(op, Some(OpCode::Create | OpCode::Sync)) {
                    Stat::default().write(w);
                }
            }
            Err(_) => open = false,
        },
        Some(OpCode::Exists | OpCode::SetData) => {
            ok(0).write(w);
            Stat::default().write(w);
        }
        Some(OpCode::GetData) => {
            ok(0).write(w);
            0i32.write(w);
            Stat::default().write(w);
        }
        Some(OpCode::GetChildren) => {
            ok(0).write(w);
            0i32.write(w);
        }
        Some(OpCode::GetChildren2) => {
            ok(0).write(w);
            0i32.write(w);
            Stat::default().write(w);
        }
        Some(OpCode::Delete | OpCode::Ping) => ok(0).write(w),
        Some(OpCode::CloseSession) => {
            ok(0).write(w);
            open = false;
        }
        _ => ok(UNIMPLEMENTED).write(w),
    });
    Ok(open)
}

/// The opcodes that are writes here (create, delete, setData, create2, createContainer,
/// createTTL), which wait for the log's sync.
fn is_write(body: &[u8]) -> bool {
    body.get(4..8)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .is_some_and(|op| matches!(op, 1 | 2 | 5 | 15 | 19 | 21))
}

/// A connection's answers waiting to be written, and the wake-up of its task.
struct Answers {
    bytes: Mutex<Vec<u8>>,
    ready: Notify,
}

/// The writes gathered for the next sync: their bytes and their answers.
#[derive(Default)]
struct Group {
    bytes: Vec<u8>,
    answers: Vec<(Arc<Answers>, Vec<u8>)>,
}

/// What the connections hand the sync thread.
struct Log {
    next: Mutex<Group>,
    ready: Condvar,
}

/// Serves one connection until the client closes it, sends closeSession, or sends a
/// frame that is not ZooKeeper's. Answers leave in request order as long as the client
/// does not mix reads with writes still waiting for their sync (`rzk bench --op create`
/// and `--op set` do not).
async fn serve(
    mut sock: TcpStream,
    next_session: Arc<AtomicI64>,
    log: Arc<Log>,
) -> Result<(), ConnError> {
    sock.set_nodelay(true)?;
    let mine = Arc::new(Answers {
        bytes: Mutex::new(Vec::new()),
        ready: Notify::new(),
    });
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut connected = false;
    let mut open = true;
    while open {
        tokio::select! {
            read = sock.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(());
                }
                let mut wrote = false;
                while open && buf.len() >= 4 {
                    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    let size = usize::try_from(len)
                        .ok()
                        .filter(|&n| n <= MAX_FRAME)
                        .ok_or(ConnError::FrameLength(len))?;
                    if buf.len() < 4 + size {
                        break;
                    }
                    buf.advance(4);
                    let body = buf.split_to(size);
                    if !connected {
                        let req = ConnectRequest::from_bytes(&body)?;
                        let session_id = next_session.fetch_add(1, Ordering::Relaxed);
                        let mut out = mine.bytes.lock().unwrap_or_else(PoisonError::into_inner);
                        frame(&mut out, |w| {
                            ConnectResponse {
                                protocol_version: 0,
                                timeout_ms: req.timeout_ms,
                                session_id,
                                passwd: vec![0u8; 16].into(),
                                read_only: Some(false),
                            }
                            .write(w)
                        });
                        connected = true;
                        continue;
                    }
                    let mut answer_bytes = Vec::new();
                    open = answer(&body, &mut answer_bytes)?;
                    if is_write(&body) {
                        let mut next = log.next.lock().unwrap_or_else(PoisonError::into_inner);
                        next.bytes.extend_from_slice(&body);
                        next.answers.push((mine.clone(), answer_bytes));
                        wrote = true;
                    } else {
                        mine.bytes
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .extend_from_slice(&answer_bytes);
                    }
                }
                if wrote {
                    log.ready.notify_one();
                }
            }
            () = mine.ready.notified() => {}
        }
        let out = std::mem::take(&mut *mine.bytes.lock().unwrap_or_else(PoisonError::into_inner));
        if !out.is_empty() {
            sock.write_all(&out).await?;
        }
    }
    Ok(())
}

/// The sync thread: takes every write gathered so far, appends it, `fdatasync`s, and
/// hands each answer to its connection. Returns only on an I/O error.
fn sync_loop(log: &Log, file: &std::fs::File) -> std::io::Result<()> {
    let mut at = 0u64;
    loop {
        let group = {
            let mut next = log.next.lock().unwrap_or_else(PoisonError::into_inner);
            while next.answers.is_empty() {
                next = log.ready.wait(next).unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::take(&mut *next)
        };
        file.write_all_at(&group.bytes, at)?;
        at += group.bytes.len() as u64;
        file.sync_data()?;
        for (conn, answer_bytes) in group.answers {
            conn.bytes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(&answer_bytes);
            conn.ready.notify_one();
        }
    }
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
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(512 * 1024 * 1024).map(|()| f))
    {
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fsync_floor: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("fsync_floor: bind 127.0.0.1:{port}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let next_session = Arc::new(AtomicI64::new(1));
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    let (next, log) = (next_session.clone(), log.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve(sock, next, log).await {
                            eprintln!("fsync_floor: {peer}: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("fsync_floor: accept: {e}"),
            }
        }
    })
}
