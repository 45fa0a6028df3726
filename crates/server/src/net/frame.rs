//! Client framing: 4-byte big-endian length + payload, with the `jute.maxbuffer` limit,
//! and recognition of four-letter words in place of the first length.
//!
//! Owns only byte-level framing. It never interprets payloads beyond the first 4 bytes of
//! a connection, and never allocates more than the configured limit for one frame.

use bytes::{Buf, Bytes, BytesMut};
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

/// Bytes read from a socket at once when no longer frame is pending (pipelined requests
/// of a client arrive together and are parsed from one read).
pub const READ_CHUNK: usize = 16 * 1024;

/// Most a frame's announced length makes the buffer grow ahead of the bytes that have
/// arrived; the rest grows as they come.
pub const RESERVE_AHEAD: usize = 1024 * 1024;

/// A read buffer larger than this is given back once it holds no unread bytes (it grew
/// for one large frame; an idle connection should not keep it).
pub const KEEP_BUFFER: usize = 64 * 1024;

/// The inbound half of a client connection: frames parsed from bytes read in batches.
///
/// One [`FrameReader::fill`] reads whatever the socket has (often several pipelined
/// requests); [`FrameReader::next_frame`] then hands out each complete frame without
/// another syscall or task hop. `fill` is cancel-safe (it may be raced in a `select!`
/// against the connection's other work): bytes read are never lost.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    max: usize,
}

