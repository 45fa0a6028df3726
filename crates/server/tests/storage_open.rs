//! `storage::open` is the one way every configuration opens its data directory, and the
//! settings that an ensemble member used to ignore are honoured by one voter and by a
//! member of three alike: unfinished `snapshot.*.tmp` files are removed,
//! `snapshot.trust.empty` and `db.autocreate` decide what an empty or snapshot-less
//! directory means, `datadir.autocreate=false` refuses a missing `version-2` directory
//! (ZooKeeper's DatadirException), logs left in `dataDir` when `dataLogDir` points
//! elsewhere (or snapshots in `dataLogDir`) are refused as ZooKeeper's content checks
//! refuse them, epoch files older than the log (a restored copy) stop start-up, a new
//! database's `snapshot.0` follows `snapshot.compression.method`,
//! the log rolls at `txnLogSizeLimitInKb`, orphan sessions are closed through the write
//! path, and error transactions carry a digest. `digest.enabled=false` drops the digest
//! trailer of the snapshots written, a snapshot not matching its digest trailer is
//! counted as one mismatch, and a single voter (no `server.N` line, or one with
//! `standaloneEnabled=true`) serves without binding its quorum and election ports.

mod support;

use rzk_proto::txn::Txn;
use rzk_server::config::Config;
use rzk_server::storage::files;
use rzk_server::storage::log_reader::LogIterator;
use rzk_server::storage::recovery::StartState;
use rzk_server::storage::{open, OpenError};
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::{scratch_dir, test_config, ScratchDir, TestEnsemble, TestServer};
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

/// One voter and a member of three, each on its own fresh data directory.
fn each_in_scratch_dir() -> Vec<(&'static str, ScratchDir, Config)> {
    (0..2)
        .map(|i| {
            let d = scratch_dir();
            let (name, cfg) = both(&d).into_iter().nth(i).expect("two configurations");
            (name, d, cfg)
        })
        .collect()
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
    for (name, d, cfg) in each_in_scratch_dir() {
        let v2 = files::ensure_version_dir(&d).unwrap();
        std::fs::write(v2.join("snapshot.5.tmp"), b"half a snapshot").unwrap();
        std::fs::write(v2.join("snapshot.6.gz.tmp"), b"half a snapshot").unwrap();
        // Names rzk never writes a snapshot under stay (an operator's files).
        std::fs::write(v2.join("snapshot.tmp"), b"mine").unwrap();
        std::fs::write(v2.join("snapshot.x.tmp"), b"mine").unwrap();
        open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        for gone in ["snapshot.5.tmp", "snapshot.6.gz.tmp"] {
            assert!(!v2.join(gone).exists(), "{name}: {gone} left behind");
        }
        for kept in ["snapshot.tmp", "snapshot.x.tmp"] {
            assert!(v2.join(kept).exists(), "{name}: {kept} removed");
        }
    }
}

#[test]
fn a_new_database_snapshot_follows_the_compression_setting() {
    for (name, d, cfg) in each_in_scratch_dir() {
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
fn db_autocreate_off_makes_an_empty_directory_untrusted() {
    for (name, _d, cfg) in each_in_scratch_dir() {
        let off = with(cfg.clone(), "zookeeper.db.autocreate", "false");
        let r = open(&off).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.report.state, StartState::Untrusted, "{name}");
        let d2 = scratch_dir();
        let on = in_dir(cfg, &d2);
        assert_eq!(
            open(&on).unwrap().report.state,
            StartState::NewEmpty,
            "{name}"
        );
    }
}

#[test]
fn datadir_autocreate_off_refuses_a_missing_version_directory() {
    for (name, d, cfg) in each_in_scratch_dir() {
        let off = with(cfg, "zookeeper.datadir.autocreate", "false");
        let err = open(&off).expect_err(name).to_string();
        assert!(
            err.contains("datadir.autocreate") && err.contains("version-2"),
            "{name}: {err}"
        );
        assert!(
            !files::version_dir(&d).exists(),
            "{name}: nothing is created"
        );
        // Present (made by hand, as the message asks): a new, trusted empty database.
        files::ensure_version_dir(&d).unwrap();
        let r = open(&off).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.report.state, StartState::NewEmpty, "{name}");
    }
}

