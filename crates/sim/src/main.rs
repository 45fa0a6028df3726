//! `rzk-sim`: run the deterministic ensemble simulator for one seed (replay) or many.

use clap::Parser;
use rzk_sim::{run_seed, SimOptions};

#[derive(Parser, Debug)]
#[command(about = "Deterministic simulation of an rzk (ZAB) ensemble")]
struct Args {
    /// Replay one seed (prints the event trace on failure with --trace).
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many seeds, starting at --start.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Inject the test-only fault: leaders commit without a quorum.
    #[arg(long)]
    fault: bool,
    /// Whole-server mode: prep, tree apply, watches, per-session reply order and
    /// seeded clients on sessions, on top of the ZAB core.
    #[arg(long)]
    server: bool,
    /// Whole-server mode's injected bug: a read may overtake the same session's
    /// pending write (must be caught). Implies --server.
    #[arg(long)]
    fault_overtake: bool,
    /// Whole-server mode's injected bug: the leader accepts writes of expired sessions
    /// (must be caught). Implies --server.
    #[arg(long)]
    fault_closed_writes: bool,
    /// Whole-server mode's injected bug: a failing multi does not roll back the
    /// leader's prep overlay (must be caught). Implies --server.
    #[arg(long)]
    fault_multi: bool,
    /// Whole-server mode's injected bug: restarts accept log records with a bad
    /// checksum (must be caught). Implies --server.
    #[arg(long)]
    fault_bad_checksums: bool,
    /// Whole-server mode's injected bug: a notification does not first hand over its
    /// connection's held replies, so it can overtake an earlier write's reply (must be
    /// caught). Implies --server.
    #[arg(long)]
    fault_notify_overtakes: bool,
    /// Whole-server mode without apply chunks: each txn's answers go out as it is
    /// applied (replays seeds recorded before chunks were modelled).
    #[arg(long)]
    unchunked: bool,
    /// Whole-server mode without clients' closeSession (with --unchunked: seeds as
    /// recorded before session 32).
    #[arg(long)]
    no_client_close: bool,
    /// Whole-server mode without SetWatches: clients forget their watches on a
    /// disconnect.
    #[arg(long)]
    no_set_watches: bool,
    /// Whole-server mode as seeds were recorded before session 32: --unchunked
    /// --no-client-close --no-set-watches.
    #[arg(long)]
    as_recorded: bool,
    /// Hierarchical quorums: the voters in groups with weights (three layouts per
    /// ensemble size, by seed; one has a voter of weight 0).
    #[arg(long)]
    groups: bool,
    /// Keep and print the event trace of a failing seed.
    #[arg(long)]
    trace: bool,
    /// Print the whole trace of --seed even when it passes.
    #[arg(long)]
    dump: bool,
}

