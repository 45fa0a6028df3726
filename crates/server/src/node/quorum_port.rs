//! The quorum port (the second port of a `server.N` line), listened on only while this
//! server leads or, as a voter, looks for a leader.
//!
//! ZooKeeper 3.8 binds it in the `Leader` constructor and closes it in `Leader.shutdown`:
//! a follower or observer has no quorum listener, and a port that cannot be bound stops
//! the leadership, not the server. [`QuorumPort`] serves the driver
//! (`Driver::set_quorum_port`), which also listens while LOOKING (a learner that ends
//! the election first is then held, not refused). It keeps the addresses learners may
//! dial (this server's at start-up, and each new one a reconfig gave it, since learners
//! of the old membership still dial the old one) until no membership names them any more
//! ([`QuorumPort::retain`]: ZooKeeper's leader binds only the address of the membership
//! in force), and, while open, one accepting task per address. A task binds its address
//! itself, retrying while an earlier listener is being closed, so the driver never waits
//! for a socket; learners that dial before it is bound retry (`net/peer/learner_net.rs` `connect`, ZooKeeper's
//! `leaderConnectDelayDuringRetryMs`).

use crate::net::peer::learner_net;
use crate::net::peer::quorum_sasl::QuorumSasl;
use crate::node::Event;
use crate::tls::QuorumTls;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// How long an accepting task tries to bind its address quietly (an earlier listener
/// may still be closing); after that it logs an error once and keeps trying every
/// [`BIND_SLOWLY`] while open: learners cannot reach this server there meanwhile (a
/// leader's term then ends at its init limit), and it listens as soon as the port is
/// free (ZooKeeper binds again at each leadership; a break-it review in session 51
/// found a task that gave up for good, leaving a two-member quorum without a leader).
const BIND_FOR: Duration = Duration::from_secs(2);
/// The pause between two bind attempts, at first.
const BIND_EVERY: Duration = Duration::from_millis(20);
/// The pause between two bind attempts once [`BIND_FOR`] has passed.
const BIND_SLOWLY: Duration = Duration::from_millis(500);

/// The quorum addresses and, while open, their accepting tasks.
#[derive(Debug)]
pub(crate) struct QuorumPort {
    /// Addresses learners may dial, in the order they were added; empty for an ensemble
    /// of one (no peer ports at all).
    addrs: Vec<SocketAddr>,
    /// While open: the accepting task of each address.
    accepting: Vec<(SocketAddr, AbortHandle)>,
    rt: Handle,
    events: mpsc::UnboundedSender<Event>,
    /// Deadline for a learner's first packet (initLimit x tickTime).
    first_packet_timeout: Duration,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
}

impl QuorumPort {
    /// The quorum port of a member whose start-up address is `addr` (`None` for an
    /// ensemble of one, which never listens). Nothing is bound until [`QuorumPort::open`].
    pub(crate) fn new(
        addr: Option<SocketAddr>,
        rt: Handle,
        events: mpsc::UnboundedSender<Event>,
        first_packet_timeout: Duration,
        tls: Option<Arc<QuorumTls>>,
        sasl: Option<Arc<QuorumSasl>>,
    ) -> QuorumPort {
        QuorumPort {
            addrs: addr.into_iter().collect(),
            accepting: Vec::new(),
            rt,
            events,
            first_packet_timeout,
            tls,
            sasl,
        }
    }

    /// The addresses learners may dial (listened on only while open).
    pub(crate) fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Whether the accepting tasks run.
    pub(crate) fn is_open(&self) -> bool {
        !self.accepting.is_empty()
    }

    /// Accept learners on every address (those already accepting are left as they are).
    pub(crate) fn open(&mut self) {
        for addr in self.addrs.clone() {
            self.open_one(addr);
        }
    }

    /// Every accepting task ends and its listener closes (a follower or observer).
    /// Links already accepted are the driver's to close.
    pub(crate) fn close(&mut self) {
        for (_, task) in self.accepting.drain(..) {
            task.abort();
        }
    }

    /// A membership moved this server's quorum address to `addr`: learners of it dial
    /// `addr` from now on (those of the old one still dial the old address). Accepted
    /// at once while open. Returns false when `addr` was known already or this is an
    /// ensemble of one.
    pub(crate) fn add(&mut self, addr: SocketAddr) -> bool {
        if self.addrs.is_empty() || self.addrs.contains(&addr) {
            return false;
        }
        self.addrs.push(addr);
        if self.is_open() {
            self.open_one(addr);
        }
        true
    }

    /// Keeps only the addresses in `named` (this server's in the membership in force and
    /// in a newer proposed one): an address no membership names any more is forgotten
    /// and, while open, its listener closes (links accepted on it stay). Keeps every
    /// address when none is named (a membership without this server, or an ensemble of
    /// one). Returns the addresses forgotten.
    pub(crate) fn retain(&mut self, named: &[SocketAddr]) -> Vec<SocketAddr> {
        if !self.addrs.iter().any(|a| named.contains(a)) {
            return Vec::new();
        }
        let (kept, gone): (Vec<_>, Vec<_>) = self.addrs.iter().partition(|a| named.contains(a));
        self.addrs = kept;
        self.accepting.retain(|(a, task)| {
            let keep = named.contains(a);
            if !keep {
                task.abort();
            }
            keep
        });
        debug_assert!(!self.addrs.is_empty());
        debug_assert!(self.accepting.iter().all(|(a, _)| self.addrs.contains(a)));
        gone
    }

