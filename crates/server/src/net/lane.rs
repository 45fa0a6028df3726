//! The reply lane of a plaintext client connection: lets the applier write a write
//! request's reply straight into the connection's socket, instead of handing it to the
//! connection's task, which would wake only to copy it there.
//!
//! With one request in flight per session, a reply handed to the task costs a wake-up
//! of a connection thread, a poll of the task and a `send` per request, and the reply
//! waits until a connection thread gets a CPU (docs/TESTING.md, session 49). Written by
//! the applier, it leaves as soon as its txn is applied, and the task wakes once per
//! request (for the next one) instead of twice.
//!
//! The connection's task stays the owner of the session's reply order
//! (`net::order::ReplyOrder`). It *arms* the lane only while it waits with nothing to do
//! but wait for the replies of its admitted write requests: nothing buffered, nothing
//! queued for it, no read, held request or closing request behind them. Armed, the lane
//! holds the xids of those requests, oldest first; the applier may write exactly those
//! replies, in that order, and only while the lane stays armed. Everything else still
//! goes through the task's queue, and queuing anything for the task disarms the lane
//! first, under the lane's lock (`node::clients::ConnTx`): so a reply written directly
//! never overtakes a notification, a close or another reply queued before it, and the
//! task, which disarms the lane ([`ReplyLane::reclaim`]) before it does anything after
//! waking, never writes while the applier does. A reply only partly written (the socket
//! buffer was full) disarms the lane and keeps its rest, and the task is woken: it
//! writes the rest first thing when it reclaims the lane.
//!
//! The lane writes to the socket's descriptor with `MSG_DONTWAIT` (never blocks the
//! applier) and `MSG_NOSIGNAL`. It borrows the descriptor (a duplicate would take a
//! second descriptor per connection from the process's limit): the task closes the lane
//! when the connection ends, before the socket is closed, and a write holds the lane's
//! lock, so no write can reach a closed (or reused) descriptor. TLS connections have no
//! lane. ZooKeeper's equivalent: none (its `NIOServerCnxn`
//! queues every response for the selector thread); replies are the same bytes in the
//! same order.

use std::collections::VecDeque;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// See the module documentation. One per connection, shared by its task and its
/// registry entry.
#[derive(Debug, Default)]
pub struct ReplyLane {
    state: Mutex<LaneState>,
}

#[derive(Debug, Default)]
struct LaneState {
    /// The connection's socket (see [`ReplyLane::attach`]); `None` on TLS connections
    /// and once the connection ended.
    socket: Option<RawFd>,
    /// Armed: the xids whose replies may be written directly, oldest first, each with
    /// when its request arrived. Empty: disarmed.
    expect: VecDeque<(i32, Instant)>,
    /// Replies written directly since the task last reclaimed the lane.
    written: u32,
    /// When the last of them was written.
    written_at: Option<Instant>,
    /// The unwritten end of the last of them, if the socket took only part of it.
    rest: Option<Vec<u8>>,
}

/// What the lane did while it was armed ([`ReplyLane::reclaim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// Replies written directly (their requests are answered), oldest first.
    pub written: u32,
    /// When the last one was written.
    pub at: Option<Instant>,
    /// The end of the last one, which the socket did not take: the task writes it
    /// before anything else.
    pub rest: Option<Vec<u8>>,
}

