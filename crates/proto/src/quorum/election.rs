//! Election-port formats (docs/QUORUM-PROTOCOL.md §2-§3): the header a connecting peer
//! sends first, and the FastLeaderElection notification carried in each
//! `int length`-framed message. Both are raw big-endian `DataOutputStream` layouts.

use crate::jute::{DecodeError, Jute, Reader};

/// Protocol version of the initial message without multi-address (`-65536`).
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// Protocol version used when `multiAddress.enabled=true` (`-65535`).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Longest election address accepted in the initial message.
pub const MAX_ADDRESS_LEN: usize = 2048;
/// Longest election frame accepted (512 KiB).
pub const MAX_FRAME_LEN: usize = 524_288;
/// Notification format version we send.
pub const NOTIFICATION_VERSION: i32 = 2;
/// Shortest notification a receiver accepts.
pub const MIN_NOTIFICATION_LEN: usize = 28;

/// First bytes on an election connection. `protocol_version` is `None` for the legacy
/// header (a bare non-negative sid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub protocol_version: Option<i64>,
    pub sid: i64,
    /// `host:port` of the sender's election address(es) ("|"-joined under V2).
    pub address: String,
}

impl InitialMessage {
    pub fn new(sid: i64, address: &str) -> InitialMessage {
        InitialMessage {
            protocol_version: Some(PROTOCOL_VERSION_V1),
            sid,
            address: address.to_owned(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(20 + self.address.len());
        match self.protocol_version {
            Some(v) => {
                v.write(&mut w);
                self.sid.write(&mut w);
                (self.address.len() as i32).write(&mut w);
                w.extend_from_slice(self.address.as_bytes());
            }
            None => self.sid.write(&mut w),
        }
        w
    }

    /// Decodes a complete header (the runtime reads exactly these bytes from the stream:
    /// 8, or 20 + address length).
    pub fn decode(b: &[u8]) -> Result<InitialMessage, DecodeError> {
        let mut r = Reader::new(b);
        let first = i64::read(&mut r)?;
        if first >= 0 {
            return Ok(InitialMessage {
                protocol_version: None,
                sid: first,
                address: String::new(),
            });
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(DecodeError::Unknown {
                what: "election protocol version",
                value: first,
            });
        }
        let sid = i64::read(&mut r)?;
        let offset = r.position();
        let len = i32::read(&mut r)?;
        if len < 1 || len as usize > MAX_ADDRESS_LEN {
            return Err(DecodeError::BadLength {
                offset,
                len: len as i64,
                max: MAX_ADDRESS_LEN,
            });
        }
        let at = r.position();
        let a = r.take(len as usize)?;
        let address = std::str::from_utf8(a)
            .map_err(|_| DecodeError::BadUtf8 { offset: at })?
            .to_owned();
        Ok(InitialMessage {
            protocol_version: Some(first),
            sid,
            address,
        })
    }
}

/// A server's state as carried in notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_code(c: i32) -> Option<ServerState> {
        Some(match c {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }
}

/// A FastLeaderElection notification (the payload of one election frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    /// 0 for the legacy 28/40-byte forms.
    pub version: i32,
    /// Quorum config text (version >= 2 only); may be empty.
    pub config: String,
}

impl Notification {
    /// Encodes in the current (version 2) format: 44 bytes + config.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(44 + self.config.len());
        (self.state as i32).write(&mut w);
        self.leader.write(&mut w);
        self.zxid.write(&mut w);
        self.election_epoch.write(&mut w);
        self.peer_epoch.write(&mut w);
        NOTIFICATION_VERSION.write(&mut w);
        (self.config.len() as i32).write(&mut w);
        w.extend_from_slice(self.config.as_bytes());
        w
    }

