//! Scenario tests of the core, phase by phase, on a tiny synchronous harness: messages are
//! delivered in order, disks complete at once unless a test holds them. (Randomised,
//! fault-injecting runs live in the rzk-sim crate.)

use super::*;
use bytes::Bytes;
use rzk_proto::quorum::{PacketType, QuorumPacket};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const TICK: u64 = 100;

const S1: ServerId = ServerId(1);
const S2: ServerId = ServerId(2);
const S3: ServerId = ServerId(3);
const S4: ServerId = ServerId(4);
const S5: ServerId = ServerId(5);
const S6: ServerId = ServerId(6);

struct Node {
    zab: Zab,
    log: Vec<Txn>,
    accepted: u32,
    current: u32,
    applied: Vec<Txn>,
    snapshot_inbox: Option<Vec<Txn>>,
    hold_disk: bool,
    held: Vec<Output>,
    established: Vec<u32>,
    /// `Output::Unsupported` reasons (a real runtime stops the server at the first).
    unsupported: Vec<String>,
}

enum Wire {
    Msg(Message),
    Snap(Zxid, Vec<Txn>),
}

struct Cluster {
    cfgs: BTreeMap<ServerId, ZabConfig>,
    nodes: BTreeMap<ServerId, Node>,
    now: u64,
    queue: VecDeque<(ServerId, ServerId, Wire)>,
    isolated: BTreeSet<ServerId>,
    trace: Vec<(ServerId, ServerId, Message)>,
    /// (server, peer) of every `Output::Disconnect`.
    disconnects: Vec<(ServerId, ServerId)>,
    /// Messages sent to servers that were not started (dropped).
    to_absent: Vec<(ServerId, ServerId, Message)>,
}

fn cfg(me: ServerId, voters: &[ServerId], observers: &[ServerId]) -> ZabConfig {
    let mut c = ZabConfig::new(me, voters.to_vec(), observers.to_vec());
    c.tick_ms = TICK;
    c.commit_log_count = 3;
    c.max_notification_ms = 800;
    c
}

fn txn(e: u32, c: u32) -> Txn {
    Txn {
        zxid: Zxid::new(e, c),
        payload: Bytes::from(format!("txn {e}.{c}")),
    }
}

fn history(epochs: &[(u32, u32)]) -> Vec<Txn> {
    epochs
        .iter()
        .flat_map(|&(e, n)| (1..=n).map(move |c| txn(e, c)))
        .collect()
}

impl Cluster {
    fn new(voters: &[ServerId], observers: &[ServerId]) -> Cluster {
        let mut cfgs = BTreeMap::new();
        for &s in voters.iter().chain(observers) {
            cfgs.insert(s, cfg(s, voters, observers));
        }
        Cluster {
            cfgs,
            nodes: BTreeMap::new(),
            now: 0,
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            trace: Vec::new(),
            disconnects: Vec::new(),
            to_absent: Vec::new(),
        }
    }

    /// Starts `sid` with the given durable state (epochs, log; everything in it is the
    /// replica's "committed before the crash" history only if the ensemble says so).
    fn start(&mut self, sid: ServerId, accepted: u32, current: u32, log: Vec<Txn>) {
        let d = Durable {
            accepted_epoch: accepted,
            current_epoch: current,
            snapshot_zxid: Zxid::ZERO,
            log: log.clone(),
        };
        let (zab, out) = Zab::new(self.cfgs[&sid].clone(), d, self.now);
        self.nodes.insert(
            sid,
            Node {
                zab,
                log,
                accepted,
                current,
                applied: Vec::new(),
                snapshot_inbox: None,
                hold_disk: false,
                held: Vec::new(),
                established: Vec::new(),
                unsupported: Vec::new(),
            },
        );
        self.handle(sid, out);
    }

    fn start_all_fresh(&mut self) {
        let ids: Vec<ServerId> = self.cfgs.keys().copied().collect();
        for s in ids {
            self.start(s, 0, 0, Vec::new());
        }
    }

    fn input(&mut self, sid: ServerId, i: Input) {
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        let out = n.zab.step(i);
        self.handle(sid, out);
    }

    fn complete_disk(&mut self, sid: ServerId, o: Output) {
        let n = self.nodes.get_mut(&sid).unwrap();
        let next = match o {
            Output::PersistTxns(ts) => {
                let up_to = ts.last().map(|t| t.zxid).unwrap_or_default();
                n.log.extend(ts);
                Some(Input::Persisted { up_to })
            }
            Output::PersistEpoch { kind, epoch } => {
                match kind {
                    EpochKind::Accepted => n.accepted = epoch,
                    EpochKind::Current => n.current = epoch,
                }
                Some(Input::EpochPersisted { kind, epoch })
            }
            Output::Truncate { to } => {
                n.log.retain(|t| t.zxid <= to);
                None
            }
            Output::InstallSnapshot { .. } => {
                n.applied = n.snapshot_inbox.take().unwrap();
                n.log.clear();
                None
            }
            _ => None,
        };
        if let Some(i) = next {
            self.input(sid, i);
        }
    }

    fn release_disk(&mut self, sid: ServerId) {
        let n = self.nodes.get_mut(&sid).unwrap();
        n.hold_disk = false;
        let held = std::mem::take(&mut n.held);
        for o in held {
            self.complete_disk(sid, o);
        }
    }

