//! Local sessions (`localSessionsEnabled`, `localSessionsUpgradingEnabled`): ZooKeeper's
//! `LocalSessionTracker` with the `UpgradeableSessionTracker` rules of its
//! `LeaderSessionTracker` / `LearnerSessionTracker`.
//!
//! A local session is created by the ensemble member the client connects to, with no
//! createSession txn: it lives in `Shared::local_sessions` (a [`SessionTracker`] of its
//! own; ids come from the global table's generator, so they have ZooKeeper's layout —
//! the member's myid in the top byte — and never collide with a global id). Its reads,
//! writes and watches work as a global session's; only this member knows it: its
//! expiry is decided here (the connection is closed), its closeSession is answered here
//! without a txn, and another member treats it as unknown (the leader answers its
//! revalidation "invalid", so the client sees the session expire).
//!
//! A local session may not own ephemerals. Its first create of an ephemeral node
//! (create/create2, or a multi holding one) fails with EPHEMERALONLOCALSESSION (-120)
//! unless `localSessionsUpgradingEnabled`, in which case the session is upgraded first:
//! it leaves the local table and a createSession txn with the same id and timeout goes
//! through the write path ahead of the create (ZooKeeper's `checkUpgradeSession`).
//!
//! A standalone server has no local sessions (ZooKeeper's standalone server ignores the
//! key). Every role change forgets the local sessions (`crate::readonly::on_role`), as
//! ZooKeeper starts a new session tracker with each role.
//!
//! [`SessionTracker`]: super::SessionTracker

use crate::prep::WriteRequest;
use rzk_proto::multi::MultiOp;
use rzk_proto::opcode::CreateMode;
use rzk_proto::OpCode;

/// Whether `flags` of a create (create or create2, not createContainer or createTTL, as
/// ZooKeeper checks) make an ephemeral node.
fn ephemeral_create(op: i32, flags: i32) -> bool {
    (op == OpCode::Create.code() || op == OpCode::Create2.code())
        && CreateMode::from_flags(flags).is_some_and(CreateMode::is_ephemeral)
}

/// True when `req` creates an ephemeral node (itself or inside a multi): a local session
/// must be upgraded to a global one first, or the request fails with
/// EPHEMERALONLOCALSESSION.
pub fn needs_global_session(req: &WriteRequest) -> bool {
    match req {
        WriteRequest::Create { op, req } => ephemeral_create(*op, req.flags),
        WriteRequest::Multi(m) => m.ops.iter().any(|o| match o {
            MultiOp::Create(op, c) => ephemeral_create(*op, c.flags),
            _ => false,
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::multi::MultiRequest;
    use rzk_proto::records::CreateRequest;

    fn create(flags: i32) -> CreateRequest {
        CreateRequest {
            path: "/e".into(),
            data: Default::default(),
            acl: vec![],
            flags,
        }
    }

    #[test]
    fn only_ephemeral_creates_need_a_global_session() {
        for (op, flags, want) in [
            (OpCode::Create, 1, true),
            (OpCode::Create2, 3, true),
            (OpCode::Create, 0, false),
            (OpCode::Create2, 2, false),
            (OpCode::CreateContainer, 4, false),
        ] {
            let r = WriteRequest::Create {
                op: op.code(),
                req: create(flags),
            };
            assert_eq!(needs_global_session(&r), want, "{op:?} flags {flags}");
        }
        let multi = |flags| {
            WriteRequest::Multi(MultiRequest {
                ops: vec![MultiOp::Create(OpCode::Create.code(), create(flags))],
            })
        };
        assert!(needs_global_session(&multi(1)));
        assert!(!needs_global_session(&multi(0)));
        assert!(!needs_global_session(&WriteRequest::CloseSession));
    }
}
