//! ZooKeeper's purge rule (PurgeTxnLog): keep N newest valid snapshots, the logs they
//! need (incl. the newest log starting at or before the oldest kept snapshot).

use rzk_server::storage::purge::{plan, purge, AutoPurge};
use std::fs;
use std::path::Path;
use std::time::Duration;

fn valid_snapshot(v2: &Path, zxid: i64) {
    // the quick check only needs >= 10 bytes ending in ustring "/"
    fs::write(
        v2.join(format!("snapshot.{zxid:x}")),
        b"ZKSN......\x00\x00\x00\x01/",
    )
    .unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn keeps_retained_snapshots_and_the_logs_they_need() {
    let d = tempfile::tempdir().unwrap();
    let v2 = d.path().join("version-2");
    fs::create_dir_all(&v2).unwrap();
    for z in [0x10, 0x20, 0x30, 0x40, 0x50] {
        valid_snapshot(&v2, z);
    }
    // an invalid (partial) snapshot newer than all: not counted, not deleted
    fs::write(v2.join("snapshot.60"), b"partial").unwrap();
    for z in [0x1, 0x15, 0x25, 0x2c, 0x35, 0x45, 0x55] {
        fs::write(v2.join(format!("log.{z:x}")), b"ZKLG").unwrap();
    }
    let p = plan(d.path(), d.path(), 3).unwrap();
    // retained: 0x50, 0x40, 0x30 -> Z = 0x30; log.2c is the newest starting <= Z
    assert_eq!(p.oldest_retained, Some(rzk_proto::Zxid(0x30)));
    purge(d.path(), d.path(), 3).unwrap();
    assert_eq!(
        names(&v2),
        [
            "log.2c",
            "log.35",
            "log.45",
            "log.55",
            "snapshot.30",
            "snapshot.40",
            "snapshot.50",
            "snapshot.60"
        ]
    );
    // purging again changes nothing
    let p = purge(d.path(), d.path(), 3).unwrap();
    assert!(p.logs.is_empty() && p.snapshots.is_empty());
}

#[test]
fn log_starting_exactly_at_z_is_the_one_kept() {
    let d = tempfile::tempdir().unwrap();
    let v2 = d.path().join("version-2");
    fs::create_dir_all(&v2).unwrap();
    for z in [0x10, 0x20, 0x30] {
        valid_snapshot(&v2, z);
    }
    valid_snapshot(&v2, 0x5);
    for z in [0x1, 0x8, 0x10, 0x18] {
        fs::write(v2.join(format!("log.{z:x}")), b"ZKLG").unwrap();
    }
    purge(d.path(), d.path(), 3).unwrap();
    assert_eq!(
        names(&v2),
        [
            "log.10",
            "log.18",
            "snapshot.10",
            "snapshot.20",
            "snapshot.30"
        ]
    );
}

#[test]
fn retain_count_is_at_least_three_and_separate_log_dir_works() {
    let d = tempfile::tempdir().unwrap();
    let l = tempfile::tempdir().unwrap();
    let v2 = d.path().join("version-2");
    let lv2 = l.path().join("version-2");
    fs::create_dir_all(&v2).unwrap();
    fs::create_dir_all(&lv2).unwrap();
    for z in [1, 2, 3, 4] {
        valid_snapshot(&v2, z);
        fs::write(lv2.join(format!("log.{z:x}")), b"ZKLG").unwrap();
    }
    let p = purge(d.path(), l.path(), 1).unwrap();
    assert_eq!(p.oldest_retained, Some(rzk_proto::Zxid(2)));
    assert_eq!(names(&v2), ["snapshot.2", "snapshot.3", "snapshot.4"]);
    assert_eq!(names(&lv2), ["log.2", "log.3", "log.4"]);
}

#[test]
fn nothing_happens_without_valid_snapshots_and_autopurge_runs_at_start() {
    let d = tempfile::tempdir().unwrap();
    let v2 = d.path().join("version-2");
    fs::create_dir_all(&v2).unwrap();
    fs::write(v2.join("log.1"), b"ZKLG").unwrap();
    assert_eq!(purge(d.path(), d.path(), 3).unwrap().oldest_retained, None);
    assert_eq!(names(&v2), ["log.1"]);
    assert!(AutoPurge::start(d.path().into(), d.path().into(), 3, 0)
        .unwrap()
        .is_none());
    for z in [0x10, 0x20, 0x30] {
        valid_snapshot(&v2, z);
    }
    fs::write(v2.join("snapshot.1"), b"old").unwrap();
    fs::write(v2.join("log.11"), b"ZKLG").unwrap();
    fs::write(v2.join("log.2"), b"ZKLG").unwrap();
    let a = AutoPurge::start_every(
        d.path().into(),
        d.path().into(),
        3,
        Duration::from_secs(3600),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while v2.join("snapshot.1").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(a);
    assert_eq!(
        names(&v2),
        [
            "log.11",
            "log.2",
            "snapshot.10",
            "snapshot.20",
            "snapshot.30"
        ]
    );
}
