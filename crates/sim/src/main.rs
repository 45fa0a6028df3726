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
        let mut o = SimOptions::for_seed(seed);
        o.fault_commit_without_quorum = args.fault;
        let (r, trace) = rzk_sim::trace_seed(o);
        for l in trace {
            println!("{l}");
        }
        println!("{:?}", r.map_err(|f| f.violation));
        return;
    }
    let mut failed = Vec::new();
    let (mut committed, mut acked, mut crashes, mut partitions) = (0usize, 0usize, 0u32, 0u32);
    for &seed in &seeds {
        let mut o = SimOptions::for_seed(seed);
        o.fault_commit_without_quorum = args.fault;
        o.trace = args.trace || args.seed.is_some();
        match run_seed(o) {
            Ok(r) => {
                committed += r.committed;
                acked += r.acked_writes;
                crashes += r.crashes;
                partitions += r.partitions;
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
                println!(
                    "  replay: cargo run -p rzk-sim -- --seed {seed}{}",
                    if args.fault { " --fault" } else { "" }
                );
                failed.push(seed);
            }
        }
    }
    println!(
        "{} seeds, {} failed; {committed} txns committed, {acked} client writes acked, {crashes} crashes, {partitions} partitions",
        seeds.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("failing seeds: {:?}", &failed[..failed.len().min(20)]);
        std::process::exit(1);
    }
}