    fn open_one(&mut self, addr: SocketAddr) {
        if self.accepting.iter().any(|(a, _)| *a == addr) {
            return;
        }
        let events = self.events.clone();
        let timeout = self.first_packet_timeout;
        let (tls, sasl) = (self.tls.clone(), self.sasl.clone());
        let task = self.rt.spawn(async move {
            let listener = bind_retrying(addr).await;
            tracing::info!(%addr, "accepting learners on my quorum address");
            learner_net::accept_loop(listener, events, timeout, tls, sasl).await;
        });
        self.accepting.push((addr, task.abort_handle()));
        debug_assert!(self.accepting.len() <= self.addrs.len());
    }
}

/// Binds `addr`, retrying until it is free (the task is aborted when the port closes);
/// an error is logged once after [`BIND_FOR`].
async fn bind_retrying(addr: SocketAddr) -> tokio::net::TcpListener {
    let started = tokio::time::Instant::now();
    let mut said = false;
    loop {
        match crate::net::bind(addr, 0) {
            Ok(l) => {
                if said {
                    tracing::info!(%addr, "my quorum address is free again");
                }
                return l;
            }
            Err(e) if started.elapsed() < BIND_FOR => {
                tracing::debug!(%addr, "quorum address not free yet: {e}");
                tokio::time::sleep(BIND_EVERY).await;
            }
            Err(e) => {
                if !said {
                    said = true;
                    tracing::error!(%addr,
                        "cannot listen on my quorum address; learners cannot reach me there until it is free: {e}");
                }
                tokio::time::sleep(BIND_SLOWLY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(addr: Option<SocketAddr>) -> QuorumPort {
        let (tx, _rx) = mpsc::unbounded_channel();
        QuorumPort::new(
            addr,
            Handle::current(),
            tx,
            Duration::from_secs(1),
            None,
            None,
        )
    }

    fn free_addr() -> SocketAddr {
        let [a] = crate::node::free_addrs();
        a
    }

    async fn listening(addr: SocketAddr) -> bool {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    }

    async fn wait_for(addr: SocketAddr, want: bool) {
        for _ in 0..200 {
            if listening(addr).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{addr}: listening should be {want}");
    }

    /// Bound only while open; opened again, it binds again.
    #[tokio::test]
    async fn the_quorum_port_listens_only_while_open() {
        let addr = free_addr();
        let mut q = port(Some(addr));
        assert!(!listening(addr).await, "bound before it was opened");
        q.open();
        assert!(q.is_open());
        wait_for(addr, true).await;
        q.close();
        assert!(!q.is_open());
        wait_for(addr, false).await;
        q.open();
        wait_for(addr, true).await;
        q.close();
        wait_for(addr, false).await;
    }

    /// A moved address is accepted on at once while open, and the old one stays for
    /// learners of the old membership; closed, nothing is bound.
    #[tokio::test]
    async fn a_moved_quorum_address_is_listened_on_while_open() {
        let [old, new, later] = crate::node::free_addrs();
        let mut q = port(Some(old));
        q.open();
        assert!(q.add(new));
        assert!(!q.add(new), "an address is added once");
        wait_for(old, true).await;
        wait_for(new, true).await;
        q.close();
        assert!(q.add(later));
        wait_for(old, false).await;
        wait_for(new, false).await;
        assert!(!listening(later).await);
        assert_eq!(q.addrs(), &[old, new, later]);
    }

    /// Addresses a reconfig moved away from are forgotten once no membership names
    /// them: moved A -> B -> C -> A, the port listens on A alone and B and C are free
    /// (review: every address this server ever had was kept and, while open,
    /// listened on, for as long as it ran).
    #[tokio::test]
    async fn addresses_no_membership_names_are_dropped() {
        let [a, b, c] = crate::node::free_addrs();
        let mut q = port(Some(a));
        q.open();
        assert!(q.add(b));
        assert_eq!(q.retain(&[b]), vec![a]);
        assert!(q.add(c));
        // A proposed membership still names b: it stays until that one is gone.
        assert!(q.retain(&[c, b]).is_empty());
        assert_eq!(q.addrs(), &[b, c]);
        assert!(q.add(a));
        assert_eq!(q.retain(&[a]), vec![b, c]);
        assert_eq!(q.addrs(), &[a]);
        wait_for(a, true).await;
        wait_for(b, false).await;
        wait_for(c, false).await;
        // A membership without this server names none of its addresses: all stay.
        assert!(q.retain(&[]).is_empty());
        assert_eq!(q.addrs(), &[a]);
        q.close();
        wait_for(a, false).await;
    }

    /// A port held by another process is listened on once it is free, however long
    /// that takes (the accepting task keeps trying while open).
    #[tokio::test]
    async fn a_held_quorum_port_is_listened_on_once_free() {
        let addr = free_addr();
        let holder = std::net::TcpListener::bind(addr).unwrap();
        let mut q = port(Some(addr));
        q.open();
        tokio::time::sleep(BIND_FOR + BIND_SLOWLY).await;
        drop(holder);
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                q.close();
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{addr} never listened on after it was freed");
    }

    /// An ensemble of one has no quorum port, whatever happens.
    #[tokio::test]
    async fn an_ensemble_of_one_never_listens() {
        let mut q = port(None);
        q.open();
        assert!(!q.is_open());
        assert!(!q.add(free_addr()));
    }
}
