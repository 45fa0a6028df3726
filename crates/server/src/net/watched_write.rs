//! The writing half of a client connection, watched while it waits for the client.
//!
//! A connection's task writes a reply or a notification by awaiting the socket; while a
//! client reads slowly (a slow link, large replies) the task waits there and reads
//! nothing, so the client's pings are not read and its session is not touched.
//! ZooKeeper's NIO factory reads and writes a connection independently: a client that
//! reads its replies at 300 KB/s keeps its session, while in rzk it expired (a break-it
//! review, session 52: kazoo with a 6 s session fetching five 1 MB nodes through a
//! 300 KB/s link lost its session and its ephemeral node). Bytes the client accepts
//! show it is alive as well as a ping does, so [`WatchedWrite`] touches the session
//! when a write makes progress.
//!
//! And a client that reads nothing at all (it vanished without a FIN, or stopped) left
//! the task blocked for good, with its registry entry, watches and `maxClientCnxns`
//! slot; ZooKeeper closes such a connection once it has had no I/O for the session's
//! timeout. A write that makes no progress for that long now fails with
//! [`std::io::ErrorKind::TimedOut`], which closes the connection.
//!
//! Only the client's taking of bytes counts as progress: a write that waited for the
//! socket and then went on, or the socket's unacknowledged queue shrinking. A write the
//! socket takes at once (a notification into an empty buffer) says nothing of the
//! client: counted, it let a follower stopped past a client's session timeout answer
//! the request queued meanwhile, after it wrote that client a watch notification on
//! resuming (`tests/ensemble/stalled_member_test.py`, seen in CI twice).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;

use super::conn::ClientWrite;

/// At most one session touch per this much write progress.
const TOUCH_EVERY: Duration = Duration::from_millis(100);

/// Bytes the socket `fd` holds that the peer has not acknowledged (`SIOCOUTQ`); None
/// where that cannot be read.
fn unacked(fd: std::os::fd::RawFd) -> Option<i64> {
    #[cfg(target_os = "linux")]
    {
        let mut n: libc::c_int = 0;
        // SAFETY: `fd` is the connection's socket, open while this writer lives
        // (`ClientStream::tcp`); TIOCOUTQ (SIOCOUTQ) writes one int to `n`.
        let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
        (r == 0).then_some(i64::from(n))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// Touches the client's session at the given time (the connection's own rule: local,
/// learner or judging tracker).
pub type Toucher = Box<dyn Fn(Instant) + Send>;

/// A client connection's writer: counts write progress as the client's liveness and
/// gives up a write that waits longer than the session timeout (module docs).
pub struct WatchedWrite {
    inner: ClientWrite,
    /// The TCP socket under `inner` (plaintext, or under a TLS session): while a write
    /// waits, its queue of bytes the client has not acknowledged shrinking is the
    /// client's progress (the socket becomes writable again only once a good part of
    /// its buffer is free, seconds later for a slow reader). A TLS session's write
    /// waits exactly when that socket is full, so the same watch holds for it. `None`
    /// (a stream with no socket, in tests): only accepted writes count, and a write is
    /// never given up.
    socket: Option<std::os::fd::RawFd>,
    /// `unacked(socket)` when last looked at.
    queued: Option<i64>,
    /// When the current wait began (the limit counts from it or from the last
    /// progress, whichever is later).
    wait_since: Instant,
    /// The session's timeout, once bound: how long a write may wait without progress.
    limit: Option<Duration>,
    touch: Option<Toucher>,
    /// When the client last accepted bytes (or the watch was set).
    progress_at: Instant,
    /// A write or flush waited for the socket since the last progress: the socket
    /// taking bytes again is the client's doing.
    waited: bool,
    touched_at: Instant,
    /// Armed while a write waits: every third of `limit`, looks at the socket's queue.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WatchedWrite {
    /// Watches nothing until [`WatchedWrite::watch`]. `socket`: the TCP socket under
    /// `inner` (see the field), open as long as `inner` is.
    pub fn new(inner: ClientWrite, socket: Option<std::os::fd::RawFd>) -> WatchedWrite {
        let now = Instant::now();
        WatchedWrite {
            inner,
            socket,
            queued: None,
            wait_since: now,
            limit: None,
            touch: None,
            progress_at: now,
            waited: false,
            touched_at: now,
            stall: None,
        }
    }

    /// From now on a write may wait at most `limit` (the session timeout) without the
    /// client accepting a byte, and progress touches the session through `touch`.
    pub fn watch(&mut self, limit: Duration, touch: Toucher) {
        self.limit = Some(limit);
        self.touch = Some(touch);
        self.progress_at = Instant::now();
        self.stall = None;
    }

    /// When the client last accepted bytes from this writer.
    pub fn progress_at(&self) -> Instant {
        self.progress_at
    }

    fn progressed(&mut self) {
        let now = Instant::now();
        self.progress_at = now;
        self.stall = None;
        if let Some(touch) = &self.touch {
            if now.saturating_duration_since(self.touched_at) >= TOUCH_EVERY {
                self.touched_at = now;
                touch(now);
            }
        }
    }

    /// The inner writer is not ready. Every third of the limit, the socket's queue is
    /// looked at: shrunk, the client is reading (progress); an error once nothing
    /// progressed for the limit. Without a socket to look at, the write waits.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (Some(limit), Some(fd)) = (self.limit, self.socket) else {
            return Poll::Pending;
        };
        let every = (limit / 3).max(Duration::from_millis(10));
        if self.stall.is_none() {
            self.wait_since = Instant::now();
            self.queued = unacked(fd);
            self.stall = Some(Box::pin(tokio::time::sleep(every)));
        }
        loop {
            let Some(timer) = self.stall.as_mut() else {
                return Poll::Pending;
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let queued = unacked(fd);
            if let (Some(q), Some(before)) = (queued, self.queued) {
                if q < before {
                    self.progressed();
                }
            }
            self.queued = queued;
            if now.saturating_duration_since(self.progress_at.max(self.wait_since)) > limit {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client took no byte for longer than the session timeout ({} ms)",
                        limit.as_millis()
                    ),
                ));
            }
            // Armed again (`progressed` disarms it), and polled so that it wakes us.
            let next = tokio::time::Instant::from_std(now + every);
            match self.stall.as_mut() {
                Some(t) => t.as_mut().reset(next),
                None => self.stall = Some(Box::pin(tokio::time::sleep_until(next))),
            }
        }
    }

    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                // Without a socket to look at (tests), every accepted write counts.
                if n > 0 && (self.waited || self.socket.is_none()) {
                    self.progressed();
                }
                if n > 0 {
                    self.waited = false;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.waited = true;
                self.waiting(cx).map(Err)
            }
        }
    }
}

