//! A raw ZooKeeper-protocol session: length-prefixed jute frames over TCP, written and
//! read exactly as the test says, so a test can pipeline requests and see every reply
//! and notification in arrival order. No retries, no hidden pings.
//!
//! [`RawSession`] is the connection; [`RawClient`] adds typed requests (create, getData,
//! ...) and records every arrival, for tests that check replies and notifications one by
//! one.

use bytes::Bytes;
use rzk_proto::records::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, CreateResponse, DeleteRequest,
    ExistsRequest, ExistsResponse, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse, ReplyHeader, RequestHeader, SetDataRequest, SetDataResponse, Stat,
    WatcherEvent,
};
use rzk_proto::{Jute, OpCode, Reader};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
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

/// True if the peer closes `stream` (end of stream or reset) within `timeout`; false if a
/// byte arrives first (it is consumed) or nothing happens.
pub async fn closed_within(stream: &mut (impl AsyncRead + Unpin), timeout: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(timeout, stream.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// `body` with its 4-byte big-endian length in front: one frame.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + body.len());
    v.extend_from_slice(&(body.len() as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
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
        let (s, resp) = RawSession::handshake(addr, &req, io_timeout).await?;
        if resp.timeout_ms <= 0 || resp.session_id == 0 {
            return Err(RawError::SessionRefused { addr });
        }
        Ok(s)
    }

    /// Sends `req` exactly as given (e.g. without the trailing readOnly byte, or with a
    /// `last_zxid_seen` ahead of the server) and returns the connection with the server's
    /// answer as it came, a refusal (timeout 0) included. The session fields of the
    /// returned connection are those of the answer.
    ///
    /// Errors: the connection or the answer takes longer than `io_timeout`
    /// ([`RawError::Timeout`]), the server closes the connection without answering
    /// ([`RawError::Closed`]), I/O fails, or the answer does not decode.
    pub async fn handshake(
        addr: SocketAddr,
        req: &ConnectRequest,
        io_timeout: Duration,
    ) -> Result<(RawSession, ConnectResponse), RawError> {
        let tcp = tokio::time::timeout(io_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RawError::Timeout {
                addr,
                after: io_timeout,
            })?
            .map_err(|source| RawError::Io { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let mut s = RawSession {
            addr,
            stream: BufReader::new(tcp),
            session_id: 0,
            passwd: Bytes::new(),
            timeout_ms: 0,
            io_timeout,
        };
        s.send(&frame(&req.to_bytes())).await?;
        let raw = s.read_raw().await?;
        let resp = ConnectResponse::from_bytes(&raw).map_err(|e| RawError::Malformed {
            addr,
            what: format!("ConnectResponse: {e}"),
        })?;
        s.session_id = resp.session_id;
        s.passwd = resp.passwd.clone();
        s.timeout_ms = resp.timeout_ms;
        Ok((s, resp))
    }

    /// True if the server closed the connection (end of stream or reset) within
    /// `io_timeout`; false if it sent a byte or stayed silent. See [`closed_within`].
    pub async fn is_closed(&mut self) -> bool {
        closed_within(&mut self.stream, self.io_timeout).await
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

/// How long [`RawClient`] waits for any frame: 5 s.
pub const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`RawSession`] with typed requests for tests: every reply and notification read is
/// recorded in arrival order, xids are chosen by the test ([`send`](Self::send)) or
/// counted up ([`call`](Self::call)). Its methods panic on I/O errors and on replies
/// out of order unless they return a `Result`; requests that fail on the server return
/// the error code (e.g. `-101` NoNode).
#[derive(Debug)]
pub struct RawClient {
    /// The connection (session id, password, negotiated timeout, raw bytes).
    pub conn: RawSession,
    /// The last xid [`call`](Self::call) used.
    pub xid: i32,
    /// Notifications received, in order.
    pub events: Vec<WatcherEvent>,
    /// Every frame's xid in arrival order (-1 notification, -2 ping, -4 auth).
    pub arrivals: Vec<i32>,
}

impl RawClient {
    /// Opens a new session with a requested timeout of `timeout_ms`; panics if the
    /// server does not accept it.
    pub async fn connect(addr: SocketAddr, timeout_ms: i32) -> RawClient {
        RawClient::resume(addr, timeout_ms, 0, Bytes::from(vec![0u8; 16]))
            .await
            .unwrap_or_else(|(_, r)| panic!("{addr} refused a new session: {r:?}"))
    }

    /// Resumes `session` with `passwd` (or opens a new one when `session` is 0). A
    /// refusal (expired session or wrong password: timeout 0) gives the connection and the
    /// server's answer, to check both. Panics on I/O errors.
    pub async fn resume(
        addr: SocketAddr,
        timeout_ms: i32,
        session: i64,
        passwd: Bytes,
    ) -> Result<RawClient, (RawSession, ConnectResponse)> {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        let (conn, resp) = RawSession::handshake(addr, &req, CLIENT_IO_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
        if resp.timeout_ms <= 0 {
            return Err((conn, resp));
        }
        Ok(RawClient {
            conn,
            xid: 0,
            events: Vec::new(),
            arrivals: Vec::new(),
        })
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.conn.session_id
    }

    /// The session password (16 bytes).
    pub fn passwd(&self) -> Bytes {
        self.conn.passwd.clone()
    }

    /// The negotiated session timeout, ms.
    pub fn timeout_ms(&self) -> i32 {
        self.conn.timeout_ms
    }

    /// Sends one request frame `RequestHeader{xid, op}` + `body` without waiting.
    pub async fn send(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut payload = RequestHeader { xid, op }.to_bytes();
        payload.extend_from_slice(body);
        self.send_bytes(&frame(&payload)).await;
    }

    /// Writes `bytes` as they are (any number of frames, or garbage).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.conn.send(bytes).await.expect("send");
    }

    /// Reads one frame; notifications are recorded and returned like any other.
    pub async fn recv(&mut self) -> Result<(ReplyHeader, Vec<u8>), RawError> {
        let (h, body) = self.conn.read_reply().await?;
        self.arrivals.push(h.xid);
        if h.xid == -1 {
            let ev = WatcherEvent::from_bytes(&body).map_err(|e| RawError::Malformed {
                addr: self.conn.addr,
                what: format!("WatcherEvent: {e}"),
            })?;
            self.events.push(ev);
        }
        Ok((h, body))
    }

    /// Reads until the reply with `xid`; only notifications may come before it.
    pub async fn reply(&mut self, xid: i32) -> (ReplyHeader, Vec<u8>) {
        loop {
            let (h, b) = self.recv().await.expect("reply");
            if h.xid == xid {
                return (h, b);
            }
            assert_eq!(
                h.xid, -1,
                "unexpected reply xid {} while waiting for {xid}",
                h.xid
            );
        }
    }

    /// Sends a request with the next xid and waits for its reply.
    pub async fn call(&mut self, op: i32, body: &[u8]) -> (ReplyHeader, Vec<u8>) {
        self.xid += 1;
        let xid = self.xid;
        self.send(xid, op, body).await;
        self.reply(xid).await
    }

    /// create with an open ACL; `flags` as ZooKeeper's CreateMode (1 ephemeral, 2
    /// sequential). Returns `(0, created path)` or `(error code, "")`.
    pub async fn create(&mut self, path: &str, data: &[u8], flags: i32) -> (i32, String) {
        let req = CreateRequest {
            path: path.into(),
            data: Bytes::copy_from_slice(data).into(),
            acl: Acl::open_unsafe(),
            flags,
        };
        let (h, b) = self.call(OpCode::Create.code(), &req.to_bytes()).await;
        if h.err != 0 {
            return (h.err, String::new());
        }
        let r = CreateResponse::from_bytes(&b).expect("CreateResponse");
        (0, r.path)
    }

    /// getData, optionally leaving a data watch.
    pub async fn get_data(&mut self, path: &str, watch: bool) -> Result<(Bytes, Stat), i32> {
        let req = GetDataRequest {
            path: path.into(),
            watch,
        };
        let (h, b) = self.call(OpCode::GetData.code(), &req.to_bytes()).await;
        if h.err != 0 {
            return Err(h.err);
        }
        let r = GetDataResponse::from_bytes(&b).expect("GetDataResponse");
        Ok((r.data.bytes(), r.stat))
    }

    /// exists, optionally leaving a watch.
    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, i32> {
        let req = ExistsRequest {
            path: path.into(),
            watch,
        };
        let (h, b) = self.call(OpCode::Exists.code(), &req.to_bytes()).await;
        if h.err != 0 {
            return Err(h.err);
        }
        Ok(ExistsResponse::from_bytes(&b).expect("ExistsResponse").stat)
    }

    /// setData at `version` (-1: any).
    pub async fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, i32> {
        let req = SetDataRequest {
            path: path.into(),
            data: Bytes::copy_from_slice(data).into(),
            version,
        };
        let (h, b) = self.call(OpCode::SetData.code(), &req.to_bytes()).await;
        if h.err != 0 {
            return Err(h.err);
        }
        Ok(SetDataResponse::from_bytes(&b)
            .expect("SetDataResponse")
            .stat)
    }

    /// delete at `version` (-1: any); returns the error code (0 on success).
    pub async fn delete(&mut self, path: &str, version: i32) -> i32 {
        let req = DeleteRequest {
            path: path.into(),
            version,
        };
        self.call(OpCode::Delete.code(), &req.to_bytes())
            .await
            .0
            .err
    }

    /// getChildren without a watch.
    pub async fn children(&mut self, path: &str) -> Result<Vec<String>, i32> {
        let req = GetChildrenRequest {
            path: path.into(),
            watch: false,
        };
        let (h, b) = self.call(OpCode::GetChildren.code(), &req.to_bytes()).await;
        if h.err != 0 {
            return Err(h.err);
        }
        Ok(GetChildrenResponse::from_bytes(&b)
            .expect("GetChildrenResponse")
            .children)
    }

    /// A ping (xid -2); returns its reply header (the server's last zxid).
    pub async fn ping(&mut self) -> ReplyHeader {
        self.send(-2, OpCode::Ping.code(), &[]).await;
        self.reply(-2).await.0
    }

    /// closeSession; returns its reply header.
    pub async fn close_session(&mut self) -> ReplyHeader {
        self.call(OpCode::CloseSession.code(), &[]).await.0
    }

    /// True if the server closed the connection within [`CLIENT_IO_TIMEOUT`].
    pub async fn is_closed(&mut self) -> bool {
        self.conn.is_closed().await
    }
}
