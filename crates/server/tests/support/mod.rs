//! Fixtures shared by the server's integration tests. Servers, ensembles, temp dirs and
//! the raw protocol client are in `rzk-testkit` (`rzk_testkit::server`, `rzk_testkit::raw`).

use bytes::Bytes;
use rzk_proto::records::Acl;

/// The txn (zxid 1) creating an ephemeral `path` owned by `session`: applied to a tree
/// whose session table lacks `session`, it makes an orphan ephemeral.
pub fn ephemeral_create(session: i64, path: &str) -> rzk_proto::txn::TxnRecord {
    use rzk_proto::txn::{CreateTxn, Txn, TxnHeader, TxnRecord};
    TxnRecord {
        header: TxnHeader {
            client_id: session,
            cxid: 1,
            zxid: 1,
            time: 1,
            txn_type: 1,
        },
        txn: Txn::Create(
            1,
            CreateTxn {
                path: path.into(),
                data: Bytes::new().into(),
                acl: Acl::open_unsafe(),
                ephemeral: true,
                parent_cversion: 1,
            },
        ),
        digest: None,
    }
}
