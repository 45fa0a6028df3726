//! Newtypes for the identifiers that must never be mixed up.

/// A transaction id: `epoch << 32 | counter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);

    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    pub fn next(self) -> Zxid {
        Zxid(self.0 + 1)
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A session id: server id in the top byte on the server that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn zxid_parts() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.0, 0x3_0000_0007);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
        assert_eq!(z.to_string(), "0x300000007");
    }
}
