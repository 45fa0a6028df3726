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

/// The per-op results ZooKeeper gives a multi of a local session that holds an ephemeral
/// create when upgrading is off: its prep fails the first ephemeral create with
/// EPHEMERALONLOCALSESSION, so the ops before it are rolled back (0), that op fails and
/// the ops after it are RUNTIMEINCONSISTENCY (ZooKeeper's `validateCreateRequest` with the
/// exception `checkUpgradeSession` set). `None` when `req` is not such a multi. (An op
/// before the ephemeral create that would fail on its own is reported 0 here, where
/// ZooKeeper's prep would report its error: documented in docs/COMPATIBILITY.md.)
pub fn local_multi_refusal(req: &WriteRequest) -> Option<Vec<rzk_proto::multi::OpResult>> {
    use rzk_proto::multi::OpResult;
    let WriteRequest::Multi(m) = req else {
        return None;
    };
    let at = m.ops.iter().position(|o| match o {
        MultiOp::Create(op, c) => ephemeral_create(*op, c.flags),
        _ => false,
    })?;
    Some(
        (0..m.ops.len())
            .map(|i| match i.cmp(&at) {
                std::cmp::Ordering::Less => OpResult::error(rzk_proto::ErrorCode::Ok),
                std::cmp::Ordering::Equal => {
                    OpResult::error(rzk_proto::ErrorCode::EphemeralOnLocalSession)
                }
                std::cmp::Ordering::Greater => {
                    OpResult::error(rzk_proto::ErrorCode::RuntimeInconsistency)
                }
            })
            .collect(),
    )
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

    #[test]
    fn a_multi_fails_at_its_first_ephemeral_create() {
        use rzk_proto::multi::OpResult;
        use rzk_proto::ErrorCode as E;
        let op = |flags| MultiOp::Create(OpCode::Create.code(), create(flags));
        let m = WriteRequest::Multi(MultiRequest {
            ops: vec![op(0), op(1), op(3), op(0)],
        });
        assert_eq!(
            local_multi_refusal(&m),
            Some(vec![
                OpResult::error(E::Ok),
                OpResult::error(E::EphemeralOnLocalSession),
                OpResult::error(E::RuntimeInconsistency),
                OpResult::error(E::RuntimeInconsistency),
            ])
        );
        let plain = WriteRequest::Multi(MultiRequest {
            ops: vec![op(0), op(2)],
        });
        assert_eq!(local_multi_refusal(&plain), None);
        let create = WriteRequest::Create {
            op: OpCode::Create.code(),
            req: create(1),
        };
        assert_eq!(local_multi_refusal(&create), None);
    }
}
