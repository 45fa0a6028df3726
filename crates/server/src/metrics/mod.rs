//! Server metrics under ZooKeeper 3.8's names: the counters and summaries of its
//! `ServerMetrics`, the response-size gauges of its `ServerStats`, a process pause
//! monitor, and the Prometheus endpoint of its `PrometheusMetricsProvider`.
//!
//! Owns the numbers only; it never blocks a request: recording is a few relaxed atomic
//! operations (a summary set finds its member in a per-thread cache, without a lock), no
//! allocation after a thread's first use of a key. Like ZooKeeper's `ServerMetrics.getMetrics()`, the registry is one per
//! process: rzk runs one server per process (in-process tests that start several share
//! it, as ZooKeeper's would).

pub mod hooks;
pub mod ops;
pub mod pause;
pub mod prometheus;
pub mod registry;
pub mod settings;
pub mod summary;

pub use registry::{Counter, ServerMetrics};

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::LazyLock;

static METRICS: LazyLock<ServerMetrics> = LazyLock::new(ServerMetrics::new);
static RESPONSE_SIZES: ByteSizes = ByteSizes::new();

/// The process's metrics (ZooKeeper's `ServerMetrics.getMetrics()`).
#[inline]
pub fn metrics() -> &'static ServerMetrics {
    &METRICS
}

/// Last, smallest and largest of some sizes in bytes (ZooKeeper's `BytesStats`, for
/// client replies and proposals): -1 until the first.
#[derive(Debug)]
pub struct ByteSizes {
    last: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
}

impl ByteSizes {
    /// Nothing recorded yet.
    pub const fn new() -> ByteSizes {
        ByteSizes {
            last: AtomicI64::new(-1),
            min: AtomicI64::new(-1),
            max: AtomicI64::new(-1),
        }
    }

    /// Records one size.
    #[inline]
    pub fn record(&self, bytes: usize) {
        let b = bytes as i64;
        self.last.store(b, Ordering::Relaxed);
        self.max.fetch_max(b, Ordering::Relaxed);
        // -1 means "none yet": the first size replaces it.
        let _ = self
            .min
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (m < 0 || b < m).then_some(b)
            });
    }

    /// (last, min, max), -1 each before the first.
    pub fn get(&self) -> (i64, i64, i64) {
        (
            self.last.load(Ordering::Relaxed),
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
        )
    }

    /// Back to "none yet" (`srst`).
    pub fn reset(&self) {
        self.last.store(-1, Ordering::Relaxed);
        self.min.store(-1, Ordering::Relaxed);
        self.max.store(-1, Ordering::Relaxed);
    }
}

impl Default for ByteSizes {
    fn default() -> Self {
        ByteSizes::new()
    }
}

/// The process's reply sizes.
#[inline]
pub fn response_sizes() -> &'static ByteSizes {
    &RESPONSE_SIZES
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether the registry records (false with ZooKeeper's NullMetricsProvider: the hooks
/// on the request and write paths return at once, `mntr` prints no registry keys).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns recording on or off for the process (at start-up, from `metricsProvider.className`).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

static TLS_HANDSHAKES: AtomicI64 = AtomicI64::new(0);

/// A client TLS handshake under way (ZooKeeper's `outstanding_tls_handshake`): counted
/// while the guard lives.
#[derive(Debug)]
pub struct TlsHandshake(());

impl TlsHandshake {
    /// Counts one handshake until the guard is dropped.
    pub fn begin() -> TlsHandshake {
        TLS_HANDSHAKES.fetch_add(1, Ordering::Relaxed);
        TlsHandshake(())
    }
}

impl Drop for TlsHandshake {
    fn drop(&mut self) {
        TLS_HANDSHAKES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Client TLS handshakes under way.
pub fn tls_handshakes_in_flight() -> i64 {
    TLS_HANDSHAKES.load(Ordering::Relaxed).max(0)
}

/// Zeroes the registry and the reply sizes (`srst`).
pub fn reset() {
    METRICS.reset();
    RESPONSE_SIZES.reset();
    hooks::PROPOSAL_SIZES.reset();
    ops::reset();
}
