//! Runs the pipelined per-session order checker against any servers.
//!
//! ```text
//! cargo run --release -p rzk-testkit --example fifo_check -- \
//!     --hosts 127.0.0.1:2181[,127.0.0.1:2182...] [--sessions 16] [--rounds 200] \
//!     [--batch 12] [--seed 1] [--move 0.1]
//! ```
//! Prints `rounds=N wrong=W ...` and exits 1 when a round was wrong.

use rzk_testkit::fifo::{run, FifoConfig};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cfg = FifoConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let parsed = match a.as_str() {
            "--hosts" => v
                .split(',')
                .map(|h| h.parse())
                .collect::<Result<Vec<_>, _>>()
                .map(|h| cfg.hosts = h)
                .map_err(|e| e.to_string()),
            "--sessions" => v
                .parse()
                .map(|n| cfg.sessions = n)
                .map_err(|e| e.to_string()),
            "--rounds" => v.parse().map(|n| cfg.rounds = n).map_err(|e| e.to_string()),
            "--batch" => v.parse().map(|n| cfg.batch = n).map_err(|e| e.to_string()),
            "--seed" => v.parse().map(|n| cfg.seed = n).map_err(|e| e.to_string()),
            "--move" => v
                .parse()
                .map(|p| cfg.move_probability = p)
                .map_err(|e| e.to_string()),
            _ => Err(format!("unknown argument {a}")),
        };
        if let Err(e) = parsed {
            eprintln!("fifo_check: {a} {v}: {e}");
            return ExitCode::from(2);
        }
    }
    match run(&cfg).await {
        Ok(r) => {
            for d in &r.differences {
                println!("difference: {d}");
            }
            println!("{r}");
            if r.wrong == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("fifo_check: {e}");
            ExitCode::from(2)
        }
    }
}
