//! `LeaderLatch`: Curator's `LeaderLatch` — every participant keeps a protected
//! ephemeral-sequential node `<path>/_c_<uuid>-latch-<seq>` (data = its id); the lowest
//! node is the leader, and each other participant watches only its predecessor.
//!
//! Leadership is published on a `watch` channel. It is dropped as soon as the connection
//! is lost (as Curator does on SUSPENDED) and re-evaluated after reconnecting; it ends for
//! good when the session ends, or when the latch is closed or dropped (receivers then
//! read `false`). A latch whose node is deleted by someone else joins the election again
//! with a new node, as Curator's `reset()` does. The leader watches its own node, so it
//! steps down as soon as that node is deleted (Curator's leader does not, and keeps
//! believing it leads while the next participant takes over); a waiting participant
//! finds its node gone at its predecessor's next change, as in Curator. Never report
//! leadership while disconnected.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::release::Releaser;
use super::util::{
    await_read_write_after, await_watch, child_path, delete_guaranteed, set_watch, sort_children,
    AbandonGuard,
};
use crate::error::{Error, Result};
use crate::types::{EventType, SessionState, WatcherType};
use crate::Client;

/// Curator's latch node name.
pub const LATCH_NAME: &str = "latch-";

/// The latch node, shared by the latch and its watching task: the task replaces a node
/// deleted by someone else, and close or drop takes the node to delete it.
#[derive(Debug, Default)]
struct Membership {
    /// Our latch node's full path; `None` while a replacement is being created, and
    /// once the latch is closed.
    node: Option<String>,
    /// Set by close or drop: a node the task creates from now on is deleted at once.
    closed: bool,
}

/// A handle on [`Membership`]; a panic elsewhere never makes it unreadable.
#[derive(Debug, Clone, Default)]
struct SharedMembership(Arc<Mutex<Membership>>);

impl SharedMembership {
    fn lock(&self) -> MutexGuard<'_, Membership> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Close or drop: no node is kept from now on; returns the node to delete.
    fn leave(&self) -> Option<String> {
        let mut m = self.lock();
        m.closed = true;
        m.node.take()
    }
}

/// A started leader latch (Curator's `LeaderLatch` after `start()`).
///
/// Dropping it leaves the election like [`LeaderLatch::close`]: the watching task stops
/// and the latch node is deleted in the background (guaranteed delete) on the runtime
/// the latch was started on, so the next participant takes over promptly. Await
/// [`LeaderLatch::close`] to see errors of that delete.
#[derive(Debug)]
pub struct LeaderLatch {
    client: Client,
    path: String,
    member: SharedMembership,
    leader: watch::Receiver<bool>,
    /// The sending side, kept to publish `false` when the latch is closed or dropped.
    leader_tx: watch::Sender<bool>,
    /// Closed when the watching task ends (its sender is the task's): the latch has
    /// left the election for good.
    task_alive: watch::Receiver<()>,
    task: JoinHandle<()>,
    releaser: Releaser,
    closed: bool,
}

impl LeaderLatch {
    /// Joins the election under `path` with participant id `id` (stored as the latch
    /// node's data) and starts watching for leadership in a background task.
    ///
    /// Curator: `new LeaderLatch(client, path, id).start()`.
    ///
    /// Cancel-safe: a `start` dropped before it returns (a `timeout` around it) deletes
    /// the latch node it made or may have made, in the background; left behind, that node
    /// would lead for nobody until the session ends.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid `path`; errors of creating the latch node
    /// (e.g. NOAUTH, or session errors).
    pub async fn start(client: Client, path: &str, id: &str) -> Result<LeaderLatch> {
        rzk_proto::path::validate(path, false)?;
        let (abandon, node) =
            AbandonGuard::create(&client, path, LATCH_NAME, id.as_bytes(), None).await?;
        // From here on nothing awaits: the latch (and its Drop) owns the node.
        abandon.disarm();
        let member = SharedMembership::default();
        member.lock().node = Some(node);
        let (tx, rx) = watch::channel(false);
        let (alive_tx, task_alive) = watch::channel(());
        let task = tokio::spawn(run(
            Participant {
                client: client.clone(),
                path: path.to_owned(),
                id: id.to_owned(),
                member: member.clone(),
                releaser: Releaser::current(),
            },
            tx.clone(),
            alive_tx,
        ));
        Ok(LeaderLatch {
            client,
            path: path.to_owned(),
            member,
            leader: rx,
            leader_tx: tx,
            task_alive,
            task,
            releaser: Releaser::current(),
            closed: false,
        })
    }

    /// True while this participant is the leader and connected (and a server heard
    /// from the session within half a session timeout).
    ///
    /// Curator: `LeaderLatch.hasLeadership()`.
    pub fn has_leadership(&self) -> bool {
        *self.leader.borrow() && !super::util::heard_too_long_ago(&self.client)
    }