impl ReplyLane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the lane the descriptor of the connection's plaintext socket.
    ///
    /// # Safety
    /// `socket` must stay open until [`ReplyLane::close`] has returned: the caller
    /// closes the lane before it drops the socket's last handle.
    pub unsafe fn attach(&self, socket: RawFd) {
        self.lock().socket = Some(socket);
    }

    /// Ends the lane for good: disarmed, and it forgets the socket. Called when the
    /// connection's task ends, before the socket is closed; waits for a write in
    /// progress.
    pub fn close(&self) {
        let mut s = self.lock();
        s.expect.clear();
        s.socket = None;
    }

    /// Arms the lane for the replies of `xids` (oldest first, not empty; each with when
    /// its request arrived), unless `queue_empty` (asked under the lane's lock) says
    /// something is queued for the task or the lane has no socket. Returns whether it
    /// is armed.
    pub fn arm(
        &self,
        xids: impl IntoIterator<Item = (i32, Instant)>,
        queue_empty: impl FnOnce() -> bool,
    ) -> bool {
        let mut s = self.lock();
        debug_assert!(
            s.expect.is_empty() && s.written == 0,
            "armed twice without a reclaim"
        );
        if s.socket.is_none() || !queue_empty() {
            return false;
        }
        s.expect.extend(xids);
        !s.expect.is_empty()
    }

    /// Disarms the lane and returns what was written while it was armed.
    pub fn reclaim(&self) -> Reclaimed {
        let mut s = self.lock();
        s.expect.clear();
        let r = Reclaimed {
            written: s.written,
            at: s.written_at,
            rest: s.rest.take(),
        };
        s.written = 0;
        s.written_at = None;
        r
    }

    /// Runs `queue` (which queues a message for the connection's task) with the lane
    /// disarmed first, under its lock: no reply is written directly after it.
    pub fn disarm_then<R>(&self, queue: impl FnOnce() -> R) -> R {
        let mut s = self.lock();
        s.expect.clear();
        queue()
    }

    /// Writes the reply frames `frames` (each: length prefix, reply header, body; one
    /// connection's, oldest first) into the socket in one `sendmsg`, as far as the lane
    /// is armed for their xids, in order. Returns how many of the first frames the lane
    /// took: the caller queues the others for the task (the lane is then disarmed).
    /// The last frame taken may have been cut by a full socket: the lane keeps its
    /// rest for the task ([`Reclaimed::rest`]) and calls `wake` (which queues a message
    /// to wake the task) under its lock. A frame not for the next armed xid (a fault in
    /// the write path's order, which the task's `mark_done` reports), a full socket or
    /// a failed write (the task meets the error on its own) leaves the frames to the
    /// task. `answered` is called, under the lane's lock, with each taken frame and when
    /// its request arrived (so the request's latency is known when its reply leaves).
    pub fn write_replies<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        wake: impl FnOnce(),
        mut answered: impl FnMut(&[u8], Instant),
    ) -> usize {
        let mut s = self.lock();
        let Some(fd) = s.socket else {
            s.expect.clear();
            return 0;
        };
        let eligible = frames
            .iter()
            .take(MAX_FRAMES_PER_WRITE)
            .zip(&s.expect)
            .take_while(|(f, (want, _))| crate::reply::frame_xid(f.as_ref()) == Some(*want))
            .count();
        if eligible == 0 {
            s.expect.clear();
            return 0;
        }
        let slices: Vec<std::io::IoSlice<'_>> = frames[..eligible]
            .iter()
            .map(|f| std::io::IoSlice::new(f.as_ref()))
            .collect();
        // SAFETY: `attach`'s contract: the descriptor is open until `close`, which
        // waits for this lock.
        let socket = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
        let sent = rustix::net::sendmsg(
            socket,
            &slices,
            &mut rustix::net::SendAncillaryBuffer::default(),
            flags,
        );
        // Full (EAGAIN), or an error the task will meet on its own socket.
        let Ok(mut left) = sent else {
            s.expect.clear();
            return 0;
        };
        let mut taken = 0;
        for f in &frames[..eligible] {
            let f = f.as_ref();
            if left == 0 {
                break;
            }
            taken += 1;
            if left < f.len() {
                s.rest = Some(f[left..].to_vec());
                if let Some(&(_, received)) = s.expect.front() {
                    answered(f, received);
                }
                break;
            }
            left -= f.len();
            if let Some((_, received)) = s.expect.pop_front() {
                answered(f, received);
            }
        }
        if taken > 0 {
            s.written += u32::try_from(taken).unwrap_or(u32::MAX);
            s.written_at = Some(Instant::now());
        }
        if s.rest.is_some() {
            s.expect.clear();
            wake();
        } else if taken < frames.len() {
            // The others go to the task, behind these.
            s.expect.clear();
        }
        taken
    }
}