    fn handle(&mut self, sid: ServerId, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send { to, msg } => self.queue.push_back((sid, to, Wire::Msg(msg))),
                Output::SendSnapshot { to, zxid } => {
                    let state = self.nodes[&sid].applied.clone();
                    self.queue.push_back((sid, to, Wire::Snap(zxid, state)));
                }
                Output::Commit(t) => self.nodes.get_mut(&sid).unwrap().applied.push(t),
                Output::Disconnect { peer } => self.disconnects.push((sid, peer)),
                Output::Established { epoch, .. } => {
                    self.nodes.get_mut(&sid).unwrap().established.push(epoch)
                }
                Output::EpochExhausted { why } => {
                    self.nodes.get_mut(&sid).unwrap().unsupported.push(why)
                }
                Output::Unsupported { why } => {
                    self.nodes.get_mut(&sid).unwrap().unsupported.push(why)
                }
                o @ (Output::PersistTxns(_)
                | Output::PersistEpoch { .. }
                | Output::Truncate { .. }
                | Output::InstallSnapshot { .. }) => {
                    let n = self.nodes.get_mut(&sid).unwrap();
                    if n.hold_disk {
                        n.held.push(o);
                    } else {
                        self.complete_disk(sid, o);
                    }
                }
                _ => {}
            }
        }
    }

    fn deliver_all(&mut self) {
        let mut budget = 100_000;
        while let Some((from, to, w)) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.isolated.contains(&from) || self.isolated.contains(&to) {
                continue;
            }
            if !self.nodes.contains_key(&to) {
                if let Wire::Msg(m) = w {
                    self.to_absent.push((from, to, m));
                }
                continue;
            }
            let msg = self.open(to, w);
            self.deliver(from, to, msg);
        }
    }

    /// What `w`, on its way to `to`, is as a message (a snapshot lands in `to`'s inbox).
    fn open(&mut self, to: ServerId, w: Wire) -> Message {
        match w {
            Wire::Msg(m) => m,
            Wire::Snap(z, state) => {
                self.nodes.get_mut(&to).unwrap().snapshot_inbox = Some(state);
                Message::Quorum(QuorumPacket::new(PacketType::Snap, z.0))
            }
        }
    }

    /// Hands `msg` from `from` to `to`, recording it in the trace.
    fn deliver(&mut self, from: ServerId, to: ServerId, msg: Message) {
        self.trace.push((from, to, msg.clone()));
        self.input(to, Input::Message { from, msg });
    }

    /// S2 and S3 elect a leader; the other follower's disk is held, so three writes stay
    /// outstanding (their quorum needs S1); then S1 starts and joins. Returns the cluster,
    /// the leader, the held follower and the writes' zxids; nothing is delivered yet.
    fn joining_while_proposals_outstanding() -> (Cluster, ServerId, ServerId, Vec<Zxid>) {
        let mut c = Cluster::new(&[S1, S2, S3], &[]);
        c.start(S2, 0, 0, Vec::new());
        c.start(S3, 0, 0, Vec::new());
        c.advance(3000);
        let l = c.leader().expect("a leader");
        let f = if l == S2 { S3 } else { S2 };
        c.nodes.get_mut(&f).unwrap().hold_disk = true;
        let zs = c.write(3);
        c.start(S1, 0, 0, Vec::new());
        (c, l, f, zs)
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.deliver_all();
            self.now += TICK / 4;
            let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
            for s in ids {
                self.input(s, Input::Tick { now_ms: self.now });
            }
        }
        self.deliver_all();
    }

    fn role(&self, sid: ServerId) -> Role {
        self.nodes[&sid].zab.role()
    }

    fn leader(&self) -> Option<ServerId> {
        self.nodes
            .iter()
            .find(|(_, n)| n.zab.role() == Role::Leading && n.zab.is_serving())
            .map(|(s, _)| *s)
    }

    fn all_serving(&self) -> bool {
        self.nodes
            .iter()
            .filter(|(s, _)| !self.isolated.contains(s))
            .all(|(_, n)| n.zab.is_serving())
    }

    /// The leader proposes `n` writes; returns their zxids.
    fn write(&mut self, n: usize) -> Vec<Zxid> {
        let l = self.leader().expect("a leader");
        let mut zs = Vec::new();
        for i in 0..n {
            let z = self.nodes[&l].zab.next_zxid().expect("may propose");
            self.input(
                l,
                Input::Propose {
                    zxid: z,
                    payload: Bytes::from(format!("write {i} at {z}")),
                },
            );
            zs.push(z);
        }
        zs
    }

    fn packets(&self, ty: PacketType) -> Vec<(ServerId, ServerId, QuorumPacket)> {
        self.trace
            .iter()
            .filter_map(|(f, t, m)| match m {
                Message::Quorum(p) if p.ty == ty => Some((*f, *t, p.clone())),
                _ => None,
            })
            .collect()
    }

    fn applied_zxids(&self, sid: ServerId) -> Vec<Zxid> {
        self.nodes[&sid].applied.iter().map(|t| t.zxid).collect()
    }
}

// ---------------------------------------------------------------- election

#[test]
fn election_fresh_ensemble_elects_highest_sid() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    assert_eq!(c.role(S3), Role::Leading);
    assert_eq!(c.role(S1), Role::Following);
    assert_eq!(c.role(S2), Role::Following);
    assert!(c.all_serving());
    assert_eq!(c.nodes[&S3].established, vec![1], "first epoch is 1");
}

#[test]
fn election_prefers_highest_epoch_then_zxid_over_sid() {
    // Server 1 saw the most history (epoch 2); 3 has a longer but older log.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 2, 2, history(&[(1, 3), (2, 2)]));
    c.start(S2, 2, 2, history(&[(1, 3), (2, 1)]));
    c.start(S3, 1, 1, history(&[(1, 9)]));
    c.advance(3000);
    assert_eq!(c.role(S1), Role::Leading);
    assert!(c.all_serving());
}

#[test]
fn election_server_joining_settled_ensemble_follows_without_new_election() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 0, 0, Vec::new());
    c.start(S2, 0, 0, Vec::new());
    c.advance(3000);
    assert_eq!(c.role(S2), Role::Leading);
    let epoch = c.nodes[&S2].zab.current_epoch();
    // 3 has the "best" vote (highest sid) but must learn the established leader.
    c.start(S3, 0, 0, Vec::new());
    c.advance(3000);
    assert_eq!(c.role(S3), Role::Following);
    assert_eq!(c.nodes[&S3].zab.leader(), Some(S2));
    assert_eq!(c.nodes[&S2].zab.current_epoch(), epoch, "no new epoch");
    assert!(c.all_serving());
}

#[test]
fn election_observer_does_not_vote_and_learns_the_leader() {
    let mut c = Cluster::new(&[S1, S2, S3], &[S4]);
    c.start_all_fresh();
    c.advance(3000);
    assert_eq!(c.role(S4), Role::Observing);
    assert_eq!(c.nodes[&S4].zab.leader(), Some(S3));
    // observers never appear as a leader in any notification
    assert!(c.trace.iter().all(|(_, _, m)| match m {
        Message::Election(n) => n.leader != S4.0,
        _ => true,
    }));
}