impl AsyncWrite for WatchedWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => {
                this.waited = true;
                this.waiting(cx).map(Err)
            }
            r => r,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A write the peer reads slowly goes on, however long it takes, touching the
    /// session as the peer takes bytes; a write the peer never reads fails once it
    /// waited the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_fails_only_after_the_limit_without_progress() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let client = socket
            .connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let fd = server.as_raw_fd();
        // A small send buffer, so that the writes wait for the reader.
        let size: libc::c_int = 16 * 1024;
        // SAFETY: `fd` is the open socket `server`; the option value is one c_int.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                std::ptr::from_ref(&size).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
            )
        };
        assert_eq!(r, 0, "SO_SNDBUF");
        let (_server_rd, server_wr) = server.into_split();
        let touches = Arc::new(AtomicUsize::new(0));
        let mut w = WatchedWrite::new(Box::new(server_wr), Some(fd));
        let t = touches.clone();
        w.watch(
            Duration::from_millis(300),
            Box::new(move |_| {
                t.fetch_add(1, Ordering::Relaxed);
            }),
        );
        // A slow reader: 4 KiB every 10 ms (~400 KB/s) of 1 MiB: ~2.6 s, eight limits,
        // and more than the socket buffers hold.
        const TOTAL: usize = 1 << 20;
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = 0;
            let mut buf = [0u8; 4096];
            while got < TOTAL {
                tokio::time::sleep(Duration::from_millis(10)).await;
                got += client.read(&mut buf).await.expect("a read");
            }
            client
        });
        w.write_all(&vec![7u8; TOTAL])
            .await
            .expect("a slow reader keeps the write alive");
        w.flush().await.expect("flushed");
        let client = reader.await.expect("the reader");
        assert!(
            touches.load(Ordering::Relaxed) >= 5,
            "progress touched the session"
        );

        // Now nobody reads: the write fails once it waited the limit.
        let start = Instant::now();
        let e = w
            .write_all(&vec![7u8; TOTAL])
            .await
            .expect_err("nobody reads");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "failed early: {:?}",
            start.elapsed()
        );
        drop(client);
    }

    /// A write the socket takes at once (a notification into an empty buffer) is not
    /// the client's progress: it neither moves `progress_at` nor touches the session.
    /// (Counted, it let a follower resumed after a stop answer a request queued past
    /// the client's session timeout, once it had written that client a notification:
    /// stalled_member_test.py failed in CI twice.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_taken_at_once_is_not_the_clients_progress() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let fd = server.as_raw_fd();
        let (_server_rd, server_wr) = server.into_split();
        let touches = Arc::new(AtomicUsize::new(0));
        let mut w = WatchedWrite::new(Box::new(server_wr), Some(fd));
        let t = touches.clone();
        w.watch(
            Duration::from_secs(10),
            Box::new(move |_| {
                t.fetch_add(1, Ordering::Relaxed);
            }),
        );
        let set_at = w.progress_at();
        tokio::time::sleep(Duration::from_millis(150)).await;
        for _ in 0..3 {
            w.write_all(b"a notification of a few dozen bytes")
                .await
                .expect("taken at once");
            w.flush().await.expect("flushed");
        }
        assert_eq!(
            w.progress_at(),
            set_at,
            "a write into free buffer space counted"
        );
        assert_eq!(touches.load(Ordering::Relaxed), 0);
        drop(client);
    }
}
