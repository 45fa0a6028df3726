//! Per-connection identity and ACL checks: the `ip`/`digest`/`super` ids a connection
//! holds, ACL matching, `auth` expansion and validation for create/setACL, getACL
//! redaction. Must never do IO or keep state beyond what a connection was given.

use rzk_proto::records::{Acl, Id};
use rzk_proto::ErrorCode;

/// What a connection has authenticated as. `ip:<addr>` is always present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub ids: Vec<Id>,
    pub is_super: bool,
}

impl AuthInfo {
    /// A connection from `addr` (textual IP address).
    pub fn for_ip(addr: &str) -> AuthInfo {
        AuthInfo {
            ids: vec![Id::new("ip", addr)],
            is_super: false,
        }
    }
    /// Handles an auth packet; `Err(AuthFailed)` for unknown schemes / bad data.
    pub fn add_auth(
        &mut self,
        _scheme: &str,
        _auth: &[u8],
        _super_digest: Option<&str>,
    ) -> Result<(), ErrorCode> {
        Err(ErrorCode::AuthFailed)
    }
}

/// Whether `auth` may do `perm` on a node with `acl`.
pub fn check_perm(_acl: &[Acl], _auth: &AuthInfo, _perm: i32) -> bool {
    true
}