/// An observer looking for a leader reads the voters' LOOKING votes as ZooKeeper's
/// does: it adopts the best candidate of the newest round and, once a quorum of voters
/// agree on it, ends its election after the finalize wait, without waiting for its own
/// backed-off re-send. Found by a review in session 41: an rzk observer ignored LOOKING
/// votes (and each one pushed its re-send timer back), so behind ZooKeeper voters that
/// recovered from a short outage it came back 6-12 s after them.
#[test]
fn observer_ends_its_election_on_a_quorum_of_looking_votes() {
    let mut c = Cluster::new(&[S1, S2, S3], &[S4]);
    c.start(S4, 0, 0, Vec::new());
    // Long enough for its re-send interval to have grown to several seconds.
    c.advance(20_000);
    assert_eq!(c.role(S4), Role::Looking);
    // S1-S3 are not running: what S4 sends to them lands in `to_absent`.
    let sent_before = c.to_absent.iter().filter(|(f, _, _)| *f == S4).count();
    for from in [S1, S2, S3] {
        let n = rzk_proto::quorum::Notification {
            state: rzk_proto::quorum::ServerState::Looking,
            leader: S3.0,
            zxid: 0,
            election_epoch: 5,
            peer_epoch: 0,
            version: 2,
            config: String::new(),
        };
        c.queue
            .push_back((from, S4, Wire::Msg(Message::Election(n))));
    }
    c.advance(300);
    let sent = c.to_absent.iter().filter(|(f, _, _)| *f == S4).count() - sent_before;
    assert!(sent > 0, "the observer did not answer a newer round");
    assert!(
        c.role(S4) == Role::Observing
            || c.to_absent.iter().any(|(f, t, m)| *f == S4
                && *t == S3
                && matches!(m, Message::Quorum(p) if p.ty == PacketType::ObserverInfo)),
        "the observer did not turn to the leader the voters agree on: {:?}",
        c.role(S4)
    );
}

/// A LOOKING vote of a round that changed (a voter restarted, its round counter starts
/// again) sends a looking observer back to its shortest re-send interval: voters never
/// write to an observer unasked, so it must ask again soon to learn their outcome.
#[test]
fn observer_asks_again_soon_when_a_voter_restarts_its_rounds() {
    let mut c = Cluster::new(&[S1, S2, S3], &[S4]);
    c.start(S4, 0, 0, Vec::new());
    let looking = |round: i64| {
        Message::Election(rzk_proto::quorum::Notification {
            state: rzk_proto::quorum::ServerState::Looking,
            leader: S1.0,
            zxid: 0,
            election_epoch: round,
            peer_epoch: 0,
            version: 2,
            config: String::new(),
        })
    };
    // Round 5 from voter 1: adopted. Then nothing for 30 s: the interval grows.
    c.queue.push_back((S1, S4, Wire::Msg(looking(5))));
    c.advance(30_000);
    assert_eq!(c.role(S4), Role::Looking);
    let sent = |c: &Cluster| c.to_absent.iter().filter(|(f, _, _)| *f == S4).count();
    let before = sent(&c);
    // Voter 2 restarted: its round 1 is older than ours, so not adopted, but new.
    c.queue.push_back((S2, S4, Wire::Msg(looking(1))));
    c.advance(500);
    assert!(
        sent(&c) > before,
        "the observer waits for its backed-off re-send"
    );
}

#[test]
fn election_needs_a_quorum() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 0, 0, Vec::new());
    c.advance(5000);
    assert_eq!(c.role(S1), Role::Looking);
}

#[test]
fn election_progress_says_whom_a_looking_server_heard_and_how_many_agree() {
    // 2 of 5 voters up: both vote for 2 (higher sid), short of a quorum of 3.
    let mut c = Cluster::new(&[S1, S2, S3, S4, S5], &[]);
    c.start(S1, 0, 0, Vec::new());
    c.start(S2, 0, 0, Vec::new());
    c.advance(3000);
    let p = c.nodes[&S1].zab.election_progress().expect("S1 is LOOKING");
    assert_eq!(p.proposal.leader, S2);
    assert_eq!(p.heard_from, vec![S2]);
    assert_eq!((p.agreeing, p.voters), (2, 5));
    // A third voter makes the quorum: nobody is LOOKING any more.
    c.start(S3, 0, 0, Vec::new());
    c.advance(3000);
    assert_eq!(c.role(S3), Role::Leading);
    for s in [S1, S2, S3] {
        assert_eq!(c.nodes[&s].zab.election_progress(), None, "{s} settled");
    }
}

// ---------------------------------------------------------------- discovery

#[test]
fn discovery_new_epoch_is_above_every_accepted_epoch() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    // 1 accepted epoch 7 from a leader that never established it.
    c.start(S1, 7, 1, history(&[(1, 2)]));
    c.start(S2, 1, 1, history(&[(1, 2)]));
    c.start(S3, 1, 1, history(&[(1, 2)]));
    c.advance(3000);
    let l = c.leader().unwrap();
    assert_eq!(c.nodes[&l].established, vec![8]);
    for n in c.nodes.values() {
        assert_eq!((n.accepted, n.current), (8, 8));
    }
}

/// A quorum whose largest accepted epoch is the last one with positive zxids elects
/// nobody into a next epoch: the would-be leader asks the runtime to stop instead of
/// wrapping (a break-it review: epoch 0xffffffff + 1 wrapped to 0 and reused zxids).
#[test]
fn discovery_stops_rather_than_choose_an_epoch_of_negative_zxids() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    let last = Zxid::MAX_EPOCH;
    c.start(S1, last, 1, history(&[(1, 2)]));
    c.start(S2, 1, 1, history(&[(1, 2)]));
    c.start(S3, 1, 1, history(&[(1, 2)]));
    c.advance(3000);
    assert!(c.nodes.values().all(|n| n.established.is_empty()));
    assert!(c.nodes.values().all(|n| n.accepted <= last));
    let stopped: Vec<&String> = c.nodes.values().flat_map(|n| &n.unsupported).collect();
    assert!(!stopped.is_empty(), "nobody stopped");
    assert!(
        stopped.iter().all(|w| w.contains("2147483647")),
        "{stopped:?}"
    );
    // One below the limit still elects, into the last epoch.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, last - 1, 1, history(&[(1, 2)]));
    c.start(S2, 1, 1, history(&[(1, 2)]));
    c.start(S3, 1, 1, history(&[(1, 2)]));
    c.advance(3000);
    let l = c.leader().unwrap();
    assert_eq!(c.nodes[&l].established, vec![last]);
}

#[test]
fn discovery_follower_persists_accepted_epoch_before_ackepoch() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.nodes.get_mut(&S1).unwrap().hold_disk = true;
    c.advance(2000);
    // 1 got LEADERINFO but its acceptedEpoch write is still pending: no ACKEPOCH from it.
    assert!(!c
        .packets(PacketType::LeaderInfo)
        .iter()
        .all(|(_, t, _)| *t != S1));
    assert!(c
        .packets(PacketType::AckEpoch)
        .iter()
        .all(|(f, _, _)| *f != S1));
    c.release_disk(S1);
    c.advance(1000);
    assert!(c
        .packets(PacketType::AckEpoch)
        .iter()
        .any(|(f, _, _)| *f == S1));
    assert!(c.all_serving());
}