/// A data directory holding logs but no snapshot (written by one voter, then the
/// snapshots removed).
fn logs_without_snapshot() -> ScratchDir {
    let d = scratch_dir();
    let mut server = TestServer::builder().data_dir(d.path()).start();
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

#[test]
fn logs_left_in_data_dir_when_data_log_dir_is_added_are_refused() {
    for (name, _) in both(Path::new("/")) {
        // Written with dataLogDir = dataDir: logs and snapshots side by side.
        let d = logs_without_snapshot();
        let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
        let mut moved = cfg.clone();
        moved.data_log_dir = d.path().join("newlogs");
        let err = open(&moved).expect_err("logs in dataDir with dataLogDir elsewhere");
        let msg = err.to_string();
        assert!(
            msg.contains("transaction log file") && msg.contains("dataLogDir"),
            "{name}: {msg}"
        );
        // A snapshot in the log directory is refused the same way.
        let snaps = scratch_dir();
        let v2 = files::version_dir(snaps.path());
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("snapshot.5"), b"x").unwrap();
        let mut swapped = cfg.clone();
        swapped.data_dir = scratch_dir().path().to_path_buf();
        swapped.data_log_dir = snaps.path().to_path_buf();
        let err = open(&swapped).expect_err("a snapshot in dataLogDir");
        assert!(err.to_string().contains("snapshot file"), "{name}: {err}");
        // The same directory under a second name (a symlink) is one directory.
        let link = scratch_dir();
        let alias = link.path().join("alias");
        std::os::unix::fs::symlink(d.path(), &alias).unwrap();
        let mut aliased = with(cfg, "zookeeper.snapshot.trust.empty", "true");
        aliased.data_log_dir = alias;
        open(&aliased).unwrap_or_else(|e| panic!("{name}: symlinked dataLogDir: {e}"));
    }
}

/// A data directory of logs without a snapshot, the configuration `name` of [`both`] for
/// it (an empty snapshot trusted), its `version-2` folder and the epoch of its last
/// logged zxid: what the epoch-file tests start from.
fn logged_epoch_dir(name: &str) -> (ScratchDir, Config, std::path::PathBuf, u32) {
    let d = logs_without_snapshot();
    let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
    let cfg = with(cfg, "zookeeper.snapshot.trust.empty", "true");
    let v2 = files::version_dir(&d);
    let logged = open(&cfg).unwrap().durable.log.last().unwrap().zxid.epoch();
    (d, cfg, v2, logged)
}

#[test]
fn epoch_files_older_than_the_log_are_refused() {
    use rzk_server::storage::epoch_file;
    use rzk_server::zab::EpochKind;
    for (name, _) in both(Path::new("/")) {
        let (_d, cfg, v2, logged) = logged_epoch_dir(name);
        assert!(logged >= 1, "{name}: logged epoch {logged}");
        // Epoch files of an older copy: both behind the log.
        epoch_file::write(&v2, EpochKind::Current, logged - 1).unwrap();
        epoch_file::write(&v2, EpochKind::Accepted, logged - 1).unwrap();
        let err = open(&cfg).expect_err("acceptedEpoch older than the log");
        let msg = err.to_string();
        assert!(
            msg.contains("acceptedEpoch") && msg.contains("older than the last logged zxid"),
            "{name}: {msg}"
        );
        // currentEpoch alone behind (proposals logged during sync before NEWLEADER):
        // accepted with the older epoch kept.
        epoch_file::write(&v2, EpochKind::Accepted, logged).unwrap();
        let r = open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (r.durable.accepted_epoch, r.durable.current_epoch),
            (logged, logged - 1)
        );
        // Both removed: rebuilt from the last zxid.
        for k in [EpochKind::Current, EpochKind::Accepted] {
            std::fs::remove_file(v2.join(epoch_file::file_name(k))).unwrap();
        }
        let r = open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (r.durable.accepted_epoch, r.durable.current_epoch),
            (logged, logged)
        );
    }
}

