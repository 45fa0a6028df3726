//! A server's life: serving, shutting down (drained in order by `Server::shutdown`),
//! halted (dropped without shutdown: a crash in tests, no more IO), or failed (a fatal
//! error such as an unwritable transaction log stopped it; the first reason is kept).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Shutdown and failure flags shared by every task of a server.
#[derive(Debug)]
pub struct Lifecycle {
    shutting_down: AtomicBool,
    halted: AtomicBool,
    /// Flips to `true` once when the server starts shutting down.
    shutdown: watch::Sender<bool>,
    fatal: Mutex<Option<String>>,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            shutting_down: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            fatal: Mutex::new(None),
        }
    }
}

impl Lifecycle {
    /// A receiver that sees `true` once shutdown begins (for `select!` in tasks).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// True once shutdown (or a halt, or a failure) began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Starts shutting the server down (idempotent).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    /// Records a fatal error (the first one wins) and starts shutting down.
    pub fn fail(&self, why: String) {
        crate::metrics::metrics().unrecoverable_error_count.inc();
        {
            let mut f = self.fatal.lock().unwrap_or_else(PoisonError::into_inner);
            if f.is_none() {
                *f = Some(why);
            }
        }
        self.begin_shutdown();
    }

    /// The fatal error that stopped the server, if any.
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Abandons the server as a crash would: the runtime stops without draining.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.begin_shutdown();
    }

    /// True if the server was abandoned by [`Lifecycle::halt`].
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }
}

/// Held by a thread the server cannot serve without (the quorum driver, the disk
/// writer, the applier) for as long as it runs. If the thread unwinds from a panic, the
/// guard's drop records a fatal error ([`Lifecycle::fail`]), so the server stops (the
/// `rzk server` process exits with status 1, naming it) instead of living on without
/// it, e.g. answering `ruok` and `srvr` while it refuses every session. For a tokio task
/// use [`critical_task`]: a task's future may be dropped by another thread that is
/// unwinding for its own reasons (a current-thread runtime dropped by a failing test).
/// A connection's own task is not critical: a panic there ends that connection only. ZooKeeper's
/// critical threads (`ZooKeeperCriticalThread.handleException`) stop the server the
/// same way.
#[derive(Debug)]
pub struct CriticalThread<'a> {
    lifecycle: &'a Lifecycle,
    name: &'static str,
}

impl<'a> CriticalThread<'a> {
    /// Guards the current thread or task, `name` in the fatal error ("the {name}
    /// panicked", e.g. `"rzk-quorum thread"`).
    pub fn new(lifecycle: &'a Lifecycle, name: &'static str) -> CriticalThread<'a> {
        CriticalThread { lifecycle, name }
    }
}

impl Drop for CriticalThread<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the {} panicked; stopping the server", self.name);
            self.lifecycle.fail(format!("the {} panicked", self.name));
        }
    }
}

/// Runs `task`, a tokio task the server cannot serve without (a client port's accept
/// loop, the container/TTL reaper): a panic inside it is caught where it happens and
/// recorded as a fatal error naming it ("the {name} panicked"), as [`CriticalThread`]
/// does for threads. Returns when `task` does (or at once after the panic).
pub async fn critical_task(
    lifecycle: &Lifecycle,
    name: &'static str,
    task: impl Future<Output = ()>,
) {
    if (CatchPanic {
        inner: Box::pin(task),
    })
    .await
    .is_err()
    {
        tracing::error!("the {name} panicked; stopping the server");
        lifecycle.fail(format!("the {name} panicked"));
    }
}

/// Polls `inner`, turning a panic in one of its polls into `Err`.
struct CatchPanic<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = Result<(), ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// The server's clocks: a monotonic one for session expiry and uptime (ms since start)
/// and the wall-clock time it started, to print monotonic times as dates.
#[derive(Debug)]
pub struct Clock {
    started: Instant,
    started_wall_ms: i64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            started: Instant::now(),
            started_wall_ms: wall_ms(),
        }
    }
}

impl Clock {
    /// Milliseconds on the server's monotonic clock (session expiry).
    pub fn now_ms(&self) -> i64 {
        self.ms_at(Instant::now())
    }