    /// Decodes one frame payload, accepting every shape ZooKeeper's receiver accepts.
    pub fn decode(b: &[u8]) -> Result<Notification, DecodeError> {
        if b.len() < MIN_NOTIFICATION_LEN {
            return Err(DecodeError::Truncated {
                offset: b.len(),
                needed: MIN_NOTIFICATION_LEN - b.len(),
            });
        }
        let mut r = Reader::new(b);
        let code = i32::read(&mut r)?;
        let state = ServerState::from_code(code).ok_or(DecodeError::Unknown {
            what: "server state",
            value: code as i64,
        })?;
        let leader = i64::read(&mut r)?;
        let zxid = i64::read(&mut r)?;
        let election_epoch = i64::read(&mut r)?;
        let (peer_epoch, version) = if b.len() == 28 {
            (zxid >> 32, 0)
        } else {
            let pe = i64::read(&mut r)?;
            let v = if b.len() == 40 { 0 } else { i32::read(&mut r)? };
            (pe, v)
        };
        let mut config = String::new();
        if version > 1 {
            let offset = r.position();
            let len = i32::read(&mut r)?;
            if len < 0 || len as usize > r.remaining() {
                return Err(DecodeError::BadLength {
                    offset,
                    len: len as i64,
                    max: r.remaining(),
                });
            }
            let at = r.position();
            config = std::str::from_utf8(r.take(len as usize)?)
                .map_err(|_| DecodeError::BadUtf8 { offset: at })?
                .to_owned();
        }
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_message_v1_bytes() {
        let m = InitialMessage::new(2, "h:3888");
        let b = m.encode();
        let mut want = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 6]);
        want.extend_from_slice(b"h:3888");
        assert_eq!(b, want);
        assert_eq!(InitialMessage::decode(&b).unwrap(), m);
    }

    #[test]
    fn initial_message_legacy_and_limits() {
        let legacy = InitialMessage::decode(&[0, 0, 0, 0, 0, 0, 0, 9]).unwrap();
        assert_eq!((legacy.protocol_version, legacy.sid), (None, 9));
        assert_eq!(legacy.encode(), [0, 0, 0, 0, 0, 0, 0, 9]);
        let mut b = InitialMessage::new(2, "x").encode();
        b[19] = 0; // address length 0
        assert!(InitialMessage::decode(&b).is_err());
        let mut b = InitialMessage::new(2, "x").encode();
        b[7] = 5; // unknown negative version
        assert!(InitialMessage::decode(&b).is_err());
    }

    fn sample() -> Notification {
        Notification {
            state: ServerState::Looking,
            leader: 3,
            zxid: 0x1_0000_0005,
            election_epoch: 2,
            peer_epoch: 1,
            version: 2,
            config: "server.1=a:1:2:participant\nversion=0".into(),
        }
    }

    #[test]
    fn notification_v2_layout() {
        let n = sample();
        let b = n.encode();
        assert_eq!(b.len(), 44 + n.config.len());
        assert_eq!(&b[0..4], &[0, 0, 0, 0]);
        assert_eq!(&b[4..12], &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&b[12..20], &[0, 0, 0, 1, 0, 0, 0, 5]);
        assert_eq!(&b[20..28], &[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&b[28..36], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&b[36..40], &[0, 0, 0, 2]);
        assert_eq!(&b[40..44], &[0, 0, 0, n.config.len() as u8]);
        assert_eq!(Notification::decode(&b).unwrap(), n);
    }

    #[test]
    fn notification_legacy_shapes() {
        let b = sample().encode();
        let n28 = Notification::decode(&b[..28]).unwrap();
        assert_eq!((n28.peer_epoch, n28.version), (1, 0)); // epoch from zxid
        let mut b40 = b[..36].to_vec();
        b40.extend_from_slice(&[0, 0, 0, 0]);
        let n40 = Notification::decode(&b40).unwrap();
        assert_eq!((n40.peer_epoch, n40.version), (1, 0));
        let mut b44 = b[..36].to_vec();
        b44.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        let n44 = Notification::decode(&b44).unwrap();
        assert_eq!((n44.version, n44.config.as_str()), (1, ""));
        assert!(Notification::decode(&b[..27]).is_err());
        let mut bad = b.clone();
        bad[43] = 0xff; // config length past the frame
        assert!(Notification::decode(&bad).is_err());
        let mut bad_state = b;
        bad_state[3] = 7;
        assert!(Notification::decode(&bad_state).is_err());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(b: Vec<u8>) {
            let _ = Notification::decode(&b);
            let _ = InitialMessage::decode(&b);
        }
    }
}
