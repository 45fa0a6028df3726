//! Builds a large data directory through the storage API and (optionally) times how long
//! `rzk server` takes to start on it, until it answers `ruok`. Also measures how long
//! cloning the tree takes (the write pause of a background snapshot).
//!
//!   cargo run --release -p rzk-server --example bigdb -- DIR [ZNODES] [TAIL_TXNS] [RZK_BINARY]
//!
//! DIR gets `version-2/snapshot.<zxid>` holding ZNODES znodes (/bench/pNNN/nNNNNN, 64
//! bytes each) and a log with TAIL_TXNS setData txns after it (replayed at start-up).
//! Only for measurements: never run against a data directory that matters (DIR is
//! emptied first).

use bytes::Bytes;
use rzk_proto::records::Acl;
use rzk_proto::txn::{CreateTxn, SetDataTxn, Txn, TxnHeader, TxnRecord};
use rzk_server::config::Config;
use rzk_server::storage::db::{save_snapshot, SnapshotOptions};
use rzk_server::storage::txnlog::{FileTxnLog, TxnLogConfig};
use rzk_server::tree::DataTree;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Children per parent znode.
const FANOUT: u64 = 1000;
const CLIENT_PORT: u16 = 22399;
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// setData txns applied to time writes with and without a live clone.
const WRITE_PROBE: u64 = 100_000;

fn rec(zxid: i64, txn: Txn, txn_type: i32) -> TxnRecord {
    TxnRecord {
        header: TxnHeader {
            client_id: 0x100,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            txn_type,
        },
        txn,
        digest: None,
    }
}

fn create(tree: &mut DataTree, zxid: &mut i64, path: &str, data: Bytes) {
    let parent = rzk_proto::path::parent(path);
    let cv = tree.stat(parent).map(|s| s.cversion).unwrap_or(0) + 1;
    *zxid += 1;
    let r = rec(
        *zxid,
        Txn::Create(
            1,
            CreateTxn {
                path: path.into(),
                data: data.into(),
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: cv,
            },
        ),
        1,
    );
    tree.apply(&r);
}

/// This process's resident set size in MiB (Linux), for the tree's memory footprint.
fn rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib >> 10)
}

fn ruok() -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", CLIENT_PORT)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"ruok").is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out == b"imok"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: bigdb DIR [ZNODES] [TAIL_TXNS] [RZK]")?,
    );
    let znodes: u64 = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tail: u64 = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50_000);
    let rzk = args.get(3).map(PathBuf::from);

    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let t = Instant::now();
    let mut tree = DataTree::new();
    let mut zxid = 0i64;
    let payload = Bytes::from(vec![b'x'; 64]);
    create(&mut tree, &mut zxid, "/bench", Bytes::new());
    let parents = znodes.div_ceil(FANOUT);
    for p in 0..parents {
        create(
            &mut tree,
            &mut zxid,
            &format!("/bench/p{p:04}"),
            Bytes::new(),
        );
    }
    for i in 0..znodes.saturating_sub(parents + 1) {
        let path = format!("/bench/p{:04}/n{:06}", i % parents, i / parents);
        create(&mut tree, &mut zxid, &path, payload.clone());
    }
    println!(
        "built tree: {} znodes, last zxid {}, in {:.1} s, process RSS {} MiB",
        tree.node_count(),
        tree.last_zxid(),
        t.elapsed().as_secs_f64(),
        rss_mib().unwrap_or(0)
    );

    for i in 0..3 {
        let t = Instant::now();
        let c = tree.clone();
        let clone_us = t.elapsed().as_secs_f64() * 1e6;
        let t = Instant::now();
        drop(c);
        println!(
            "clone {i}: {clone_us:.1} us (the snapshot's write pause), drop {:.1} us (off the lock)",
            t.elapsed().as_secs_f64() * 1e6
        );
    }
    // setData cost with and without a live clone (a persistent tree copies the paths it
    // writes while a snapshot still shares them).
    for live_clone in [false, true] {
        let snap = live_clone.then(|| tree.clone());
        let t = Instant::now();
        for i in 0..WRITE_PROBE {
            zxid += 1;
            let path = format!("/bench/p{:04}/n{:06}", i % parents, (i / parents) % FANOUT);
            let r = rec(
                zxid,
                Txn::SetData(SetDataTxn {
                    path,
                    data: Bytes::from_static(b"probe").into(),
                    version: 1,
                }),
                5,
            );
            tree.apply(&r);
        }
        println!(
            "{WRITE_PROBE} setData applied in {:.0} ms {} a live clone",
            t.elapsed().as_secs_f64() * 1000.0,
            if live_clone { "with" } else { "without" }
        );
        drop(snap);
    }

    let t = Instant::now();
    let path = save_snapshot(tree.clone(), &[], &dir, SnapshotOptions::default())?;
    println!(
        "snapshot {} ({} MiB) written in {:.1} s",
        path.display(),
        std::fs::metadata(&path)?.len() >> 20,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut log = FileTxnLog::open(&dir, TxnLogConfig::default())?;
    for i in 0..tail {
        zxid += 1;
        let path = format!("/bench/p{:04}/n{:06}", i % parents, (i / parents) % FANOUT);
        let r = rec(
            zxid,
            Txn::SetData(SetDataTxn {
                path,
                data: Bytes::from(format!("v{i}")).into(),
                version: -1,
            }),
            5,
        );
        let _ = log.append_record(&r)?;
    }
    log.close()?;
    println!(
        "log with {tail} setData txns written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(tree);

    let t = Instant::now();
    let cfg = Config {
        data_dir: dir.clone(),
        data_log_dir: dir.clone(),
        ..Config::default()
    };
    let loaded = rzk_server::storage::open(&cfg)?.replay_log()?;
    println!(
        "loaded through the storage API (snapshot + {tail} txns): {} znodes in {:.2} s, process RSS {} MiB",
        loaded.tree.node_count(),
        t.elapsed().as_secs_f64(),
        rss_mib().unwrap_or(0)
    );
    drop(loaded);

    let Some(rzk) = rzk else { return Ok(()) };
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={CLIENT_PORT}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
            dir.display()
        ),
    )?;
    let log_file = std::fs::File::create(dir.join("rzk.log"))?;
    let t = Instant::now();
    let mut child = Command::new(&rzk)
        .args(["server", "--config"])
        .arg(&cfg)
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file))
        .spawn()?;
    let mut up = false;
    while t.elapsed() < START_TIMEOUT {
        if let Some(status) = child.try_wait()? {
            println!("rzk server exited during start-up: {status}");
            break;
        }
        if ruok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    if up {
        println!(
            "rzk server answered ruok {secs:.2} s after it was started (see {}/rzk.log)",
            dir.display()
        );
        Ok(())
    } else {
        Err("rzk server did not start".into())
    }
}
