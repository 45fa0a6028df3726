//! Znode data: a jute `buffer` that keeps null (length -1) apart from empty.
//!
//! ZooKeeper stores `null` data for nodes created without data (`zkCli create /x`) and
//! hands it back as null (`get` prints `null`), while empty data stays an empty buffer.
//! This type carries that distinction through requests, txns, the tree, snapshots and
//! replies. It must never turn null into empty (or back) on its own; callers that do
//! not care read it as a byte slice, where null is the empty slice.

use std::ops::Deref;

use bytes::Bytes;

use crate::jute::{DecodeError, Jute, Reader};

/// Node data: `None` is ZooKeeper's null, `Some` the bytes (possibly empty).
/// Derefs to the bytes; null reads as the empty slice. `Default` is null, as in Java.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Data(Option<Bytes>);

impl Data {
    /// Null data (encoded as length -1).
    pub const NULL: Data = Data(None);

    /// Empty, non-null data (encoded as length 0).
    pub const fn empty() -> Data {
        Data(Some(Bytes::new()))
    }

    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The bytes, `None` when null.
    pub fn as_option(&self) -> Option<&Bytes> {
        self.0.as_ref()
    }

    pub fn into_option(self) -> Option<Bytes> {
        self.0
    }

    /// The bytes, null read as empty (a cheap reference-counted clone).
    pub fn bytes(&self) -> Bytes {
        self.0.clone().unwrap_or_default()
    }
}

impl Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl AsRef<[u8]> for Data {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Bytes> for Data {
    fn from(b: Bytes) -> Data {
        Data(Some(b))
    }
}

impl From<Option<Bytes>> for Data {
    fn from(b: Option<Bytes>) -> Data {
        Data(b)
    }
}

impl From<Vec<u8>> for Data {
    fn from(b: Vec<u8>) -> Data {
        Data(Some(Bytes::from(b)))
    }
}

impl From<&'static [u8]> for Data {
    fn from(b: &'static [u8]) -> Data {
        Data(Some(Bytes::from_static(b)))
    }
}

impl From<Option<&[u8]>> for Data {
    fn from(b: Option<&[u8]>) -> Data {
        Data(b.map(Bytes::copy_from_slice))
    }
}

/// `buffer` with null kept: -1 decodes to [`Data::NULL`] and null encodes as -1.
impl Jute for Data {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Data(r.buffer()?.map(Bytes::copy_from_slice)))
    }

    fn write(&self, w: &mut Vec<u8>) {
        match &self.0 {
            None => (-1i32).write(w),
            Some(b) => b.write(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_round_trip_distinctly() {
        assert_eq!(Data::NULL.to_bytes(), [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Data::empty().to_bytes(), [0, 0, 0, 0]);
        let null = Data::from_bytes(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        assert!(null.is_null());
        assert!(null.is_empty());
        let empty = Data::from_bytes(&[0, 0, 0, 0]).unwrap();
        assert!(!empty.is_null());
        assert!(empty.is_empty());
        let x = Data::from_bytes(&[0, 0, 0, 2, b'h', b'i', 9]).unwrap();
        assert_eq!(&*x, b"hi");
        assert_eq!(x.to_bytes(), [0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(matches!(
            Data::from_bytes(&[0xff, 0xff, 0xff, 0xfe]),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            Data::from_bytes(&[0, 0, 0, 5, 1]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn round_trip(v: Option<Vec<u8>>) {
            let d = Data::from(v.clone().map(Bytes::from));
            let back = Data::from_bytes(&d.to_bytes()).unwrap();
            proptest::prop_assert_eq!(back.into_option().map(|b| b.to_vec()), v);
        }
    }
}
