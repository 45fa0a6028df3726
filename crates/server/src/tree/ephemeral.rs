//! The `ephemeralOwner` encodings (docs/STORAGE.md §5): session, container marker,
//! TTL marker. Must never depend on anything but the owner value and the
//! extended-types switch.

use rzk_proto::SessionId;

/// Stored owner of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of a TTL owner.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// Bits 40-55: the extended feature (0 = TTL).
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
/// Largest TTL in ms (2^40 - 1).
pub const MAX_TTL_MS: i64 = (1 << 40) - 1;

/// What a stored owner means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// 0: persistent.
    Void,
    /// An ephemeral owned by a session.
    Session(SessionId),
    Container,
    /// A TTL node with its TTL in ms.
    Ttl(i64),
}

/// Classifies an owner as ZooKeeper does (`EphemeralType.get`); TTL owners are only
/// recognised when extended types are enabled.
pub fn kind(owner: i64, extended_types: bool) -> OwnerKind {
    if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK && owner & RESERVED_BITS_MASK == 0 {
        return OwnerKind::Ttl(owner & !(EXTENDED_MASK | RESERVED_BITS_MASK));
    }
    match owner {
        CONTAINER_OWNER => OwnerKind::Container,
        0 => OwnerKind::Void,
        s => OwnerKind::Session(SessionId(s)),
    }
}

/// The owner field reported to clients (`Stat::ephemeral_owner`): the session for
/// ephemerals, else 0.
pub fn client_owner(owner: i64, extended_types: bool) -> i64 {
    match kind(owner, extended_types) {
        OwnerKind::Session(s) => s.0,
        _ => 0,
    }
}

/// The stored owner of a TTL node, `None` if `ttl_ms` is out of range.
pub fn ttl_owner(ttl_ms: i64) -> Option<i64> {
    (1..=MAX_TTL_MS)
        .contains(&ttl_ms)
        .then_some(EXTENDED_MASK | ttl_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(kind(0, true), OwnerKind::Void);
        assert_eq!(kind(0x100, true), OwnerKind::Session(SessionId(0x100)));
        assert_eq!(kind(CONTAINER_OWNER, false), OwnerKind::Container);
        assert_eq!(kind(CONTAINER_OWNER, true), OwnerKind::Container);
        let t = ttl_owner(5000).unwrap_or_default();
        assert_eq!(t as u64, 0xff00_0000_0000_1388);
        assert_eq!(kind(t, true), OwnerKind::Ttl(5000));
        assert_eq!(kind(t, false), OwnerKind::Session(SessionId(t)));
        assert_eq!(client_owner(t, true), 0);
        assert_eq!(client_owner(CONTAINER_OWNER, true), 0);
        assert_eq!(client_owner(7, true), 7);
        assert_eq!(ttl_owner(0), None);
        assert_eq!(ttl_owner(MAX_TTL_MS + 1), None);
        assert!(ttl_owner(MAX_TTL_MS).is_some());
    }
}
