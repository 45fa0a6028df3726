//! Session tracker: session ids, passwords, timeouts and expiry buckets.
//!
//! Owns the table of live sessions and decides which have expired. It is pure: every
//! method takes the current time (ms on a monotonic clock) as an argument. It never
//! deletes ephemerals or closes sockets itself: expiry only *reports* sessions, which the
//! caller turns into closeSession transactions through the write path.

use rzk_proto::{ServerId, SessionId};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

pub mod local;

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;
/// ZooKeeper's seed mask for password derivation.
const PASSWORD_SEED_XOR: i64 = 0xB341_5C00;
/// EphemeralType.CONTAINER_EPHEMERAL_OWNER: never handed out as a session id.
const CONTAINER_MARKER: i64 = i64::MIN;
/// Closed session ids a tracker remembers for [`SessionTracker::refuses_writes`] (a
/// write of a closed session reaches the leader's prep within milliseconds of the
/// close; session ids are never reused).
const CLOSED_REMEMBERED: usize = 4096;

/// `java.util.Random(sessionId ^ 0xB3415C00).nextBytes(16)`.
pub fn password(session_id: SessionId) -> [u8; PASSWORD_LEN] {
    let mut rng = JavaRandom::new(session_id.0 ^ PASSWORD_SEED_XOR);
    let mut out = [0u8; PASSWORD_LEN];
    for chunk in out.chunks_mut(4) {
        let mut v = rng.next_int();
        for b in chunk {
            *b = v as u8;
            v >>= 8;
        }
    }
    out
}

/// The 48-bit LCG of `java.util.Random`.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULT: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULT) & Self::MASK,
        }
    }

    fn next_int(&mut self) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULT).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> 16) as u32 as i32
    }
}

/// ZooKeeper's `initializeNextSessionId`: low 40 bits of `time_ms` in bits 16..55,
/// the server id in bits 56..63.
pub fn initial_session_id(server_id: ServerId, time_ms: i64) -> SessionId {
    // The configuration keeps ids of session-creating servers to one byte (myid <= 255).
    debug_assert!(
        (0..=0xff).contains(&server_id.0),
        "server id {server_id} does not fit the session id's top byte"
    );
    let t = ((time_ms as u64) << 24) >> 8;
    let mut id = (t | ((server_id.0 as u64) << 56)) as i64;
    if id == CONTAINER_MARKER {
        id += 1;
    }
    SessionId(id)
}

/// Rounds `t` up to the next multiple of `interval` strictly after it (ExpiryQueue).
pub fn round_to_next_interval(t: i64, interval: i64) -> i64 {
    (t / interval + 1) * interval
}

/// Where the leader last saw a session attached, ZooKeeper's session "owner": a write
/// (or forwarded request) of the session from anywhere else comes from a connection the
/// client has left, and is refused with SESSIONMOVED (the connection it came on is then
/// closed), so that it cannot be applied after what the client sent since on its new
/// connection.
///
/// Set by the leader when a client attaches there (`ThisServer`) or a learner's
/// REVALIDATE for it succeeds (`Learner`), and by the first request checked while unset;
/// cleared at each new leadership term (ZooKeeper's new leader starts without owners).
/// ZooKeeper's owners: `ServerCnxn.me` for every connection on the leader, the
/// `LearnerHandler` of the learner that forwarded the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOwner {
    /// A client connection of this server (the leader, or a standalone server).
    ThisServer,
    /// The learner that forwards the session's requests (observers relayed by an
    /// observer master: that follower).
    Learner(ServerId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub timeout_ms: i32,
    /// Bucket time (ms, tracker clock) at which it expires unless touched.
    pub expires_at: i64,
    /// Set once expiry (or close) has been decided; no longer touchable.
    pub closing: bool,
    /// Where the leader last saw the session attached ([`SessionOwner`]); `None` until
    /// then, and on a learner.
    pub owner: Option<SessionOwner>,
}

/// Why a session could not be resumed/touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("unknown session")]
    Unknown,
    #[error("session is closing")]
    Closing,
    #[error("wrong password")]
    BadPassword,
}

/// The session table's hasher: foldhash (seeded per process) instead of SipHash, whose
/// ~60 instructions a lookup were paid four or five times per request (the touch moves
/// a session between expiry buckets; prep and apply look it up).
type Hasher = foldhash::fast::RandomState;

