//! A snapshot file (`version-2/snapshot.<zxid>`, plain or `.gz`) as rzk finds it on
//! disk: read whole with `storage::snapshot::read_snapshot` (sessions, ACL cache, nodes,
//! seals, digest trailer), then loaded the way start-up loads it (`storage::open` + `Recovered::replay_log`:
//! snapshot candidates, `tree::TreeBuilder`, fallback to older snapshots).
//!
//! Input: first byte % 3 = 0: the rest is the plain file; 1: the rest is the file named
//! `.gz` (the gzip layer itself is fuzzed); 2: the rest is gzip-compressed here and
//! named `.gz` (the snapshot inside a valid gzip stream).
//!
//! Must hold: no panic; a bad file is a typed error naming the file; a snapshot that
//! reads completely writes back (`write_snapshot`) and reads back equal.
#![no_main]

use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use rzk_fuzz::fresh_dir;
use rzk_server::config::Config;
use rzk_server::storage;
use rzk_server::storage::files::Compression;
use rzk_server::storage::snapshot::{read_snapshot, write_snapshot};
use std::io::Write;

const ZXID: rzk_proto::Zxid = rzk_proto::Zxid(0x1_0000_0005);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = fresh_dir("snapshot");
    let vdir = dir.join("version-2");
    std::fs::create_dir_all(&vdir).expect("version dir");
    let (name, bytes) = match mode % 3 {
        0 => ("snapshot.100000005", rest.to_vec()),
        1 => ("snapshot.100000005.gz", rest.to_vec()),
        _ => {
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(rest).expect("gzip to memory");
            (
                "snapshot.100000005.gz",
                gz.finish().expect("gzip to memory"),
            )
        }
    };
    let path = vdir.join(name);
    std::fs::write(&path, &bytes).expect("write snapshot");
    let file = path.display().to_string();

    match read_snapshot(&path) {
        Ok(c) => {
            let out = fresh_dir("snapshot-rt");
            let vout = out.join("version-2");
            std::fs::create_dir_all(&vout).expect("version dir");
            let p =
                write_snapshot(&vout, ZXID, Compression::None, &c).expect("write snapshot back");
            let again = read_snapshot(&p).expect("written snapshot reads");
            assert_eq!(
                again.sessions, c.sessions,
                "snapshot sessions do not round-trip"
            );
            assert_eq!(again.acls, c.acls, "snapshot ACL cache does not round-trip");
            assert_eq!(again.nodes, c.nodes, "snapshot nodes do not round-trip");
            assert_eq!(
                again.trailer.digest, c.trailer.digest,
                "snapshot digest does not round-trip"
            );
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains(&file),
                "snapshot error does not name the file: {text}"
            );
        }
    }

    let mut cfg = Config {
        data_dir: dir.clone(),
        data_log_dir: dir.clone(),
        extended_types_enabled: mode & 4 != 0,
        ..Config::default()
    };
    cfg.unknown
        .insert("snapshot.trust.empty".to_string(), "false".to_string());
    if let Err(e) = storage::open(&cfg).and_then(|r| r.replay_log()) {
        let _ = e.to_string();
    }
});
