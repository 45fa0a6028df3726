//! Answering reads from the local tree, with ACL checks and watch registration.
//! Must never change the tree.

use crate::auth::AuthInfo;
use crate::request::ReadRequest;
use crate::tree::DataTree;
use crate::watch::{ConnId, WatchManager};
use rzk_proto::ErrorCode;

/// Answers a read: the reply body on success, or the error code (header-only reply).
pub fn read(
    _tree: &DataTree,
    _watches: &mut WatchManager,
    _conn: ConnId,
    _auth: &AuthInfo,
    _session: i64,
    _req: &ReadRequest,
) -> Result<Vec<u8>, ErrorCode> {
    Err(ErrorCode::Unimplemented)
}