impl FrameReader {
    /// A reader whose frames may be at most `max` bytes (`jute.maxbuffer`).
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Bytes read and not yet handed out.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads what the socket has (at least one byte). [`FrameError::Eof`] when the peer
    /// closed; bytes of an incomplete frame are then dropped.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<usize, FrameError> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = r.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(FrameError::Eof);
        }
        Ok(n)
    }

    /// The first 4 bytes of the connection, once read: a four-letter word or the
    /// ConnectRequest's length (left in the buffer, for [`FrameReader::next_frame`]).
    pub fn first_word(&self) -> Result<Option<FirstWord>, FrameError> {
        let Some(b) = self.buf.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let v = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if let Some(w) = four_letter_word(v) {
            return Ok(Some(FirstWord::FourLetter(w)));
        }
        Ok(Some(FirstWord::Length(check_len(v, self.max)?)))
    }

    /// Drops `n` buffered bytes (a four-letter word's name).
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
    }

    /// Whether [`FrameReader::next_frame`] has something to hand out without reading:
    /// a complete frame, or a length it refuses.
    pub fn has_frame(&self) -> bool {
        let Some(b) = self.buf.get(..LEN_PREFIX) else {
            return false;
        };
        match check_len(i32::from_be_bytes([b[0], b[1], b[2], b[3]]), self.max) {
            Ok(len) => self.buf.len() - LEN_PREFIX >= len,
            Err(_) => true,
        }
    }

    /// The payload of the next complete frame, if one is buffered. A length over the
    /// limit (or negative) is an error: the connection must close.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(b) = self.buf.get(..LEN_PREFIX) else {
            self.shrink_if_idle();
            return Ok(None);
        };
        let len = check_len(i32::from_be_bytes([b[0], b[1], b[2], b[3]]), self.max)?;
        let have = self.buf.len() - LEN_PREFIX;
        if have < len {
            // Room for the rest of this frame (at most RESERVE_AHEAD more than has
            // arrived), so the next fills complete it: a length prefix alone does not
            // make the server allocate up to jute.maxbuffer per connection.
            self.buf.reserve((len - have).min(RESERVE_AHEAD));
            return Ok(None);
        }
        self.buf.advance(LEN_PREFIX);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    fn shrink_if_idle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
        }
    }
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

    /// A reader that returns at most `step` bytes per read, to split frames anywhere.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl tokio::io::AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self.step.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frame_reader_splits_batches_and_joins_fragments() {
        let mut wire = Vec::new();
        let payloads: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; i * 7]).collect();
        for p in &payloads {
            encode_frame(&mut wire, |w| w.extend_from_slice(p));
        }
        for step in [1, 3, 4, 5, 64, 100_000] {
            let mut src = Trickle { data: &wire, step };
            let mut fr = FrameReader::new(1000);
            let mut got = Vec::new();
            loop {
                // has_frame says exactly whether next_frame hands one out.
                while fr.has_frame() {
                    let Some(f) = fr.next_frame().unwrap() else {
                        panic!("has_frame without a frame (step {step})");
                    };
                    got.push(f.to_vec());
                }
                assert!(fr.next_frame().unwrap().is_none(), "step {step}");
                match fr.fill(&mut src).await {
                    Ok(_) => {}
                    Err(FrameError::Eof) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, payloads, "step {step}");
            assert!(fr.buffered().is_empty());
        }
    }

    #[tokio::test]
    async fn frame_reader_refuses_long_and_negative_lengths() {
        let mut fr = FrameReader::new(10);
        let mut src: &[u8] = &11i32.to_be_bytes();
        fr.fill(&mut src).await.unwrap();
        assert!(fr.has_frame(), "a refused length is there to hand out");
        assert!(matches!(
            fr.next_frame(),
            Err(FrameError::BadLength { len: 11, .. })
        ));
        let mut fr = FrameReader::new(10);
        let mut src: &[u8] = &(-1i32).to_be_bytes();
        fr.fill(&mut src).await.unwrap();
        assert!(matches!(fr.first_word(), Err(FrameError::BadLength { .. })));
    }

    #[tokio::test]
    async fn frame_reader_knows_four_letter_words() {
        let mut fr = FrameReader::new(10);
        let mut src: &[u8] = b"ru";
        fr.fill(&mut src).await.unwrap();
        assert_eq!(fr.first_word().unwrap(), None);
        let mut src: &[u8] = b"okxyz";
        fr.fill(&mut src).await.unwrap();
        assert_eq!(
            fr.first_word().unwrap(),
            Some(FirstWord::FourLetter("ruok"))
        );
        fr.consume(4);
        assert_eq!(fr.buffered(), b"xyz");
    }

    #[tokio::test]
    async fn frame_reader_gives_back_a_large_buffer_when_drained() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, |w| w.extend_from_slice(&vec![7u8; 300_000]));
        let mut src: &[u8] = &wire;
        let mut fr = FrameReader::new(1 << 20);
        let frame = loop {
            if let Some(f) = fr.next_frame().unwrap() {
                break f;
            }
            fr.fill(&mut src).await.unwrap();
        };
        assert_eq!(frame.len(), 300_000);
        drop(frame);
        assert!(fr.next_frame().unwrap().is_none());
        assert!(fr.buf.capacity() <= KEEP_BUFFER);
    }

    /// A length prefix alone does not allocate the frame: the buffer grows at most
    /// RESERVE_AHEAD beyond the bytes that arrived, and a large frame still completes.
    #[tokio::test]
    async fn frame_reader_grows_with_the_bytes_not_the_announced_length() {
        let big = 8 * RESERVE_AHEAD;
        let mut fr = FrameReader::new(1 << 30);
        let len = i32::try_from(big).unwrap();
        let mut src: &[u8] = &len.to_be_bytes();
        fr.fill(&mut src).await.unwrap();
        assert!(fr.next_frame().unwrap().is_none());
        assert!(
            fr.buf.capacity() <= RESERVE_AHEAD + READ_CHUNK,
            "{}",
            fr.buf.capacity()
        );
        let body = vec![9u8; big];
        let mut src: &[u8] = &body;
        let frame = loop {
            if let Some(f) = fr.next_frame().unwrap() {
                break f;
            }
            fr.fill(&mut src).await.unwrap();
        };
        assert_eq!(frame.len(), big);
    }
}