#[test]
fn discovery_leader_does_not_lead_without_quorum_and_steps_down() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    let l = c.leader().unwrap();
    // isolate both followers: the leader loses its quorum within a few ticks.
    let followers: Vec<ServerId> = [S1, S2, S3].into_iter().filter(|s| *s != l).collect();
    for f in &followers {
        c.isolated.insert(*f);
    }
    c.advance(20 * TICK);
    assert_eq!(c.role(l), Role::Looking);
    for f in &followers {
        assert_eq!(
            c.role(*f),
            Role::Looking,
            "followers give up on a silent leader"
        );
    }
}

// ---------------------------------------------------------------- synchronisation

#[test]
fn sync_diff_sends_only_missing_committed_txns() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 1, 1, history(&[(1, 2)]));
    c.start(S2, 1, 1, history(&[(1, 3)]));
    c.start(S3, 1, 1, history(&[(1, 3)]));
    c.advance(3000);
    assert_eq!(c.role(S3), Role::Leading);
    let diffs = c.packets(PacketType::Diff);
    assert!(diffs
        .iter()
        .any(|(_, t, p)| *t == S1 && p.zxid == Zxid::new(1, 3).0));
    let to1: Vec<i64> = c
        .packets(PacketType::Proposal)
        .into_iter()
        .filter(|(_, t, _)| *t == S1)
        .map(|(_, _, p)| p.zxid)
        .collect();
    assert_eq!(to1, vec![Zxid::new(1, 3).0]);
    assert!(c.packets(PacketType::Snap).is_empty());
    for s in [S1, S2, S3] {
        assert_eq!(c.applied_zxids(s).last(), Some(&Zxid::new(1, 3)));
    }
}

#[test]
fn sync_trunc_discards_proposals_of_a_dead_leader() {
    // 1 led epoch 1, logged 1.3 and 1.4 that nobody else saw, then died.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S2, 1, 1, history(&[(1, 2)]));
    c.start(S3, 1, 1, history(&[(1, 2)]));
    c.advance(3000);
    let l = c.leader().unwrap();
    c.start(S1, 1, 1, history(&[(1, 4)]));
    c.advance(3000);
    assert_eq!(c.role(S1), Role::Following);
    let truncs = c.packets(PacketType::Trunc);
    assert!(truncs
        .iter()
        .any(|(f, t, p)| *f == l && *t == S1 && p.zxid == Zxid::new(1, 2).0));
    c.write(2);
    c.advance(500);
    let a1 = c.applied_zxids(S1);
    assert!(!a1.contains(&Zxid::new(1, 3)) && !a1.contains(&Zxid::new(1, 4)));
    assert_eq!(a1, c.applied_zxids(l));
    assert!(c.nodes[&S1].log.iter().all(|t| t.zxid != Zxid::new(1, 4)));
}

#[test]
fn sync_dead_epoch_txns_behind_a_newer_epoch_force_snap() {
    // TRUNC never crosses an epoch: 1 holds 1.3, 1.4 but the leader's window already has
    // epoch-2 txns after 1.2, so 1 gets a snapshot instead.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S2, 1, 1, history(&[(1, 2)]));
    c.start(S3, 1, 1, history(&[(1, 2)]));
    c.advance(3000);
    c.write(2);
    c.advance(500);
    c.start(S1, 1, 1, history(&[(1, 4)]));
    c.advance(3000);
    assert!(c.packets(PacketType::Snap).iter().any(|(_, t, _)| *t == S1));
    let a1 = c.applied_zxids(S1);
    assert!(!a1.contains(&Zxid::new(1, 3)) && !a1.contains(&Zxid::new(1, 4)));
    assert_eq!(c.nodes[&S1].applied, c.nodes[&S3].applied);
}

#[test]
fn sync_snap_when_learner_is_older_than_the_committed_window() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S2, 0, 0, Vec::new());
    c.start(S3, 0, 0, Vec::new());
    c.advance(3000);
    c.write(10); // window keeps 3 committed proposals
    c.advance(1000);
    c.start(S1, 0, 0, Vec::new());
    c.advance(3000);
    let snaps = c.packets(PacketType::Snap);
    assert!(snaps.iter().any(|(_, t, _)| *t == S1));
    assert_eq!(c.nodes[&S1].applied.len(), 10);
    assert_eq!(c.nodes[&S1].applied, c.nodes[&S3].applied);
}

/// A txn at or below the zxid of the SNAP a learner installed, still sent after it, is
/// in the snapshot and skipped. ZooKeeper's leader and observer masters forward from the
/// zxid they chose to sync from, which can be older than the one their tree is then
/// serialized at; an rzk observer left a ZooKeeper observer master on such an INFORM
/// ("inform out of order": CI `observer-master`, rzkobs, session 46).
#[test]
fn sync_a_txn_already_in_the_snapshot_is_skipped() {
    let mut c = Cluster::new(&[S1, S2, S3], &[S4]);
    for s in [S1, S2, S3] {
        c.start(s, 0, 0, Vec::new());
    }
    c.advance(3000);
    let leader = c.leader().expect("a leader");
    let zs = c.write(10); // past the committed window: S4 gets a SNAP
    c.advance(1000);
    c.start(S4, 0, 0, Vec::new());
    let mut injected = None;
    for _ in 0..200 {
        while let Some((from, to, w)) = c.queue.pop_front() {
            if !c.nodes.contains_key(&to) {
                continue;
            }
            let snap = match &w {
                Wire::Snap(z, _) if to == S4 => Some(*z),
                _ => None,
            };
            let msg = c.open(to, w);
            c.deliver(from, to, msg);
            if let (Some(z), None) = (snap, injected) {
                let old = *zs
                    .iter()
                    .rev()
                    .find(|o| **o < z)
                    .expect("a txn below the SNAP");
                let inform = QuorumPacket::with_data(PacketType::Inform, old.0, vec![1, 2, 3]);
                c.deliver(leader, S4, Message::Quorum(inform));
                injected = Some(old);
            }
        }
        c.now += TICK / 4;
        for s in [S1, S2, S3, S4] {
            c.input(s, Input::Tick { now_ms: c.now });
        }
    }
    c.advance(1000);
    assert!(injected.is_some(), "S4 never got a SNAP");
    assert!(c.nodes[&S4].zab.is_serving(), "S4 left its sync");
    assert_eq!(
        c.packets(PacketType::ObserverInfo)
            .iter()
            .filter(|(f, _, _)| *f == S4)
            .count(),
        1,
        "S4 connected to the leader again"
    );
    assert_eq!(c.applied_zxids(S4), c.applied_zxids(S1));
}

