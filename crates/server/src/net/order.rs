//! The reply order of one client session, without IO (`net::conn` drives it over a
//! socket; `crates/sim` drives the same code in its simulated servers).
//!
//! ZooKeeper answers a session's requests strictly in the order they were sent (its
//! `FinalRequestProcessor` + `CommitProcessor` per-session queue): a read waits until
//! every earlier write of the session has been applied, and a write sent after a read
//! may not take effect before that read is answered. Here:
//! * `pending` holds admitted requests, answered only from the front: a pipeline slot
//!   (a write, sync or error txn handed to the write path) is answerable once its reply
//!   arrived; a local slot (read, ping, auth, ...) is answered from the local tree when
//!   it reaches the front, i.e. after every earlier write's reply;
//! * `held` holds requests not yet admitted: a pipeline request is held while an earlier
//!   local request still waits (it may not take effect before that read is answered),
//!   and everything after a held request is held behind it.
//!
//! Must never: reorder a session's replies (except under the test-only fault
//! [`ReplyOrder::set_fault_reads_overtake_writes`]), do IO, or read a clock.

use std::collections::VecDeque;

/// An admitted request.
#[derive(Debug)]
pub enum Slot<L, T> {
    /// Submitted to the write path; `done` holds the reply frame once applied.
    Pipeline {
        xid: i32,
        done: Option<Vec<u8>>,
        close: bool,
        received: T,
    },
    /// Answered locally when it reaches the front.
    Local { xid: i32, what: L, received: T },
}

/// A request decoded but not admitted yet.
#[derive(Debug)]
pub enum Held<L, P, T> {
    /// A write-path request (`kind`), to be submitted when its turn comes.
    Pipeline {
        xid: i32,
        kind: P,
        close: bool,
        received: T,
    },
    /// A local request behind a held pipeline request.
    Local { xid: i32, what: L, received: T },
}

/// A pipeline request released from `held`: the caller submits it now.
#[derive(Debug)]
pub struct Released<P, T> {
    pub xid: i32,
    pub kind: P,
    pub close: bool,
    pub received: T,
}

/// What [`ReplyOrder::mark_done`] did with a reply frame from the write path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkDone {
    /// Stored in the oldest unanswered pipeline slot, whose xid it carries.
    Stored,
    /// Stored in the oldest unanswered pipeline slot, but that slot's xid is `expected`
    /// and the frame says `got` (a bug in the write path's order).
    OutOfOrder { expected: i32, got: Option<i32> },
    /// No pipeline request is waiting; the frame was dropped.
    NoneOutstanding,
}

/// The per-session reply queue. `L`: a local request, `P`: a write-path request held
/// before submission, `T`: when it was received (for latency; opaque here).
#[derive(Debug)]
pub struct ReplyOrder<L, P, T> {
    pending: VecDeque<Slot<L, T>>,
    /// How many `Slot::Local`s are in `pending` (reads waiting for earlier writes).
    locals_pending: usize,
    held: VecDeque<Held<L, P, T>>,
    /// Test-only fault: a local request may be answered before an earlier pipeline
    /// request of the session (breaks the per-session FIFO guarantee on purpose).
    fault_overtake: bool,
}

impl<L, P, T> Default for ReplyOrder<L, P, T> {
    fn default() -> Self {
        ReplyOrder {
            pending: VecDeque::new(),
            locals_pending: 0,
            held: VecDeque::new(),
            fault_overtake: false,
        }
    }
}

