//! Helpers shared by the fuzz targets in `fuzz_targets/`: a scratch directory for the
//! targets that feed their input as a file (transaction logs, snapshots, myid), a
//! single-threaded tokio runtime for the decoders that read async streams, and a
//! tiny cursor for splitting one input into fields.
//!
//! Nothing here decides what is valid: the targets call rzk's own decoders.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory private to this fuzzing process (`/dev/shm/rzk-fuzz-<pid>` when
/// `/dev/shm` exists, so the fsyncs of the storage code cost nothing; else
/// `$TMPDIR/rzk-fuzz-<pid>`), created on first use. libFuzzer runs one input at a time per process, so targets may reuse
/// fixed file names inside it.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("rzk-fuzz-{}", std::process::id()));
        // A leftover of an earlier process with the same pid is reused.
        std::fs::create_dir_all(&d).expect("create fuzz scratch dir");
        d
    })
}

/// Runs a future to completion on a process-wide current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
    .block_on(f)
}

/// Splits fuzz input into fields without failing: missing bytes read as zero.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Cursor<'a> {
        Cursor { data }
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next big-endian u16 (zeros past the end).
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// An empty directory `name` under [`scratch_dir`] (removed and created again).
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = scratch_dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create fuzz dir");
    d
}
