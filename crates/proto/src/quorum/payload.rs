//! The `data` payloads of quorum packets whose layout is fixed by ZooKeeper
//! (docs/QUORUM-PROTOCOL.md §4): `LearnerInfo`, the int of LEADERINFO/ACKEPOCH, PING
//! session tables, forwarded REQUESTs, REVALIDATE, and the designated-leader prefix of the
//! *ANDACTIVATE packets.
//! These are raw `DataOutputStream` layouts, not jute records, unless noted.

use crate::jute::{DecodeError, Jute, Reader};
use bytes::Bytes;

/// `LearnerInfo{long serverid; int protocolVersion; long configVersion}` (20 bytes).
/// Decoding accepts ZooKeeper's shorter legacy forms: 8 bytes (sid only) and 12 bytes
/// (sid + protocol version); missing fields decode as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LearnerInfo {
    pub server_id: i64,
    pub protocol_version: i32,
    pub config_version: i64,
}

impl LearnerInfo {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(20);
        self.server_id.write(&mut w);
        self.protocol_version.write(&mut w);
        self.config_version.write(&mut w);
        w
    }

    pub fn decode(b: &[u8]) -> Result<LearnerInfo, DecodeError> {
        let mut r = Reader::new(b);
        let server_id = i64::read(&mut r)?;
        let protocol_version = if r.remaining() >= 4 {
            i32::read(&mut r)?
        } else {
            0
        };
        let config_version = if r.remaining() >= 8 {
            i64::read(&mut r)?
        } else {
            0
        };
        Ok(LearnerInfo {
            server_id,
            protocol_version,
            config_version,
        })
    }
}

/// The single big-endian `int` carried by LEADERINFO (protocol version) and ACKEPOCH
/// (the learner's currentEpoch, or -1).
pub fn encode_int(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub fn decode_int(b: &[u8]) -> Result<i32, DecodeError> {
    i32::read(&mut Reader::new(b))
}

/// One `(long sessionId, int timeoutMs)` entry of a learner's PING reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch {
    pub session_id: i64,
    pub timeout_ms: i32,
}

/// Encodes a learner PING reply's session table (entries back to back, no count).
pub fn encode_touches(t: &[SessionTouch]) -> Vec<u8> {
    let mut w = Vec::with_capacity(t.len() * 12);
    for e in t {
        e.session_id.write(&mut w);
        e.timeout_ms.write(&mut w);
    }
    w
}

/// Decodes a PING session table; trailing bytes shorter than one entry are an error.
pub fn decode_touches(b: &[u8]) -> Result<Vec<SessionTouch>, DecodeError> {
    let mut r = Reader::new(b);
    let mut v = Vec::with_capacity(b.len() / 12);
    while !r.is_empty() {
        v.push(SessionTouch {
            session_id: i64::read(&mut r)?,
            timeout_ms: i32::read(&mut r)?,
        });
    }
    Ok(v)
}

/// A client request forwarded by a learner: `long sessionId, int cxid, int type` then the
/// raw request record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: i64,
    pub cxid: i32,
    pub op_type: i32,
    pub body: Bytes,
}

impl ForwardedRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(16 + self.body.len());
        self.session_id.write(&mut w);
        self.cxid.write(&mut w);
        self.op_type.write(&mut w);
        w.extend_from_slice(&self.body);
        w
    }

    pub fn decode(b: &[u8]) -> Result<ForwardedRequest, DecodeError> {
        let mut r = Reader::new(b);
        Ok(ForwardedRequest {
            session_id: i64::read(&mut r)?,
            cxid: i32::read(&mut r)?,
            op_type: i32::read(&mut r)?,
            body: Bytes::copy_from_slice(r.rest()),
        })
    }
}

/// Learner -> leader REVALIDATE: `long sessionId, int timeout`.
pub fn encode_revalidate(session_id: i64, timeout_ms: i32) -> Vec<u8> {
    let mut w = Vec::with_capacity(12);
    session_id.write(&mut w);
    timeout_ms.write(&mut w);
    w
}

