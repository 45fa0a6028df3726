//! The fake network's connection bookkeeping. Election messages are datagram-like (may be
//! dropped, duplicated, reordered). A quorum connection between two servers is one ordered
//! stream with a generation number: a message is delivered only if its connection is still
//! the live one, so a broken or replaced connection never delivers stale packets, and
//! deliveries on a live connection never overtake each other.

use rzk_proto::ServerId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Link {
    pub gen: u64,
    pub alive: bool,
    /// Last scheduled delivery time per direction: (low sid -> high sid, high -> low).
    pub last_delivery: [u64; 2],
}

#[derive(Debug, Default)]
pub struct Links {
    links: BTreeMap<(ServerId, ServerId), Link>,
    /// The connection generation each end (first sid) believes it talks on with the other.
    known: BTreeMap<(ServerId, ServerId), u64>,
}

fn key(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    (a.min(b), a.max(b))
}

impl Links {
    pub fn get(&mut self, a: ServerId, b: ServerId) -> &mut Link {
        self.links.entry(key(a, b)).or_default()
    }

    /// A new connection replaces the old one.
    pub fn connect(&mut self, a: ServerId, b: ServerId, alive: bool) -> u64 {
        let l = self.get(a, b);
        l.gen += 1;
        l.alive = alive;
        l.gen
    }

    /// Breaks the live connection; returns its generation if it was alive.
    pub fn break_link(&mut self, a: ServerId, b: ServerId) -> Option<u64> {
        let l = self.get(a, b);
        if l.alive {
            l.alive = false;
            Some(l.gen)
        } else {
            None
        }
    }

    pub fn is_live(&mut self, a: ServerId, b: ServerId, gen: u64) -> bool {
        let l = self.get(a, b);
        l.alive && l.gen == gen
    }

    /// FIFO delivery time on the live connection from `from` to `to`.
    pub fn fifo_time(&mut self, from: ServerId, to: ServerId, want: u64) -> u64 {
        let dir = usize::from(from > to);
        let l = self.get(from, to);
        let t = want.max(l.last_delivery[dir]);
        l.last_delivery[dir] = t;
        t
    }

    /// The generation `me` last saw on its connection with `peer`.
    pub fn known(&self, me: ServerId, peer: ServerId) -> u64 {
        self.known.get(&(me, peer)).copied().unwrap_or(0)
    }

    pub fn set_known(&mut self, me: ServerId, peer: ServerId, gen: u64) {
        self.known.insert((me, peer), gen);
    }

    pub fn peers_of(&self, a: ServerId) -> Vec<ServerId> {
        self.links
            .keys()
            .filter_map(|&(x, y)| {
                if x == a {
                    Some(y)
                } else if y == a {
                    Some(x)
                } else {
                    None
                }
            })
            .collect()
    }
}
