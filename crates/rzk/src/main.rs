//! The `rzk` binary: one executable with a subcommand per tool.
//!
//! Owns command-line parsing and dispatch only; each subcommand lives in its own module
//! (`server.rs`, and `shell.rs`, `bench.rs`, `dump.rs` for `log`/`snapshot`). To add a
//! subcommand: add `mod x;`, a variant to [`Command`] wrapping `x::Args`, and a match arm.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The process allocator: jemalloc (feature `jemalloc`, on by default). The write path
/// allocates a request's buffers on one thread and frees them on another (connection ->
/// driver -> disk -> applier); glibc malloc serves that pattern from its slow path
/// (`_int_malloc`, `malloc_consolidate`), which was the largest item in the driver
/// thread's profile. Measured in docs/TESTING.md §8.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (its `malloc_conf` symbol; the environment's
/// `_RJEM_MALLOC_CONF` still overrides). A background thread returns freed pages to the
/// system about a second after they are freed: without it jemalloc purges only while
/// the arena that freed them is busy, so an idle server kept the ~10 MiB per million
/// znodes that a snapshot load or a burst of requests left behind (measured in
/// docs/STORAGE.md §10).
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 43] = b"background_thread:true,dirty_decay_ms:1000\0";

#[cfg(feature = "jemalloc-stats")]
mod alloc_stats;
mod bench;
mod dump;
mod logging;
mod purge;
mod server;
mod shell;

#[derive(Debug, Parser)]
#[command(
    name = "rzk",
    version,
    about = "rzk: Apache ZooKeeper, rebuilt in Rust",
    after_help = logging::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server (standalone, or a quorum member with server.N lines in zoo.cfg).
    #[command(after_help = logging::HELP)]
    Server(server::Args),
    /// Transaction log tools (`rzk log dump FILE`).
    Log(dump::LogArgs),
    /// Snapshot tools (`rzk snapshot dump FILE`).
    Snapshot(dump::SnapshotArgs),
    /// Interactive / one-shot ZooKeeper shell (zkCli commands and output).
    Shell(shell::Args),
    /// Closed-loop load generator over the client protocol.
    Bench(bench::Args),
    /// Remove old snapshots and logs, keeping the newest -n (PurgeTxnLog, zkCleanup.sh).
    Purge(purge::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kerberos reads one krb5.conf, as Java's does: the one `-Djava.security.krb5.conf`
    // names (the server's or zkCli's JVM flags), else for the server /etc/krb5.conf
    // (Java never reads KRB5_CONFIG). The system's Kerberos library takes it from
    // KRB5_CONFIG, set here before any thread starts (logging, allocator statistics,
    // runtimes) and before the first Kerberos call; the server's name rules read the
    // default realm from the same file (rzk-server's auth/settings.rs).
    let krb5_conf = match &cli.command {
        Command::Server(_) => Some(server::krb5_conf()),
        Command::Shell(_) => shell::krb5_conf(),
        _ => None,
    };
    if let Some(conf) = krb5_conf {
        std::env::set_var("KRB5_CONFIG", conf);
    }
    // The shell is an interactive tool: it reports connection changes as zkCli's
    // `WATCHER::` lines, so it logs only when RUST_LOG/RZK_LOG ask for it.
    let shell_quiet = matches!(cli.command, Command::Shell(_))
        && logging::choose_filter(
            std::env::var(logging::PRIMARY_VAR).ok(),
            std::env::var(logging::ALIAS_VAR).ok(),
        )
        .source
        .is_none();
    if !shell_quiet {
        logging::init();
    }
    match cli.command {
        Command::Server(args) => {
            #[cfg(feature = "jemalloc-stats")]
            alloc_stats::start();
            server::run(args)
        }
        Command::Log(args) => dump::run_log(args),
        Command::Snapshot(args) => dump::run_snapshot(args),
        Command::Shell(args) => shell::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Purge(args) => purge::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_takes_zoo_cfg_positionally_or_by_flag() {
        let cli = Cli::try_parse_from(["rzk", "server", "conf/zoo.cfg"]).unwrap();
        assert!(format!("{:?}", cli.command).contains("conf/zoo.cfg"));
        let cli = Cli::try_parse_from(["rzk", "server", "--config", "conf/zoo.cfg"]).unwrap();
        assert!(format!("{:?}", cli.command).contains("conf/zoo.cfg"));
        assert!(Cli::try_parse_from(["rzk", "server", "-c", "a.cfg", "b.cfg"]).is_err());
    }
}