    /// `at` on the same clock as [`Clock::now_ms`], for a caller that has already read
    /// the time (no second clock reading).
    pub fn ms_at(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.started).as_millis() as i64
    }

    /// Wall-clock ms when the server started (session id seed).
    pub fn started_wall_ms(&self) -> i64 {
        self.started_wall_ms
    }

    /// Converts a monotonic-clock time to wall-clock ms (for dumps).
    pub fn to_wall_ms(&self, mono_ms: i64) -> i64 {
        self.started_wall_ms + mono_ms
    }
}

/// The time of one wake-up of a runtime thread, read once when it wakes: the txn
/// timestamps and per-write metrics of the batch it then handles cost no further clock
/// readings (on this kind of machine a clock reading is tens of nanoseconds, and a write
/// took six). `mono` is read at [`WakeClock::refresh`]; the wall clock (txn times, in
/// ms since the epoch) on first use after it.
#[derive(Debug, Clone, Copy)]
pub struct WakeClock {
    /// Monotonic time of the wake-up.
    pub mono: std::time::Instant,
    wall: Option<i64>,
}

impl WakeClock {
    /// A clock read now.
    pub fn new() -> WakeClock {
        WakeClock {
            mono: std::time::Instant::now(),
            wall: None,
        }
    }

    /// Reads the monotonic clock again; the wall clock is read on next use.
    pub fn refresh(&mut self) {
        self.mono = std::time::Instant::now();
        self.wall = None;
    }

    /// Wall-clock ms since the epoch ([`wall_ms`]) as of this wake-up.
    pub fn wall_ms(&mut self) -> i64 {
        *self.wall.get_or_insert_with(wall_ms)
    }
}

impl Default for WakeClock {
    fn default() -> Self {
        WakeClock::new()
    }
}

/// Wall-clock milliseconds since the epoch (txn times).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A guarded thread that panics fails the server (which then stops: `rzk server`
    /// exits on a fatal error); one that returns does not.
    #[test]
    fn a_critical_thread_that_panics_fails_the_server() {
        let lifecycle = Arc::new(Lifecycle::default());
        let l = lifecycle.clone();
        let ended = std::thread::spawn(move || {
            let _critical = CriticalThread::new(&l, "rzk-quorum thread");
        })
        .join();
        assert!(ended.is_ok());
        assert_eq!(lifecycle.fatal_error(), None);
        assert!(!lifecycle.is_shutting_down());
        let l = lifecycle.clone();
        let ended = std::thread::spawn(move || {
            let _critical = CriticalThread::new(&l, "rzk-quorum-apply thread");
            panic!("an invariant broke");
        })
        .join();
        assert!(ended.is_err());
        assert_eq!(
            lifecycle.fatal_error().as_deref(),
            Some("the rzk-quorum-apply thread panicked")
        );
        assert!(lifecycle.is_shutting_down());
        assert!(*lifecycle.subscribe().borrow());
    }

    /// A critical task that panics fails the server; one that returns does not, nor one
    /// whose runtime is dropped by a thread unwinding for its own reasons.
    #[test]
    fn a_critical_task_that_panics_fails_the_server() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lifecycle = Lifecycle::default();
        rt.block_on(critical_task(&lifecycle, "reaper", async {}));
        assert_eq!(lifecycle.fatal_error(), None);
        let lifecycle = Arc::new(Lifecycle::default());
        let l = lifecycle.clone();
        let ended = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let l2 = l.clone();
            rt.spawn(async move {
                critical_task(&l2, "accept loop", std::future::pending()).await;
            });
            rt.block_on(tokio::task::yield_now());
            panic!("the test itself failed");
        })
        .join();
        assert!(ended.is_err());
        assert_eq!(
            lifecycle.fatal_error(),
            None,
            "a pending task dropped by an unwinding thread"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lifecycle = Lifecycle::default();
        rt.block_on(critical_task(&lifecycle, "accept loop", async {
            tokio::task::yield_now().await;
            panic!("an invariant broke");
        }));
        assert_eq!(
            lifecycle.fatal_error().as_deref(),
            Some("the accept loop panicked")
        );
    }
}
