//! Which peers this member cannot reach on their election port, and when a failed dial
//! is worth a warning.
//!
//! ZooKeeper's QuorumCnxManager logs "Cannot open channel to N at election address
//! host:port" at WARN on every failed attempt. rzk names the same things (peer id,
//! address, reason) but warns once when a peer becomes unreachable, again when the
//! reason changes, and otherwise at most once per [`REPEAT_WARNING_AFTER`] (with the
//! number of failed attempts in between); when the peer answers again it says so once.
//! The table also tells a LOOKING member's periodic report whom it cannot reach.
//!
//! Owns only this bookkeeping: never dials, never logs (the election workers do both).

use rzk_proto::ServerId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest silence about a peer that stays unreachable for the same reason.
pub const REPEAT_WARNING_AFTER: Duration = Duration::from_secs(60);

/// What to say about a failed dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFailure {
    /// Warn: the peer just became unreachable, or the reason changed.
    New,
    /// Warn again: still unreachable; `failed_since_warning` attempts failed silently
    /// since the last warning, `down_for` since the first failure.
    Repeat {
        failed_since_warning: u64,
        down_for: Duration,
    },
    /// Say nothing (warned recently for the same reason).
    Quiet,
}

/// A peer that could not be reached at its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownPeer {
    pub sid: ServerId,
    pub addr: SocketAddr,
    /// The last dial error.
    pub reason: String,
    /// Since the first failure of this outage.
    pub down_for: Duration,
}

#[derive(Debug)]
struct Outage {
    addr: SocketAddr,
    since: Instant,
    reason: String,
    last_warned: Instant,
    failed_since_warning: u64,
}

/// The election workers' shared table of unreachable peers (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Reachability {
    down: Arc<Mutex<BTreeMap<ServerId, Outage>>>,
}

impl Reachability {
    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<ServerId, Outage>> {
        self.down.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a failed dial of `sid` at `addr` and says whether to warn.
    pub fn dial_failed(
        &self,
        sid: ServerId,
        addr: SocketAddr,
        reason: &str,
        now: Instant,
    ) -> DialFailure {
        let mut t = self.table();
        let Some(o) = t.get_mut(&sid) else {
            t.insert(
                sid,
                Outage {
                    addr,
                    since: now,
                    reason: reason.to_owned(),
                    last_warned: now,
                    failed_since_warning: 0,
                },
            );
            return DialFailure::New;
        };
        if o.reason != reason || o.addr != addr {
            o.reason = reason.to_owned();
            o.addr = addr;
            o.last_warned = now;
            o.failed_since_warning = 0;
            return DialFailure::New;
        }
        if now.saturating_duration_since(o.last_warned) >= REPEAT_WARNING_AFTER {
            let r = DialFailure::Repeat {
                failed_since_warning: o.failed_since_warning,
                down_for: now.saturating_duration_since(o.since),
            };
            o.last_warned = now;
            o.failed_since_warning = 0;
            return r;
        }
        o.failed_since_warning += 1;
        DialFailure::Quiet
    }

    /// Records that `sid` was reached (we dialled it, or it dialled us). Returns how long
    /// it had been unreachable, if it was.
    pub fn reached(&self, sid: ServerId, now: Instant) -> Option<Duration> {
        self.table()
            .remove(&sid)
            .map(|o| now.saturating_duration_since(o.since))
    }

    /// Forgets `sid`'s outage, if any (its worker ended: a server outside the membership
    /// that is no longer dialled).
    pub fn forget(&self, sid: ServerId) {
        self.table().remove(&sid);
    }

    /// The peers unreachable at their last attempt, by id.
    pub fn down(&self, now: Instant) -> Vec<DownPeer> {
        self.table()
            .iter()
            .map(|(sid, o)| DownPeer {
                sid: *sid,
                addr: o.addr,
                reason: o.reason.clone(),
                down_for: now.saturating_duration_since(o.since),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn warns_once_then_at_most_once_a_minute() {
        let r = Reachability::default();
        let t0 = Instant::now();
        let peer = ServerId(2);
        assert_eq!(
            r.dial_failed(peer, addr(1), "refused", t0),
            DialFailure::New
        );
        let mut warnings = 0;
        // A dial every 200 ms for 59.8 s: no further warning.
        for i in 1..300u64 {
            let now = t0 + Duration::from_millis(200 * i);
            if r.dial_failed(peer, addr(1), "refused", now) != DialFailure::Quiet {
                warnings += 1;
            }
        }
        assert_eq!(warnings, 0);
        assert_eq!(
            r.dial_failed(peer, addr(1), "refused", t0 + Duration::from_secs(60)),
            DialFailure::Repeat {
                failed_since_warning: 299,
                down_for: Duration::from_secs(60)
            }
        );
        assert_eq!(
            r.dial_failed(peer, addr(1), "refused", t0 + Duration::from_secs(61)),
            DialFailure::Quiet
        );
    }

    #[test]
    fn a_new_reason_is_warned_at_once() {
        let r = Reachability::default();
        let t0 = Instant::now();
        let peer = ServerId(3);
        assert_eq!(
            r.dial_failed(peer, addr(1), "refused", t0),
            DialFailure::New
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            r.dial_failed(peer, addr(1), "timed out", t1),
            DialFailure::New
        );
        assert_eq!(
            r.dial_failed(peer, addr(1), "timed out", t1),
            DialFailure::Quiet
        );
    }

    #[test]
    fn peers_are_tracked_separately_and_recover() {
        let r = Reachability::default();
        let t0 = Instant::now();
        assert_eq!(
            r.dial_failed(ServerId(2), addr(2), "refused", t0),
            DialFailure::New
        );
        assert_eq!(
            r.dial_failed(ServerId(3), addr(3), "refused", t0),
            DialFailure::New
        );
        let down = r.down(t0 + Duration::from_secs(5));
        assert_eq!(down.len(), 2);
        assert_eq!(down[0].sid, ServerId(2));
        assert_eq!(down[1].addr, addr(3));
        assert_eq!(down[1].down_for, Duration::from_secs(5));
        assert_eq!(
            r.reached(ServerId(2), t0 + Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(r.reached(ServerId(2), t0), None);
        assert_eq!(r.down(t0).len(), 1);
        // Unreachable again later: a new outage, warned at once.
        let t9 = t0 + Duration::from_secs(9);
        assert_eq!(
            r.dial_failed(ServerId(2), addr(2), "refused", t9),
            DialFailure::New
        );
    }
}
