//! Typed client errors: one variant per ZooKeeper error code, plus client-side failures.
//!
//! This module owns the mapping between wire error codes and [`Error`]. It must never
//! swallow an unknown code: unknown codes become [`Error::Unknown`] with the raw value.

use rzk_proto::multi::OpResult as WireOpResult;
use rzk_proto::{DecodeError, ErrorCode};

/// Result alias used across the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! keeper_errors {
    ($($variant:ident => $code:ident, $msg:literal;)*) => {
        /// An error from a ZooKeeper operation.
        ///
        /// The first group of variants mirror ZooKeeper's error codes one to one
        /// (see [`Error::code`]); the rest are raised by the client itself.
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum Error {
            $(
                #[doc = concat!("ZooKeeper's `", stringify!($code), "` error code (`KeeperException.Code`): ", $msg, ".")]
                #[error($msg)]
                $variant,
            )*
            /// A server error code this client does not know.
            #[error("unknown ZooKeeper error code {0}")]
            Unknown(i32),
            /// The client was closed (by [`crate::Client::close`] or by dropping every handle).
            #[error("client closed")]
            Closed,
            /// The connect string could not be parsed.
            #[error("invalid connect string: {0}")]
            InvalidConnectString(String),
            /// A path argument was rejected before being sent.
            #[error("{0}")]
            InvalidPath(#[from] rzk_proto::path::PathError),
            /// An argument was rejected before being sent (client-side check).
            #[error("invalid argument: {0}")]
            InvalidArgument(String),
            /// A reply could not be decoded.
            #[error("malformed reply: {0}")]
            Decode(#[from] DecodeError),
            /// A transaction failed: `index` is the first failing op, `error` its error,
            /// `results` the per-op results the server returned.
            #[error("multi failed at op {index}: {error}")]
            Multi {
                /// Position of the first failing op in the request.
                index: usize,
                /// Why that op failed.
                error: Box<Error>,
                /// The server's result for every op (errors, and `RuntimeInconsistency`
                /// for ops rolled back); the type is [`crate::multi::WireOpResult`].
                results: Vec<WireOpResult>,
            },
            /// A client-side deadline passed (e.g. the initial connect or a lock acquire).
            #[error("timed out")]
            Timeout,
            /// TLS settings could not be used (files, certificates, server name).
            #[error("TLS: {0}")]
            Tls(String),
            /// SASL settings could not be used (JAAS file, section, login module).
            #[error("SASL: {0}")]
            Sasl(String),
            /// A recipe found the tree in a state it cannot work with.
            #[error("recipe error: {0}")]
            Recipe(String),
            /// A [`crate::recipes::SharedCounter`] node holds data that is not a counter
            /// (a counter is exactly 4 bytes, a big-endian `i32`).
            #[error("node {path} holds {len} bytes of data, not a 4-byte counter")]
            NotACounter {
                /// The counter node.
                path: String,
                /// How many bytes of data it holds.
                len: usize,
            },
            /// A recipe's release (a lock, lease, latch or claim node) could not delete its
            /// node: the session has been disconnected for a whole session timeout since a
            /// server last heard from it, so the servers have expired it (or will within
            /// a tick), and its ephemeral node with it. Should the session come back after
            /// all, the delete goes on in the background.
            #[error("could not delete {node}: disconnected for a whole session timeout, so the session has expired (or will within a server tick) and the node goes with it; the delete goes on in the background should the session come back")]
            DisconnectedPastSessionTimeout {
                /// The node the release was deleting.
                node: String,
            },
        }

        impl Error {
            /// Maps a non-zero wire error code to an error.
            pub fn from_code(code: i32) -> Error {
                match ErrorCode::from_i32(code) {
                    $(Some(ErrorCode::$code) => Error::$variant,)*
                    _ => Error::Unknown(code),
                }
            }

            /// The ZooKeeper error code this error corresponds to (client-side errors map
            /// to the closest code: `Closed`/`Timeout` to CONNECTIONLOSS-like codes).
            pub fn code(&self) -> i32 {
                match self {
                    $(Error::$variant => ErrorCode::$code.code(),)*
                    Error::Unknown(c) => *c,
                    Error::Closed => ErrorCode::SessionExpired.code(),
                    Error::InvalidConnectString(_) | Error::InvalidPath(_) | Error::InvalidArgument(_) | Error::Tls(_) | Error::Sasl(_) => {
                        ErrorCode::BadArguments.code()
                    }
                    Error::Decode(_) => ErrorCode::MarshallingError.code(),
                    Error::Multi { error, .. } => error.code(),
                    Error::Timeout => ErrorCode::OperationTimeout.code(),
                    Error::Recipe(_) | Error::NotACounter { .. } => ErrorCode::SystemError.code(),
                    Error::DisconnectedPastSessionTimeout { .. } => ErrorCode::SessionExpired.code(),
                }
            }
        }
    };
}

keeper_errors! {
    SystemError => SystemError, "system error";
    RuntimeInconsistency => RuntimeInconsistency, "runtime inconsistency";
    DataInconsistency => DataInconsistency, "data inconsistency";
    ConnectionLoss => ConnectionLoss, "connection loss";
    MarshallingError => MarshallingError, "marshalling error";
    Unimplemented => Unimplemented, "unimplemented";
    OperationTimeout => OperationTimeout, "operation timeout";
    BadArguments => BadArguments, "bad arguments";
    UnknownSession => UnknownSession, "unknown session";
    NewConfigNoQuorum => NewConfigNoQuorum, "no quorum of new config";
    ReconfigInProgress => ReconfigInProgress, "reconfig in progress";
    ApiError => ApiError, "API error";
    NoNode => NoNode, "node does not exist";
    NoAuth => NoAuth, "not authenticated";
    BadVersion => BadVersion, "bad version";
    NoChildrenForEphemerals => NoChildrenForEphemerals, "ephemeral nodes cannot have children";
    NodeExists => NodeExists, "node already exists";
    NotEmpty => NotEmpty, "directory not empty";
    SessionExpired => SessionExpired, "session expired";
    InvalidCallback => InvalidCallback, "invalid callback";
    InvalidAcl => InvalidAcl, "invalid ACL";
    AuthFailed => AuthFailed, "authentication failed";
    SessionMoved => SessionMoved, "session moved";
    NotReadOnly => NotReadOnly, "not a read-only call";
    EphemeralOnLocalSession => EphemeralOnLocalSession, "ephemeral on local session";
    NoWatcher => NoWatcher, "no watcher";
    RequestTimeout => RequestTimeout, "request timeout";
    ReconfigDisabled => ReconfigDisabled, "reconfig disabled";
    SessionClosedRequireSaslAuth => SessionClosedRequireSaslAuth, "session closed because client failed to authenticate";
    QuotaExceeded => QuotaExceeded, "quota exceeded";
    ThrottledOp => ThrottledOp, "op throttled";
}

impl Error {
    /// True for errors after which the operation may have been applied or not and the
    /// session is still usable once reconnected (CONNECTIONLOSS, OPERATIONTIMEOUT).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::OperationTimeout)
    }

    /// True when the session is gone for good.
    pub fn is_session_terminal(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired | Error::Closed | Error::AuthFailed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip() {
        for v in -130..0 {
            let e = Error::from_code(v);
            assert_eq!(e.code(), v, "{e:?}");
        }
        assert_eq!(Error::from_code(-101), Error::NoNode);
        assert_eq!(Error::from_code(-126), Error::Unknown(-126));
    }
}