#[test]
fn sync_learner_serves_only_after_uptodate() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.nodes.get_mut(&S2).unwrap().hold_disk = true;
    c.advance(3000);
    // 2 cannot persist currentEpoch, so it never acks NEWLEADER and is not serving.
    assert!(!c.nodes[&S2].zab.is_serving());
    assert!(c
        .packets(PacketType::UpToDate)
        .iter()
        .all(|(_, t, _)| *t != S2));
    c.release_disk(S2);
    c.advance(1000);
    assert!(c.nodes[&S2].zab.is_serving());
}

// ---------------------------------------------------------------- broadcast

#[test]
fn broadcast_commits_in_order_on_every_replica() {
    let mut c = Cluster::new(&[S1, S2, S3, S4, S5], &[S6]);
    c.start_all_fresh();
    c.advance(3000);
    let zs = c.write(20);
    c.advance(1000);
    for s in [S1, S2, S3, S4, S5, S6] {
        assert_eq!(c.applied_zxids(s), zs, "replica {s}");
    }
    // observers got INFORM, never PROPOSAL/COMMIT in broadcast
    assert!(c
        .packets(PacketType::Inform)
        .iter()
        .all(|(_, t, _)| *t == S6));
    assert!(c
        .packets(PacketType::Proposal)
        .iter()
        .all(|(_, t, _)| *t != S6));
}

#[test]
fn broadcast_no_commit_before_a_quorum_has_it_on_disk() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    c.nodes.get_mut(&S1).unwrap().hold_disk = true;
    c.nodes.get_mut(&S2).unwrap().hold_disk = true;
    let zs = c.write(1);
    c.advance(200);
    assert!(
        c.applied_zxids(S3).is_empty(),
        "leader alone is not a quorum"
    );
    assert!(c.packets(PacketType::Commit).is_empty());
    c.release_disk(S1);
    c.advance(200);
    assert_eq!(c.applied_zxids(S3), zs);
    assert_eq!(c.applied_zxids(S1), zs);
}

#[test]
fn broadcast_faulty_leader_commits_without_quorum() {
    // The test-only switch really does break the rule (the simulator relies on it).
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    for cfg in c.cfgs.values_mut() {
        cfg.fault_commit_without_quorum = true;
    }
    c.start_all_fresh();
    c.advance(3000);
    c.isolated.insert(S1);
    c.isolated.insert(S2);
    let zs = c.write(1);
    assert_eq!(c.applied_zxids(S3), zs);
}

#[test]
fn broadcast_pings_keep_followers_alive() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    let l = c.leader().unwrap();
    c.advance(100 * TICK);
    assert_eq!(c.leader(), Some(l));
    assert!(c.all_serving());
    assert!(c.packets(PacketType::Ping).len() > 100);
}

#[test]
fn standalone_is_an_ensemble_of_one() {
    let mut c = Cluster::new(&[S1], &[]);
    c.start_all_fresh();
    c.advance(1000);
    assert_eq!(c.leader(), Some(S1));
    let zs = c.write(3);
    c.advance(100);
    assert_eq!(c.applied_zxids(S1), zs);
}

