//! What the protocol servers that store nothing (`null_server.rs`, `fsync_floor.rs`)
//! share: frames, the null answer of each request, their errors, and the listener.

use bytes::{Buf, BytesMut};
use rzk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, Stat};
use rzk_proto::{Jute, OpCode, Reader};
use std::sync::atomic::{AtomicI64, Ordering};

/// The largest frame accepted (ZooKeeper's `jute.maxbuffer` default plus headers).
pub const MAX_FRAME: usize = 1024 * 1024 + 1024;
/// ZooKeeper's UNIMPLEMENTED error code.
const UNIMPLEMENTED: i32 = -6;

/// Why a connection was closed before its client closed it.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame length {0} is outside 0..={MAX_FRAME}")]
    FrameLength(i32),
    #[error("undecodable frame: {0}")]
    Decode(#[from] rzk_proto::DecodeError),
}

/// Appends one length-prefixed frame to `out`, its body written by `write`.
pub fn frame(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Answers one request frame (`body`: after the length) into `out`. Returns false
/// when the connection should close after `out` is written (closeSession).
pub fn answer(body: &[u8], out: &mut Vec<u8>) -> Result<bool, ConnError> {
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

/// The next whole frame's body (after its length) taken off the front of `buf`, if one
/// has arrived. Errors: a length that is negative or over [`MAX_FRAME`].
pub fn next_frame(buf: &mut BytesMut) -> Result<Option<BytesMut>, ConnError> {
    let Some(b) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let size = usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or(ConnError::FrameLength(len))?;
    if buf.len() < 4 + size {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size)))
}

/// Answers a ConnectRequest (`body`) into `out` with a new session (ids from
/// `next_session`, a zero password, the requested timeout).
pub fn connect_answer(
    body: &[u8],
    next_session: &AtomicI64,
    out: &mut Vec<u8>,
) -> Result<(), ConnError> {
    let req = ConnectRequest::from_bytes(body)?;
    let session_id = next_session.fetch_add(1, Ordering::Relaxed);
    frame(out, |w| {
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: req.timeout_ms,
            session_id,
            passwd: vec![0u8; 16].into(),
            read_only: Some(false),
        }
        .write(w)
    });
    Ok(())
}

/// Whether `body` (a request frame after its length) is a write a durable server must
/// log before answering: create, delete, setData, create2, createContainer, createTTL.
pub fn is_write(body: &[u8]) -> bool {
    let mut r = Reader::new(body);
    let (Ok(_xid), Ok(op)) = (r.read::<i32>(), r.read::<i32>()) else {
        return false;
    };
    matches!(
        OpCode::from_i32(op),
        Some(
            OpCode::Create
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
        )
    )
}

/// Serves every connection accepted on 127.0.0.1:`port` with `serve`, on a tokio
/// runtime of `workers` threads (`None`: tokio's default), until the process is killed.
/// `name` starts its messages (a bind failure, a connection's error). Returns only on a
/// failure to start.
pub fn listen<F, Fut>(
    name: &'static str,
    port: u16,
    workers: Option<usize>,
    serve: F,
) -> std::process::ExitCode
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = Result<(), ConnError>> + Send + 'static,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let rt = match builder.enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{name}: bind 127.0.0.1:{port}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    let conn = serve(sock);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            eprintln!("{name}: {peer}: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("{name}: accept: {e}"),
            }
        }
    })
}
