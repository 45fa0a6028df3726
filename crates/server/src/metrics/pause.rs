//! A pause monitor (ZooKeeper's `JvmPauseMonitor`): a thread sleeps 500 ms at a time
//! and records how much later than asked it woke, in `jvm_pause_time_ms`. A stopped
//! process, swapping, or a starved CPU shows up there, as GC pauses do in ZooKeeper.

use std::sync::Once;
use std::time::{Duration, Instant};

/// How long the monitor sleeps between checks.
pub const SLEEP: Duration = Duration::from_millis(500);
/// Pauses at least this long are logged at WARN.
const WARN_MS: i64 = 10_000;
/// Pauses at least this long are logged at INFO.
const INFO_MS: i64 = 1_000;

static STARTED: Once = Once::new();

/// Starts the process's monitor thread (once; later calls do nothing). It runs until the
/// process exits.
pub fn start() {
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("rzk-pause-monitor".into())
            .spawn(|| loop {
                let t0 = Instant::now();
                std::thread::sleep(SLEEP);
                let extra = t0.elapsed().saturating_sub(SLEEP);
                let ms = i64::try_from(extra.as_millis()).unwrap_or(i64::MAX);
                super::metrics().jvm_pause_time_ms.add(ms);
                if ms >= WARN_MS {
                    tracing::warn!("detected a pause of this process of approximately {ms} ms");
                } else if ms >= INFO_MS {
                    tracing::info!("detected a pause of this process of approximately {ms} ms");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the pause monitor thread: {e}");
        }
    });
}
