//! `QuorumPacket{int type; long zxid; buffer data; vector<Id> authinfo}`: the only record on
//! the quorum port (no length prefix), and the packet type codes.

use crate::jute::{DecodeError, Jute, Reader};
use crate::records::Id;
use bytes::Bytes;

/// Packet type codes (docs/QUORUM-PROTOCOL.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Request = 1,
    Proposal = 2,
    Ack = 3,
    Commit = 4,
    Ping = 5,
    Revalidate = 6,
    Sync = 7,
    Inform = 8,
    CommitAndActivate = 9,
    NewLeader = 10,
    FollowerInfo = 11,
    UpToDate = 12,
    Diff = 13,
    Trunc = 14,
    Snap = 15,
    ObserverInfo = 16,
    LeaderInfo = 17,
    AckEpoch = 18,
    InformAndActivate = 19,
}

impl PacketType {
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<PacketType> {
        use PacketType::*;
        Some(match code {
            1 => Request,
            2 => Proposal,
            3 => Ack,
            4 => Commit,
            5 => Ping,
            6 => Revalidate,
            7 => Sync,
            8 => Inform,
            9 => CommitAndActivate,
            10 => NewLeader,
            11 => FollowerInfo,
            12 => UpToDate,
            13 => Diff,
            14 => Trunc,
            15 => Snap,
            16 => ObserverInfo,
            17 => LeaderInfo,
            18 => AckEpoch,
            19 => InformAndActivate,
            _ => return None,
        })
    }
}

/// One leader <-> learner packet. `data`/`authinfo` are `None` when ZooKeeper writes null
/// (length `-1`), which is what it does for every packet without a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub ty: PacketType,
    pub zxid: i64,
    pub data: Option<Bytes>,
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    /// A packet with null data and null authinfo.
    pub fn new(ty: PacketType, zxid: i64) -> QuorumPacket {
        QuorumPacket {
            ty,
            zxid,
            data: None,
            authinfo: None,
        }
    }

    pub fn with_data(ty: PacketType, zxid: i64, data: impl Into<Bytes>) -> QuorumPacket {
        QuorumPacket {
            ty,
            zxid,
            data: Some(data.into()),
            authinfo: None,
        }
    }

    /// The data bytes; empty when null.
    pub fn data(&self) -> &[u8] {
        self.data.as_deref().unwrap_or(&[])
    }
}

impl Jute for QuorumPacket {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let code = i32::read(r)?;
        let ty = PacketType::from_code(code).ok_or(DecodeError::Unknown {
            what: "quorum packet type",
            value: code as i64,
        })?;
        let zxid = i64::read(r)?;
        let data = read_nullable(r, Bytes::read)?;
        let authinfo = read_nullable(r, Vec::<Id>::read)?;
        Ok(QuorumPacket {
            ty,
            zxid,
            data,
            authinfo,
        })
    }

    fn write(&self, w: &mut Vec<u8>) {
        self.ty.code().write(w);
        self.zxid.write(w);
        match &self.data {
            Some(d) => d.write(w),
            None => (-1i32).write(w),
        }
        match &self.authinfo {
            Some(a) => a.write(w),
            None => (-1i32).write(w),
        }
    }
}

/// Peeks the `int` length prefix: `-1` is null (`None`), anything else is decoded by `f`.
fn read_nullable<T>(
    r: &mut Reader<'_>,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    let mut peek = r.clone();
    if i32::read(&mut peek)? == -1 {
        *r = peek;
        return Ok(None);
    }
    f(r).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_is_null_data_null_authinfo() {
        let p = QuorumPacket::new(PacketType::Ack, 0x1_0000_0002);
        let b = p.to_bytes();
        assert_eq!(
            b,
            [
                0, 0, 0, 3, // type
                0, 0, 0, 1, 0, 0, 0, 2, // zxid
                0xff, 0xff, 0xff, 0xff, // data = null
                0xff, 0xff, 0xff, 0xff, // authinfo = null
            ]
        );
        assert_eq!(QuorumPacket::from_bytes(&b).unwrap(), p);
    }

    #[test]
    fn proposal_with_data_and_authinfo() {
        let p = QuorumPacket {
            ty: PacketType::Request,
            zxid: -1,
            data: Some(Bytes::from_static(b"ab")),
            authinfo: Some(vec![Id::new("ip", "1")]),
        };
        let b = p.to_bytes();
        let mut want = vec![0, 0, 0, 1];
        want.extend_from_slice(&[0xff; 8]);
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, b'i', b'p', 0, 0, 0, 1, b'1']);
        assert_eq!(b, want);
        assert_eq!(QuorumPacket::from_bytes(&b).unwrap(), p);
    }

    #[test]
    fn empty_data_is_not_null() {
        let p = QuorumPacket::with_data(PacketType::Ping, 7, Bytes::new());
        let b = p.to_bytes();
        assert_eq!(&b[12..16], &[0, 0, 0, 0]);
        assert_eq!(QuorumPacket::from_bytes(&b).unwrap(), p);
    }

    #[test]
    fn unknown_type_is_an_error() {
        let mut b = QuorumPacket::new(PacketType::Ack, 1).to_bytes();
        b[3] = 99;
        assert!(matches!(
            QuorumPacket::from_bytes(&b),
            Err(DecodeError::Unknown { .. })
        ));
    }

    #[test]
    fn all_codes_roundtrip() {
        for c in 1..=19 {
            let t = PacketType::from_code(c).unwrap();
            assert_eq!(t.code(), c);
        }
        assert!(PacketType::from_code(0).is_none());
        assert!(PacketType::from_code(20).is_none());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(b: Vec<u8>) {
            let _ = QuorumPacket::from_bytes(&b);
        }
    }
}
