//! A ZooKeeper-protocol server that does nothing: it accepts a session, answers every
//! request at once with success and an empty result, stores nothing and syncs nothing.
//!
//! What it is for: the throughput ceiling of a benchmark on this machine. `rzk bench`
//! against it measures what the client and the kernel's loopback TCP alone allow, on the
//! same cores a real server would share with the client; no server can answer faster.
//! `scripts/bench-compare.sh` runs it with `CEILING=1` and prints each server's ops/s
//! as a fraction of this ceiling, and the highest rzk/ZooKeeper ratio the run allows.
//!
//! Usage: `null_server PORT` (listens on 127.0.0.1:PORT until killed).
//!
//! What it answers (enough for `rzk bench --op create|set|get|mixed`, its set-up and
//! clean-up, and `rzk shell ls`): the connect request with a session (ids counting up
//! from 1, a zero password, the requested timeout); create (1, 15, 19, 21) with the
//! requested path (and a zero stat for 15, 19, 21); exists, setData with a zero stat;
//! getData with empty data; getChildren (8, 12) with no children; sync with its path;
//! delete and ping with the header alone; closeSession with the header, then it closes
//! the connection. Anything else gets ZooKeeper's UNIMPLEMENTED (-6). A frame that is
//! not ZooKeeper's (a bad length, a body too short for its opcode) closes the
//! connection, as ZooKeeper does.

#[path = "common/answers.rs"]
#[allow(dead_code)] // `is_write` is the fsync floor's.
mod answers;

use answers::{answer, connect_answer, next_frame, ConnError};
use bytes::BytesMut;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves one connection until the client closes it, sends closeSession, or sends a
/// frame that is not ZooKeeper's.
async fn serve(mut sock: TcpStream, next_session: Arc<AtomicI64>) -> Result<(), ConnError> {
    sock.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut connected = false;
    loop {
        if sock.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut open = true;
        while open {
            let Some(body) = next_frame(&mut buf)? else {
                break;
            };
            if connected {
                open = answer(&body, &mut out)?;
            } else {
                connect_answer(&body, &next_session, &mut out)?;
                connected = true;
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
        if !open {
            return Ok(());
        }
    }
}

fn main() -> std::process::ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: null_server PORT");
        return std::process::ExitCode::from(2);
    };
    let next_session = Arc::new(AtomicI64::new(1));
    answers::listen("null_server", port, None, move |sock| {
        serve(sock, next_session.clone())
    })
}