impl<L, P, T> ReplyOrder<L, P, T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// TEST ONLY (the simulator's injected ordering bug): let a read overtake the same
    /// session's pending write. Never set by the server.
    #[doc(hidden)]
    pub fn set_fault_reads_overtake_writes(&mut self, on: bool) {
        self.fault_overtake = on;
    }

    /// Requests admitted or held (the connection stops reading at its maximum).
    pub fn len(&self) -> usize {
        self.pending.len() + self.held.len()
    }

    /// Whether nothing is admitted or held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests held (not admitted yet).
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Whether a new pipeline request must be held (an earlier read still waits, or
    /// something is held already) instead of being submitted now.
    pub fn must_hold_pipeline(&self) -> bool {
        self.locals_pending > 0 || !self.held.is_empty()
    }

    /// Holds a pipeline request (see [`ReplyOrder::must_hold_pipeline`]).
    pub fn hold_pipeline(&mut self, xid: i32, kind: P, close: bool, received: T) {
        self.held.push_back(Held::Pipeline {
            xid,
            kind,
            close,
            received,
        });
    }

    /// Records a request just submitted to the write path; its reply comes through
    /// [`ReplyOrder::mark_done`].
    pub fn push_pipeline(&mut self, xid: i32, close: bool, received: T) {
        debug_assert!(
            self.fault_overtake || self.locals_pending == 0,
            "a write may not overtake a read"
        );
        self.pending.push_back(Slot::Pipeline {
            xid,
            done: None,
            close,
            received,
        });
    }

    /// Admits a local request directly (answered when it reaches the front).
    pub fn push_local(&mut self, xid: i32, what: L, received: T) {
        self.locals_pending += 1;
        self.pending.push_back(Slot::Local {
            xid,
            what,
            received,
        });
    }

    /// Admits a local request, or holds it behind an already held request.
    pub fn local(&mut self, xid: i32, what: L, received: T) {
        if !self.held.is_empty() {
            self.held.push_back(Held::Local {
                xid,
                what,
                received,
            });
            return;
        }
        self.push_local(xid, what, received);
    }

    /// Admits held requests whose turn has come: held locals go to `pending`; returns the
    /// next held pipeline request once no read of this session waits (the caller submits
    /// it, then calls this again), or `None` when nothing more can be released now.
    pub fn next_released(&mut self) -> Option<Released<P, T>> {
        loop {
            let h = self.held.front()?;
            if matches!(h, Held::Pipeline { .. }) && self.locals_pending > 0 {
                return None;
            }
            match self.held.pop_front()? {
                Held::Pipeline {
                    xid,
                    kind,
                    close,
                    received,
                } => {
                    return Some(Released {
                        xid,
                        kind,
                        close,
                        received,
                    })
                }
                Held::Local {
                    xid,
                    what,
                    received,
                } => self.push_local(xid, what, received),
            }
        }
    }

    /// Stores the write path's reply `frame` (a reply header first: length, xid, ...) in
    /// the oldest unanswered pipeline slot; `close_now`: the connection closes after it.
    pub fn mark_done(&mut self, frame: Vec<u8>, close_now: bool) -> MarkDone {
        let reply_xid = crate::reply::frame_xid(&frame);
        for slot in self.pending.iter_mut() {
            if let Slot::Pipeline {
                done, close, xid, ..
            } = slot
            {
                if done.is_none() {
                    let r = if reply_xid == Some(*xid) {
                        MarkDone::Stored
                    } else {
                        MarkDone::OutOfOrder {
                            expected: *xid,
                            got: reply_xid,
                        }
                    };
                    *done = Some(frame);
                    *close |= close_now;
                    return r;
                }
            }
        }
        MarkDone::NoneOutstanding
    }

    /// The xids (and arrivals) of the admitted requests when every one of them is a
    /// write-path request still waiting for its reply that does not close the
    /// connection, and nothing is held: then their replies may be written as they come,
    /// without the queue (`net::lane`). `None` otherwise, or when nothing is admitted.
    pub fn only_waiting_writes(&self) -> Option<impl Iterator<Item = (i32, T)> + '_>
    where
        T: Copy,
    {
        let only = !self.pending.is_empty()
            && self.held.is_empty()
            && self.locals_pending == 0
            && self.pending.iter().all(|s| {
                matches!(
                    s,
                    Slot::Pipeline {
                        done: None,
                        close: false,
                        ..
                    }
                )
            });
        only.then(|| {
            self.pending.iter().map(|s| match s {
                Slot::Pipeline { xid, received, .. } | Slot::Local { xid, received, .. } => {
                    (*xid, *received)
                }
            })
        })
    }

    /// Removes the oldest admitted request, a write-path request whose reply was
    /// written without the queue (`net::lane`), and returns its xid and arrival.
    /// `None` (and nothing removed) when the front is anything else.
    pub fn pop_written(&mut self) -> Option<(i32, T)> {
        if !matches!(self.pending.front()?, Slot::Pipeline { done: None, .. }) {
            return None;
        }
        match self.pending.pop_front()? {
            Slot::Pipeline { xid, received, .. } => Some((xid, received)),
            Slot::Local { .. } => None,
        }
    }

    /// Whether the front request is one answered on the connection (a read, a ping...):
    /// it waits for nothing but the tree's read lock.
    pub fn front_is_local(&self) -> bool {
        matches!(self.pending.front(), Some(Slot::Local { .. }))
    }

    /// The next request that can be answered now, in the session's order: the front
    /// slot if it is local or its reply is in; `None` while the front waits for the
    /// write path.
    pub fn pop_answerable(&mut self) -> Option<Slot<L, T>> {
        let front_waits = matches!(self.pending.front()?, Slot::Pipeline { done: None, .. });
        let at = if front_waits {
            if !self.fault_overtake {
                return None;
            }
            // The injected bug: answer the first read behind the waiting write.
            self.pending
                .iter()
                .position(|s| matches!(s, Slot::Local { .. }))?
        } else {
            0
        };
        let slot = self.pending.remove(at)?;
        if matches!(slot, Slot::Local { .. }) {
            self.locals_pending -= 1;
        }
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(xid: i32) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 16];
        f.extend_from_slice(&xid.to_be_bytes());
        f
    }

    fn xid_of(s: &Slot<&'static str, ()>) -> i32 {
        match s {
            Slot::Pipeline { xid, .. } | Slot::Local { xid, .. } => *xid,
        }
    }

    #[test]
    fn read_waits_for_earlier_write_and_write_waits_for_earlier_read() {
        let mut o: ReplyOrder<&str, &str, ()> = ReplyOrder::new();
        assert!(!o.must_hold_pipeline());
        o.push_pipeline(1, false, ());
        o.local(2, "get", ());
        assert!(o.must_hold_pipeline());
        o.hold_pipeline(3, "set", false, ());
        o.local(4, "get2", ());
        assert_eq!(o.len(), 4);
        assert!(o.pop_answerable().is_none());
        assert!(o.next_released().is_none());
        assert!(!o.front_is_local(), "a write is at the front");
        assert_eq!(o.mark_done(frame(1), false), MarkDone::Stored);
        assert_eq!(o.pop_answerable().map(|s| xid_of(&s)), Some(1));
        assert!(o.front_is_local(), "the read is at the front now");
        assert_eq!(o.pop_answerable().map(|s| xid_of(&s)), Some(2));
        assert!(!o.front_is_local());
        let r = o.next_released().expect("set released after the read");
        assert_eq!((r.xid, r.kind), (3, "set"));
        o.push_pipeline(3, false, ());
        // the held read behind it was admitted behind the write
        assert!(o.next_released().is_none());
        assert!(o.pop_answerable().is_none());
        assert_eq!(o.mark_done(frame(3), false), MarkDone::Stored);
        let got: Vec<i32> = std::iter::from_fn(|| o.pop_answerable())
            .map(|s| xid_of(&s))
            .collect();
        assert_eq!(got, vec![3, 4]);
        assert!(o.is_empty());
        assert_eq!(o.mark_done(frame(9), false), MarkDone::NoneOutstanding);
    }

    #[test]
    fn out_of_order_reply_is_reported() {
        let mut o: ReplyOrder<&str, &str, ()> = ReplyOrder::new();
        o.push_pipeline(1, false, ());
        assert_eq!(
            o.mark_done(frame(2), false),
            MarkDone::OutOfOrder {
                expected: 1,
                got: Some(2)
            }
        );
    }

    #[test]
    fn the_fault_lets_a_read_overtake() {
        let mut o: ReplyOrder<&str, &str, ()> = ReplyOrder::new();
        o.set_fault_reads_overtake_writes(true);
        o.push_pipeline(1, false, ());
        o.local(2, "get", ());
        let s = o
            .pop_answerable()
            .expect("the fault answers the read first");
        assert_eq!(xid_of(&s), 2);
    }

    #[test]
    fn only_waiting_writes_may_be_answered_without_the_queue() {
        let mut o: ReplyOrder<&str, &str, ()> = ReplyOrder::new();
        let xids = |o: &ReplyOrder<&str, &str, ()>| {
            o.only_waiting_writes()
                .map(|x| x.map(|(xid, ())| xid).collect::<Vec<_>>())
        };
        assert_eq!(xids(&o), None, "nothing admitted");
        o.push_pipeline(1, false, ());
        o.push_pipeline(2, false, ());
        assert_eq!(xids(&o), Some(vec![1, 2]));
        // A reply already queued, a read, a closing request or a held request: no.
        assert_eq!(o.mark_done(frame(1), false), MarkDone::Stored);
        assert_eq!(xids(&o), None);
        assert!(o.pop_answerable().is_some());
        assert_eq!(xids(&o), Some(vec![2]));
        o.local(3, "get", ());
        assert_eq!(xids(&o), None);
        o.hold_pipeline(4, "set", false, ());
        assert_eq!(xids(&o), None);

        let mut o: ReplyOrder<&str, &str, ()> = ReplyOrder::new();
        o.push_pipeline(1, false, ());
        o.push_pipeline(2, true, ());
        assert_eq!(xids(&o), None, "closeSession waits for its task");
    }

    #[test]
    fn a_written_reply_leaves_the_front_only() {
        let mut o: ReplyOrder<&str, &str, u8> = ReplyOrder::new();
        o.push_pipeline(1, false, 10);
        o.push_pipeline(2, false, 20);
        assert_eq!(o.pop_written(), Some((1, 10)));
        assert_eq!(o.mark_done(frame(2), false), MarkDone::Stored);
        assert_eq!(o.pop_written(), None, "its reply is queued, not written");
        assert!(o.pop_answerable().is_some());
        o.local(3, "get", 30);
        assert_eq!(o.pop_written(), None, "a read is answered by the task");
        assert_eq!(o.len(), 1);
    }
}
