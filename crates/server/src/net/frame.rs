//! Client framing: 4-byte big-endian length + payload, with the `jute.maxbuffer` limit,
//! and recognition of four-letter words in place of the first length.
//!
//! Owns only byte-level framing. It never interprets payloads beyond the first 4 bytes of
//! a connection, and never allocates more than the configured limit for one frame.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the length prefix.
pub const LEN_PREFIX: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed by peer")]
    Eof,
    #[error("frame length {len} is negative or over jute.maxbuffer {max}")]
    BadLength { len: i32, max: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What the first 4 bytes of a connection were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstWord {
    /// A frame length (the ConnectRequest follows).
    Length(usize),
    /// A four-letter word command (its name).
    FourLetter(&'static str),
}

/// Four-letter words ZooKeeper registers, as the big-endian int of their ASCII bytes.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat", "wchc",
    "wchp", "wchs", "mntr", "isro", "hash", "dirs",
];

/// The telnet interrupt pattern ZooKeeper registers as `telnet close`.
pub const TELNET_CLOSE: i32 = 0xFFF4_FFFDu32 as i32;

/// Maps the first 4 bytes of a connection to a four-letter word, if they are one.
pub fn four_letter_word(first: i32) -> Option<&'static str> {
    if first == TELNET_CLOSE {
        return Some("telnet close");
    }
    let b = first.to_be_bytes();
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == b)
}

/// Checks a length prefix against the limit.
pub fn check_len(len: i32, max: usize) -> Result<usize, FrameError> {
    if len < 0 || len as usize > max {
        return Err(FrameError::BadLength { len, max });
    }
    Ok(len as usize)
}

async fn read_i32<R: AsyncRead + Unpin>(r: &mut R) -> Result<i32, FrameError> {
    let mut b = [0u8; LEN_PREFIX];
    match r.read_exact(&mut b).await {
        Ok(_) => Ok(i32::from_be_bytes(b)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FrameError::Eof),
        Err(e) => Err(FrameError::Io(e)),
    }
}

/// Reads the first 4 bytes of a connection: a 4lw or the ConnectRequest frame length.
pub async fn read_first_word<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<FirstWord, FrameError> {
    let v = read_i32(r).await?;
    if let Some(w) = four_letter_word(v) {
        return Ok(FirstWord::FourLetter(w));
    }
    Ok(FirstWord::Length(check_len(v, max)?))
}

/// Reads `len` payload bytes into `buf` (replacing its contents).
pub async fn read_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    buf.clear();
    buf.resize(len, 0);
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FrameError::Eof),
        Err(e) => Err(FrameError::Io(e)),
    }
}

/// Reads one whole frame into `buf`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let len = check_len(read_i32(r).await?, max)?;
    read_payload(r, len, buf).await
}

/// Appends a frame (length prefix + the bytes `body` writes) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    body(out);
    let len = (out.len() - start - LEN_PREFIX) as i32;
    out[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_letter_words_are_recognised() {
        assert_eq!(four_letter_word(0x7275_6F6B), Some("ruok"));
        assert_eq!(four_letter_word(i32::from_be_bytes(*b"mntr")), Some("mntr"));
        assert_eq!(four_letter_word(45), None);
        assert_eq!(four_letter_word(TELNET_CLOSE), Some("telnet close"));
    }

    #[test]
    fn lengths_are_limited() {
        assert!(check_len(-1, 10).is_err());
        assert!(check_len(11, 10).is_err());
        assert_eq!(check_len(10, 10).unwrap(), 10);
    }

    #[tokio::test]
    async fn frames_roundtrip() {
        let mut out = Vec::new();
        encode_frame(&mut out, |w| w.extend_from_slice(b"hello"));
        encode_frame(&mut out, |_| {});
        let mut r = &out[..];
        let mut buf = Vec::new();
        read_frame(&mut r, 100, &mut buf).await.unwrap();
        assert_eq!(buf, b"hello");
        read_frame(&mut r, 100, &mut buf).await.unwrap();
        assert!(buf.is_empty());
        assert!(matches!(
            read_frame(&mut r, 100, &mut buf).await,
            Err(FrameError::Eof)
        ));
    }
}