#[derive(Debug)]
pub struct SessionTracker {
    /// The next id to hand out (raw: id generation is arithmetic on the bits).
    next_id: i64,
    tick_ms: i64,
    sessions: HashMap<SessionId, SessionInfo, Hasher>,
    /// Expiry buckets: bucket time (ms, tracker clock) -> sessions expiring then.
    buckets: BTreeMap<i64, HashSet<SessionId, Hasher>>,
    /// The last [`CLOSED_REMEMBERED`] sessions removed, oldest first, and as a set.
    closed: VecDeque<SessionId>,
    closed_set: HashSet<SessionId, Hasher>,
    /// Sessions whose createSession this leader has prepared and not applied yet
    /// ([`SessionTracker::proposed_create`]). ZooKeeper's leader tracks a session from
    /// its prep (`PrepRequestProcessor`'s `trackSession`), so a learner's REVALIDATE
    /// that reaches it between the commit and its own apply finds the session; a
    /// follower may apply the commit, answer the client and see it re-attach elsewhere
    /// first. Cleared at a change of leadership ([`SessionTracker::forget_proposed`]).
    /// The owner a re-attach gave it meanwhile goes to the session when it is added.
    proposed: HashMap<SessionId, Option<SessionOwner>, Hasher>,
    /// Proposed sessions whose closeSession was prepared before their createSession was
    /// applied ([`SessionTracker::set_closing`]): [`SessionTracker::add`] adds them
    /// closing, so nothing prepared after the closeSession runs for them (ZooKeeper's
    /// prep marks the session it tracks closing). Cleared with `proposed`.
    closed_before_applied: HashSet<SessionId, Hasher>,
    /// Test-only injected bug (the simulator's): writes of closing / closed sessions
    /// are not refused. Never set by the server.
    fault_accept_closed: bool,
}

impl SessionTracker {
    /// `start_ms` seeds id generation (wall or monotonic ms; only uniqueness matters).
    pub fn new(server_id: ServerId, tick_ms: u32, start_ms: i64) -> SessionTracker {
        SessionTracker {
            next_id: initial_session_id(server_id, start_ms).0,
            tick_ms: i64::from(tick_ms.max(1)),
            sessions: HashMap::default(),
            buckets: BTreeMap::new(),
            closed: VecDeque::new(),
            closed_set: HashSet::default(),
            proposed: HashMap::default(),
            closed_before_applied: HashSet::default(),
            fault_accept_closed: false,
        }
    }

    /// Allocates a fresh session id (not yet tracked: call [`add`](Self::add) when the
    /// createSession txn is applied).
    pub fn next_session_id(&mut self) -> SessionId {
        let id = SessionId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == CONTAINER_MARKER {
            self.next_id += 1;
        }
        debug_assert!(
            id != SessionId::NONE && id.0 != CONTAINER_MARKER,
            "handing out the reserved session id {id}"
        );
        id
    }