/// Most frames one `sendmsg` carries (below every system's `IOV_MAX`).
const MAX_FRAMES_PER_WRITE: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn frame(xid: i32, body: usize) -> Vec<u8> {
        let mut f = ((12 + body) as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&xid.to_be_bytes());
        f.extend_from_slice(&[0u8; 8]);
        f.extend(std::iter::repeat_n(7u8, body));
        f
    }

    /// A connected pair: the lane writes into `server`'s socket, the test reads `client`.
    fn pair() -> (ReplyLane, TcpStream, TcpStream) {
        use std::os::fd::AsRawFd;
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (server, _) = l.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let lane = ReplyLane::default();
        // SAFETY: each test writes through the lane only while it holds `server`.
        unsafe { lane.attach(server.as_raw_fd()) };
        (lane, server, client)
    }

    /// `xids` as `arm` takes them.
    fn armed(xids: &[i32]) -> Vec<(i32, Instant)> {
        xids.iter().map(|&x| (x, Instant::now())).collect()
    }

    /// One frame, as `write_replies` takes them.
    fn one(lane: &ReplyLane, f: &[u8]) -> usize {
        lane.write_replies(&[f], || {}, |_, _| {})
    }

    #[test]
    fn writes_only_the_armed_replies_in_order() {
        let (lane, _server, mut client) = pair();
        // Not armed: nothing is written.
        assert_eq!(one(&lane, &frame(1, 4)), 0);
        assert!(lane.arm(armed(&[1, 2, 3]), || true));
        // Out of order: refused, and the lane is disarmed.
        assert_eq!(one(&lane, &frame(2, 4)), 0);
        assert_eq!(one(&lane, &frame(1, 4)), 0);
        assert_eq!(lane.reclaim().written, 0);
        assert!(lane.arm(armed(&[1, 2, 3]), || true));
        assert_eq!(one(&lane, &frame(1, 4)), 1);
        // Several at once, as far as they are armed for: 2 and 3, not 9.
        let (f2, f3, f9) = (frame(2, 4), frame(3, 4), frame(9, 4));
        assert_eq!(lane.write_replies(&[&f2, &f3, &f9], || {}, |_, _| {}), 2);
        // Disarmed after a frame it did not take.
        assert!(lane.reclaim().written == 3);
        assert!(lane.arm(armed(&[4]), || true));
        assert_eq!(one(&lane, &frame(5, 4)), 0);
        assert_eq!(one(&lane, &frame(4, 4)), 0, "disarmed by the refused frame");
        let r = lane.reclaim();
        assert_eq!(r.written, 0);
        let mut got = vec![0u8; 3 * frame(1, 4).len()];
        client.read_exact(&mut got).expect("read");
        assert_eq!(got, [frame(1, 4), f2, f3].concat());
    }

    #[test]
    fn a_queued_message_or_a_close_disarms_it() {
        let (lane, _server, _client) = pair();
        // Something already queued for the task: not armed.
        assert!(!lane.arm(armed(&[1]), || false));
        assert!(lane.arm(armed(&[1]), || true));
        lane.disarm_then(|| ());
        assert_eq!(one(&lane, &frame(1, 4)), 0);
        lane.reclaim();
        lane.close();
        assert!(!lane.arm(armed(&[1]), || true));
        assert_eq!(one(&lane, &frame(1, 4)), 0);
    }

    #[test]
    fn a_full_socket_leaves_the_rest_to_the_task() {
        let (lane, _server, mut client) = pair();
        // Bigger than any loopback socket buffer: only a part fits.
        let small = frame(8, 4);
        let big = frame(9, 64 << 20);
        let after = frame(10, 4);
        assert!(lane.arm(armed(&[8, 9, 10]), || true));
        let mut woken = false;
        let mut answered = Vec::new();
        assert_eq!(
            lane.write_replies(
                &[&small, &big, &after],
                || woken = true,
                |f, _| answered.push(crate::reply::frame_xid(f))
            ),
            2
        );
        assert!(woken);
        assert_eq!(answered, [Some(8), Some(9)]);
        // Disarmed: the next reply goes to the task, behind the rest.
        assert_eq!(one(&lane, &after), 0);
        let r = lane.reclaim();
        assert_eq!(r.written, 2);
        let tail = r.rest.expect("the rest is kept for the task");
        assert!(!tail.is_empty() && tail.len() < big.len());
        let mut head = vec![0u8; small.len() + big.len() - tail.len()];
        client.read_exact(&mut head).expect("read");
        assert_eq!(head, [&small[..], &big[..big.len() - tail.len()]].concat());
    }
}
