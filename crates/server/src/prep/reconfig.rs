//! Prep of the reconfig request (opcode 16), ZooKeeper 3.8's `PrepRequestProcessor` for
//! `OpCode.reconfig`: the checks of [`crate::reconfig::request::prepare`] against the
//! `/zookeeper/config` node as it will be after the outstanding txns, then a `Reconfig`
//! txn (a `SetDataTxn` on `/zookeeper/config`, version -1, data = the new membership
//! text at version = the txn's zxid). The node's new state is outstanding in the
//! overlay like any other write's, so the predicted digest stays right.

use super::{header, Prep, Scratch};
use crate::auth::AuthInfo;
use crate::reconfig::request::{self, LeaderView, Membership};
use crate::reconfig::CONFIG_NODE;
use crate::tree::digest::DIGEST_VERSION;
use crate::tree::DataTree;
use rzk_proto::records::ReconfigRequest;
use rzk_proto::txn::{SetDataTxn, Txn, TxnDigest, TxnRecord};
use rzk_proto::{Data, ErrorCode, SessionId, Zxid};

impl Prep {
    /// The txn of a reconfig request at `zxid`: the `Reconfig` txn and the membership it
    /// installs when the request passes every check, else an error txn (the first failing
    /// check's code) and `None`. Like [`Prep::prepare`], the record must be proposed.
    #[allow(clippy::too_many_arguments)]
    #[must_use = "the prepared changes are outstanding: the record must be proposed"]
    pub fn prepare_reconfig(
        &mut self,
        tree: &DataTree,
        view: &LeaderView<'_>,
        session: SessionId,
        cxid: i32,
        req: &ReconfigRequest,
        auth: &AuthInfo,
        zxid: Zxid,
        time_ms: i64,
    ) -> (TxnRecord, Option<Membership>) {
        self.applied(tree.last_zxid());
        let Some(mut node) = self.record(tree, CONFIG_NODE) else {
            // Only a standalone server lacks the node, and prepare refuses it before.
            tracing::warn!("reconfig without a /zookeeper/config node");
            let code = ErrorCode::Unimplemented;
            return (
                self.error_record(tree, session, cxid, zxid, time_ms, code),
                None,
            );
        };
        let next = match request::prepare(view, req, &node.acl, auth, zxid) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(%session, cxid, "reconfig refused: {e}");
                let code = e.code();
                return (
                    self.error_record(tree, session, cxid, zxid, time_ms, code),
                    None,
                );
            }
        };
        let data = Data::from(next.text().into_bytes());
        node.data = data.clone();
        node.stat.version = -1;
        node.stat.mtime = time_ms;
        node.stat.mzxid = zxid.0;
        node.redigest(CONFIG_NODE);
        let mut s = Scratch::default();
        self.put(tree, &mut s, zxid, CONFIG_NODE, Some(node));
        self.pending_delta = self.pending_delta.wrapping_add(s.delta);
        self.in_flight.push_back(super::InFlight {
            zxid,
            digest_delta: s.delta,
            paths: smallvec::smallvec![std::sync::Arc::from(CONFIG_NODE)],
        });
        let txn = Txn::Reconfig(SetDataTxn {
            path: CONFIG_NODE.to_owned(),
            data,
            version: -1,
        });
        let rec = TxnRecord {
            header: header(session, cxid, zxid, time_ms, &txn),
            txn,
            digest: Some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest: tree.digest().wrapping_add(self.pending_delta),
            }),
        };
        (rec, Some(next))
    }
}
