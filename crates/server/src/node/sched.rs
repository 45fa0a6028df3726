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
/// 4.6-4.9 ms.
///
/// Also used for the connection threads (`rzk-net`, tokio's workers and blocking
/// threads: `rzk server`'s runtime calls it in `on_thread_start`). A client request
/// arriving, or the applier handing over replies, wakes them many times per group
/// commit; under the default policy each of those wake-ups preempts the disk, apply or
/// driver thread in the middle of its batch. Measured (docs/TESTING.md §8, session 35;
/// create, 32 sessions x 8 in flight, unpinned, four alternated pairs): 131-135 k/s
/// against 121-129 k/s at 9.1-9.7 against 9.5-10.4 µs of server CPU per create;
/// `scripts/bench-compare.sh` in one run: creates 1.11x, setData 1.04x, getData 0.99x
/// the build without it.
///
/// The disk and apply threads keep the default policy: they are woken once per group
/// commit, and a delay there holds every reply of the group. Threads inherit their
/// creator's policy, so those two are started from a thread in the default policy
/// (the server's start-up, not a runtime worker). Nor does a batch thread's wake-up
/// preempt the snapshot thread, so the snapshot's collecting, which never blocks,
/// yields the CPU every few thousand nodes (`tree/snapshot.rs`, session 36).
///
/// Only a thread in the default policy (`SCHED_OTHER`) is moved: a server an operator
/// started under `chrt` or systemd's `CPUSchedulingPolicy=` keeps that policy.
///
/// Returns whether the thread was moved. A failure (a seccomp profile) only changes
/// timing: it is logged at debug level and returned. On systems other than Linux
/// nothing is done (`Ok(false)`). ZooKeeper leaves its threads in the default policy.
///
/// # Errors
/// The `sched_setscheduler` error.
pub fn batch_policy_for_current_thread() -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pid 0 names the calling thread; the call reads no memory.
        if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
            return Ok(false);
        }
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 names the calling thread; `param` is a valid sched_param that
        // lives for the call, which only reads it.
        let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            tracing::debug!(error = %e, "cannot put the thread in SCHED_BATCH");
            return Err(e);
        }
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: pid 0 names the calling thread; the call reads no memory.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn the_calling_thread_and_only_it_goes_to_sched_batch() {
        let caller = policy();
        std::thread::spawn(|| {
            // A spawned thread inherits its creator's policy.
            let before = policy();
            match batch_policy_for_current_thread() {
                Ok(true) => assert_eq!(policy(), libc::SCHED_BATCH),
                Ok(false) => assert_ne!(before, libc::SCHED_OTHER),
                // A sandbox that refuses the call: the thread is as it was.
                Err(_) => assert_eq!(policy(), before),
            }
        })
        .join()
        .unwrap();
        assert_eq!(policy(), caller);
    }

    #[test]
    fn a_policy_chosen_by_the_operator_is_kept() {
        std::thread::spawn(|| {
            // SCHED_IDLE needs no privilege (as `chrt -i 0` would set it).
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: as in `batch_policy_for_current_thread`.
            let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
            assert!(!batch_policy_for_current_thread().unwrap());
            assert_eq!(policy(), libc::SCHED_IDLE);
        })
        .join()
        .unwrap();
    }
}
