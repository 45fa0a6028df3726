//! snappy-java's stream format (`org.xerial.snappy.SnappyOutputStream`), which ZooKeeper
//! writes for `snapshot.<hex zxid>.snappy` when `zookeeper.snapshot.compression.method`
//! is `snappy` (docs/STORAGE.md §1).
//!
//! Layout (integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `0x82 "SNAPPY" 0x00` |
//! | 4 | format version (1) |
//! | 4 | oldest reader version that can read it (1) |
//! | then, repeated | `int32` length of the block, the block: raw Snappy of up to 32 KiB |
//!
//! A second header in place of a block length starts a concatenated stream, which
//! snappy-java's reader accepts, and so does [`SnappyReader`]. The blocks themselves are
//! raw Snappy, compressed and decompressed by the `snap` crate.

use std::io::{self, Read, Write};

/// The stream's first eight bytes.
pub const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version and compatible version.
const HEADER_LEN: usize = 16;
/// The format version written; also the oldest version a reader must understand.
const VERSION: i32 = 1;
/// Uncompressed bytes per block, snappy-java's default block size.
pub const BLOCK_SIZE: usize = 32 * 1024;
/// Largest block length accepted when reading: snappy-java's writers may use larger
/// blocks than the default, but a length beyond this is a corrupt file, not a block.
const MAX_BLOCK_LEN: usize = 64 << 20;

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..].copy_from_slice(&VERSION.to_be_bytes());
    h
}

/// Writes a snappy-java stream to `W`: the header at once, then a block each time
/// [`BLOCK_SIZE`] bytes have been written, and the last, shorter block at
/// [`SnappyWriter::finish`] (or at `flush`, as snappy-java's `flush` does).
pub struct SnappyWriter<W: Write> {
    inner: W,
    /// Uncompressed bytes of the block being gathered (< `BLOCK_SIZE`).
    block: Vec<u8>,
    /// Scratch: the block's length and compressed bytes.
    out: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl<W: Write> SnappyWriter<W> {
    /// Starts a stream on `inner` and writes its header.
    ///
    /// # Errors
    /// What writing the header to `inner` returns.
    pub fn new(mut inner: W) -> io::Result<SnappyWriter<W>> {
        inner.write_all(&header())?;
        Ok(SnappyWriter {
            inner,
            block: Vec::with_capacity(BLOCK_SIZE),
            out: Vec::with_capacity(4 + snap::raw::max_compress_len(BLOCK_SIZE)),
            encoder: snap::raw::Encoder::new(),
        })
    }

    /// The writer under the stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        debug_assert!(self.block.len() <= BLOCK_SIZE);
        self.out
            .resize(4 + snap::raw::max_compress_len(self.block.len()), 0);
        let n = self
            .encoder
            .compress(&self.block, &mut self.out[4..])
            .map_err(io::Error::other)?;
        let len = i32::try_from(n).map_err(io::Error::other)?;
        self.out[..4].copy_from_slice(&len.to_be_bytes());
        self.inner.write_all(&self.out[..4 + n])?;
        self.block.clear();
        Ok(())
    }

    /// Writes the last block and returns the writer under the stream (not flushed).
    ///
    /// # Errors
    /// What compressing or writing the block returns.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SnappyWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&b[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.write_block()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_block()?;
        self.inner.flush()
    }
}

/// Reads a snappy-java stream from `R` as the uncompressed bytes.
///
/// Errors are `io::ErrorKind::InvalidData` naming the offset in the compressed file:
/// a missing or wrong header, a block length out of range, a block that is not valid
/// Snappy; a stream that ends inside a block length or a block is `UnexpectedEof`.
pub struct SnappyReader<R: Read> {
    inner: R,
    /// The current block, uncompressed; `block[at..]` is unread.
    block: Vec<u8>,
    at: usize,
    /// Scratch for a compressed block.
    compressed: Vec<u8>,
    decoder: snap::raw::Decoder,
    /// Bytes read from `inner` so far.
    offset: u64,
    started: bool,
    ended: bool,
}

impl<R: Read> SnappyReader<R> {
    /// Reads from `inner`; the header is checked at the first read.
    pub fn new(inner: R) -> SnappyReader<R> {
        SnappyReader {
            inner,
            block: Vec::new(),
            at: 0,
            compressed: Vec::new(),
            decoder: snap::raw::Decoder::new(),
            offset: 0,
            started: false,
            ended: false,
        }
    }

