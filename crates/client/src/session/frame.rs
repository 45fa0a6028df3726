//! Length-prefixed frames: encoding requests into an output buffer and cutting complete
//! frames out of an input buffer. Pure functions; never touches a socket.

use bytes::{Buf, Bytes, BytesMut};
use rzk_proto::records::{ReplyHeader, RequestHeader};
use rzk_proto::{DecodeError, Jute, Reader};

/// Largest frame accepted from a server (ZooKeeper's default `jute.maxbuffer` plus
/// headroom for headers, as the Java client allows).
pub const MAX_FRAME: usize = 0xfffff + 1024;

/// Appends one request frame (`len`, header, body) to `out`.
pub fn put_request(out: &mut BytesMut, xid: i32, op: i32, body: &[u8]) {
    let len = 8 + body.len();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as i32).to_be_bytes());
    let mut hdr = Vec::with_capacity(8);
    RequestHeader { xid, op }.write(&mut hdr);
    out.extend_from_slice(&hdr);
    out.extend_from_slice(body);
}

/// Appends a bare frame (used for the ConnectRequest).
pub fn put_bare(out: &mut BytesMut, body: &[u8]) {
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {0} out of range")]
    BadLength(i64),
}

/// Cuts one complete frame payload off the front of `buf`, if there is one.
pub fn take_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > MAX_FRAME {
        return Err(FrameError::BadLength(len as i64));
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Splits a reply frame into its header and body.
pub fn split_reply(frame: &Bytes) -> Result<(ReplyHeader, Bytes), DecodeError> {
    let mut r = Reader::new(frame);
    let hdr = ReplyHeader::read(&mut r)?;
    let used = r.position();
    Ok((hdr, frame.slice(used..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip_in_pieces() {
        let mut out = BytesMut::new();
        put_request(&mut out, 7, 4, b"abc");
        put_request(&mut out, 8, 4, b"");
        let all = out.freeze();
        let mut inb = BytesMut::new();
        let mut got = Vec::new();
        for b in all.iter() {
            inb.extend_from_slice(&[*b]);
            while let Some(f) = take_frame(&mut inb).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][8..], b"abc");
        assert_eq!(&got[1][..4], &8i32.to_be_bytes());
    }

    #[test]
    fn oversized_frame_is_rejected() {
        let mut b = BytesMut::from(&[0x7f, 0, 0, 0][..]);
        assert!(take_frame(&mut b).is_err());
        let mut b = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert!(take_frame(&mut b).is_err());
    }
}