#[test]
fn broadcast_sync_answer_goes_between_the_commit_it_waited_for_and_later_commits() {
    // A learner's sync waits for the leader's last proposal at the time it arrives; the
    // answer must reach the learner right after that COMMIT and before the COMMIT of any
    // later proposal, even when both commit at once (otherwise the learner answers the
    // sync after a write its session sent later).
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    let l = c.leader().expect("leader");
    let f = [S1, S2, S3].into_iter().find(|s| *s != l).unwrap();
    // The learner acknowledges at once; the leader's own disk is late, so every
    // proposal reaches a quorum in the same moment.
    c.nodes.get_mut(&l).unwrap().hold_disk = true;
    for s in [S1, S2, S3] {
        if s != l && s != f {
            c.nodes.get_mut(&s).unwrap().hold_disk = true;
        }
    }
    let first = c.write(1);
    c.input(l, Input::SyncRequest { from: f });
    let later = c.write(2);
    c.advance(100);
    assert!(c.packets(PacketType::Commit).is_empty());
    // One group commit on the leader covers all three proposals.
    let n = c.nodes.get_mut(&l).unwrap();
    n.hold_disk = false;
    for o in std::mem::take(&mut n.held) {
        if let Output::PersistTxns(ts) = o {
            n.log.extend(ts);
        }
    }
    c.input(l, Input::Persisted { up_to: later[1] });
    c.advance(200);
    let seen: Vec<(PacketType, Zxid)> = c
        .trace
        .iter()
        .filter_map(|(from, to, m)| match m {
            Message::Quorum(p)
                if *from == l
                    && *to == f
                    && matches!(p.ty, PacketType::Commit | PacketType::Sync) =>
            {
                Some((p.ty, Zxid(p.zxid)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (PacketType::Commit, first[0]),
            (PacketType::Sync, Zxid::ZERO),
            (PacketType::Commit, later[0]),
            (PacketType::Commit, later[1]),
        ]
    );
}

#[test]
fn leader_steps_down_for_a_new_epoch_when_the_zxid_counter_is_used_up() {
    // One voter (standalone) and three voters alike: the counter half of the zxid must
    // never wrap; the leader re-elects itself (or another) in a new epoch instead.
    for voters in [vec![S1], vec![S1, S2, S3]] {
        let mut c = Cluster::new(&voters, &[]);
        c.start_all_fresh();
        c.advance(3000);
        let l = c.leader().expect("leader");
        let epoch = c.write(1)[0].epoch();
        c.advance(100);
        if let State::Leading(ld) = &mut c.nodes.get_mut(&l).unwrap().zab.state {
            ld.set_last_proposed_for_test(Zxid::new(epoch, u32::MAX - 2));
        } else {
            panic!("not leading");
        }
        let last = c.write(1)[0];
        assert_eq!(last.counter(), u32::MAX - 1);
        assert!(
            c.nodes[&l].zab.next_zxid().is_none(),
            "no zxid past the end"
        );
        c.advance(3000);
        let l2 = c.leader().expect("a leader again");
        let next = c.write(1)[0];
        assert!(next.epoch() > epoch, "{voters:?}: new epoch {next}");
        c.advance(100);
        assert_eq!(c.applied_zxids(l2).last(), Some(&next), "{voters:?}");
    }
}

/// A ZooKeeper leader pings every learner on its tick, also one still syncing (its ping
/// queue follows the DIFF/SNAP/TRUNC); its learners skip such pings. A learner that
/// dropped the leader for them re-synced from scratch (tests/mixed saw it after a SNAP).
#[test]
fn sync_learner_ignores_pings_before_newleader_is_acked() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 0, 0, Vec::new());
    c.start(S3, 0, 0, Vec::new());
    c.advance(3000);
    let leader = c.leader().expect("S1 and S3 elect a leader");
    c.start(S2, 0, 0, Vec::new());
    c.nodes.get_mut(&S2).unwrap().hold_disk = true;
    c.advance(2000);
    // S2 follows but its acceptedEpoch is held on disk: release it, hold the rest.
    c.release_disk(S2);
    c.nodes.get_mut(&S2).unwrap().hold_disk = true;
    c.deliver_all();
    assert!(
        !c.nodes[&S2].held.is_empty(),
        "S2 persists currentEpoch after NEWLEADER"
    );
    let ping = Message::Quorum(QuorumPacket::new(PacketType::Ping, 0));
    c.input(
        S2,
        Input::Message {
            from: leader,
            msg: ping,
        },
    );
    assert_eq!(
        c.role(S2),
        Role::Following,
        "a ping while syncing dropped the leader"
    );
    c.release_disk(S2);
    c.advance(1000);
    assert!(c.nodes[&S2].zab.is_serving());
    assert_eq!(c.role(S2), Role::Following);
}

/// Packets to `to` in the trace, in order (type, zxid).
fn packets_to(c: &Cluster, to: ServerId) -> Vec<(PacketType, i64)> {
    c.trace
        .iter()
        .filter_map(|(_, t, m)| match m {
            Message::Quorum(p) if *t == to => Some((p.ty, p.zxid)),
            _ => None,
        })
        .collect()
}

#[test]
fn sync_sends_no_commit_between_newleader_and_uptodate() {
    // A participant joins while proposals are outstanding and commit during its sync.
    // ZooKeeper 3.8.0's learner fails on a COMMIT between NEWLEADER and UPTODATE
    // (ZOOKEEPER-4394); the leader holds them until right after UPTODATE. Every point at
    // which the other follower's ACKs can arrive is tried.
    for release_after in 0..40 {
        let (mut c, l, f, zs) = Cluster::joining_while_proposals_outstanding();
        let mut delivered = 0;
        while let Some((from, to, w)) = c.queue.pop_front() {
            if delivered == release_after {
                c.release_disk(f);
            }
            delivered += 1;
            let msg = c.open(to, w);
            c.deliver(from, to, msg);
            assert!(delivered < 100_000, "message storm");
        }
        c.release_disk(f);
        c.advance(3000);
        let to1 = packets_to(&c, S1);
        let newleader = to1.iter().position(|(t, _)| *t == PacketType::NewLeader);
        let uptodate = to1.iter().position(|(t, _)| *t == PacketType::UpToDate);
        let (Some(n), Some(u)) = (newleader, uptodate) else {
            panic!("S1 was not synced (release after {release_after}): {to1:?}");
        };
        assert!(
            to1[n..u].iter().all(|(t, _)| *t != PacketType::Commit),
            "COMMIT between NEWLEADER and UPTODATE (release after {release_after}): {to1:?}"
        );
        for z in &zs {
            assert!(
                c.applied_zxids(S1).contains(z),
                "S1 applied {z} (release after {release_after})"
            );
        }
        assert_eq!(c.applied_zxids(S1), c.applied_zxids(l));
    }
}

#[test]
fn sync_a_proposal_ack_before_the_newleader_ack_does_not_drop_the_learner() {
    // ZooKeeper's learner logs the proposals of its sync when NEWLEADER arrives, and its
    // log thread may ACK one before its main thread ACKs NEWLEADER
    // (Learner.syncWithLeader); a ZooKeeper leader carries on. rzk's leader dropped it
    // ("first ACK is not for NEWLEADER"), aborting the sync of a ZooKeeper follower under
    // write load (found by the mixed-ensemble crash review). The proposals stay
    // outstanding (the other follower's disk is held), so they are sent in the sync.
    let (mut c, l, _held, zs) = Cluster::joining_while_proposals_outstanding();
    let mut injected = false;
    let mut delivered = 0;
    while let Some((from, to, w)) = c.queue.pop_front() {
        let msg = c.open(to, w);
        let newleader_ack = matches!(&msg, Message::Quorum(p)
            if p.ty == PacketType::Ack && Zxid(p.zxid).counter() == 0);
        if from == S1 && to == l && newleader_ack && !injected {
            injected = true;
            let early = Message::Quorum(QuorumPacket::new(PacketType::Ack, zs[0].0));
            c.deliver(S1, l, early);
        }
        c.deliver(from, to, msg);
        delivered += 1;
        assert!(delivered < 100_000, "message storm");
    }
    assert!(injected, "S1 never acknowledged NEWLEADER");
    c.advance(3000);
    let to1 = packets_to(&c, S1);
    let count = |ty| to1.iter().filter(|(t, _)| *t == ty).count();
    assert_eq!(
        (count(PacketType::NewLeader), count(PacketType::UpToDate)),
        (1, 1),
        "S1 was dropped and synced again: {to1:?}"
    );
    assert!(c.nodes[&S1].zab.is_serving());
    for z in &zs {
        assert!(
            c.applied_zxids(l).contains(z),
            "{z} committed with S1's ACKs"
        );
        assert!(c.applied_zxids(S1).contains(z), "S1 applied {z}");
    }
}

// ---------------------------------------------------------------- failover timing

impl Cluster {
    /// kill -9 of `sid`: it vanishes with whatever it had queued, and every peer's runtime
    /// reports the closed quorum connection (a dead process's sockets close at once).
    fn crash(&mut self, sid: ServerId) {
        self.nodes.remove(&sid);
        self.queue.retain(|(f, t, _)| *f != sid && *t != sid);
        let others: Vec<ServerId> = self.nodes.keys().copied().collect();
        for s in others {
            self.input(s, Input::Disconnected { peer: sid });
        }
    }

    /// Advances a quarter tick at a time until every live server serves; returns the
    /// simulated ms that took (panics after `limit` ms).
    fn time_to_serve(&mut self, limit: u64) -> u64 {
        let t0 = self.now;
        while self.leader().is_none() || !self.all_serving() {
            assert!(self.now - t0 < limit, "not serving after {limit} ms");
            self.advance(TICK / 4);
        }
        self.now - t0
    }
}

#[test]
fn failover_after_the_leader_dies_finishes_without_the_finalize_wait() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    assert_eq!(c.role(S3), Role::Leading);
    let zs = c.write(3);
    c.advance(500);
    c.crash(S3);
    // Both survivors lost the leader's connection: with each other's vote their view is
    // complete, so they finish at once (ZooKeeper would wait finalizeWait, 200 ms).
    let took = c.time_to_serve(5000);
    let wait = c.cfgs[&S1].finalize_wait_ms;
    assert!(
        took < wait,
        "new leader serving after {took} ms, not below finalizeWait {wait} ms"
    );
    assert_eq!(
        c.role(S2),
        Role::Leading,
        "the best survivor (higher sid) leads"
    );
    assert_eq!(c.role(S1), Role::Following);
    for s in [S1, S2] {
        for z in &zs {
            assert!(c.applied_zxids(s).contains(z), "{s} lost committed {z}");
        }
    }
    // The new epoch takes writes.
    let more = c.write(2);
    c.advance(500);
    assert_eq!(c.applied_zxids(S1), c.applied_zxids(S2));
    assert!(more.iter().all(|z| c.applied_zxids(S1).contains(z)));
}

