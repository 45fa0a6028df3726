//! Start-up progress for large databases: when loading a snapshot or reading the logs
//! takes long, say how far it got every [`REPORT_EVERY`], and say what it took at the
//! end (ZooKeeper logs "Snapshot loaded in … ms" and "… txns loaded in … ms" after the
//! fact; rzk also reports while it works, so a long start-up is never silent).
//!
//! Owns only the timing of those reports and their wording; recovery calls it.

use std::time::{Duration, Instant};

/// Interval between progress lines while one phase lasts.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);
/// Items (znodes, txns) between two looks at the clock.
const CHECK_EVERY_ITEMS: u64 = 4096;

/// Counts the items of one phase and says when a progress line is due.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    next_report: Instant,
    items: u64,
}

impl Progress {
    /// A phase starting at `now`.
    pub fn start(now: Instant) -> Progress {
        Progress {
            started: now,
            next_report: now + REPORT_EVERY,
            items: 0,
        }
    }

    /// Counts one item; true when a progress line is due (the clock is read once every
    /// few thousand items, `now` supplies it).
    pub fn item(&mut self, now: impl FnOnce() -> Instant) -> bool {
        self.items += 1;
        if !self.items.is_multiple_of(CHECK_EVERY_ITEMS) {
            return false;
        }
        let now = now();
        if now < self.next_report {
            return false;
        }
        self.next_report = now + REPORT_EVERY;
        true
    }

    /// Items counted so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Time since the phase started.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}

/// "42%" of `done` out of `total` bytes (`None` when the total is unknown or zero).
pub fn percent(done: u64, total: Option<u64>) -> Option<u64> {
    let total = total.filter(|t| *t > 0)?;
    Some((u128::from(done.min(total)) * 100 / u128::from(total)) as u64)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_at_most_every_interval_and_counts_every_item() {
        let t0 = Instant::now();
        let mut p = Progress::start(t0);
        let mut reports = 0;
        // 100k items over 5 s of fake time: due at 2 s and 4 s only.
        for i in 1..=100_000u64 {
            let now = t0 + Duration::from_micros(i * 50);
            if p.item(|| now) {
                reports += 1;
            }
        }
        assert_eq!(reports, 2);
        assert_eq!(p.items(), 100_000);
        assert_eq!(
            p.elapsed(t0 + Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn percent_and_sizes() {
        assert_eq!(percent(50, Some(200)), Some(25));
        assert_eq!(percent(300, Some(200)), Some(100));
        assert_eq!(percent(1, None), None);
        assert_eq!(percent(1, Some(0)), None);
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
