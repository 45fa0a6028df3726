//! A raw ZooKeeper-protocol session: length-prefixed jute frames over TCP, written and
//! read exactly as the test says, so a test can pipeline requests and see every reply
//! and notification in arrival order. No retries, no hidden pings.

use bytes::Bytes;
use rzk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use rzk_proto::{Jute, Reader};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest frame accepted from a server (ZooKeeper's default `jute.maxbuffer` + slack).
pub const MAX_FRAME: usize = 0xfffff + 1024;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("io with {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} sent nothing for {0:?}", .after)]
    Timeout { addr: SocketAddr, after: Duration },
    #[error("{addr} closed the connection")]
    Closed { addr: SocketAddr },
    #[error("{addr} refused the session (expired or bad password)")]
    SessionRefused { addr: SocketAddr },
    #[error("{addr} sent a malformed frame: {what}")]
    Malformed { addr: SocketAddr, what: String },
}

/// One connected session.
#[derive(Debug)]
pub struct RawSession {
    pub addr: SocketAddr,
    stream: BufReader<TcpStream>,
    /// Session id (ZooKeeper's `sessionId`).
    pub session_id: i64,
    pub passwd: Bytes,
    /// Negotiated session timeout, ms.
    pub timeout_ms: i32,
    /// How long to wait for any frame before giving up.
    pub io_timeout: Duration,
}

/// Encodes one request frame: length, `RequestHeader{xid, op}`, body.
pub fn request_frame(out: &mut Vec<u8>, xid: i32, op: i32, body: &impl Jute) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    RequestHeader { xid, op }.write(out);
    body.write(out);
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

impl RawSession {
    /// Opens a new session (`resume == None`) or resumes `(session_id, passwd,
    /// last_zxid_seen)` on `addr`. A server that closes the connection instead of
    /// answering (e.g. it is behind the client's last zxid, or not serving) gives
    /// [`RawError::Closed`].
    pub async fn connect(
        addr: SocketAddr,
        timeout_ms: i32,
        resume: Option<(i64, Bytes, i64)>,
        io_timeout: Duration,
    ) -> Result<RawSession, RawError> {
        let tcp = tokio::time::timeout(io_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RawError::Timeout {
                addr,
                after: io_timeout,
            })?
            .map_err(|source| RawError::Io { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let (session_id, passwd, last_zxid_seen) =
            resume.unwrap_or((0, Bytes::from_static(&[0; 16]), 0));
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            timeout_ms,
            session_id,
            passwd,
            read_only: Some(false),
        };
        let mut s = RawSession {
            addr,
            stream: BufReader::new(tcp),
            session_id: 0,
            passwd: Bytes::new(),
            timeout_ms: 0,
            io_timeout,
        };
        let mut frame = Vec::new();
        let body = req.to_bytes();
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        s.send(&frame).await?;
        let raw = s.read_raw().await?;
        let resp = ConnectResponse::from_bytes(&raw).map_err(|e| RawError::Malformed {
            addr,
            what: format!("ConnectResponse: {e}"),
        })?;
        if resp.timeout_ms <= 0 || resp.session_id == 0 {
            return Err(RawError::SessionRefused { addr });
        }
        s.session_id = resp.session_id;
        s.passwd = resp.passwd;
        s.timeout_ms = resp.timeout_ms;
        Ok(s)
    }

    /// Writes bytes (one or many frames) to the server.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), RawError> {
        let addr = self.addr;
        self.stream
            .get_mut()
            .write_all(bytes)
            .await
            .map_err(|source| RawError::Io { addr, source })
    }

    async fn read_raw(&mut self) -> Result<Vec<u8>, RawError> {
        let addr = self.addr;
        let after = self.io_timeout;
        let stream = &mut self.stream;
        let read = async move {
            let mut len = [0u8; 4];
            if let Err(e) = stream.read_exact(&mut len).await {
                return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    RawError::Closed { addr }
                } else {
                    RawError::Io { addr, source: e }
                });
            }
            let n = i32::from_be_bytes(len);
            if n < 0 || n as usize > MAX_FRAME {
                return Err(RawError::Malformed {
                    addr,
                    what: format!("frame length {n}"),
                });
            }
            let mut buf = vec![0u8; n as usize];
            stream
                .read_exact(&mut buf)
                .await
                .map_err(|source| RawError::Io { addr, source })?;
            Ok(buf)
        };
        tokio::time::timeout(after, read)
            .await
            .map_err(|_| RawError::Timeout { addr, after })?
    }

    /// Reads the next reply or notification: its header and the body after it.
    pub async fn read_reply(&mut self) -> Result<(ReplyHeader, Vec<u8>), RawError> {
        let raw = self.read_raw().await?;
        let mut r = Reader::new(&raw);
        let hdr: ReplyHeader = r.read().map_err(|e| RawError::Malformed {
            addr: self.addr,
            what: format!("ReplyHeader: {e}"),
        })?;
        Ok((hdr, r.rest().to_vec()))
    }

    /// Sends `closeSession` and waits for its reply (best effort).
    pub async fn close(mut self) {
        let mut f = Vec::new();
        request_frame(
            &mut f,
            i32::MAX - 1,
            rzk_proto::OpCode::CloseSession.code(),
            &Empty,
        );
        if self.send(&f).await.is_ok() {
            for _ in 0..64 {
                match self.read_reply().await {
                    Ok((h, _)) if h.xid == i32::MAX - 1 => break,
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
    }
}

/// An empty request body (closeSession, whoAmI, ping).
#[derive(Debug, Clone, Copy, Default)]
pub struct Empty;

impl Jute for Empty {
    fn read(_: &mut Reader<'_>) -> Result<Self, rzk_proto::DecodeError> {
        Ok(Empty)
    }
    fn write(&self, _: &mut Vec<u8>) {}
}
