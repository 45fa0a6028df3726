//! Newtypes for the identifiers that must never be mixed up.

/// A transaction id: `epoch << 32 | counter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);
    /// The largest epoch a zxid can carry and stay positive (ZooKeeper's zxids are a
    /// signed `long`: epoch 0x80000000 would make every zxid of it negative, below all
    /// earlier ones).
    pub const MAX_EPOCH: u32 = i32::MAX as u32;

    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    /// The zxid after this one. Wraps at `i64::MAX` as Java's `long` does (a snapshot
    /// file may be named `snapshot.7fffffffffffffff`; ZooKeeper reads the log after it
    /// from the wrapped zxid), instead of panicking in a debug build.
    pub fn next(self) -> Zxid {
        Zxid(self.0.wrapping_add(1))
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A session id: server id in the top byte on the server that created it.
///
/// Wire and file records (`ConnectRequest::session_id`, `TxnHeader::client_id`,
/// `Stat::ephemeral_owner`, snapshot session tables, quorum payloads) keep the bare `i64`
/// of the format; convert where they are decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

impl SessionId {
    /// No session (ZooKeeper's 0): a connection before its handshake, a `ConnectRequest`
    /// asking for a new session, the server's own writes (container reaper). Never handed
    /// out as a session.
    pub const NONE: SessionId = SessionId(0);
}

impl std::fmt::Display for SessionId {
    /// `0x` and hex, as in ZooKeeper's logs and four-letter words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// Bare hex digits (`{:x}`), for formats that write their own `0x`.
impl std::fmt::LowerHex for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// A server id: the `N` of a `server.N` line, the contents of `dataDir/myid`, and the
/// `sid` of the election and quorum protocols (ZooKeeper's `long`). Votes order servers
/// by it (the higher id wins a tie), so it is `Ord`.
///
/// Wire records (`Notification::leader`, `LearnerInfo::server_id`,
/// `InitialMessage::sid`) keep the bare `i64` of the format; convert where they are
/// decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub i64);

impl ServerId {
    /// ZooKeeper's "no server" (`Long.MIN_VALUE`): the leader an observer votes for.
    pub const NONE: ServerId = ServerId(i64::MIN);
}

impl std::fmt::Display for ServerId {
    /// Decimal, as in `server.N` and ZooKeeper's logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A `server.N` / `myid` number from the configuration; fails above `i64::MAX`.
impl TryFrom<u64> for ServerId {
    type Error = std::num::TryFromIntError;
    fn try_from(id: u64) -> Result<ServerId, Self::Error> {
        i64::try_from(id).map(ServerId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn zxid_parts() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.0, 0x3_0000_0007);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
        assert_eq!(z.to_string(), "0x300000007");
    }

    /// Java's `zxid + 1` wraps; so does [`Zxid::next`] (a snapshot named
    /// `snapshot.7fffffffffffffff` panicked a debug build at start-up).
    #[test]
    fn zxid_next_wraps_as_java() {
        assert_eq!(Zxid::new(3, 7).next(), Zxid::new(3, 8));
        assert_eq!(Zxid(i64::MAX).next(), Zxid(i64::MIN));
    }

    #[test]
    fn session_id_formats() {
        let s = SessionId(0x0100_0a1b_2c3d_0000);
        assert_eq!(s.to_string(), "0x1000a1b2c3d0000");
        assert_eq!(format!("0x{s:x}"), s.to_string());
        // Server ids from 0x80 up make negative ids: hex of the two's complement.
        assert_eq!(format!("{:x}", SessionId(i64::MIN + 1)), "8000000000000001");
        assert_eq!(SessionId::default(), SessionId::NONE);
    }

    #[test]
    fn server_id_display_order_and_config_range() {
        assert_eq!(ServerId(3).to_string(), "3");
        assert!(ServerId(2) > ServerId(1) && ServerId::NONE < ServerId(0));
        assert_eq!(ServerId::try_from(7u64), Ok(ServerId(7)));
        assert!(ServerId::try_from(u64::MAX).is_err());
    }
}
