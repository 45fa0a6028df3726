//! ZooKeeper's error codes (the `err` field of a reply), as a typed enum.

macro_rules! codes {
    ($($name:ident = $v:expr),* $(,)?) => {
        /// A ZooKeeper error code. `Ok` is 0; system errors are -1..-99, API errors <= -100.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorCode { $($name = $v),* }

        impl ErrorCode {
            pub fn from_i32(v: i32) -> Option<ErrorCode> {
                match v { $($v => Some(ErrorCode::$name),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name)),* }
            }
        }
    };
}

codes! {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn codes_roundtrip() {
        for v in -130..=0 {
            if let Some(c) = ErrorCode::from_i32(v) {
                assert_eq!(c.code(), v);
            }
        }
        assert_eq!(ErrorCode::from_i32(-101), Some(ErrorCode::NoNode));
        assert_eq!(ErrorCode::from_i32(-126), None);
    }
}
