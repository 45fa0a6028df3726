//! jemalloc's statistics on demand, for memory studies (feature `jemalloc-stats`, off by
//! default: jemalloc then counts every allocation).
//!
//! Start `rzk server` with `RZK_ALLOC_STATS=<file>`: each time `<file>` appears, it is
//! removed and jemalloc's statistics are written to stderr as one JSON object in one
//! write (`malloc_stats_print` with the merged arena's per-size-class table, without the
//! per-arena and mutex tables). `scripts/alloc-stats.py` turns the last one into the
//! table of docs/STORAGE.md §10: bytes in use, slabs and the unused part of them per size
//! class. Reading them at exit instead (`_RJEM_MALLOC_CONF=stats_print:true`) shows a
//! server that has already dropped its tree.

use std::ffi::{c_char, c_void, CStr};
use std::io::Write;
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
                let mut out = stats_json();
                out.push(b'\n');
                // One write: log lines from other threads cannot land inside it.
                let _ = std::io::stderr().lock().write_all(&out);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the allocator statistics thread");
    }
}

/// jemalloc's statistics as JSON.
fn stats_json() -> Vec<u8> {
    /// Appends one piece of jemalloc's output to the `Vec<u8>` behind `out`.
    unsafe extern "C" fn append(out: *mut c_void, piece: *const c_char) {
        // SAFETY: `out` is the `&mut Vec<u8>` passed below, alive and not otherwise used
        // during the call; jemalloc passes a NUL-terminated string.
        unsafe {
            let out = &mut *out.cast::<Vec<u8>>();
            out.extend_from_slice(CStr::from_ptr(piece).to_bytes());
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    // SAFETY: `append` matches jemalloc's callback type and only touches `out`, which
    // outlives the call; the options string is NUL-terminated.
    unsafe {
        tikv_jemalloc_sys::malloc_stats_print(
            Some(append),
            (&mut out as *mut Vec<u8>).cast(),
            c"Jdax".as_ptr(),
        )
    };
    out
}