    fn invalid(&self, at: u64, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snappy stream invalid at byte offset {at}: {what}"),
        )
    }

    /// Fills `b` from `inner`; `Ok(false)` when the stream ended before its first byte.
    fn fill(&mut self, b: &mut [u8], what: &str) -> io::Result<bool> {
        let mut got = 0;
        while got < b.len() {
            match self.inner.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "snappy stream ends at byte offset {} inside {what}",
                            self.offset + got as u64
                        ),
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.offset += got as u64;
        Ok(true)
    }

    /// Checks a header whose first four bytes (`head`) are already read.
    fn rest_of_header(&mut self, head: [u8; 4], at: u64) -> io::Result<()> {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&head);
        if !self.fill(&mut h[4..], "the stream header")? {
            return Err(self.invalid(at, "stream header cut short"));
        }
        if h[..8] != MAGIC {
            return Err(self.invalid(at, "no snappy-java stream header"));
        }
        // snappy-java's reader checks the format version only (at least 1), not the
        // compatible-version field.
        let version = i32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        if version < VERSION {
            return Err(self.invalid(at, &format!("snappy-java format version {version}")));
        }
        Ok(())
    }

    /// Reads blocks until one with bytes in it; `Ok(false)` at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        if !self.started {
            self.started = true;
            let mut head = [0u8; 4];
            if !self.fill(&mut head, "the stream header")? {
                return Err(self.invalid(0, "empty file, no snappy-java stream header"));
            }
            self.rest_of_header(head, 0)?;
        }
        loop {
            let at = self.offset;
            let mut len = [0u8; 4];
            if !self.fill(&mut len, "a block length")? {
                return Ok(false);
            }
            if len == MAGIC[..4] {
                self.rest_of_header(len, at)?;
                continue;
            }
            let n = i32::from_be_bytes(len);
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_BLOCK_LEN)
                .ok_or_else(|| self.invalid(at, &format!("block length {n} out of range")))?;
            if n == 0 {
                // snappy-java fails on an empty block (PARSING_ERROR), so ZooKeeper
                // falls back to an older snapshot: so does rzk.
                return Err(self.invalid(at, "empty block"));
            }
            let mut compressed = std::mem::take(&mut self.compressed);
            compressed.resize(n, 0);
            let filled = self.fill(&mut compressed, "a block");
            let decoded = match filled {
                Ok(true) => snap::raw::decompress_len(&compressed).and_then(|m| {
                    if m > MAX_BLOCK_LEN {
                        return Err(snap::Error::TooBig {
                            given: m as u64,
                            max: MAX_BLOCK_LEN as u64,
                        });
                    }
                    self.block.resize(m, 0);
                    self.decoder.decompress(&compressed, &mut self.block)
                }),
                Ok(false) => {
                    self.compressed = compressed;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "snappy stream ends at byte offset {} inside a block",
                            at + 4
                        ),
                    ));
                }
                Err(e) => {
                    self.compressed = compressed;
                    return Err(e);
                }
            };
            self.compressed = compressed;
            let m = decoded.map_err(|e| self.invalid(at + 4, &format!("bad block: {e}")))?;
            self.block.truncate(m);
            self.at = 0;
            if m > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for SnappyReader<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        if b.is_empty() {
            return Ok(0);
        }
        if self.at == self.block.len() && (self.ended || !self.next_block()?) {
            self.ended = true;
            return Ok(0);
        }
        let n = b.len().min(self.block.len() - self.at);
        b[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(data: &[u8], writes: usize) -> Vec<u8> {
        let mut w = SnappyWriter::new(Vec::new()).unwrap();
        for part in data.chunks(writes.max(1)) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn unpack(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        SnappyReader::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i * 7 % 251) as u8 ^ (i >> 9) as u8)
            .collect()
    }

    #[test]
    fn round_trips_across_block_boundaries() {
        for n in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            5 * BLOCK_SIZE + 77,
        ] {
            for writes in [1, 1000, 64 * 1024] {
                let data = sample(n);
                let packed = pack(&data, writes);
                assert_eq!(packed[..8], MAGIC);
                assert_eq!(unpack(&packed).unwrap(), data, "n={n} writes={writes}");
            }
        }
    }

    #[test]
    fn blocks_hold_at_most_block_size_bytes() {
        let data = sample(3 * BLOCK_SIZE + 5);
        let packed = pack(&data, 10_000);
        let mut at = HEADER_LEN;
        let mut sizes = Vec::new();
        while at < packed.len() {
            let n = i32::from_be_bytes(packed[at..at + 4].try_into().unwrap()) as usize;
            let block = &packed[at + 4..at + 4 + n];
            sizes.push(snap::raw::decompress_len(block).unwrap());
            at += 4 + n;
        }
        assert_eq!(sizes, vec![BLOCK_SIZE, BLOCK_SIZE, BLOCK_SIZE, 5]);
    }

    #[test]
    fn reads_concatenated_streams() {
        let (a, b) = (sample(40_000), sample(9));
        let mut both = pack(&a, 4096);
        both.extend(pack(&b, 4096));
        assert_eq!(unpack(&both).unwrap(), [a, b].concat());
    }

    #[test]
    fn damage_is_an_error_naming_the_offset() {
        let packed = pack(&sample(100_000), 4096);
        // Cut inside a block.
        let e = unpack(&packed[..packed.len() - 3]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        // No header.
        let e = unpack(&packed[8..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("byte offset 0"), "{e}");
        let e = unpack(b"").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A block length beyond any block.
        let mut bad = packed.clone();
        bad[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&(-5i32).to_be_bytes());
        let e = unpack(&bad).unwrap_err();
        assert!(e.to_string().contains("byte offset 16"), "{e}");
        // A block that is not Snappy.
        let mut bad = packed.clone();
        for b in &mut bad[HEADER_LEN + 4..HEADER_LEN + 40] {
            *b = 0xff;
        }
        let e = unpack(&bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        // An empty block, as snappy-java refuses it.
        let mut bad = packed[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&0i32.to_be_bytes());
        bad.extend_from_slice(&packed[HEADER_LEN..]);
        assert!(unpack(&bad)
            .unwrap_err()
            .to_string()
            .contains("empty block"));
        // The format version must be at least 1; the compatible-version field is not
        // checked (as snappy-java).
        let mut bad = packed.clone();
        bad[8..12].copy_from_slice(&0i32.to_be_bytes());
        assert!(unpack(&bad).is_err());
        let mut newer = packed;
        newer[12..16].copy_from_slice(&2i32.to_be_bytes());
        assert_eq!(unpack(&newer).unwrap(), sample(100_000));
    }
}