fn main() {
    let args = Args::parse();
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.start..args.start + args.seeds).collect(),
    };
    if let (Some(seed), true) = (args.seed, args.dump) {
        let mut o = options(&args, seed);
        o.fault_commit_without_quorum = args.fault;
        let (r, trace) = rzk_sim::trace_seed(o);
        for l in trace {
            println!("{l}");
        }
        println!("{:?}", r.map_err(|f| f.violation));
        return;
    }
    let started = std::time::Instant::now();
    let (mut replies, mut reads) = (0u64, 0u64);
    let (mut expiries, mut ephemerals, mut told) = (0u64, 0u64, 0u64);
    let (mut multis, mut multis_failed, mut torn) = (0u64, 0u64, 0u64);
    let (mut early, mut behind) = (0u64, 0u64);
    let (mut closes, mut closed, mut set_watches) = (0u64, 0u64, 0u64);
    let mut failed = Vec::new();
    let (mut committed, mut acked, mut crashes, mut partitions) = (0usize, 0usize, 0u32, 0u32);
    for &seed in &seeds {
        let mut o = options(&args, seed);
        o.trace = args.trace || args.seed.is_some();
        // A panic in the server code under test is a failing seed, named as such.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_seed(o)))
            .unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(Box::new(rzk_sim::SimFailure {
                    seed,
                    violation: rzk_sim::Violation {
                        at_ms: 0,
                        what: format!("panicked: {what}"),
                    },
                    trace: Vec::new(),
                }))
            });
        match run {
            Ok(r) => {
                committed += r.committed;
                acked += r.acked_writes;
                crashes += r.crashes;
                partitions += r.partitions;
                replies += r.replies;
                reads += r.reads_checked;
                expiries += r.expiries;
                ephemerals += r.ephemerals;
                told += r.expired_told;
                multis += r.multis;
                multis_failed += r.multis_failed;
                torn += r.torn_tails;
                early += r.released_early;
                behind += r.reads_behind_chunk;
                closes += r.closes_sent;
                closed += r.closes_done;
                set_watches += r.set_watches_sent;
                if args.seed.is_some() {
                    println!("seed {seed}: ok {r:?}");
                }
            }
            Err(f) => {
                if args.trace || args.seed.is_some() {
                    for l in &f.trace {
                        println!("{l}");
                    }
                }
                println!("seed {seed} FAILED: {}", f.violation);
                let flags: String = [
                    (args.fault, " --fault"),
                    (args.server, " --server"),
                    (args.fault_overtake, " --fault-overtake"),
                    (args.fault_closed_writes, " --fault-closed-writes"),
                    (args.fault_multi, " --fault-multi"),
                    (args.fault_bad_checksums, " --fault-bad-checksums"),
                    (args.fault_notify_overtakes, " --fault-notify-overtakes"),
                    (args.unchunked, " --unchunked"),
                    (args.no_client_close, " --no-client-close"),
                    (args.no_set_watches, " --no-set-watches"),
                    (args.as_recorded, " --as-recorded"),
                    (args.groups, " --groups"),
                ]
                .into_iter()
                .filter_map(|(on, flag)| on.then_some(flag))
                .collect();
                println!("  replay: cargo run -p rzk-sim -- --seed {seed}{flags}");
                failed.push(seed);
            }
        }
    }
    println!(
        "{} seeds, {} failed; {committed} txns committed, {acked} client writes acked, {crashes} crashes, {partitions} partitions",
        seeds.len(),
        failed.len()
    );
    let secs = started.elapsed().as_secs_f64();
    if o_server(&args) {
        println!("{replies} client replies checked, {reads} reads checked against the history");
        println!(
            "{expiries} sessions expired, {ephemerals} ephemerals created, {told} reconnects refused as expired"
        );
        println!("{multis} multi replies checked ({multis_failed} failed as a whole)");
        println!("{torn} crashes left a torn or flipped record at the end of the log");
        println!(
            "{early} held answers released before a later txn's notification, {behind} reads waited for an apply chunk's end"
        );
        println!("{closes} closeSession requests sent by clients, {closed} answered OK; {set_watches} SetWatches on reconnects");
    }
    println!(
        "{:.1} s, {:.1} seeds/s",
        secs,
        seeds.len() as f64 / secs.max(1e-9)
    );
    if !failed.is_empty() {
        println!("failing seeds: {:?}", &failed[..failed.len().min(20)]);
        std::process::exit(1);
    }
}

fn options(args: &Args, seed: u64) -> SimOptions {
    let mut o = SimOptions::for_seed(seed);
    o.fault_commit_without_quorum = args.fault;
    o.server = o_server(args);
    o.fault_reads_overtake = args.fault_overtake;
    o.fault_closed_writes = args.fault_closed_writes;
    o.fault_multi_no_rollback = args.fault_multi;
    o.fault_accept_bad_checksums = args.fault_bad_checksums;
    o.fault_notify_overtakes = args.fault_notify_overtakes;
    o.chunked_apply = !(args.unchunked || args.as_recorded);
    o.client_closes = !(args.no_client_close || args.as_recorded);
    o.client_set_watches = !(args.no_set_watches || args.as_recorded);
    o.groups = args.groups;
    o
}

/// Whole-server mode, asked for or implied by one of its injected bugs.
fn o_server(args: &Args) -> bool {
    args.server
        || args.fault_overtake
        || args.fault_closed_writes
        || args.fault_multi
        || args.fault_bad_checksums
        || args.fault_notify_overtakes
}
