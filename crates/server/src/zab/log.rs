//! The core's in-memory view of the transaction log: the committed window kept for DIFF
//! sync plus every not-yet-committed transaction, with the persisted and committed marks.
//! It mirrors what the runtime has on disk; it never touches the disk itself.

use super::types::Txn;
use rzk_proto::Zxid;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct TxnLog {
    /// Zxid of the state just before the first entry (snapshot point or trim point).
    base: Zxid,
    entries: VecDeque<Txn>,
    persisted: Zxid,
    committed: Zxid,
}

impl TxnLog {
    /// A log recovered from disk: all of `txns` are durable, none applied.
    pub fn recovered(snapshot_zxid: Zxid, txns: Vec<Txn>) -> TxnLog {
        let entries: VecDeque<Txn> = txns
            .into_iter()
            .filter(|t| t.zxid > snapshot_zxid)
            .collect();
        let last = entries.back().map_or(snapshot_zxid, |t| t.zxid);
        TxnLog {
            base: snapshot_zxid,
            entries,
            persisted: last,
            committed: snapshot_zxid,
        }
    }

    /// Last logged zxid (possibly not yet durable).
    pub fn last(&self) -> Zxid {
        self.entries.back().map_or(self.base, |t| t.zxid)
    }

    pub fn persisted(&self) -> Zxid {
        self.persisted
    }

    pub fn committed(&self) -> Zxid {
        self.committed
    }

    pub fn is_fully_persisted(&self) -> bool {
        self.persisted >= self.last()
    }

    /// First zxid held in memory, or the base when empty.
    pub fn first(&self) -> Zxid {
        self.entries.front().map_or(self.base, |t| t.zxid)
    }

    pub fn get(&self, zxid: Zxid) -> Option<&Txn> {
        let i = self.entries.binary_search_by_key(&zxid, |t| t.zxid).ok()?;
        self.entries.get(i)
    }

    /// Entries with `after < zxid <= upto`, in order.
    pub fn range(&self, after: Zxid, upto: Zxid) -> impl Iterator<Item = &Txn> {
        let start = self.entries.partition_point(|t| t.zxid <= after);
        self.entries
            .range(start..)
            .take_while(move |t| t.zxid <= upto)
    }

    /// Appends a transaction whose zxid is above `last()`; returns false otherwise (the
    /// transaction is then not stored, so callers must look at the result).
    #[must_use]
    pub fn append(&mut self, txn: Txn) -> bool {
        if txn.zxid <= self.last() {
            return false;
        }
        self.entries.push_back(txn);
        true
    }

    pub fn mark_persisted(&mut self, up_to: Zxid) {
        let up_to = up_to.min(self.last());
        if up_to > self.persisted {
            self.persisted = up_to;
        }
    }

    /// Removes entries above `to`; returns them. Never removes committed entries: callers
    /// check `to >= committed()` first.
    pub fn truncate_after(&mut self, to: Zxid) -> Vec<Txn> {
        let keep = self.entries.partition_point(|t| t.zxid <= to);
        let removed: Vec<Txn> = self.entries.drain(keep..).collect();
        if self.persisted > to {
            self.persisted = to.max(self.base);
        }
        removed
    }

    /// The database was replaced by a snapshot at `zxid`: the log restarts empty there.
    pub fn reset_to_snapshot(&mut self, zxid: Zxid) {
        self.entries.clear();
        self.base = zxid;
        self.persisted = zxid;
        self.committed = zxid;
    }

    /// Marks entries up to `to` committed and returns the newly committed ones in order.
    pub fn commit_up_to(&mut self, to: Zxid) -> Vec<Txn> {
        let newly: Vec<Txn> = self.range(self.committed, to).cloned().collect();
        debug_assert!(
            newly.first().is_none_or(|t| t.zxid > self.committed)
                && newly.windows(2).all(|w| w[0].zxid < w[1].zxid),
            "commits must strictly increase"
        );
        if let Some(t) = newly.last() {
            self.committed = t.zxid;
        }
        newly
    }

    /// Drops committed entries beyond the newest `keep` committed ones.
    pub fn trim(&mut self, keep: usize) {
        let n_committed = self.entries.partition_point(|t| t.zxid <= self.committed);
        for _ in keep..n_committed {
            if let Some(t) = self.entries.pop_front() {
                self.base = t.zxid;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn t(e: u32, c: u32) -> Txn {
        Txn {
            zxid: Zxid::new(e, c),
            payload: Bytes::from(format!("{e}.{c}")),
        }
    }

    #[test]
    fn append_commit_trim_truncate() {
        let mut l = TxnLog::recovered(Zxid::new(1, 1), vec![t(1, 1), t(1, 2), t(1, 3)]);
        assert_eq!(l.first(), Zxid::new(1, 2));
        assert_eq!(l.last(), Zxid::new(1, 3));
        assert!(l.is_fully_persisted());
        assert!(!l.append(t(1, 3)));
        assert!(l.append(t(2, 1)));
        assert!(!l.is_fully_persisted());
        let c = l.commit_up_to(Zxid::new(1, 3));
        assert_eq!(c.len(), 2);
        assert_eq!(l.committed(), Zxid::new(1, 3));
        l.trim(1);
        assert_eq!(l.first(), Zxid::new(1, 3));
        let gone = l.truncate_after(Zxid::new(1, 3));
        assert_eq!(gone, vec![t(2, 1)]);
        assert_eq!(l.last(), Zxid::new(1, 3));
        l.reset_to_snapshot(Zxid::new(3, 0));
        assert_eq!(
            (l.last(), l.committed()),
            (Zxid::new(3, 0), Zxid::new(3, 0))
        );
    }
}
