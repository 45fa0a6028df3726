//! zkCli's `WATCHER::` lines: node watch events and session state changes, printed as
//! ZooKeeper's `ZooKeeperMain.MyWatcher` prints them, and only while `printwatches` is on.
//!
//! State changes are printed by a background task, and also flushed by the shell
//! before it prints a command's output, so that a connection made while a command
//! waited is reported before that command's result, as with zkCli.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rzk_client::{EventType, SessionState, WatchedEvent};
use tokio::sync::watch;

/// zkCli's `printwatches` switch (on at start).
static PRINT_WATCHES: AtomicBool = AtomicBool::new(true);

/// The session whose state changes are reported, and the last state reported.
struct Tracked {
    rx: watch::Receiver<SessionState>,
    last: SessionState,
    sasl: bool,
    /// The session's client, asked why a login failed.
    client: Option<rzk_client::Client>,
}

static TRACKED: Mutex<Option<Tracked>> = Mutex::new(None);

/// The last login failure printed, so each is printed once (by the state printer or by
/// a failed command, whichever comes first).
static AUTH_FAILURE_PRINTED: Mutex<Option<String>> = Mutex::new(None);

/// Prints why a login failed (`SASL authentication failed: <why>`) on stderr, once.
pub fn print_auth_failure(why: &str) {
    let Ok(mut last) = AUTH_FAILURE_PRINTED.lock() else {
        return;
    };
    if last.as_deref() != Some(why) {
        let _ = writeln!(std::io::stderr(), "SASL authentication failed: {why}");
        *last = Some(why.to_owned());
    }
}

/// Turns event printing on or off (`printwatches on|off`).
pub fn set_print_watches(on: bool) {
    PRINT_WATCHES.store(on, Ordering::Relaxed);
}

/// Whether events are printed.
pub fn print_watches() -> bool {
    PRINT_WATCHES.load(Ordering::Relaxed)
}

/// ZooKeeper's `KeeperState` name for a session state.
pub fn keeper_state_name(s: SessionState) -> &'static str {
    match s {
        SessionState::Connected => "SyncConnected",
        SessionState::ConnectedReadOnly => "ConnectedReadOnly",
        SessionState::Disconnected => "Disconnected",
        SessionState::Expired => "Expired",
        SessionState::AuthFailed => "AuthFailed",
        SessionState::Closed => "Closed",
    }
}

fn event_type_name(t: EventType) -> String {
    match t {
        EventType::Unknown(c) => format!("Unknown({c})"),
        other => format!("{other:?}"),
    }
}

fn print_lines(state: &str, kind: &str, path: &str) {
    if !print_watches() {
        return;
    }
    outln!("\nWATCHER::\n\nWatchedEvent state:{state} type:{kind} path:{path}");
    let _ = std::io::stdout().flush();
}

/// How long the printer of a session's end waits, so that the node events that came
/// before it (its ephemerals' deletions) are printed first: they come through another
/// task ([`print_notifications`]).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(5);

/// The watch removals (path, type) printed for the running `removewatches`. rzk-client
/// tells each removed watch's own future; zkCli's watches are all its one default
/// watcher, which Java tells once per type of watch removed from the path.
static REMOVALS: Mutex<Vec<(String, EventType)>> = Mutex::new(Vec::new());

/// Starts a `removewatches`: removals of the same path and type print again.
pub fn begin_removals() {
    if let Ok(mut r) = REMOVALS.lock() {
        r.clear();
    }
}

/// Prints a removal (DataWatchRemoved, ChildWatchRemoved, PersistentWatchRemoved) heard
/// by one of the removed watches, unless another watch of the same path and type printed
/// it already (see [`REMOVALS`]).
pub fn print_removal(ev: &WatchedEvent) {
    let first = match REMOVALS.lock() {
        Ok(mut r) => {
            let key = (ev.path.clone(), ev.event_type);
            let new = !r.contains(&key);
            if new {
                r.push(key);
            }
            new
        }
        Err(_) => true,
    };
    if first {
        print_event(ev);
    }
}

/// Prints one watch event as zkCli does. Server notifications come here once each,
/// however many of the shell's watches they fired ([`print_notifications`]: zkCli
/// registers every watch with its one default watcher, which Java calls once per
/// notification); local removals come from the removed watch's own future.
pub fn print_event(ev: &WatchedEvent) {
    // A connection made before the event is printed before it; a session's end is
    // left to its printer, which waits for the events that came before it.
    flush_live();
    print_now(ev);
}

