//! Criterion benchmarks of the data tree's hot paths on a large tree: cloning (the write
//! pause of a background snapshot), applying creates and setData txns (alone and while
//! a snapshot clone is alive), and reads (get_data, stat, get_children).
//!
//!   cargo bench -p rzk-server --bench tree_ops
//!
//! `RZK_BENCH_ZNODES` sets the tree size (default 1,000,000: /bench/pNNNN/nNNNNNN with
//! 1000 children per parent and 64-byte payloads, as `examples/bigdb.rs` builds).
//! Only measures: never touches disk or the network.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rzk_proto::records::Acl;
use rzk_proto::txn::{CreateTxn, SetDataTxn, Txn, TxnHeader, TxnRecord};
use rzk_server::tree::DataTree;
use std::hint::black_box;

/// Children per parent znode.
const FANOUT: u64 = 1000;
/// Default number of znodes in the benchmark tree.
const DEFAULT_ZNODES: u64 = 1_000_000;
/// How many distinct existing paths the read/setData benchmarks cycle through.
const SAMPLE_PATHS: usize = 10_000;
/// Writes measured per fresh snapshot clone in `apply_set_data_during_snapshot`.
const WRITES_PER_CLONE: u64 = 1000;
/// A clone slower than this is a deep copy.
const SLOW_CLONE: std::time::Duration = std::time::Duration::from_millis(20);

fn rec(zxid: i64, txn: Txn) -> TxnRecord {
    TxnRecord {
        header: TxnHeader {
            client_id: 0x100,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            txn_type: txn.txn_type(),
        },
        txn,
        digest: None,
    }
}

fn create_txn(path: String, data: Bytes) -> Txn {
    Txn::Create(
        1,
        CreateTxn {
            path,
            data: data.into(),
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: -1,
        },
    )
}

struct Fixture {
    tree: DataTree,
    zxid: i64,
    parents: u64,
    /// Existing leaf paths, in a scattered order.
    paths: Vec<String>,
}

fn build(znodes: u64) -> Fixture {
    let mut tree = DataTree::new();
    let mut zxid = 0i64;
    let payload = Bytes::from(vec![b'x'; 64]);
    let mut apply = |tree: &mut DataTree, path: String, data: Bytes| {
        zxid += 1;
        tree.apply(&rec(zxid, create_txn(path, data)));
    };
    apply(&mut tree, "/bench".into(), Bytes::new());
    let parents = znodes.div_ceil(FANOUT).max(1);
    for p in 0..parents {
        apply(&mut tree, format!("/bench/p{p:04}"), Bytes::new());
    }
    let leaves = znodes.saturating_sub(parents + 1);
    for i in 0..leaves {
        let path = format!("/bench/p{:04}/n{:06}", i % parents, i / parents);
        apply(&mut tree, path, payload.clone());
    }
    // A deterministic scatter (multiplicative hash) over the leaves.
    let paths = (0..SAMPLE_PATHS as u64)
        .map(|k| {
            let i = k.wrapping_mul(2_654_435_761) % leaves.max(1);
            format!("/bench/p{:04}/n{:06}", i % parents, i / parents)
        })
        .collect();
    Fixture {
        tree,
        zxid: zxid + 1,
        parents,
        paths,
    }
}

fn bench(c: &mut Criterion) {
    let znodes = std::env::var("RZK_BENCH_ZNODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ZNODES);
    let t = std::time::Instant::now();
    let mut f = build(znodes);
    eprintln!(
        "tree_ops: built {} znodes in {:.1} s",
        f.tree.node_count(),
        t.elapsed().as_secs_f64()
    );

    let mut g = c.benchmark_group("tree_ops");
    g.sample_size(10);
    g.bench_function("clone", |b| {
        b.iter_with_large_drop(|| black_box(&f.tree).clone())
    });
    g.finish();

    // Reads first, on the tree exactly as built (the writes below grow it).
    let mut g = c.benchmark_group("tree_ops");
    let mut k = 0usize;
    g.bench_function("get_data", |b| {
        b.iter(|| {
            k = (k + 1) % f.paths.len();
            black_box(f.tree.get_data(&f.paths[k]))
        })
    });
    g.bench_function("stat", |b| {
        b.iter(|| {
            k = (k + 1) % f.paths.len();
            black_box(f.tree.stat(&f.paths[k]))
        })
    });
    g.bench_function("get_children_1000", |b| {
        b.iter(|| {
            k = (k + 1) % f.parents as usize;
            black_box(f.tree.get_children(&format!("/bench/p{k:04}")))
        })
    });
    let payload = Bytes::from(vec![b'y'; 64]);
    let mut n = 0u64;
    g.bench_function("apply_create", |b| {
        b.iter_batched(
            || {
                n += 1;
                f.zxid += 1;
                let path = format!("/bench/p{:04}/c{n:08}", n % f.parents);
                rec(f.zxid, create_txn(path, payload.clone()))
            },
            |r| black_box(f.tree.apply(&r)),
            BatchSize::SmallInput,
        )
    });
    let set_data = |zxid: &mut i64, paths: &[String], k: &mut usize| {
        *k = (*k + 1) % paths.len();
        *zxid += 1;
        rec(
            *zxid,
            Txn::SetData(SetDataTxn {
                path: paths[*k].clone(),
                data: payload.clone().into(),
                version: 1,
            }),
        )
    };
    let mut k = 0usize;
    g.bench_function("apply_set_data", |b| {
        b.iter_batched(
            || set_data(&mut f.zxid, &f.paths, &mut k),
            |r| black_box(f.tree.apply(&r)),
            BatchSize::SmallInput,
        )
    });
    // The same while a snapshot clone is alive: a persistent tree copies the paths it
    // writes to then. A fresh clone is taken (untimed) before every `WRITES_PER_CLONE`
    // writes, so most writes hit still-shared paths. Skipped when cloning is a deep
    // copy (then writes cost the same as without a snapshot, and re-cloning would take
    // minutes).
    let t = std::time::Instant::now();
    drop(black_box(f.tree.clone()));
    if t.elapsed() < SLOW_CLONE {
        g.bench_function("apply_set_data_during_snapshot", |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let snapshot = f.tree.clone();
                    let batch = (iters - done).min(WRITES_PER_CLONE);
                    let recs: Vec<TxnRecord> = (0..batch)
                        .map(|_| set_data(&mut f.zxid, &f.paths, &mut k))
                        .collect();
                    let t = std::time::Instant::now();
                    for r in &recs {
                        black_box(f.tree.apply(r));
                    }
                    total += t.elapsed();
                    done += batch;
                    drop(snapshot);
                }
                total
            })
        });
    } else {
        eprintln!("tree_ops: clone is slow (a deep copy): skipping apply_set_data_during_snapshot");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