    /// Starts tracking a session (createSession applied, or loaded at start-up). A
    /// committed createSession makes the id live even if this tracker remembered it as
    /// closed.
    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) {
        self.forget_closed(id);
        let owner = self.proposed.remove(&id).flatten();
        let closing = self.closed_before_applied.remove(&id);
        if let Some(old) = self.sessions.get(&id) {
            if !old.closing {
                let _ = self.touch(id, now_ms);
                return;
            }
        }
        let expires_at = self.bucket_for(now_ms, timeout_ms);
        self.sessions.insert(
            id,
            SessionInfo {
                id,
                timeout_ms,
                expires_at,
                closing,
                owner,
            },
        );
        self.buckets.entry(expires_at).or_default().insert(id);
    }

    /// The leader prepared a createSession for `id` (in request order): until the txn is
    /// applied ([`SessionTracker::add`]) a re-attach judged by this tracker
    /// ([`SessionTracker::revalidate`] with `judge`, [`SessionTracker::touch_live`])
    /// accepts the session instead of answering that it expired. Nothing for a session
    /// the table already holds.
    pub fn proposed_create(&mut self, id: SessionId) {
        if !self.sessions.contains_key(&id) {
            // Kept as it is when already proposed (a local session's upgrade registers
            // it before its createSession reaches prep: `net::conn`).
            self.proposed.entry(id).or_insert(None);
        }
    }

    /// Withdraws the [`SessionTracker::proposed_create`] of `id` whose createSession
    /// will not be proposed by this server after all (a local session's upgrade whose
    /// job never reached this leader's prep: its connection ended first, or the driver
    /// did not lead it). Nothing for a session applied since, or not proposed.
    pub fn abandon_create(&mut self, id: SessionId) {
        self.proposed.remove(&id);
        debug_assert!(!self.proposed.contains_key(&id));
    }

    /// Proposals noted by [`SessionTracker::proposed_create`] and not applied yet.
    pub fn proposed_creates(&self) -> usize {
        self.proposed.len()
    }

    /// Forgets the createSession proposals of [`SessionTracker::proposed_create`] (a
    /// change of leadership: a proposal of the earlier term is applied, or lost, without
    /// this server's prep).
    pub fn forget_proposed(&mut self) {
        self.proposed.clear();
        self.closed_before_applied.clear();
    }

    /// Whether this table holds `id`: applied, or its createSession prepared here and
    /// not applied yet ([`SessionTracker::proposed_create`]). A leader refuses a write
    /// of a session it does not know (ZooKeeper's `LeaderSessionTracker.checkSession`;
    /// `node::driver` decides when another member's local session may pass).
    pub fn knows(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
            || self.proposed.contains_key(&id)
            || self.closed_before_applied.contains(&id)
    }

    /// Records where the session is now attached (a reconnect on the leader, a learner's
    /// successful REVALIDATE). Nothing for an unknown or closing session; a session whose
    /// createSession is proposed and not applied gets it when it is added.
    pub fn set_owner(&mut self, id: SessionId, owner: SessionOwner) {
        if let Some(s) = self.sessions.get_mut(&id).filter(|s| !s.closing) {
            s.owner = Some(owner);
        } else if let Some(o) = self.proposed.get_mut(&id) {
            *o = Some(owner);
        }
    }

    /// ZooKeeper's `checkSession` owner test for a request of `id` that came from
    /// `from`: false when the session is attached elsewhere (SESSIONMOVED). An unset
    /// owner becomes `from`; a session whose createSession is proposed and not applied is
    /// judged the same way. Another session this table does not hold (a local session of a
    /// learner) passes: its liveness is judged elsewhere.
    pub fn check_owner(&mut self, id: SessionId, from: SessionOwner) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) => match s.owner {
                None => {
                    s.owner = Some(from);
                    true
                }
                Some(o) => o == from,
            },
            // Proposed, not applied yet: judged as the tracked session it is about to be.
            None => match self.proposed.get_mut(&id) {
                Some(owner) => *owner.get_or_insert(from) == from,
                None => true,
            },
        }
    }

    /// Forgets every session's owner (a new leadership term: learners attach again).
    pub fn clear_owners(&mut self) {
        for s in self.sessions.values_mut() {
            s.owner = None;
        }
    }

    fn bucket_for(&self, now_ms: i64, timeout_ms: i32) -> i64 {
        round_to_next_interval(now_ms + i64::from(timeout_ms.max(0)), self.tick_ms)
    }

    /// Refreshes a session's expiry; fails if unknown or closing.
    pub fn touch(&mut self, id: SessionId, now_ms: i64) -> Result<(), SessionError> {
        let tick = self.tick_ms;
        let s = self.sessions.get_mut(&id).ok_or(SessionError::Unknown)?;
        if s.closing {
            return Err(SessionError::Closing);
        }
        let new_at = round_to_next_interval(now_ms + i64::from(s.timeout_ms.max(0)), tick);
        if new_at == s.expires_at {
            return Ok(());
        }
        let old_at = std::mem::replace(&mut s.expires_at, new_at);
        if let Some(b) = self.buckets.get_mut(&old_at) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&old_at);
            }
        }
        self.buckets.entry(new_at).or_default().insert(id);
        Ok(())
    }

    /// Checks password and liveness for a reconnect; on success the session takes the
    /// newly negotiated timeout and is touched. `judge`: this tracker decides the
    /// session's liveness (the leader, a standalone or read-only server, a local
    /// session's server); then a session past its deadline that the expiry sweep has not
    /// reached yet is refused as expired ([`SessionTracker::touch_live`]), and a session
    /// re-attached is owned by this server ([`SessionOwner::ThisServer`]). A learner's
    /// table is not the judge (the leader is asked), so it passes `false`.
    pub fn revalidate(
        &mut self,
        id: SessionId,
        passwd: &[u8],
        timeout_ms: i32,
        now_ms: i64,
        judge: bool,
    ) -> Result<(), SessionError> {
        if passwd != password(id) {
            return Err(SessionError::BadPassword);
        }
        match self.sessions.get_mut(&id) {
            // Committed on the way here, not applied yet: live (the txn's timeout stands).
            None => match self.proposed.get_mut(&id) {
                Some(owner) if judge => {
                    *owner = Some(SessionOwner::ThisServer);
                    return Ok(());
                }
                _ => return Err(SessionError::Unknown),
            },
            Some(s) if s.closing => return Err(SessionError::Closing),
            Some(s) if judge && s.expires_at <= now_ms => return Err(SessionError::Closing),
            Some(s) => {
                s.timeout_ms = timeout_ms;
                if judge {
                    s.owner = Some(SessionOwner::ThisServer);
                }
            }
        }
        self.touch(id, now_ms)
    }

    /// [`SessionTracker::touch`] for a session that must still be within its deadline:
    /// one whose deadline has passed is not brought back, even before the expiry sweep
    /// reaches it. After a stall (a stopped or starved process) a client's reconnect,
    /// queued meanwhile, may be read before the sweep runs: touching the session then
    /// would revive a session its client has given up on (Curator already reported it
    /// LOST and made a new one) and keep its ephemerals and locks for another timeout.
    pub fn touch_live(&mut self, id: SessionId, now_ms: i64) -> Result<(), SessionError> {
        match self.sessions.get(&id) {
            Some(s) if !s.closing && s.expires_at <= now_ms => Err(SessionError::Closing),
            None if self.proposed.contains_key(&id) => Ok(()),
            _ => self.touch(id, now_ms),
        }
    }

    /// A new leadership term: sessions left closing by an earlier term (expired, but
    /// their closeSession never committed — proposed and lost with the leadership, or
    /// never logged) are live again and expire from `now_ms` unless touched, as in
    /// ZooKeeper, whose new leader rebuilds its tracker from the database. Without
    /// this a leader elected again would never expire them: their ephemerals would
    /// stay forever. Returns how many were reopened.
    pub fn reopen_closing(&mut self, now_ms: i64) -> usize {
        let closing: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| s.closing)
            .map(|s| s.id)
            .collect();
        for id in &closing {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            s.closing = false;
            let old_at = s.expires_at;
            let timeout = s.timeout_ms;
            if let Some(b) = self.buckets.get_mut(&old_at) {
                b.remove(id);
                if b.is_empty() {
                    self.buckets.remove(&old_at);
                }
            }
            let at = self.bucket_for(now_ms, timeout);
            if let Some(s) = self.sessions.get_mut(id) {
                s.expires_at = at;
            }
            self.buckets.entry(at).or_default().insert(*id);
        }
        closing.len()
    }

    /// Replaces the whole table by `sessions` (id, timeout ms): the leader's snapshot was
    /// installed (SNAP). Sessions it does not hold are removed (remembered as closed);
    /// every session it holds is live, with the snapshot's timeout, never refused by
    /// [`refuses_writes`](Self::refuses_writes), and expires from `now_ms` unless
    /// touched. (Removing every session and adding the snapshot's back left each one
    /// remembered as closed: a follower that had been SNAP-synced and was then elected
    /// refused every write of every session with SESSIONEXPIRED.)
    pub fn replace_all(
        &mut self,
        sessions: impl IntoIterator<Item = (SessionId, i32)>,
        now_ms: i64,
    ) {
        let new: HashMap<SessionId, i32> = sessions.into_iter().collect();
        for id in self.ids() {
            if !new.contains_key(&id) {
                self.remove(id);
            }
        }
        for (id, timeout_ms) in new {
            self.forget_closed(id);
            if let Some(s) = self.sessions.get(&id) {
                let old_at = s.expires_at;
                if let Some(b) = self.buckets.get_mut(&old_at) {
                    b.remove(&id);
                    if b.is_empty() {
                        self.buckets.remove(&old_at);
                    }
                }
                self.sessions.remove(&id);
            }
            self.add(id, timeout_ms, now_ms);
        }
        debug_assert!(self.sessions.keys().all(|id| !self.refuses_writes(*id)));
    }

    /// Drops `id` from the closed sessions remembered for
    /// [`refuses_writes`](Self::refuses_writes) (rare: only when the committed history
    /// says it is live).
    fn forget_closed(&mut self, id: SessionId) {
        if self.closed_set.remove(&id) {
            self.closed.retain(|c| *c != id);
        }
    }

    /// Marks a session closing (client closeSession); it can no longer be touched. A
    /// session whose createSession is proposed and not applied yet is added closing when
    /// it is applied.
    pub fn set_closing(&mut self, id: SessionId) {
        if self.proposed.remove(&id).is_some() {
            self.closed_before_applied.insert(id);
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    /// Forgets a session (closeSession applied); remembers it as closed for
    /// [`refuses_writes`](Self::refuses_writes).
    pub fn remove(&mut self, id: SessionId) -> Option<SessionInfo> {
        self.closed_before_applied.remove(&id);
        let s = self.sessions.remove(&id)?;
        if self.closed_set.insert(id) {
            self.closed.push_back(id);
            if self.closed.len() > CLOSED_REMEMBERED {
                if let Some(old) = self.closed.pop_front() {
                    self.closed_set.remove(&old);
                }
            }
        }
        if let Some(b) = self.buckets.get_mut(&s.expires_at) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&s.expires_at);
            }
        }
        Some(s)
    }

    /// Sessions whose bucket time is `<= now_ms` and not yet closing. They are marked
    /// closing and stay tracked until [`remove`](Self::remove): the caller must close
    /// them (nothing else will).
    #[must_use = "expired sessions are marked closing: the caller must close them"]
    pub fn take_expired(&mut self, now_ms: i64) -> Vec<SessionId> {
        let mut out = Vec::new();
        let due: Vec<i64> = self.buckets.range(..=now_ms).map(|(t, _)| *t).collect();
        for t in due {
            if let Some(ids) = self.buckets.remove(&t) {
                for id in ids {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        if !s.closing {
                            s.closing = true;
                            out.push(id);
                        }
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// Whether the leader's prep must turn a write of session `id` into a SESSIONEXPIRED
    /// error txn (ZooKeeper's `SessionTracker.checkSession` in PrepRequestProcessor):
    /// the session is closing (expired or closed, its closeSession on its way) or was
    /// closed recently (one of the last 4096 removed). A write that was on its way when
    /// the session expired must not run after the closeSession: an ephemeral it creates
    /// would never be deleted. A session whose closeSession was prepared before its
    /// createSession was applied is refused too. Sessions this table does not know pass
    /// here: the leader's prep judges them with [`knows`](Self::knows) (another
    /// member's local session may write). Not for createSession / closeSession
    /// (the expiry's own closeSession is issued for a closing session).
    pub fn refuses_writes(&self, id: SessionId) -> bool {
        if self.fault_accept_closed {
            return false;
        }
        self.closed_set.contains(&id)
            || self.closed_before_applied.contains(&id)
            || self.sessions.get(&id).is_some_and(|s| s.closing)
    }

    /// Test-only switch (the simulator's injected bug): [`refuses_writes`] answers
    /// false for every session. Never set by the server.
    ///
    /// [`refuses_writes`]: Self::refuses_writes
    pub fn set_fault_accept_closed_writes(&mut self, on: bool) {
        self.fault_accept_closed = on;
    }

    /// Time of the next bucket (for the expiry timer), if any.
    pub fn next_expiry(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    pub fn get(&self, id: SessionId) -> Option<&SessionInfo> {
        self.sessions.get(&id)
    }

    pub fn contains(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Forgets every session (a local session table when its server changes role);
    /// returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.sessions.len();
        self.sessions.clear();
        self.buckets.clear();
        n
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn ids(&self) -> Vec<SessionId> {
        let mut v: Vec<SessionId> = self.sessions.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Every tracked session with its timeout, by id (the session table a snapshot
    /// stores).
    pub fn timeouts(&self) -> Vec<(SessionId, i32)> {
        let mut v: Vec<(SessionId, i32)> = self
            .sessions
            .values()
            .map(|s| (s.id, s.timeout_ms))
            .collect();
        v.sort_unstable();
        v
    }

    /// Expiry buckets, earliest first: (bucket time, session ids).
    pub fn buckets(&self) -> Vec<(i64, Vec<SessionId>)> {
        self.buckets
            .iter()
            .map(|(t, ids)| {
                let mut v: Vec<SessionId> = ids.iter().copied().collect();
                v.sort_unstable();
                (*t, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_term_reopens_sessions_left_closing() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let (a, b) = (SessionId(0x20), SessionId(0x21));
        t.add(a, 1000, 0);
        t.add(b, 1000, 500);
        assert_eq!(t.take_expired(1100), vec![a]);
        // The closeSession was lost with the leadership; this server leads again.
        assert_eq!(t.reopen_closing(2000), 1);
        assert!(!t.refuses_writes(a));
        assert!(t.touch(a, 2000).is_ok(), "reopened sessions can be touched");
        // Untouched, it expires again a timeout later (b expired meanwhile).
        assert_eq!(t.take_expired(2500), vec![b]);
        assert_eq!(t.take_expired(3100), vec![a]);
        assert_eq!(t.reopen_closing(3200), 2);
    }

    #[test]
    fn a_snapshot_installed_keeps_its_sessions_writable() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let (a, b, c, d) = (
            SessionId(0x30),
            SessionId(0x31),
            SessionId(0x32),
            SessionId(0x33),
        );
        t.add(a, 1000, 0);
        t.add(b, 1000, 0);
        t.add(d, 1000, 0);
        assert_eq!(t.take_expired(1100), vec![a, b, d]);
        t.remove(d); // closed here; the leader's history says it is live after all
                     // The leader's snapshot: a and d live (a with a new timeout), b closed, c new.
        t.replace_all([(a, 4000), (c, 2000), (d, 1000)], 2000);
        for id in [a, c, d] {
            assert!(t.contains(id));
            assert!(!t.refuses_writes(id), "{id} is live in the snapshot");
            assert!(t.touch(id, 2000).is_ok());
        }
        assert!(!t.contains(b));
        assert!(
            t.refuses_writes(b),
            "a session the snapshot does not hold is closed"
        );
        assert_eq!(t.get(a).map(|s| s.timeout_ms), Some(4000));
        // They expire a timeout after the install unless touched.
        assert_eq!(t.take_expired(3100), vec![d]);
        assert_eq!(t.take_expired(4100), vec![c]);
        assert_eq!(t.take_expired(6100), vec![a]);
    }

    #[test]
    fn writes_of_closing_and_closed_sessions_are_refused() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let (a, b) = (SessionId(0x10), SessionId(0x11));
        t.add(a, 1000, 0);
        t.add(b, 5000, 0);
        assert!(!t.refuses_writes(a), "a live session writes");
        assert!(!t.refuses_writes(SessionId(0x99)), "unknown sessions pass");
        // a expires: closing until its closeSession is applied, then closed.
        assert_eq!(t.take_expired(1100), vec![a]);
        assert!(t.refuses_writes(a));
        assert!(!t.refuses_writes(b));
        t.remove(a);
        assert!(t.refuses_writes(a), "a closed session stays refused");
        // The memory is bounded: the oldest closed ids are forgotten.
        for i in 0..CLOSED_REMEMBERED as i64 {
            let id = SessionId(0x1000 + i);
            t.add(id, 1000, 0);
            t.remove(id);
        }
        assert!(!t.refuses_writes(a));
        assert!(t.refuses_writes(SessionId(0x1000 + CLOSED_REMEMBERED as i64 - 1)));
        t.set_fault_accept_closed_writes(true);
        assert!(!t.refuses_writes(SessionId(0x1000 + CLOSED_REMEMBERED as i64 - 1)));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn password_test_vectors() {
        assert_eq!(
            hex(&password(SessionId(0x0100_0000_0000_0000))),
            "f22acd4a97e69d6d20a49bb638eadb38"
        );
        assert_eq!(
            hex(&password(SessionId(0x0100_0a1b_2c3d_0000))),
            "99540115b2ac339b9f3f41ba4b39270b"
        );
        assert_eq!(
            hex(&password(SessionId(1))),
            "054cc74a37327db215e702e20c73f005"
        );
    }

    #[test]
    fn session_id_layout() {
        let id = initial_session_id(ServerId(1), 0x12_3456_789a);
        assert_eq!(id, SessionId(0x0112_3456_789a_0000));
        // Only the low 40 bits of time survive.
        let id = initial_session_id(ServerId(3), 0x7f12_3456_789a);
        assert_eq!(id, SessionId(0x0312_3456_789a_0000));
        assert_eq!(
            initial_session_id(ServerId(0x80), 0),
            SessionId(i64::MIN + 1)
        );
    }

    #[test]
    fn ids_increment() {
        let mut t = SessionTracker::new(ServerId(1), 2000, 5);
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!(b.0, a.0 + 1);
        assert_eq!(a.0 >> 56, 1);
    }

    #[test]
    fn expiry_buckets_round_to_tick() {
        let mut t = SessionTracker::new(ServerId(1), 2000, 0);
        let s = SessionId(7);
        t.add(s, 5000, 1000); // 6000 -> next multiple after = 8000
        assert_eq!(t.get(s).unwrap().expires_at, 8000);
        assert_eq!(t.buckets(), vec![(8000, vec![s])]);
        assert!(t.take_expired(7999).is_empty());
        t.touch(s, 3000).unwrap(); // 8000 -> 10000
        assert!(t.take_expired(8000).is_empty());
        assert_eq!(t.take_expired(10000), vec![s]);
        assert_eq!(t.touch(s, 10000), Err(SessionError::Closing));
        assert!(t.take_expired(20000).is_empty());
        assert!(t.remove(s).is_some());
        assert!(t.is_empty());
    }

    #[test]
    fn revalidate_checks_password() {
        let mut t = SessionTracker::new(ServerId(1), 2000, 0);
        let id = t.next_session_id();
        t.add(id, 4000, 0);
        assert_eq!(t.revalidate(id, &password(id), 6000, 100, true), Ok(()));
        assert_eq!(t.get(id).unwrap().timeout_ms, 6000);
        assert_eq!(t.get(id).unwrap().expires_at, 8000);
        assert_eq!(
            t.revalidate(id, &[0u8; 16], 4000, 100, true),
            Err(SessionError::BadPassword)
        );
        let other = SessionId(id.0 + 1);
        assert_eq!(
            t.revalidate(other, &password(other), 4000, 100, true),
            Err(SessionError::Unknown)
        );
        // Past its deadline (8000) and not swept yet: the owner refuses it, and does not
        // move its deadline; a learner's table (not the judge) still touches it.
        assert_eq!(
            t.revalidate(id, &password(id), 6000, 8000, true),
            Err(SessionError::Closing)
        );
        assert_eq!(t.touch_live(id, 8500), Err(SessionError::Closing));
        assert_eq!(t.get(id).unwrap().expires_at, 8000);
        assert_eq!(t.take_expired(8000), vec![id]);
        let mut l = SessionTracker::new(ServerId(1), 2000, 0);
        let id = l.next_session_id();
        l.add(id, 4000, 0);
        assert_eq!(l.revalidate(id, &password(id), 4000, 9000, false), Ok(()));
        assert_eq!(l.touch_live(id, 9001), Ok(()));
    }

    /// ZooKeeper's session owner: where the leader last saw the session attached; a
    /// request from anywhere else is refused (SESSIONMOVED).
    #[test]
    fn owner_follows_the_session_and_refuses_old_connections() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let id = SessionId(0x40);
        t.add(id, 4000, 0);
        assert_eq!(t.get(id).unwrap().owner, None);
        // The first request sets the owner (created through learner 2).
        assert!(t.check_owner(id, SessionOwner::Learner(ServerId(2))));
        assert!(t.check_owner(id, SessionOwner::Learner(ServerId(2))));
        assert!(!t.check_owner(id, SessionOwner::ThisServer));
        // Learner 3 revalidated it: learner 2's requests come from a connection left.
        t.set_owner(id, SessionOwner::Learner(ServerId(3)));
        assert!(!t.check_owner(id, SessionOwner::Learner(ServerId(2))));
        assert!(t.check_owner(id, SessionOwner::Learner(ServerId(3))));
        // Re-attached on this server (the judge of liveness): owned here.
        assert_eq!(t.revalidate(id, &password(id), 4000, 100, true), Ok(()));
        assert!(!t.check_owner(id, SessionOwner::Learner(ServerId(3))));
        assert!(t.check_owner(id, SessionOwner::ThisServer));
        // A learner's table (not the judge) records no owner.
        let mut l = SessionTracker::new(ServerId(2), 100, 0);
        l.add(id, 4000, 0);
        assert_eq!(l.revalidate(id, &password(id), 4000, 100, false), Ok(()));
        assert_eq!(l.get(id).unwrap().owner, None);
        // A new term forgets every owner; an unknown session is not judged here.
        t.clear_owners();
        assert!(t.check_owner(id, SessionOwner::Learner(ServerId(2))));
        assert!(t.check_owner(SessionId(0x41), SessionOwner::ThisServer));
        // A closing session keeps its owner.
        t.set_closing(id);
        t.set_owner(id, SessionOwner::ThisServer);
        assert_eq!(
            t.get(id).unwrap().owner,
            Some(SessionOwner::Learner(ServerId(2)))
        );
    }

    /// A withdrawn proposal (an upgrade that never reached prep) is forgotten; an
    /// applied session is not touched by it.
    #[test]
    fn an_abandoned_create_is_forgotten() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let (gone, applied) = (SessionId(0x40), SessionId(0x41));
        t.proposed_create(gone);
        t.proposed_create(applied);
        t.add(applied, 4000, 0);
        assert_eq!(t.proposed_creates(), 1);
        t.abandon_create(gone);
        t.abandon_create(applied);
        assert_eq!(t.proposed_creates(), 0);
        assert!(!t.knows(gone));
        assert!(t.knows(applied));
        assert_eq!(t.touch_live(gone, 10), Err(SessionError::Unknown));
    }

    /// A session whose createSession the leader proposed but has not applied yet is live
    /// for a re-attach it judges (a learner's REVALIDATE, a reconnect on the leader): a
    /// follower may apply the commit first, answer the client and see it move on (a
    /// break-it review saw 78 of 4,000 moves between followers told "expired").
    #[test]
    fn a_proposed_session_is_live_before_it_is_applied() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let id = SessionId(0x40);
        assert_eq!(t.touch_live(id, 10), Err(SessionError::Unknown));
        t.proposed_create(id);
        assert_eq!(t.touch_live(id, 10), Ok(()));
        t.set_owner(id, SessionOwner::Learner(ServerId(3)));
        // Not counted, not expirable, and a learner's table (not the judge) does not know it.
        assert!(t.get(id).is_none());
        assert_eq!(
            t.revalidate(id, &password(id), 4000, 10, false),
            Err(SessionError::Unknown)
        );
        assert_eq!(
            t.revalidate(id, &[1u8; 16], 4000, 10, true),
            Err(SessionError::BadPassword)
        );
        // A write from where it was before (learner 2) is refused already.
        assert!(!t.check_owner(id, SessionOwner::Learner(ServerId(2))));
        assert!(t.check_owner(id, SessionOwner::Learner(ServerId(3))));
        // Applied: tracked as any session, with the owner the re-attach gave it.
        t.add(id, 4000, 20);
        assert_eq!(
            t.get(id).unwrap().owner,
            Some(SessionOwner::Learner(ServerId(3)))
        );
        assert!(!t.check_owner(id, SessionOwner::Learner(ServerId(2))));
        t.remove(id);
        assert_eq!(t.touch_live(id, 30), Err(SessionError::Unknown));

        // The leader re-attached it itself: owned here once applied.
        let id = SessionId(0x41);
        t.proposed_create(id);
        // No owner yet: the first write sets it, as for a tracked session.
        let first = SessionId(0x44);
        t.proposed_create(first);
        assert!(t.check_owner(first, SessionOwner::Learner(ServerId(2))));
        assert!(!t.check_owner(first, SessionOwner::ThisServer));
        // Proposed again (an upgrade registered it, then its createSession's prep): the
        // owner stays.
        t.proposed_create(first);
        assert!(!t.check_owner(first, SessionOwner::ThisServer));
        assert_eq!(t.revalidate(id, &password(id), 4000, 40, true), Ok(()));
        t.add(id, 4000, 50);
        assert_eq!(t.get(id).unwrap().owner, Some(SessionOwner::ThisServer));

        // A closeSession prepared before the create is applied ends it; a change of
        // leadership forgets proposals (an earlier term's are applied or lost).
        let (a, b) = (SessionId(0x42), SessionId(0x43));
        t.proposed_create(a);
        t.proposed_create(b);
        t.set_closing(a);
        assert_eq!(t.touch_live(a, 60), Err(SessionError::Unknown));
        t.forget_proposed();
        assert_eq!(t.touch_live(b, 60), Err(SessionError::Unknown));
        // Nothing for a session already tracked.
        t.proposed_create(SessionId(0x41));
        t.remove(SessionId(0x41));
        assert_eq!(
            t.touch_live(SessionId(0x41), 70),
            Err(SessionError::Unknown)
        );
    }

    /// A closeSession prepared before its createSession is applied (a review of session
    /// 45: the session came back open when the create applied, so a re-attach and writes
    /// prepared after the close ran until the close applied, an ephemeral among them left
    /// with no owner). It is refused from the close on and added closing.
    #[test]
    fn a_session_closed_before_its_create_is_applied_stays_closed() {
        let mut t = SessionTracker::new(ServerId(1), 100, 0);
        let id = SessionId(0x50);
        assert!(!t.knows(id));
        t.proposed_create(id);
        assert!(t.knows(id) && !t.refuses_writes(id));
        t.set_closing(id);
        assert!(t.knows(id), "known: refused as closing, not as unknown");
        assert!(t.refuses_writes(id));
        assert_eq!(t.touch_live(id, 10), Err(SessionError::Unknown));
        t.add(id, 4000, 20);
        assert!(t.get(id).is_some_and(|s| s.closing));
        assert!(t.refuses_writes(id));
        assert!(t.touch_live(id, 30).is_err());
        assert_eq!(
            t.take_expired(1_000_000),
            Vec::<SessionId>::new(),
            "no second close"
        );
        t.remove(id);
        assert!(t.refuses_writes(id) && !t.knows(id));
        // A new term forgets it with the proposals.
        let other = SessionId(0x51);
        t.proposed_create(other);
        t.set_closing(other);
        t.forget_proposed();
        assert!(!t.knows(other) && !t.refuses_writes(other));
    }
}
