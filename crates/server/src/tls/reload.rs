//! Certificate reloading (`client.certReload` for the client port's `ssl.*` stores,
//! `sslQuorumReloadCertFiles` for the peer ports' `ssl.quorum.*` stores; ZooKeeper's
//! `X509Util.enableCertFileReloading`): when a key or trust store file changes on disk,
//! the rustls configurations are built again from the same settings and every new
//! connection takes the new ones; connections already open keep theirs.
//!
//! Owns [`Live`] (the configuration a connection takes) and the watcher task. The
//! watcher compares each store file's metadata (modification time, size, inode, change
//! time, following symbolic links, so a Kubernetes-style `..data` link swap counts) every
//! [`POLL`]; ZooKeeper watches the files' directories with the JVM's `WatchService`
//! instead. A store that cannot be read after a change (half written, wrong password)
//! keeps the previous configuration with a warning naming the key, and is tried again at
//! the next change; a change while one is being read is picked up at the next poll.

use crate::tls::TlsError;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

/// How often the watcher looks at the store files.
pub const POLL: Duration = Duration::from_millis(500);

/// A TLS configuration a reload may replace: each new connection takes the current one
/// with [`Live::get`].
#[derive(Debug)]
pub struct Live<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Live<T> {
    /// A configuration, current until [`Live::set`].
    pub fn new(v: Arc<T>) -> Live<T> {
        Live {
            current: RwLock::new(v),
        }
    }

    /// The configuration for a new connection.
    pub fn get(&self) -> Arc<T> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the configuration for connections made from now on.
    pub fn set(&self, v: Arc<T>) {
        match self.current.write() {
            Ok(mut g) => *g = v,
            Err(poisoned) => *poisoned.into_inner() = v,
        }
    }
}

/// What identifies a file's content without reading it; `None`: it cannot be read now.
type Stamp = Option<(i64, i64, u64, u64, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.mtime(),
        m.mtime_nsec(),
        m.len(),
        m.ino(),
        m.ctime_nsec() as u64,
    ))
}

/// Starts the watcher of `files` (the key and trust stores and their password files) on
/// the current tokio runtime. When any of them changes it calls `rebuild` (on a
/// blocking thread: it reads the stores again, errors naming the key) and hands the
/// result to `install`; an error is logged with `what` (`ssl.` or `ssl.quorum.`) and the
/// configuration in use stays. The task ends when `owner` is gone (the server that used
/// the configurations has stopped) or the runtime stops. Nothing is started when
/// `files` is empty.
///
/// Panics if called outside a tokio runtime.
pub fn watch<O, T>(
    what: &'static str,
    files: Vec<PathBuf>,
    owner: Weak<O>,
    rebuild: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    install: impl Fn(&O, T) + Send + 'static,
) where
    O: Send + Sync + 'static,
    T: Send + 'static,
{
    if files.is_empty() {
        return;
    }
    let rebuild = Arc::new(rebuild);
    tokio::spawn(async move {
        let mut seen: Vec<Stamp> = files.iter().map(stamp).collect();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if owner.strong_count() == 0 {
                return;
            }
            let now: Vec<Stamp> = files.iter().map(stamp).collect();
            if now == seen {
                continue;
            }
            seen = now;
            let r = rebuild.clone();
            let built = match tokio::task::spawn_blocking(move || r()).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("reloading the {what}* certificates failed: {e}");
                    continue;
                }
            };
            let Some(o) = owner.upgrade() else { return };
            match built {
                Ok(v) => {
                    install(&o, v);
                    tracing::info!("reloaded the {what}* key and trust stores");
                }
                Err(e) => tracing::warn!(
                    "the {what}* stores changed but cannot be loaded ({e}); new connections keep the previous certificates"
                ),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_hands_out_the_latest() {
        let l = Live::new(Arc::new(1));
        let before = l.get();
        l.set(Arc::new(2));
        assert_eq!(*before, 1, "a connection keeps what it took");
        assert_eq!(*l.get(), 2);
    }

    /// A rebuild that counts its calls and fails when `fail`.
    fn counting(
        tried: Arc<std::sync::atomic::AtomicUsize>,
        fail: bool,
    ) -> impl Fn() -> Result<usize, TlsError> + Send + Sync + 'static {
        move || {
            let n = tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if fail {
                return Err(TlsError::Missing {
                    key: "ssl.keyStore.location".into(),
                    reason: "test".into(),
                });
            }
            Ok(n)
        }
    }

    #[tokio::test]
    async fn a_changed_file_installs_a_rebuild_and_a_failed_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ks.pem");
        std::fs::write(&f, "a").unwrap();
        let owner = Arc::new(Live::new(Arc::new(0usize)));
        let install = |l: &Live<usize>, v: usize| l.set(Arc::new(v));
        watch(
            "ssl.",
            vec![f.clone()],
            Arc::downgrade(&owner),
            counting(Default::default(), false),
            install,
        );
        tokio::time::sleep(POLL * 2).await;
        assert_eq!(*owner.get(), 0, "nothing changed: nothing rebuilt");
        std::fs::write(&f, "bb").unwrap();
        let t0 = std::time::Instant::now();
        while *owner.get() == 0 && t0.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(*owner.get(), 1);

        let failing = Arc::new(Live::new(Arc::new(7usize)));
        let tried = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        watch(
            "ssl.",
            vec![f.clone()],
            Arc::downgrade(&failing),
            counting(tried.clone(), true),
            install,
        );
        tokio::time::sleep(POLL * 2).await;
        std::fs::write(&f, "ccc").unwrap();
        let t0 = std::time::Instant::now();
        while tried.load(std::sync::atomic::Ordering::SeqCst) == 0
            && t0.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(POLL).await;
        assert_eq!(tried.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            *failing.get(),
            7,
            "a store that cannot be read keeps the old"
        );
    }
}