/// Epoch files at the edge of positive zxids (a break-it review): above 0x7fffffff a
/// quorum member refuses them naming the file and a lone voter rebuilds them from its
/// log; at 0x7fffffff itself, the last epoch, a lone voter whose log is older rebuilds
/// them too (else no epoch would be left to lead with), a member keeps them.
#[test]
fn epoch_files_at_the_end_of_positive_zxids() {
    use rzk_proto::Zxid;
    use rzk_server::storage::epoch_file;
    use rzk_server::zab::EpochKind;
    for (name, _) in both(Path::new("/")) {
        let (_d, cfg, v2, logged) = logged_epoch_dir(name);
        let lone = name == "one voter";
        for (epoch, refused_by_member) in [
            (Zxid::MAX_EPOCH as u64 + 1, true),
            (Zxid::MAX_EPOCH as u64, false),
        ] {
            for k in [EpochKind::Current, EpochKind::Accepted] {
                std::fs::write(v2.join(epoch_file::file_name(k)), epoch.to_string()).unwrap();
            }
            match open(&cfg) {
                Ok(r) if lone => assert_eq!(
                    (r.durable.accepted_epoch, r.durable.current_epoch),
                    (logged, logged),
                    "{name}: epoch {epoch} rebuilt from the log"
                ),
                Ok(r) if !refused_by_member => {
                    assert_eq!(r.durable.accepted_epoch as u64, epoch, "{name}")
                }
                Err(e) if !lone && refused_by_member => {
                    assert!(e.to_string().contains("currentEpoch"), "{name}: {e}")
                }
                other => panic!("{name}: epoch {epoch}: {:?}", other.map(|_| ())),
            }
        }
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
    for e in LogIterator::open(&files::version_dir(dir), rzk_proto::Zxid(0)).unwrap() {
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

/// A malformed write sent to a follower (or an observer) goes to the leader as sent, whose
/// prep fails it and logs an error txn on every member: it takes a zxid, as a ZooKeeper
/// follower forwards every write unread. The follower answered such a write itself
/// (MARSHALLINGERROR after a sync), so the ensemble's zxids moved differently from
/// ZooKeeper's and its answer carried an older zxid.
#[test]
fn a_malformed_write_on_a_follower_is_an_error_txn_of_the_ensemble() {
    use rzk_proto::{ErrorCode, Jute, OpCode};
    let mut ensemble = TestEnsemble::builder(3).start();
    let leader = ensemble.wait_serving();
    let follower = ensemble
        .members()
        .map(|(id, _)| id)
        .find(|id| *id != leader)
        .expect("a follower");
    let addr = ensemble.member(follower).addr();
    let zxids = runtime().block_on(async move {
        let mut c = RawClient::connect(addr, 10_000).await;
        let create = |path: &str| {
            let mut b = Vec::new();
            path.to_owned().write(&mut b);
            b.extend_from_slice(&(-1i32).to_be_bytes()); // null data
            b.extend_from_slice(&1i32.to_be_bytes()); // one ACL: world:anyone, all
            31i32.write(&mut b);
            "world".to_owned().write(&mut b);
            "anyone".to_owned().write(&mut b);
            0i32.write(&mut b);
            b
        };
        let (before, _) = c.call(OpCode::Create.code(), &create("/before")).await;
        assert_eq!(before.err, 0);
        // A create whose body ends inside its path.
        let (bad, _) = c
            .call(OpCode::Create.code(), &[0, 0, 0, 9, b'/', b'x'])
            .await;
        assert_eq!(bad.err, ErrorCode::MarshallingError.code());
        let (after, _) = c.call(OpCode::Create.code(), &create("/after")).await;
        assert_eq!(after.err, 0);
        (before.zxid, bad.zxid, after.zxid)
    });
    assert_eq!(
        zxids.1,
        zxids.0 + 1,
        "the malformed write's zxid (before, bad, after): {zxids:?}"
    );
    assert_eq!(zxids.2, zxids.1 + 1, "(before, bad, after): {zxids:?}");
    std::thread::sleep(Duration::from_millis(300));
    ensemble.stop();
    for d in ensemble.members().map(|(_, s)| s.data_dir()) {
        assert_eq!(error_txns(d).0, 1, "{}: error txns", d.display());
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
        save_snapshot(tree.clone(), &[], &c.data_dir, SnapshotOptions::default()).unwrap();
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

/// `(name, digest trailer)` of every snapshot in `dir`'s `version-2`.
fn snapshot_digests(dir: &Path) -> Vec<(String, Option<i64>)> {
    use rzk_server::storage::snapshot::read_snapshot;
    let mut out = Vec::new();
    for e in std::fs::read_dir(files::version_dir(dir)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("snapshot.") {
            let c = read_snapshot(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push((name, c.trailer.digest.map(|d| d.zxid.0)));
        }
    }
    out
}

#[test]
fn digest_disabled_writes_snapshots_without_a_digest_trailer() {
    // `digest.enabled=false` (StorageSettings' `digest_disabled`) only drops the digest
    // block from the snapshots written: a new database's `snapshot.0` here.
    for (name, _) in both(Path::new("/")) {
        for (enabled, want) in [("true", Some(0)), ("false", None)] {
            let d = scratch_dir();
            let cfg = both(&d).into_iter().find(|(n, _)| *n == name).unwrap().1;
            let cfg = with(cfg, "zookeeper.digest.enabled", enabled);
            let r = open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.report.state, StartState::NewEmpty, "{name}");
            assert_eq!(
                snapshot_digests(&d),
                vec![("snapshot.0".to_string(), want)],
                "{name}: digest.enabled={enabled}"
            );
        }
    }
}

/// A data directory holding one complete snapshot (its digest at its own zxid, 1) of a
/// tree with `/orphan`; with `tamper`, the node's data is changed after the digest was
/// taken (same name, same trailer).
fn snapshot_dir(tamper: bool) -> ScratchDir {
    use rzk_proto::SessionId;
    use rzk_server::storage::db::{save_snapshot, SnapshotOptions};
    use rzk_server::storage::snapshot::{read_snapshot, write_snapshot};
    use rzk_server::tree::DataTree;
    const OWNER: i64 = 0x0100_0000_dead_0002;
    let mut tree = DataTree::new();
    tree.apply(&ephemeral_create(OWNER, "/orphan"));
    let d = scratch_dir();
    let snap = save_snapshot(
        tree.clone(),
        &[(SessionId(OWNER), 30_000)],
        &d,
        SnapshotOptions::default(),
    )
    .unwrap();
    let mut c = read_snapshot(&snap).unwrap();
    assert_eq!(c.trailer.digest.as_ref().map(|t| t.zxid.0), Some(1));
    if tamper {
        let n = c.nodes.iter_mut().find(|n| n.path == "/orphan").unwrap();
        n.data = rzk_proto::Data::from(b"changed".to_vec());
        std::fs::remove_file(&snap).unwrap();
        write_snapshot(
            snap.parent().unwrap(),
            rzk_proto::Zxid(1),
            files::Compression::None,
            &c,
        )
        .unwrap();
    }
    d
}

#[test]
fn a_snapshot_not_matching_its_digest_trailer_is_one_mismatch_for_every_configuration() {
    // As ZooKeeper's DataTree.compareSnapshotDigests: the load goes on and the mismatch
    // is counted (digest_mismatches_count in mntr).
    for (tamper, want) in [(false, 0), (true, 1)] {
        let d = snapshot_dir(tamper);
        for (name, cfg) in both(&d) {
            let r = open(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.report.state, StartState::Loaded, "{name}");
            assert!(r.tree.exists("/orphan"), "{name}");
            assert_eq!(
                r.tree.digest_mismatches(),
                want,
                "{name}: tampered={tamper}"
            );
        }
    }
}

/// Whether `port` on 127.0.0.1 can be bound now (nobody listens on it).
fn bindable(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn a_single_voter_serves_and_binds_no_election_or_quorum_port() {
    // Ports of this test's range (32500-32999); free before the server starts.
    let cases: [(&str, Option<(u16, u16)>); 2] = [
        ("no server.N line", None),
        ("server.1 line, standaloneEnabled", Some((32511, 32512))),
    ];
    for (name, ports) in cases {
        let (p1, p2) = ports.unwrap_or((32513, 32514));
        assert!(
            bindable(p1) && bindable(p2),
            "{name}: ports busy before start"
        );
        let mut server = TestServer::builder()
            .configure(|c| {
                if ports.is_some() {
                    let line = format!(
                        "dataDir=/unused\ninitLimit=5\nsyncLimit=2\nstandaloneEnabled=true\n\
                         server.1=127.0.0.1:{p1}:{p2}\n"
                    );
                    let parsed = Config::from_properties(&line).expect("server line parses");
                    c.servers = parsed.servers;
                    c.standalone_enabled = true;
                    c.my_id = Some(rzk_proto::ServerId(1));
                }
            })
            .start();
        assert_eq!(server.config().servers.len(), usize::from(ports.is_some()));
        assert!(bindable(p1), "{name}: quorum port {p1} bound");
        assert!(bindable(p2), "{name}: election port {p2} bound");
        let srvr = rzk_testkit::server::four_letter(server.addr(), "srvr").unwrap();
        assert!(srvr.contains("Mode: standalone"), "{name}: {srvr}");
        let created = runtime().block_on(async {
            let mut c = RawClient::connect(server.addr(), 10_000).await;
            c.create("/single", b"x", 0).await
        });
        assert_eq!(created, (0, "/single".to_string()), "{name}");
        assert!(
            bindable(p1) && bindable(p2),
            "{name}: a peer port bound while serving"
        );
        server.stop();
    }
}
