//! Scheduler policy of the write path's threads (Linux only; elsewhere nothing).

/// Puts the calling thread in Linux's `SCHED_BATCH` policy (same nice value and CPU
/// share as before; the one difference is that its wake-ups do not preempt the thread
/// running on the CPU: it waits for that thread to block or to use up its slice).
///
/// Used for the driver (`rzk-quorum`), which every write wakes: each client request a
/// connection hands over makes it runnable. Under the default policy that wake-up
/// preempts the connection thread at once when they share a CPU, so the driver runs
/// once per request, with a context switch there and back each time. Under
/// `SCHED_BATCH` it runs when the connection thread has handed over all it had read,
/// and takes those jobs in one turn. Measured (docs/TESTING.md, session 19; create,
/// 64 sessions x 1 in flight, server on one CPU, `chrt -b` on the driver thread,
/// three alternated runs): 46-49 k/s against 38-40 k/s, p99 3.6-4.3 ms against
/// 4.6-4.9 ms. The disk and apply threads keep the default policy: they are woken
/// once per group commit, and a delay there holds every reply of the group.
///
/// A failure (a seccomp profile, a non-Linux system) only changes timing; it is logged
/// at debug level. ZooKeeper leaves its threads in the default policy.
pub fn batch_policy_for_current_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 names the calling thread; `param` is a valid sched_param that
        // lives for the call, which only reads it.
        let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if r != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot put the thread in SCHED_BATCH"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_calling_thread_and_only_it_goes_to_sched_batch() {
        // SAFETY: pid 0 names the calling thread; the call reads no memory.
        let caller = unsafe { libc::sched_getscheduler(0) };
        std::thread::spawn(|| {
            batch_policy_for_current_thread();
            // SAFETY: as above.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_BATCH);
        })
        .join()
        .unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, caller);
    }
}
