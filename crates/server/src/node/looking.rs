//! Why a member is still LOOKING: a periodic WARN while an election lasts, naming the
//! peers it cannot reach and the votes it has, so that an operator of a member started
//! alone sees the reason without debug logs (ZooKeeper's nearest equivalents are its
//! "Cannot open channel" warnings and the notification lines of FastLeaderElection).
//!
//! Owns only when to report and the wording; the driver calls it on its tick and logs.

use crate::net::peer::reachability::DownPeer;
use crate::zab::election::ElectionProgress;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// First report after this long in LOOKING (most elections finish well before).
pub const FIRST_REPORT_AFTER: Duration = Duration::from_secs(5);
/// Later reports, while the election lasts.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);

/// When the next report is due.
#[derive(Debug, Default)]
pub struct LookingReport {
    since: Option<Instant>,
    next_at: Option<Instant>,
}

impl LookingReport {
    /// The server entered LOOKING at `now`.
    pub fn started(&mut self, now: Instant) {
        self.since = Some(now);
        self.next_at = Some(now + FIRST_REPORT_AFTER);
    }

    /// The server left LOOKING.
    pub fn stopped(&mut self) {
        self.since = None;
        self.next_at = None;
    }

    /// Some(time spent LOOKING) when a report is due at `now` (and schedules the next).
    pub fn due(&mut self, now: Instant) -> Option<Duration> {
        let (since, next) = (self.since?, self.next_at?);
        if now < next {
            return None;
        }
        self.next_at = Some(now + REPORT_EVERY);
        Some(now.saturating_duration_since(since))
    }
}

/// The report's text: how long, the votes, whom it heard from, whom it cannot reach.
pub fn describe(looking_for: Duration, p: &ElectionProgress, down: &[DownPeer]) -> String {
    let mut s = format!(
        "still looking for a leader after {}s: {} of {} voters agree with my vote for server {} (zxid {})",
        looking_for.as_secs(),
        p.agreeing,
        p.voters,
        p.proposal.leader,
        p.proposal.zxid
    );
    if p.heard_from.is_empty() {
        s.push_str("; heard from no other server");
    } else {
        let ids: Vec<String> = p.heard_from.iter().map(|x| x.to_string()).collect();
        let _ = write!(s, "; heard from {}", ids.join(", "));
    }
    if down.is_empty() {
        s.push_str("; every election address answers");
    } else {
        let list: Vec<String> = down
            .iter()
            .map(|d| {
                format!(
                    "{} at {} ({}, for {}s)",
                    d.sid,
                    d.addr,
                    d.reason,
                    d.down_for.as_secs()
                )
            })
            .collect();
        let _ = write!(s, "; cannot reach {}", list.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::vote::Candidate;
    use rzk_proto::{ServerId, Zxid};

    #[test]
    fn reports_after_five_seconds_then_every_thirty() {
        let t0 = Instant::now();
        let mut r = LookingReport::default();
        assert_eq!(r.due(t0 + Duration::from_secs(100)), None, "not looking");
        r.started(t0);
        assert_eq!(r.due(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            r.due(t0 + Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        let count = (6..=64)
            .filter(|s| r.due(t0 + Duration::from_secs(*s)).is_some())
            .count();
        assert_eq!(count, 1, "one more report in the next minute (at 35 s)");
        r.stopped();
        assert_eq!(r.due(t0 + Duration::from_secs(200)), None);
    }

    #[test]
    fn text_names_votes_and_unreachable_peers() {
        let p = ElectionProgress {
            proposal: Candidate {
                leader: ServerId(1),
                zxid: Zxid(0x100000003),
                epoch: 1,
            },
            heard_from: vec![],
            agreeing: 1,
            voters: 3,
        };
        let down = vec![DownPeer {
            sid: ServerId(2),
            addr: "127.0.0.2:3888".parse().expect("address"),
            reason: "Connection refused (os error 111)".into(),
            down_for: Duration::from_secs(12),
        }];
        let s = describe(Duration::from_secs(12), &p, &down);
        assert!(s.contains("after 12s"), "{s}");
        assert!(
            s.contains("1 of 3 voters agree with my vote for server 1"),
            "{s}"
        );
        assert!(s.contains("heard from no other server"), "{s}");
        assert!(
            s.contains(
                "cannot reach 2 at 127.0.0.2:3888 (Connection refused (os error 111), for 12s)"
            ),
            "{s}"
        );
    }
}