#[test]
fn failover_a_voter_never_heard_from_keeps_the_finalize_wait() {
    // S3 was never up (not known gone): S1 and S2 agree at once but must still wait
    // finalizeWait for a better vote, as ZooKeeper does.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 0, 0, Vec::new());
    c.start(S2, 0, 0, Vec::new());
    let wait = c.cfgs[&S1].finalize_wait_ms;
    c.advance(wait - TICK / 2);
    assert_eq!(
        c.role(S2),
        Role::Looking,
        "finished inside the finalize window"
    );
    assert_eq!(
        c.role(S1),
        Role::Looking,
        "finished inside the finalize window"
    );
    let took = c.time_to_serve(3000);
    assert_eq!(c.role(S2), Role::Leading);
    assert!(took > 0);
}

#[test]
fn failover_a_lost_leader_that_is_alive_is_rejoined_without_a_new_epoch() {
    // Only S1's connection to the leader breaks (a reset, not a crash): S1 elects
    // without S3 but hears S2 FOLLOWING and S3 LEADING, and rejoins the same leader.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    assert_eq!(c.role(S3), Role::Leading);
    let epoch = c.nodes[&S3].zab.current_epoch();
    let zs = c.write(2);
    c.advance(500);
    c.input(S1, Input::Disconnected { peer: S3 });
    assert_eq!(c.role(S1), Role::Looking);
    c.time_to_serve(3000);
    assert_eq!(c.role(S1), Role::Following);
    assert_eq!(c.nodes[&S1].zab.leader(), Some(S3));
    assert_eq!(c.nodes[&S3].zab.current_epoch(), epoch, "no new epoch");
    assert!(zs.iter().all(|z| c.applied_zxids(S1).contains(z)));
}

#[test]
fn failover_a_learner_sync_before_the_first_write_of_the_epoch_is_answered_at_once() {
    // A client re-attaching on a follower right after a failover passes a sync through
    // the new leader before any write of the new epoch: with nothing outstanding the
    // leader answers at once (ZooKeeper's processSync), not at the epoch's first commit.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    c.write(3);
    c.advance(500);
    c.crash(S3);
    c.time_to_serve(5000);
    assert_eq!(c.role(S2), Role::Leading);
    c.trace.clear();
    c.input(S2, Input::SyncRequest { from: S1 });
    c.advance(TICK);
    assert_eq!(
        c.packets(PacketType::Sync).len(),
        1,
        "SYNC answered without a write in the new epoch"
    );
}

mod groups;
mod reconfig;

#[test]
fn discovery_a_non_voter_with_a_newer_accepted_epoch_does_not_unseat_the_leader() {
    // Break-it review: a server in no membership sending FOLLOWERINFO with a high epoch
    // every 20 ms made an established leader step down each time (writes fell 100x).
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    let l = c.leader().unwrap();
    let epoch = c.nodes[&l].established[0];
    let stranger = ServerId(99);
    for k in 0..5 {
        let info = rzk_proto::quorum::payload::LearnerInfo {
            server_id: stranger.0,
            protocol_version: rzk_proto::quorum::LEARNER_PROTOCOL_VERSION,
            config_version: 0,
        };
        let p = QuorumPacket::with_data(
            PacketType::FollowerInfo,
            Zxid::new(epoch + 100 + k, 0).0,
            info.encode(),
        );
        let out = c.nodes.get_mut(&l).unwrap().zab.step(Input::Message {
            from: stranger,
            msg: Message::Quorum(p),
        });
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Disconnect { peer } if *peer == stranger)),
            "the stranger is disconnected: {out:?}"
        );
        c.handle(l, out);
        c.advance(200);
        assert_eq!(c.leader(), Some(l), "the leader keeps leading");
    }
    assert_eq!(c.nodes[&l].established, vec![epoch], "no new epoch");
    let zs = c.write(3);
    c.advance(500);
    for s in [S1, S2, S3] {
        for z in &zs {
            assert!(c.applied_zxids(s).contains(z), "{s} lost {z}");
        }
    }
}

#[test]
fn discovery_a_learner_that_accepted_a_newer_epoch_is_taken_back_by_a_new_election() {
    // Simulator seed 212081: members accepted epoch 3 from a candidate that died in
    // discovery while the leader of epoch 2 kept its quorum. Such a learner refuses the
    // leader's older LEADERINFO, so it could rejoin only once that leader was gone.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start_all_fresh();
    c.advance(3000);
    let l = c.leader().unwrap();
    let epoch = c.nodes[&l].established[0];
    let zs = c.write(3);
    c.advance(500);
    let s = [S1, S2, S3].into_iter().find(|&s| s != l).unwrap();
    let log = c.nodes[&s].log.clone();
    c.crash(s);
    c.start(s, epoch + 5, epoch, log);
    c.time_to_serve(10_000);
    let l = c.leader().unwrap();
    assert!(
        c.nodes[&l]
            .established
            .last()
            .is_some_and(|&e| e > epoch + 5),
        "the new epoch is above the learner's accepted one"
    );
    for s in [S1, S2, S3] {
        for z in &zs {
            assert!(c.applied_zxids(s).contains(z), "{s} lost committed {z}");
        }
    }
}

/// A FOLLOWERINFO from `from` to `to`, as a learner with accepted epoch 0 sends it.
fn early_follower_info(c: &mut Cluster, from: ServerId, to: ServerId) {
    let info = rzk_proto::quorum::payload::LearnerInfo {
        server_id: from.0,
        protocol_version: rzk_proto::quorum::LEARNER_PROTOCOL_VERSION,
        config_version: 0,
    };
    let p = QuorumPacket::with_data(PacketType::FollowerInfo, Zxid::ZERO.0, info.encode());
    c.input(
        to,
        Input::Message {
            from,
            msg: Message::Quorum(p),
        },
    );
}

