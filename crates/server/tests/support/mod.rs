//! Fixtures shared by the server's integration tests. Servers, ensembles, temp dirs and
//! the raw protocol client are in `rzk-testkit` (`rzk_testkit::server`, `rzk_testkit::raw`).

use bytes::Bytes;
use rzk_proto::records::Acl;

/// The txn (zxid 1) creating an ephemeral `path` owned by `session`: applied to a tree
/// whose session table lacks `session`, it makes an orphan ephemeral.
#[allow(dead_code)] // not every test file that includes this module uses it
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

/// Reads `dir` as a restart does (`storage::open`, the one start-up path), then applies
/// every logged txn in order.
#[allow(dead_code)] // not every test file that includes this module reads a data dir
pub fn load(
    dir: &std::path::Path,
    extended_types: bool,
) -> Result<rzk_server::storage::Replayed, rzk_server::storage::OpenError> {
    let cfg = rzk_server::config::Config {
        data_dir: dir.to_path_buf(),
        data_log_dir: dir.to_path_buf(),
        extended_types_enabled: extended_types,
        ..rzk_server::config::Config::default()
    };
    rzk_server::storage::open(&cfg)?.replay_log()
}