pub fn decode_revalidate(b: &[u8]) -> Result<(i64, i32), DecodeError> {
    let mut r = Reader::new(b);
    Ok((i64::read(&mut r)?, i32::read(&mut r)?))
}

/// Leader -> learner REVALIDATE reply: `long sessionId, boolean valid`.
pub fn encode_revalidate_reply(session_id: i64, valid: bool) -> Vec<u8> {
    let mut w = Vec::with_capacity(9);
    session_id.write(&mut w);
    valid.write(&mut w);
    w
}

pub fn decode_revalidate_reply(b: &[u8]) -> Result<(i64, bool), DecodeError> {
    let mut r = Reader::new(b);
    Ok((i64::read(&mut r)?, bool::read(&mut r)?))
}

/// COMMITANDACTIVATE data / INFORMANDACTIVATE prefix: `long designatedLeaderSid`, followed
/// (INFORMANDACTIVATE only) by the proposal bytes. Returns the sid and the rest.
pub fn decode_activate(b: &[u8]) -> Result<(i64, &[u8]), DecodeError> {
    let mut r = Reader::new(b);
    let sid = i64::read(&mut r)?;
    Ok((sid, r.rest()))
}

pub fn encode_activate(designated_leader: i64, proposal: &[u8]) -> Vec<u8> {
    let mut w = Vec::with_capacity(8 + proposal.len());
    designated_leader.write(&mut w);
    w.extend_from_slice(proposal);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learner_info_is_20_bytes_and_accepts_short_forms() {
        let li = LearnerInfo {
            server_id: 3,
            protocol_version: 0x10000,
            config_version: 0x1_0000_0000,
        };
        let b = li.encode();
        assert_eq!(
            b,
            [0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(LearnerInfo::decode(&b).unwrap(), li);
        let short = LearnerInfo::decode(&b[..8]).unwrap();
        assert_eq!((short.server_id, short.protocol_version), (3, 0));
        let mid = LearnerInfo::decode(&b[..12]).unwrap();
        assert_eq!((mid.protocol_version, mid.config_version), (0x10000, 0));
        assert!(LearnerInfo::decode(&b[..4]).is_err());
    }

    #[test]
    fn ints_and_touches() {
        assert_eq!(encode_int(0x10000), [0, 1, 0, 0]);
        assert_eq!(encode_int(-1), [0xff; 4]);
        assert_eq!(decode_int(&[0, 0, 0, 5]).unwrap(), 5);
        let t = vec![
            SessionTouch {
                session_id: 0x0100_0000_0000_0001,
                timeout_ms: 30000,
            },
            SessionTouch {
                session_id: 2,
                timeout_ms: 4000,
            },
        ];
        let b = encode_touches(&t);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[..12], &[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x75, 0x30]);
        assert_eq!(decode_touches(&b).unwrap(), t);
        assert!(decode_touches(&b[..13]).is_err());
    }

    #[test]
    fn forwarded_request_layout() {
        let f = ForwardedRequest {
            session_id: 5,
            cxid: 9,
            op_type: -10,
            body: Bytes::from_static(&[0, 0, 0x75, 0x30]),
        };
        let b = f.encode();
        assert_eq!(
            b,
            [0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xf6, 0, 0, 0x75, 0x30]
        );
        assert_eq!(ForwardedRequest::decode(&b).unwrap(), f);
    }

    #[test]
    fn revalidate_and_activate() {
        let b = encode_revalidate(7, 3000);
        assert_eq!(decode_revalidate(&b).unwrap(), (7, 3000));
        let b = encode_revalidate_reply(7, true);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 7, 1]);
        assert_eq!(decode_revalidate_reply(&b).unwrap(), (7, true));
        let b = encode_activate(2, b"xy");
        assert_eq!(decode_activate(&b).unwrap(), (2, &b"xy"[..]));
    }
}