    /// A receiver of leadership changes.
    pub fn leadership_watcher(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Waits until this participant leads; `Ok(false)` on timeout.
    ///
    /// Curator: `LeaderLatch.await(timeout, unit)`.
    ///
    /// # Errors
    /// [`Error::Closed`] at once if the latch has left the election for good (its
    /// session ended; or it may no longer list the election's node, or create a
    /// replacement for its deleted node, e.g. NOAUTH: it will never lead), including
    /// while this call waits.
    pub async fn await_leadership(&self, wait: Duration) -> Result<bool> {
        let mut rx = self.leader.clone();
        let mut alive = self.task_alive.clone();
        let until_leads = async {
            tokio::select! {
                r = rx.wait_for(|l| *l) => r.map(|_| true).map_err(|_| Error::Closed),
                // Never a value, only the end: the task dropped its sender.
                _ = alive.changed() => Err(Error::Closed),
            }
        };
        match tokio::time::timeout(wait, until_leads).await {
            Ok(r) => r,
            Err(_) => Ok(false),
        }
    }

    /// Our latch node's full path: `None` while a replacement for a node deleted by
    /// someone else is being created, or once the latch has left the election.
    ///
    /// Curator: `LeaderLatch.getOurPath()`.
    pub fn node(&self) -> Option<String> {
        self.member.lock().node.clone()
    }

    /// Participant ids (node data) in order; the first is the leader.
    ///
    /// Curator: `LeaderLatch.getParticipants()`.
    ///
    /// # Errors
    /// Errors of `getChildren`/`getData` on the latch path (other than a participant's
    /// node vanishing meanwhile, which is skipped).
    pub async fn participants(&self) -> Result<Vec<String>> {
        let mut children = self.client.get_children(&self.path).await?;
        sort_children(&mut children, &[LATCH_NAME]);
        let mut out = Vec::new();
        for c in children {
            match self.client.get_data(&child_path(&self.path, &c)).await {
                Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Leaves the election: stops the watching task and deletes our node.
    ///
    /// Curator: `LeaderLatch.close()`.
    ///
    /// # Errors
    /// Server errors of the delete (e.g. [`Error::NoAuth`]). A short connection loss is
    /// not an error (the delete waits for the reconnect);
    /// [`Error::DisconnectedPastSessionTimeout`] once the session has been disconnected
    /// for a session timeout (the node goes with the expired session; the delete
    /// continues in the background).
    pub async fn close(mut self) -> Result<()> {
        self.closed = true;
        self.task.abort();
        // Left first: a pass of the task still running on another worker can no longer
        // publish leadership after the `false` below ([`publish_leads`]).
        let node = self.member.leave();
        set_leader(&self.leader_tx, false);
        match node {
            Some(node) => delete_guaranteed(&self.client, &node).await,
            None => Ok(()),
        }
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.task.abort();
        let node = self.member.leave();
        set_leader(&self.leader_tx, false);
        if let Some(node) = node {
            self.releaser
                .delete("leader latch", self.client.clone(), node);
        }
    }
}

/// What the watching task needs to take part in the election.
struct Participant {
    client: Client,
    path: String,
    /// The participant id, the data of each latch node we create.
    id: String,
    member: SharedMembership,
    releaser: Releaser,
}

impl Participant {
    /// Our node was deleted by someone else: creates a new one (Curator's `reset()`).
    /// `Err(Error::Closed)` if the latch was closed meanwhile (the new node is deleted
    /// in the background); other errors are the create's, after waiting out connection
    /// losses.
    async fn rejoin(&self) -> Result<()> {
        self.member.lock().node = None;
        loop {
            let created = AbandonGuard::create(
                &self.client,
                &self.path,
                LATCH_NAME,
                self.id.as_bytes(),
                None,
            )
            .await;
            match created {
                Ok((abandon, node)) => {
                    // Nothing awaits from here on: aborted, the task is at an await.
                    abandon.disarm();
                    let mut m = self.member.lock();
                    if m.closed {
                        drop(m);
                        self.releaser
                            .delete("leader latch", self.client.clone(), node);
                        return Err(Error::Closed);
                    }
                    tracing::info!(%node, "latch node was deleted; joined the election again");
                    m.node = Some(node);
                    return Ok(());
                }
                Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                    await_read_write_after(&self.client, e, None).await?
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sets the leadership a [`LeaderLatch::leadership_watcher`] shows, waking its receivers
/// only when it changes (Curator's `setLeadership` tells its listeners only then): a pass
/// of the watching task that finds the latch where it was (a reconnect, a change of the
/// leader's own node or of a predecessor's data) is no new leadership.
fn set_leader(tx: &watch::Sender<bool>, leads: bool) {
    tx.send_if_modified(|cur| std::mem::replace(cur, leads) != leads);
}

/// [`set_leader`] from the watching task, unless the latch has been closed or dropped:
/// checked and sent under the membership's lock, which close and drop take (to leave)
/// before they publish `false`, so a pass that was running when the task was aborted
/// cannot publish leadership after them.
fn publish_leads(member: &SharedMembership, tx: &watch::Sender<bool>, leads: bool) {
    let m = member.lock();
    set_leader(tx, leads && !m.closed);
}

/// The watching task; `_alive` is dropped when it ends (returns or is aborted).
async fn run(p: Participant, tx: watch::Sender<bool>, _alive: watch::Sender<()>) {
    let client = &p.client;
    let mut st = client.state_watcher();
    loop {
        let Some(node) = p.member.lock().node.clone() else {
            return; // closed
        };
        let name = rzk_proto::path::basename(&node).to_owned();
        let step = check(client, &p.path, &name).await;
        let (w, predecessor) = match step {
            Ok(Step::Leads(w)) => {
                // Answered by a read-only server: not the quorum, never leadership.
                publish_leads(&p.member, &tx, client.state() == SessionState::Connected);
                (Some(w), None)
            }
            Ok(Step::Waits(w, pred)) => {
                set_leader(&tx, false);
                (Some(w), Some(pred))
            }
            Err(Error::NoNode) => {
                set_leader(&tx, false);
                match p.rejoin().await {
                    Ok(()) => continue,
                    Err(e) => {
                        if !matches!(e, Error::Closed) && !e.is_session_terminal() {
                            tracing::warn!(%node, error = %e,
                                "latch node was deleted and no new one could be created; leaving the election");
                        }
                        return;
                    }
                }
            }
            Err(e) if e.is_session_terminal() => {
                set_leader(&tx, false);
                return;
            }
            // Connection loss: re-evaluated once connected again.
            Err(e) if e.is_retryable() => {
                set_leader(&tx, false);
                (None, None)
            }
            // Anything else (NOAUTH on the election's node) would come back at every
            // try: leave rather than wait silently (Curator's latch stops there too, but
            // without telling `await`).
            Err(e) => {
                tracing::warn!(%node, error = %e, "cannot list the election; leaving it");
                set_leader(&tx, false);
                return;
            }
        };
        // Wait for the predecessor to go, or for a connection change. A wait on the
        // predecessor that ends otherwise (a reconnect, or close/drop aborting this task)
        // takes its watch off the server ([`await_watch`]); the leader's watch on its
        // own node goes when close deletes the node.
        let wc = client.clone();
        let wf = async move {
            match (w, predecessor) {
                (Some(w), Some(pred)) => await_watch(&wc, &pred, WatcherType::Data, w, None).await,
                (Some(w), None) => Some(w.await),
                (None, _) => std::future::pending().await,
            }
        };
        tokio::pin!(wf);
        loop {
            tokio::select! {
                ev = &mut wf => {
                    if let Some(ev) = ev {
                        if ev.event_type == EventType::None && ev.state.is_terminal() {
                            set_leader(&tx, false);
                            return;
                        }
                        // Our own node deleted while we led: at once, not after the
                        // next listing (which then finds it gone and joins again).
                        if ev.event_type == EventType::NodeDeleted
                            && ev.path == node
                        {
                            set_leader(&tx, false);
                        }
                    }
                    break;
                }
                ch = st.changed() => {
                    if ch.is_err() { set_leader(&tx, false); return; }
                    let s = *st.borrow_and_update();
                    if s.is_terminal() { set_leader(&tx, false); return; }
                    if matches!(s, SessionState::Disconnected | SessionState::ConnectedReadOnly) {
                        set_leader(&tx, false);
                    } else if s == SessionState::Connected {
                        break;
                    }
                }
            }
        }
    }
}

/// `Ok(Step::Leads(watch))` when we lead (the watch is on our own node, to learn if it is
/// deleted), `Ok(Step::Waits(watch, predecessor))` on our predecessor otherwise; [`Error::NoNode`]
/// when our node is gone (or the election's parent node).
async fn check(client: &Client, path: &str, name: &str) -> Result<Step> {
    loop {
        let mut children = client.get_children(path).await?;
        sort_children(&mut children, &[LATCH_NAME]);
        let idx = children
            .iter()
            .position(|c| c == name)
            .ok_or(Error::NoNode)?;
        if idx == 0 {
            // Deleted between the listing and the watch: NoNode, to join again.
            let (_, _, w) = client.get_data_w(&child_path(path, name)).await?;
            return Ok(Step::Leads(w));
        }
        let predecessor = child_path(path, &children[idx - 1]);
        // Guarded: close aborts this task, maybe while the request is in flight.
        let set = client.get_data_w(&predecessor);
        match set_watch(client, &predecessor, WatcherType::Data, set).await {
            Ok((_, _, w)) => return Ok(Step::Waits(w, predecessor)),
            Err(Error::NoNode) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Where a participant stands ([`check`]).
enum Step {
    /// It leads; the watch is on its own node.
    Leads(crate::OneshotWatch),
    /// It waits; the watch is on its predecessor (the full path).
    Waits(crate::OneshotWatch, String),
}
