//! `storage::open` is the one way every configuration opens its data directory, and the
//! settings that an ensemble member used to ignore are honoured by one voter and by a
//! member of three alike: unfinished `snapshot.*.tmp` files are removed,
//! `snapshot.trust.empty` and `datadir.autocreate` decide what an empty or snapshot-less
//! directory means, a new database's `snapshot.0` follows `snapshot.compression.method`,
//! the log rolls at `txnLogSizeLimitInKb`, orphan sessions are closed through the write
//! path, and error transactions carry a digest.

mod support;

use rzk_proto::txn::Txn;
use rzk_server::config::Config;
use rzk_server::storage::files;
use rzk_server::storage::log_reader::LogIterator;
use rzk_server::storage::recovery::StartState;
use rzk_server::storage::{open, OpenError};
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::{fresh_dir, test_config, TestEnsemble, TestServer};
use std::path::Path;
use std::time::{Duration, Instant};
use support::ephemeral_create;

fn in_dir(mut c: Config, dir: &Path) -> Config {
    c.data_dir = dir.to_path_buf();
    c.data_log_dir = dir.to_path_buf();
    c
}

/// The same data directory as one voter and as member 1 of three.
fn both(dir: &Path) -> [(&'static str, Config); 2] {
    [
        ("one voter", in_dir(test_config(), dir)),
        (
            "member of three",
            in_dir(TestEnsemble::builder(3).build_configs().remove(0), dir),
        ),
    ]
}

fn with(mut c: Config, key: &str, value: &str) -> Config {
    c.unknown.insert(key.to_string(), value.to_string());
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn unfinished_snapshots_are_removed() {
    for (name, _) in both(Path::new("/")) {
        let d = fresh_dir();
        let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
        let v2 = files::ensure_version_dir(&d).unwrap();
        std::fs::write(v2.join("snapshot.5.tmp"), b"half a snapshot").unwrap();
        open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !v2.join("snapshot.5.tmp").exists(),
            "{name}: .tmp left behind"
        );
    }
}

#[test]
fn a_new_database_snapshot_follows_the_compression_setting() {
    for (name, _) in both(Path::new("/")) {
        let d = fresh_dir();
        let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
        let cfg = with(cfg, "zookeeper.snapshot.compression.method", "gz");
        let r = open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.report.state, StartState::NewEmpty, "{name}");
        let snap = files::version_dir(&d).join("snapshot.0.gz");
        let bytes = std::fs::read(&snap).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{name}: gzip stream");
        // And it opens again from that snapshot.
        let again = open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again.report.state, StartState::Loaded, "{name}");
    }
}

#[test]
fn autocreate_off_makes_an_empty_directory_untrusted() {
    for (name, _) in both(Path::new("/")) {
        let d = fresh_dir();
        let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
        let off = with(cfg.clone(), "zookeeper.datadir.autocreate", "false");
        let r = open(&off).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.report.state, StartState::Untrusted, "{name}");
        let d2 = fresh_dir();
        let on = in_dir(cfg, &d2);
        assert_eq!(
            open(&on).unwrap().report.state,
            StartState::NewEmpty,
            "{name}"
        );
    }
}

/// A data directory holding logs but no snapshot (written by one voter, then the
/// snapshots removed).
fn logs_without_snapshot() -> std::path::PathBuf {
    let d = fresh_dir();
    let mut server = TestServer::builder().data_dir(&d).start();
    runtime().block_on(async {
        let mut c = RawClient::connect(server.addr(), 5000).await;
        for i in 0..5 {
            assert_eq!(c.create(&format!("/n{i}"), b"x", 0).await.0, 0);
        }
    });
    server.stop();
    let v2 = files::version_dir(&d);
    for s in files::list_snapshots(&v2).unwrap() {
        std::fs::remove_file(&s.0.path).unwrap();
    }
    d
}

