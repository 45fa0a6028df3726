//! jemalloc's statistics on demand, for memory studies (feature `jemalloc-stats`, off by
//! default: jemalloc then counts every allocation).
//!
//! Start the process with `RZK_ALLOC_STATS=<file>`: each time `<file>` appears, it is
//! removed and jemalloc's statistics are printed on stderr as one JSON object
//! (`malloc_stats_print` with the merged arena's per-size-class table and without the
//! per-arena and mutex tables). `scripts/alloc-stats.py` turns one into the table of
//! docs/STORAGE.md §10: bytes in use, slabs and the unused part of them per size class.
//! Reading them at exit instead (`_RJEM_MALLOC_CONF=stats_print:true`) shows a server
//! that has already dropped its tree.

use std::path::PathBuf;
use std::time::Duration;

/// How often the trigger file is looked for.
const POLL: Duration = Duration::from_millis(200);

/// Starts the watching thread when `RZK_ALLOC_STATS` names a file; otherwise nothing.
pub fn start() {
    let Some(trigger) = std::env::var_os("RZK_ALLOC_STATS").map(PathBuf::from) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("rzk-alloc-stats".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            if std::fs::remove_file(&trigger).is_ok() {
                // SAFETY: no callback (jemalloc writes to stderr itself), a NUL-terminated
                // options string, and jemalloc is the process allocator (feature
                // `jemalloc`, implied by `jemalloc-stats`).
                unsafe {
                    tikv_jemalloc_sys::malloc_stats_print(
                        None,
                        std::ptr::null_mut(),
                        c"Jdax".as_ptr(),
                    )
                };
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the allocator statistics thread");
    }
}
