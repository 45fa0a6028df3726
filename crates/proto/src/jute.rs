//! The jute binary archive: big-endian numbers, length-prefixed strings, buffers and vectors.
//!
//! Records are their fields in order, with no tags. `ustring`/`buffer`/`vector` carry an
//! `int` length where `-1` means null; null decodes to the empty value here, except for
//! znode data, which keeps null apart (see [`crate::data::Data`]).

use bytes::Bytes;

/// Default limit on one string or buffer (ZooKeeper's `jute.maxbuffer` default).
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record ends early: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("length {len} at offset {offset} is negative or over the limit {max}")]
    BadLength { offset: usize, len: i64, max: usize },
    #[error("invalid utf-8 in string at offset {offset}")]
    BadUtf8 { offset: usize },
    #[error("unknown {what} {value}")]
    Unknown { what: &'static str, value: i64 },
    #[error("{0}")]
    Invalid(&'static str),
}

/// A cursor over an input buffer with a limit on announced lengths.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    max_len: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_limit(buf, DEFAULT_MAX_BUFFER * 2)
    }

    pub fn with_limit(buf: &'a [u8], max_len: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            max_len,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read<T: Jute>(&mut self) -> Result<T, DecodeError> {
        T::read(self)
    }

    /// Whether the next field's length prefix is -1 (a null string, buffer or vector).
    /// Nothing is consumed. ZooKeeper decodes null apart from empty, and some requests
    /// fail on it where an empty value would be served (see `rzk_server::request`).
    pub fn next_is_null(&self) -> bool {
        self.rest().get(..4) == Some(&[0xff; 4][..])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a `buffer`, keeping null (-1) as `None`.
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.len_prefix()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// Reads a length prefix; `None` for null (-1). Lengths are checked against the limit.
    fn len_prefix(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let len = i32::read(self)?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.max_len {
            return Err(DecodeError::BadLength {
                offset,
                len: len as i64,
                max: self.max_len,
            });
        }
        Ok(Some(len as usize))
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    fn write(&self, w: &mut Vec<u8>);

    /// The record's bytes. The buffer starts at 64 bytes, so small records (headers,
    /// stats, short paths) are written without growing it.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        self.write(&mut v);
        v
    }

    /// Decodes a whole buffer; trailing bytes are allowed (ZooKeeper ignores them too).
    fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(b))
    }
}

impl Jute for u8 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.array::<1>()?[0])
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.push(*self);
    }
}

impl Jute for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.array::<1>()?[0] != 0)
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.push(u8::from(*self));
    }
}

impl Jute for i32 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(i32::from_be_bytes(r.array()?))
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.to_be_bytes());
    }
}

impl Jute for i64 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(i64::from_be_bytes(r.array()?))
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.to_be_bytes());
    }
}

/// `ustring`: null decodes to "".
impl Jute for String {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.len_prefix()? {
            None => Ok(String::new()),
            Some(n) => {
                // Like Java's reader: malformed UTF-8 (e.g. CESU-8 surrogates) becomes
                // U+FFFD rather than an error, as many as Java makes of it, so path
                // rules then reject it as ZooKeeper does and other strings read back
                // the same.
                let b = r.take(n)?;
                Ok(crate::java_utf8::decode_owned(b))
            }
        }
    }
    fn write(&self, w: &mut Vec<u8>) {
        (self.len() as i32).write(w);
        w.extend_from_slice(self.as_bytes());
    }
}

/// `buffer`: null decodes to empty.
impl Jute for Bytes {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.buffer()?.map(Bytes::copy_from_slice).unwrap_or_default())
    }
    fn write(&self, w: &mut Vec<u8>) {
        (self.len() as i32).write(w);
        w.extend_from_slice(self);
    }
}

/// `vector<T>`: null decodes to empty, and so does any other negative count (Java's
/// archive reads elements while the count left is positive). Counts are bounded by the
/// bytes left, so a hostile count cannot make us allocate more than the frame holds.
impl<T: Jute> Jute for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.pos;
        let n = i32::read(r)?;
        if n < 0 {
            return Ok(Vec::new());
        }
        if n as usize > r.remaining() {
            return Err(DecodeError::BadLength {
                offset,
                len: n as i64,
                max: r.remaining(),
            });
        }
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
    fn write(&self, w: &mut Vec<u8>) {
        (self.len() as i32).write(w);
        for x in self {
            x.write(w);
        }
    }
}

/// Declares a jute record: a struct whose encoding is its fields in order.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                Ok(Self { $($f: <$t as $crate::jute::Jute>::read(r)?),* })
            }
            #[allow(unused_variables)]
            fn write(&self, w: &mut Vec<u8>) {
                $($crate::jute::Jute::write(&self.$f, w);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_string_and_buffer_decode_empty() {
        let b = [0xff, 0xff, 0xff, 0xff];
        assert_eq!(String::from_bytes(&b).unwrap(), "");
        assert!(Bytes::from_bytes(&b).unwrap().is_empty());
        assert!(Reader::new(&b).next_is_null());
        assert!(!Reader::new(&[0, 0, 0, 0]).next_is_null());
        assert!(!Reader::new(&[0xff, 0xff]).next_is_null());
    }

    #[test]
    fn negative_vector_counts_decode_empty() {
        // As Java's archive: -1 is null, any other negative count holds no element.
        for n in [-1i32, -5, i32::MIN] {
            let mut b = n.to_be_bytes().to_vec();
            b.extend_from_slice(&7i64.to_be_bytes());
            let mut r = Reader::new(&b);
            assert_eq!(Vec::<i64>::read(&mut r).unwrap(), Vec::<i64>::new());
            assert_eq!(r.position(), 4, "count {n}");
        }
    }

    #[test]
    fn oversized_length_is_rejected_not_allocated() {
        let b = [0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            String::from_bytes(&b),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            Vec::<i64>::from_bytes(&b),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn truncated_int_is_an_error() {
        assert!(matches!(
            i32::from_bytes(&[1, 2]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn roundtrip_primitives(a: i32, b: i64, s: String, v: Vec<i64>, t: bool) {
            let mut w = Vec::new();
            a.write(&mut w); b.write(&mut w); s.write(&mut w); v.write(&mut w); t.write(&mut w);
            let mut r = Reader::new(&w);
            proptest::prop_assert_eq!(i32::read(&mut r).unwrap(), a);
            proptest::prop_assert_eq!(i64::read(&mut r).unwrap(), b);
            proptest::prop_assert_eq!(String::read(&mut r).unwrap(), s);
            proptest::prop_assert_eq!(Vec::<i64>::read(&mut r).unwrap(), v);
            proptest::prop_assert_eq!(bool::read(&mut r).unwrap(), t);
            proptest::prop_assert!(r.is_empty());
        }

        #[test]
        fn garbage_never_panics(b: Vec<u8>) {
            let _ = Vec::<String>::from_bytes(&b);
            let _ = Bytes::from_bytes(&b);
        }
    }
}
