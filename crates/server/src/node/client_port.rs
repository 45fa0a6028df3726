//! The plaintext client port's listener, which a reconfig may move.
//!
//! ZooKeeper 3.8's `QuorumPeer.processReconfig` compares this server's client address in
//! the new membership (the `;[host:]port` part of its `server.N` line) with the one its
//! connection factory listens on and, when they differ, calls
//! `ServerCnxnFactory.reconfigure`: the old listener is closed, the new address bound, and
//! the connections already accepted stay open. [`ClientPort::want`] and
//! [`ClientPort::settle`] do the same: the driver records the address each membership
//! put in force gives this server (the latest wins) and the connection runtime moves the
//! listener there, also when that membership came before the listener was started (a
//! restarted member learning a newer membership from its first election notification).
//! The TLS port (`secureClientPort`) is not part of the membership and never moves.

use super::shared::Shared;
use crate::net::{accept_loop, bind, PortKind};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The listener of `clientPort` (plain or port-unified), once the server started it.
#[derive(Debug, Default)]
pub struct ClientPort {
    current: Mutex<Option<Listening>>,
    /// The client address of the latest membership put in force, if it named one.
    wanted: Mutex<Option<SocketAddr>>,
    /// Serialises moves (each awaits the old listener's close).
    moving: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Listening {
    /// The bound address (its port is the real one when 0 was configured).
    addr: SocketAddr,
    kind: PortKind,
    accepting: Option<JoinHandle<()>>,
}

impl ClientPort {
    fn lock(&self) -> MutexGuard<'_, Option<Listening>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts accepting on `listener` (the server's start-up); returns its bound address.
    /// Must run inside the connection runtime.
    pub(crate) fn start(
        &self,
        shared: &Arc<Shared>,
        listener: TcpListener,
        kind: PortKind,
    ) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let accepting = tokio::spawn(accept_loop(shared.clone(), listener, kind.clone()));
        *self.lock() = Some(Listening {
            addr,
            kind,
            accepting: Some(accepting),
        });
        Ok(addr)
    }

    /// The address the client port listens on now; `None` on a server without a
    /// plaintext client port (TLS only) or before start-up.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.lock().as_ref().map(|l| l.addr)
    }

    /// Records `addr` as the client address the membership in force gives this server;
    /// [`ClientPort::settle`] moves the listener there. Called in membership order, so the
    /// latest call wins however the settling tasks interleave.
    pub(crate) fn want(&self, addr: SocketAddr) {
        *self.wanted.lock().unwrap_or_else(PoisonError::into_inner) = Some(addr);
    }

    /// Moves the listener to the address last [wanted](ClientPort::want), if it listens
    /// elsewhere; nothing before the listener is started (the
    /// server settles it right after starting it) or on a server without a plaintext
    /// port. Returns `(old, new)` when it moved.
    pub(crate) async fn settle(
        &self,
        shared: &Arc<Shared>,
    ) -> std::io::Result<Option<(SocketAddr, SocketAddr)>> {
        let _one_at_a_time = self.moving.lock().await;
        let wanted = *self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(addr) = wanted else {
            return Ok(None);
        };
        Ok(self.move_locked(shared, addr).await?.map(|old| (old, addr)))
    }

    /// Moves the listener to `addr` (with `moving` held):
    /// binds it and accepts there, and closes the old listener. When `addr` is the same
    /// port on another address of this host, which cannot be bound beside the old one,
    /// the old one is closed first, as ZooKeeper's `reconfigure` does, and bound again if
    /// `addr` still fails. Connections already accepted are not touched. Returns the
    /// address left, or `None` when nothing moved (the same address, or no plaintext
    /// port). Errors: `addr` could not be bound (logged by the caller; the server then
    /// still listens on the old address, or on none if that could not be bound again).
    async fn move_locked(
        &self,
        shared: &Arc<Shared>,
        addr: SocketAddr,
    ) -> std::io::Result<Option<SocketAddr>> {
        let Some((old, kind)) = self.lock().as_ref().map(|l| (l.addr, l.kind.clone())) else {
            return Ok(None);
        };
        if old == addr {
            return Ok(None);
        }
        let backlog = shared.config.client_port_listen_backlog;
        let listener = match bind(addr, backlog) {
            Ok(l) => l,
            // The same port on another address of this host (say, from 127.0.0.1 to
            // the wildcard): only free once the old listener is closed.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() == old.port() => {
                end(self.take_accepting()).await;
                match bind(addr, backlog) {
                    Ok(l) => l,
                    Err(e) => {
                        self.restore(shared, old, kind)?;
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        let previous = self.take_accepting();
        self.start(shared, listener, kind)?;
        end(previous).await;
        debug_assert_ne!(self.local_addr(), Some(old));
        Ok(Some(old))
    }

    /// Listens on `old` again after a move that closed it failed: there if it is still
    /// free, else on no address.
    fn restore(
        &self,
        shared: &Arc<Shared>,
        old: SocketAddr,
        kind: PortKind,
    ) -> std::io::Result<()> {
        match bind(old, shared.config.client_port_listen_backlog) {
            Ok(back) => {
                self.start(shared, back, kind)?;
            }
            Err(_) => *self.lock() = None,
        }
        Ok(())
    }

    /// The accepting task, taken out of the state (the caller ends it).
    fn take_accepting(&self) -> Option<JoinHandle<()>> {
        self.lock().as_mut().and_then(|l| l.accepting.take())
    }

    /// Stops accepting (shutdown, or a server abandoned as crashed); the listener closes
    /// once the runtime drops the task.
    pub(crate) fn stop(&self) {
        if let Some(task) = self.lock().as_ref().and_then(|l| l.accepting.as_ref()) {
            task.abort();
        }
    }
}

/// [`ClientPort::settle`], logged: where the client port moved (`why`: what gave the
/// address), or why it could not.
pub(crate) async fn settle(shared: &Arc<Shared>, why: &str) {
    match shared.client_port.settle(shared).await {
        Ok(Some((old, addr))) => {
            tracing::info!(%addr, %old, "my client address moved with {why}; listening on it")
        }
        Ok(None) => {}
        Err(e) => tracing::error!("cannot listen on my new client address ({why}): {e}"),
    }
}

/// Stops an accepting task and waits until its listener is closed.
async fn end(task: Option<JoinHandle<()>>) {
    if let Some(task) = task {
        task.abort();
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::tree::DataTree;
    use std::net::{IpAddr, Ipv4Addr};

    fn shared() -> Arc<Shared> {
        let (jobs, _) = tokio::sync::mpsc::channel(1);
        let (shared, _writer) = Shared::new(Config::default(), DataTree::new(), jobs);
        Arc::new(shared)
    }

    async fn move_to(
        shared: &Arc<Shared>,
        to: SocketAddr,
    ) -> std::io::Result<Option<(SocketAddr, SocketAddr)>> {
        shared.client_port.want(to);
        shared.client_port.settle(shared).await
    }

    /// Starts the client port of `shared` on a free port of 127.0.0.1.
    fn start(shared: &Arc<Shared>) -> SocketAddr {
        let l = bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        shared
            .client_port
            .start(shared, l, PortKind::Plain)
            .unwrap()
    }

    fn listening() -> (Arc<Shared>, SocketAddr) {
        let shared = shared();
        let first = start(&shared);
        (shared, first)
    }

    fn free_port() -> SocketAddr {
        let [a] = crate::node::free_addrs();
        a
    }

    #[tokio::test]
    async fn an_address_wanted_before_the_listener_started_is_moved_to_once_it_has() {
        // A restarted member learns a newer membership from its first notifications,
        // before the server has started accepting on the port of its old files.
        let shared = shared();
        let to = free_port();
        shared.client_port.want(to);
        assert_eq!(shared.client_port.settle(&shared).await.unwrap(), None);
        let first = start(&shared);
        let moved = shared.client_port.settle(&shared).await.unwrap();
        assert_eq!(moved, Some((first, to)));
        assert!(refuses(first));
        shared.client_port.stop();
    }

    #[tokio::test]
    async fn the_latest_wanted_address_wins_however_the_settling_runs() {
        let (shared, first) = listening();
        let [a, b] = crate::node::free_addrs();
        shared.client_port.want(a);
        shared.client_port.want(b);
        // Two settling tasks, the first one spawned for `a`: both end on `b`.
        let (x, y) = tokio::join!(
            shared.client_port.settle(&shared),
            shared.client_port.settle(&shared)
        );
        assert_eq!(x.unwrap().or(y.unwrap()), Some((first, b)));
        assert_eq!(shared.client_port.local_addr(), Some(b));
        // Back to the first address, as a reconfig moving it back does.
        shared.client_port.want(first);
        assert_eq!(
            shared.client_port.settle(&shared).await.unwrap(),
            Some((b, first))
        );
        shared.client_port.stop();
    }

    fn refuses(a: SocketAddr) -> bool {
        std::net::TcpStream::connect(a).is_err()
    }

    #[tokio::test]
    async fn a_move_listens_on_the_new_address_and_closes_the_old_one() {
        let (shared, first) = listening();
        let to = free_port();
        let moved = move_to(&shared, to).await.unwrap();
        assert_eq!(moved, Some((first, to)));
        assert_eq!(shared.client_port.local_addr(), Some(to));
        assert!(std::net::TcpStream::connect(to).is_ok());
        assert!(refuses(first), "the old listener is closed");
        // The same address again: nothing moves.
        assert_eq!(move_to(&shared, to).await.unwrap(), None);
        shared.client_port.stop();
    }

    #[tokio::test]
    async fn the_same_port_on_another_address_closes_the_old_listener_first() {
        let (shared, first) = listening();
        // The wildcard address cannot be bound beside 127.0.0.1 on the same port.
        let wild = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), first.port());
        let moved = move_to(&shared, wild).await.unwrap();
        assert_eq!(moved, Some((first, wild)));
        assert_eq!(shared.client_port.local_addr(), Some(wild));
        assert!(
            std::net::TcpStream::connect(first).is_ok(),
            "the wildcard covers it"
        );
        shared.client_port.stop();
    }

    #[tokio::test]
    async fn an_address_that_cannot_be_bound_leaves_the_old_listener() {
        let (shared, first) = listening();
        // Held by another socket on its own address and port: EADDRINUSE, another port.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = taken.local_addr().unwrap();
        assert!(move_to(&shared, to).await.is_err());
        assert_eq!(shared.client_port.local_addr(), Some(first));
        assert!(std::net::TcpStream::connect(first).is_ok());
        shared.client_port.stop();
    }
}
