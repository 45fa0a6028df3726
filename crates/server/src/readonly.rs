//! Read-only mode (`readonlymode.enabled`), ZooKeeper's `ReadOnlyZooKeeperServer`.
//!
//! An ensemble member that has been LOOKING for a grace period (`max(2000 ms, tickTime)`,
//! as `QuorumPeer`'s LOOKING case waits before starting its read-only server) decides it
//! is cut off from its quorum and serves clients that announced `canBeReadOnly` in their
//! ConnectRequest:
//!
//! * the ConnectResponse carries `readOnly = true`; a client without the flag is refused
//!   (the connection is closed without an answer, ZooKeeper's "Refusing session request
//!   for not-read-only client");
//! * its sessions are local to this member (never a createSession txn, ids from the same
//!   generator as global ones, expiry decided here), kept in `Shared::local_sessions`; a
//!   global session re-attaching is refused (closed without an answer);
//! * reads, watches, pings and auth are answered from the local tree; every write, `sync`
//!   and `reconfig` is answered with NOTREADONLY (-119) and the tree's last zxid
//!   (`ReadOnlyRequestProcessor`);
//! * `isro` answers `ro`, `srvr`/`stat`/`mntr` say `read-only`, the AdminServer's
//!   `is_read_only` is true.
//!
//! When the election ends (a leader is found) read-only mode ends at once: every client
//! connection is closed (ZooKeeper's `closeAllConnections`) and the local read-only
//! sessions are forgotten; clients reconnect and get a fresh read-write session.
//!
//! Owns only the decision when to enter and leave the mode and the local expiry while in
//! it; the connection side (`net/conn.rs`) asks [`crate::node::QuorumStatus::is_read_only`].
//! A standalone server (an ensemble of one) is never read-only, as in ZooKeeper.

use crate::node::shared::Shared;
use crate::zab::Role;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lower bound of the grace period a member waits in LOOKING before it serves read-only
/// clients (ZooKeeper: `Math.max(2000, tickTime)` ms).
pub const MIN_GRACE: Duration = Duration::from_millis(2000);

/// The grace period for a server with tick `tick_ms`: `max(2000 ms, tickTime)`.
pub fn grace(tick_ms: u32) -> Duration {
    MIN_GRACE.max(Duration::from_millis(u64::from(tick_ms)))
}

/// The read-only mode's clock: since when the member has been LOOKING.
#[derive(Debug, Default)]
pub struct ReadOnlyState {
    looking_since: Mutex<Option<Instant>>,
}

impl ReadOnlyState {
    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.looking_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The driver's role changed to `role` (`node/driver.rs` `on_role`). Entering LOOKING
/// starts the grace period; leaving it ends read-only mode (connections closed, local
/// sessions forgotten). Any role change forgets the local sessions of the previous role:
/// ZooKeeper starts a new server object, with a new session tracker, for each role.
pub fn on_role(shared: &Shared, role: Role, now: Instant) {
    let was_read_only = shared.quorum.is_read_only();
    if was_read_only {
        shared.quorum.set_read_only(false);
        let n = shared.clients.close_all("read-only mode ended");
        tracing::info!(
            clients = n,
            ?role,
            "leaving read-only mode: the election ended; read-only connections closed"
        );
    }
    *shared.read_only_state().since() = (role == Role::Looking).then_some(now);
    let dropped = shared.local_sessions().clear();
    if dropped > 0 {
        tracing::info!(
            sessions = dropped,
            "local sessions of the previous role forgotten"
        );
    }
}

/// The driver's tick (`node/driver.rs` `on_tick`): expires local sessions (read-only
/// mode, or `localSessionsEnabled` while serving) and closes their connections; enters
/// read-only mode once the grace period has passed in LOOKING (only with
/// `readonlymode.enabled` in an ensemble).
pub fn on_tick(shared: &Shared, now: Instant) {
    let cfg = &shared.config;
    let read_only = shared.quorum.is_read_only();
    if read_only || (cfg.local_sessions_enabled && shared.quorum.is_serving()) {
        expire_local(shared);
    }
    if read_only || !cfg.read_only_mode_enabled || !shared.quorum.is_distributed() {
        return;
    }
    let since = *shared.read_only_state().since();
    let Some(since) = since else { return };
    if shared.quorum.role() != Role::Looking
        || now.saturating_duration_since(since) < grace(cfg.tick_time_ms)
    {
        return;
    }
    shared.quorum.set_read_only(true);
    // ZooKeeper serves read-only clients from a new ReadOnlyZooKeeperServer.
    shared.stats.new_role();
    tracing::info!(
        "read-only mode: no quorum after {:?} LOOKING; serving read-only clients",
        grace(cfg.tick_time_ms)
    );
}

/// Expires the local sessions whose time has come and closes their connections
/// (ZooKeeper's `LocalSessionTracker` expiry closes the session on this server only).
pub fn expire_local(shared: &Shared) {
    let expired = {
        let now = shared.now_ms();
        let mut local = shared.local_sessions();
        let ids = local.take_expired(now);
        for id in &ids {
            local.remove(*id);
        }
        ids
    };
    for sid in expired {
        tracing::info!("expiring local session 0x{sid:x}");
        crate::metrics::metrics().stale_sessions_expired.inc();
        if let Some(conn) = shared.clients.conn_of_session(sid) {
            shared.clients.send_to(
                conn,
                crate::node::clients::ConnMsg::Close("local session expired"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::{jvm_flag_properties, Config};

    #[test]
    fn keys_as_zookeeper_reads_them() {
        // The operator's way: -Dreadonlymode.enabled=true in SERVER_JVMFLAGS.
        let sys = jvm_flag_properties("-Xmx1g -Dreadonlymode.enabled=true");
        let c =
            Config::from_properties_with("dataDir=/tmp/rzk-ro\nlocalSessionsEnabled=true\n", &sys)
                .expect("config");
        assert!(c.read_only_mode_enabled);
        assert!(c.local_sessions_enabled);
        assert!(!c.local_sessions_upgrading_enabled);
        // Boolean.getBoolean: only "true" (any case) is true, anything else false.
        for (v, want) in [("TRUE", true), ("yes", false), ("1", false)] {
            let c = Config::from_properties_with(
                &format!("dataDir=/tmp/rzk-ro\nreadonlymode.enabled={v}\n"),
                &[],
            )
            .expect("config");
            assert_eq!(c.read_only_mode_enabled, want, "{v}");
        }
        // QuorumPeerConfig.parseBoolean refuses anything but true/false.
        assert!(Config::from_properties_with(
            "dataDir=/tmp/rzk-ro\nlocalSessionsUpgradingEnabled=yes\n",
            &[]
        )
        .is_err());
    }

    #[test]
    fn grace_is_two_seconds_or_one_tick() {
        assert_eq!(grace(2000), Duration::from_millis(2000));
        assert_eq!(grace(500), Duration::from_millis(2000));
        assert_eq!(grace(3000), Duration::from_millis(3000));
    }
}