/// Prints a session's node events as they come, in the order the server sent them
/// (`Client::notifications`: one stream, where each watch's own future is woken in the
/// runtime's order), until the session ends.
pub fn print_notifications(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<WatchedEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            print_event(&ev);
        }
    })
}

fn print_now(ev: &WatchedEvent) {
    let path = if ev.event_type == EventType::None {
        "null"
    } else {
        ev.path.as_str()
    };
    print_lines(
        keeper_state_name(ev.state),
        &event_type_name(ev.event_type),
        path,
    );
}

/// Prints the tracked session's state if it changed since last printed.
pub fn flush() {
    flush_state(true);
}

/// [`flush`], but a session's end (closed, expired, auth failed) is not printed.
fn flush_live() {
    flush_state(false);
}

fn flush_state(ended_too: bool) {
    let Ok(mut guard) = TRACKED.lock() else {
        return;
    };
    let Some(t) = guard.as_mut() else {
        return;
    };
    if let Some(now) = t.take_report(ended_too) {
        if now == SessionState::AuthFailed {
            // zkCli logs the SASL failure (its exception's text) before the event.
            if let Some(why) = t.client.as_ref().and_then(|c| c.auth_failure()) {
                print_auth_failure(&why);
            }
        }
        if now.is_terminal() {
            // The session is over: let its client go (its notification printer ends
            // when the last handle does).
            t.client = None;
        }
        print_lines(keeper_state_name(now), "None", "null");
        if t.sasl && now.is_connected() {
            print_lines("SaslAuthenticated", "None", "null");
        }
    }
}

impl Tracked {
    /// A session just started: nothing reported yet. It counts as last seen
    /// disconnected whatever its state is now, since it may have connected before it
    /// was tracked (the connect raced the shell on a loaded machine; its SyncConnected
    /// was then never printed).
    fn new(
        rx: watch::Receiver<SessionState>,
        sasl: bool,
        client: Option<rzk_client::Client>,
    ) -> Tracked {
        Tracked {
            rx,
            last: SessionState::Disconnected,
            sasl,
            client,
        }
    }

    /// The state to report now, if it changed since last reported (a session's end only
    /// with `ended_too`); marks it reported.
    fn take_report(&mut self, ended_too: bool) -> Option<SessionState> {
        let now = *self.rx.borrow();
        if now == self.last || (!ended_too && now.is_terminal()) {
            return None;
        }
        self.rx.borrow_and_update();
        self.last = now;
        Some(now)
    }
}

/// Reports the state changes of a new session (replacing the previous one) until it
/// ends, starting with its connection if it is already connected; a failed login with
/// `client`'s reason.
pub fn track(client: &rzk_client::Client, sasl: bool) -> tokio::task::JoinHandle<()> {
    let mut rx = client.state_watcher();
    rx.borrow_and_update();
    if let Ok(mut g) = TRACKED.lock() {
        *g = Some(Tracked::new(rx.clone(), sasl, Some(client.clone())));
    }
    tokio::spawn(async move {
        flush_live();
        while rx.changed().await.is_ok() {
            if rx.borrow().is_terminal() {
                // The events of notifications that came before the session ended (its
                // ephemerals' deletions before Closed) are printed first ([`SETTLE`]).
                // (Not for a connection: a command waiting for it prints its result
                // right after.)
                tokio::time::sleep(SETTLE).await;
            }
            flush();
            if rx.borrow().is_terminal() {
                break;
            }
        }
        flush();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session that connected before the shell tracked it still reports SyncConnected
    /// once (CI saw zkCli print it and rzk shell not).
    #[test]
    fn a_session_connected_before_it_was_tracked_reports_its_connection() {
        let (_tx, rx) = watch::channel(SessionState::Connected);
        let mut t = Tracked::new(rx, false, None);
        assert_eq!(t.take_report(false), Some(SessionState::Connected));
        assert_eq!(t.take_report(false), None);
    }

    #[test]
    fn a_new_session_reports_nothing_until_it_connects_and_its_end_only_when_asked() {
        let (tx, rx) = watch::channel(SessionState::Disconnected);
        let mut t = Tracked::new(rx, false, None);
        assert_eq!(t.take_report(true), None);
        tx.send_replace(SessionState::Connected);
        assert_eq!(t.take_report(false), Some(SessionState::Connected));
        tx.send_replace(SessionState::Closed);
        assert_eq!(t.take_report(false), None);
        assert_eq!(t.take_report(true), Some(SessionState::Closed));
    }
}