#[test]
fn a_learner_handshake_made_while_looking_is_answered_when_this_server_leads() {
    // Mixed-ensemble review (session 40): a ZooKeeper learner whose election ended a few
    // ms sooner dialled rzk's quorum port while rzk was still LOOKING; rzk closed the
    // connection, the learner went LOOKING in a newer round, and the new leader waited
    // out initLimit for a quorum. Now the handshake is held and replayed.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S3, 0, 0, Vec::new());
    c.advance(50);
    early_follower_info(&mut c, S1, S3);
    assert!(
        c.disconnects.is_empty(),
        "held, not refused: {:?}",
        c.disconnects
    );
    c.start(S2, 0, 0, Vec::new());
    c.advance(1000);
    assert_eq!(c.nodes[&S3].zab.role(), Role::Leading);
    assert!(
        leader_info_to_absent(&c, S3, S1),
        "the held FOLLOWERINFO of S1 got its LEADERINFO"
    );
    assert!(!c.disconnects.contains(&(S3, S1)), "{:?}", c.disconnects);
}

#[test]
fn a_learner_handshake_made_while_looking_is_refused_when_this_server_follows() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S1, 0, 0, Vec::new());
    c.advance(50);
    early_follower_info(&mut c, S2, S1);
    assert!(c.disconnects.is_empty());
    c.start(S3, 0, 0, Vec::new());
    c.advance(1000);
    assert_eq!(c.nodes[&S1].zab.role(), Role::Following);
    assert!(c.disconnects.contains(&(S1, S2)), "{:?}", c.disconnects);
    // A held handshake whose peer disconnected meanwhile is forgotten.
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.start(S3, 0, 0, Vec::new());
    c.advance(50);
    early_follower_info(&mut c, S1, S3);
    c.input(S3, Input::Disconnected { peer: S1 });
    c.start(S2, 0, 0, Vec::new());
    c.advance(1000);
    assert_eq!(c.nodes[&S3].zab.role(), Role::Leading);
    assert!(!leader_info_to_absent(&c, S3, S1));
}

/// Whether `from` sent a LEADERINFO to `to`, a server that was not started.
fn leader_info_to_absent(c: &Cluster, from: ServerId, to: ServerId) -> bool {
    c.to_absent.iter().any(|(f, t, m)| {
        *f == from && *t == to && matches!(m, Message::Quorum(p) if p.ty == PacketType::LeaderInfo)
    })
}

/// A LOOKING vote of `from` for `leader` (fresh state: zxid 0, peer epoch 0) in round
/// `round`, delivered to `to`.
fn looking_vote(z: &mut Zab, from: ServerId, leader: ServerId, round: i64) -> Vec<Output> {
    let v = Vote {
        leader,
        zxid: Zxid::ZERO,
        election_epoch: round,
        peer_epoch: 0,
        state: rzk_proto::quorum::ServerState::Looking,
        version: 2,
    };
    z.step(Input::Message {
        from,
        msg: Message::Election(v.notification(rzk_proto::quorum::ServerState::Looking, "")),
    })
}

/// S2 elected with S1's vote while S3 was away: LEADING, not established.
fn s2_leading_unestablished() -> Zab {
    s2_leading_unestablished_in(1).0
}

/// [`s2_leading_unestablished`] with S1's vote in `round`; also the clock (ms) when S2
/// took the lead.
fn s2_leading_unestablished_in(round: i64) -> (Zab, u64) {
    let d = Durable {
        accepted_epoch: 0,
        current_epoch: 0,
        snapshot_zxid: Zxid::ZERO,
        log: Vec::new(),
    };
    let (mut z, _) = Zab::new(cfg(S2, &[S1, S2, S3], &[]), d, 0);
    looking_vote(&mut z, S1, S2, round);
    let mut now = 0;
    while z.role() != Role::Leading && now < 2000 {
        now += 50;
        z.step(Input::Tick { now_ms: now });
    }
    assert_eq!(z.role(), Role::Leading);
    assert!(!z.is_serving());
    (z, now)
}

#[test]
fn a_leader_not_yet_established_steps_down_when_a_quorum_elects_a_better_candidate() {
    // Mixed-ensemble review (session 40): rzk ended its election as soon as every live
    // voter's vote was in; a ZooKeeper voter still in its 200 ms wait switched to a
    // restarted voter's better vote, and the rzk leader sat alone in discovery for
    // initLimit. Now a quorum of other voters voting for one better candidate in this
    // round makes it step down at once.
    let mut z = s2_leading_unestablished();
    looking_vote(&mut z, S3, S3, 1);
    assert_eq!(z.role(), Role::Leading, "one voter is no quorum");
    looking_vote(&mut z, S1, S3, 1);
    assert_eq!(z.role(), Role::Looking, "S1 and S3 elect S3");
    // Votes of an older round, or for a worse candidate, or not a quorum: it stays.
    let mut z = s2_leading_unestablished();
    looking_vote(&mut z, S3, S3, 0);
    looking_vote(&mut z, S1, S3, 0);
    assert_eq!(z.role(), Role::Leading, "stale round");
    let mut z = s2_leading_unestablished();
    looking_vote(&mut z, S3, S1, 1);
    looking_vote(&mut z, S1, S1, 1);
    assert_eq!(z.role(), Role::Leading, "S1 does not beat S2");
    let mut z = s2_leading_unestablished();
    looking_vote(&mut z, S3, S3, 1);
    looking_vote(&mut z, S1, S2, 1);
    looking_vote(&mut z, S3, S3, 1);
    assert_eq!(z.role(), Role::Leading, "S1 changed back to S2");
}

/// A notification may carry any round, `Long.MAX_VALUE` included (the election port is
/// open unless quorum SASL is on): the next round wraps, as ZooKeeper's `AtomicLong`
/// does, where a debug build's quorum thread panicked on the overflow (a break-it
/// review, session 57).
#[test]
fn the_election_round_after_the_largest_wraps() {
    let (mut z, mut now) = s2_leading_unestablished_in(i64::MAX);
    assert_eq!(z.core.logical_clock, i64::MAX);
    // No follower comes within initLimit: a new round starts.
    while z.role() == Role::Leading && now < 600_000 {
        now += 50;
        z.step(Input::Tick { now_ms: now });
    }
    assert_eq!(z.role(), Role::Looking);
    assert_eq!(z.core.logical_clock, i64::MIN);
}
