//! `rzk purge`: ZooKeeper's `PurgeTxnLog` (what `zkCleanup.sh` runs from cron): keep the
//! `-n` newest valid snapshots and the logs they need, remove older snapshots and logs.
//! The rule is the server's autopurge (`rzk_server::storage::purge`, docs/STORAGE.md).

use rzk_server::storage::purge;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `rzk purge dataLogDir [snapDir] -n count` (PurgeTxnLog's arguments).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The transaction log directory (zoo.cfg's dataLogDir, or dataDir without one: the
    /// directory that holds `version-2`).
    data_log_dir: PathBuf,
    /// The snapshot directory (zoo.cfg's dataDir), when it is not `data_log_dir`.
    snap_dir: Option<PathBuf>,
    /// How many of the newest snapshots to keep, with the logs they need (3 or more).
    #[arg(short = 'n', allow_hyphen_values = true)]
    count: String,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The count as PurgeTxnLog reads it (a Java `int`, at least 3), or its message.
fn parse_count(s: &str) -> Result<usize, String> {
    let n: i32 = s
        .parse()
        .map_err(|_| format!("'{s}' can not be parsed to integer."))?;
    if n < 3 {
        return Err("count should be greater than or equal to 3".into());
    }
    usize::try_from(n).map_err(|e| e.to_string())
}

/// Runs the purge; exit 0, or 1 when the count is not a number of at least 3, a
/// directory is missing, cannot be read or holds the other kind's files, or a file could
/// not be removed.
pub fn run(args: Args) -> ExitCode {
    let count = match parse_count(&args.count) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::from(1);
        }
    };
    let snap_dir = args.snap_dir.as_deref().unwrap_or(&args.data_log_dir);
    for dir in [&args.data_log_dir, &snap_dir.to_path_buf()] {
        if !dir.exists() {
            eprintln!("Path '{}' does not exist. ", absolute(dir).display());
            return ExitCode::from(1);
        }
    }
    // Logs among the snapshots, or snapshots among the logs: the directories are given
    // the wrong way round or mixed up; PurgeTxnLog refuses them too.
    if let Err(e) = rzk_server::storage::recovery::check_data_dirs(snap_dir, &args.data_log_dir) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    let plan = match purge::plan(snap_dir, &args.data_log_dir, count) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot read the data directories: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = false;
    // (Output errors, a closed pipe say, do not stop the purge half-way.)
    let mut out = std::io::stdout().lock();
    for f in plan.logs.iter().chain(plan.snapshots.iter()) {
        let mtime = std::fs::metadata(f)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let verb = if args.dry_run {
            "Would remove"
        } else {
            "Removing"
        };
        let _ = writeln!(
            out,
            "{verb} file: {}\t{}",
            crate::shell::java_date(mtime),
            f.display()
        );
        if !args.dry_run {
            if let Err(e) = std::fs::remove_file(f) {
                eprintln!("Failed to remove {}: {e}", f.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_is_checked_as_purge_txn_log_checks_it() {
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_count("2")
            .unwrap_err()
            .contains("greater than or equal to 3"));
        assert!(parse_count("x").unwrap_err().contains("can not be parsed"));
        assert!(parse_count("99999999999")
            .unwrap_err()
            .contains("can not be parsed"));
    }
}