#[test]
fn trust_empty_snapshot_decides_whether_logs_without_a_snapshot_load() {
    for (name, _) in both(Path::new("/")) {
        let d = logs_without_snapshot();
        let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
        let err = open(&cfg).expect_err("logs without a snapshot are refused by default");
        assert!(matches!(err, OpenError::Recovery { .. }), "{name}: {err}");
        let trusted = with(cfg, "zookeeper.snapshot.trust.empty", "true");
        let r = open(&trusted).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            r.durable.log.len() >= 6,
            "{name}: the logged txns go to the core ({} txns)",
            r.durable.log.len()
        );
    }
}

/// `zookeeper.txnLogSizeLimitInKb=8` (for member `_id`, or a lone voter).
fn log_size_limit_8k(_id: u64, c: &mut Config) {
    c.unknown
        .insert("zookeeper.txnLogSizeLimitInKb".into(), "8".into());
}

fn count_logs(dir: &Path) -> usize {
    files::list_logs(&files::version_dir(dir)).unwrap().len()
}

/// Error txns in the logs of `dir`, and how many of them carry a digest.
fn error_txns(dir: &Path) -> (usize, usize) {
    let mut n = 0;
    let mut with_digest = 0;
    for e in LogIterator::open(&files::version_dir(dir), 0).unwrap() {
        let e = e.unwrap();
        if matches!(e.record.txn, Txn::Error(_)) {
            n += 1;
            with_digest += usize::from(e.record.digest.is_some());
        }
    }
    (n, with_digest)
}

/// Writes through `addr`: 200 creates of 200 bytes, and 3 setData on missing nodes
/// (error txns).
async fn write_load(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr, 10_000).await;
    for i in 0..200 {
        assert_eq!(c.create(&format!("/load{i}"), &[7u8; 200], 0).await.0, 0);
    }
    for i in 0..3 {
        assert!(c.set_data(&format!("/missing{i}"), b"x", -1).await.is_err());
    }
}

#[test]
fn one_voter_rolls_its_log_at_the_size_limit_and_digests_error_txns() {
    let mut server = TestServer::builder()
        .configure(|c| log_size_limit_8k(0, c))
        .start();
    runtime().block_on(write_load(server.addr()));
    server.stop();
    let d = server.data_dir();
    assert!(count_logs(d) > 2, "{} log files", count_logs(d));
    assert_eq!(error_txns(d), (3, 3), "(error txns, with a digest)");
}

#[test]
fn three_voters_roll_their_logs_at_the_size_limit_and_digest_error_txns() {
    let mut ensemble = TestEnsemble::builder(3)
        .configure(log_size_limit_8k)
        .start();
    let leader = ensemble.wait_serving();
    runtime().block_on(write_load(ensemble.member(leader).addr()));
    // Followers have it on disk once they acknowledged; let the last commits land.
    std::thread::sleep(Duration::from_millis(300));
    ensemble.stop();
    for d in ensemble.members().map(|(_, s)| s.data_dir()) {
        assert!(
            count_logs(d) > 2,
            "{}: {} log files",
            d.display(),
            count_logs(d)
        );
        assert_eq!(
            error_txns(d),
            (3, 3),
            "{}: (error txns, with a digest)",
            d.display()
        );
    }
}

#[test]
fn three_voters_close_orphan_sessions_through_the_write_path() {
    use rzk_server::storage::db::{save_snapshot, SnapshotOptions};
    use rzk_server::tree::DataTree;
    const ORPHAN: i64 = 0x0100_0000_dead_0001;
    let mut tree = DataTree::new();
    tree.apply(&ephemeral_create(ORPHAN, "/orphan"));
    let cfgs = TestEnsemble::builder(3).build_configs();
    for c in &cfgs {
        save_snapshot(&tree, &[], &c.data_dir, SnapshotOptions::default()).unwrap();
    }
    let mut ensemble = TestEnsemble::start_with(cfgs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ensemble
        .members()
        .any(|(_, s)| s.server().shared().tree().exists("/orphan"))
    {
        assert!(
            Instant::now() < deadline,
            "orphan ephemeral not removed everywhere"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ensemble.stop();
}
