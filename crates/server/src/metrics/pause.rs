//! A pause monitor (ZooKeeper's `JvmPauseMonitor`, started as ZooKeeper starts it: only
//! with `jvm.pause.monitor=true`): a thread sleeps `jvm.pause.sleep.time.ms` at a time
//! and records how much later than asked it woke, in `jvm_pause_time_ms`; a wake-up
//! later than `jvm.pause.info-threshold.ms` / `jvm.pause.warn-threshold.ms` is logged at
//! INFO / WARN. A stopped process, swapping, or a starved CPU shows up there, as GC
//! pauses do in ZooKeeper.

use crate::config::PauseMonitorSettings;
use std::sync::Once;
use std::time::{Duration, Instant};

static STARTED: Once = Once::new();

/// Starts the process's monitor thread with `settings` (once; later calls do nothing).
/// It runs until the process exits. A sleep time below 1 ms starts nothing (a warning):
/// ZooKeeper's monitor would spin with 0 and stop at once with a negative time.
pub fn start(settings: PauseMonitorSettings) {
    STARTED.call_once(|| {
        let Some(sleep) = u64::try_from(settings.sleep_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis)
        else {
            tracing::warn!(
                "jvm.pause.sleep.time.ms={} is not a positive time: the pause monitor is not started",
                settings.sleep_ms
            );
            return;
        };
        tracing::info!(
            "starting the pause monitor: sleeps {} ms, logs pauses over {} ms at INFO and over {} ms at WARN",
            settings.sleep_ms,
            settings.info_ms,
            settings.warn_ms
        );
        let spawned = std::thread::Builder::new()
            .name("rzk-pause-monitor".into())
            .spawn(move || loop {
                let t0 = Instant::now();
                std::thread::sleep(sleep);
                let extra = t0.elapsed().saturating_sub(sleep);
                let ms = i64::try_from(extra.as_millis()).unwrap_or(i64::MAX);
                super::metrics().jvm_pause_time_ms.add(ms);
                if ms > settings.warn_ms {
                    tracing::warn!("detected a pause of this process of approximately {ms} ms");
                } else if ms > settings.info_ms {
                    tracing::info!("detected a pause of this process of approximately {ms} ms");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the pause monitor thread: {e}");
        }
    });
}
