//! The simulator as a test: a bounded set of seeds must keep every ZAB invariant, and the
//! checker must catch a leader that commits without a quorum.

use rzk_sim::{run_seed, SimOptions};

/// Seeds run by `cargo test` (debug build; a few seconds on 2 cores).
const SEEDS: u64 = 200;

/// Runs `seeds` with the options `opts` gives each; fails naming every failing seed and
/// its replay command (`flags`: the rzk-sim flags of `opts`). Returns the txns committed.
fn run_clean(seeds: std::ops::Range<u64>, flags: &str, opts: impl Fn(u64) -> SimOptions) -> usize {
    let mut failed = Vec::new();
    let mut committed = 0;
    for seed in seeds {
        match run_seed(opts(seed)) {
            Ok(r) => committed += r.committed,
            Err(f) => failed.push(format!(
                "seed {seed}: {} (replay: cargo run -p rzk-sim --{flags} --seed {seed})",
                f.violation
            )),
        }
    }
    assert!(failed.is_empty(), "failing seeds:\n{}", failed.join("\n"));
    committed
}

#[test]
fn two_hundred_seeds_keep_every_invariant() {
    let committed = run_clean(0..SEEDS, "", SimOptions::for_seed);
    assert!(
        committed > 10_000,
        "the runs must actually commit writes ({committed})"
    );
}

#[test]
fn checker_catches_a_leader_committing_without_quorum() {
    let mut caught = Vec::new();
    for seed in 0..40 {
        let mut o = SimOptions::for_seed(seed);
        o.fault_commit_without_quorum = true;
        if let Err(f) = run_seed(o) {
            caught.push(f.violation.what);
        }
    }
    assert!(
        caught.len() >= 3,
        "the injected fault should be caught on several seeds, got {caught:?}"
    );
    assert!(caught.iter().any(|w| w.contains("divergent histories")
        || w.contains("truncated committed")
        || w.contains("lost")));
}

#[test]
fn a_seed_replays_identically() {
    let a = run_seed(SimOptions::for_seed(12345)).map_err(|f| f.violation);
    let b = run_seed(SimOptions::for_seed(12345)).map_err(|f| f.violation);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (
            a.committed,
            a.acked_writes,
            a.crashes,
            a.partitions,
            a.events
        ),
        (
            b.committed,
            b.acked_writes,
            b.crashes,
            b.partitions,
            b.events
        )
    );
}

#[test]
fn seeds_with_hierarchical_quorums_keep_every_invariant() {
    // Groups with weights (`rzk_sim::sim_groups`): the same invariants, and no voter of
    // weight 0 ever leads (checked every tick).
    let committed = run_clean(0..120, " --groups", |seed| {
        let mut o = SimOptions::for_seed(seed);
        o.groups = true;
        o
    });
    assert!(
        committed > 5_000,
        "the runs must commit writes ({committed})"
    );
}
