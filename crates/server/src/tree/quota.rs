//! Quotas, as ZooKeeper 3.8 keeps them (its `DataTree` quota code, `Quotas`,
//! `StatsTrack` and `PathTrie`): a quota root `P` is a znode with a limits node
//! `/zookeeper/quota<P>/zookeeper_limits`; its usage lives in the stats node
//! `/zookeeper/quota<P>/zookeeper_stats` as `count=N,bytes=M`.
//!
//! Owns: the set of quota roots (derived state, rebuilt from the quota subtree when a
//! database is loaded) and the stats nodes' data, which every create, setData and delete
//! beneath a root (ephemerals deleted at session close included) updates in the apply
//! path, on every member alike. Like ZooKeeper, these updates are not txns, do not move
//! the stats node's stat, and change neither the tree digest (nodes under `/zookeeper/`
//! contribute nothing to it, `digest.rs`) nor the approximate data size (ZooKeeper only
//! counts a stats node's data when the node is created, loaded or deleted).
//!
//! Also offers the check the leader's prep runs before a create or setData
//! ([`DataTree::check_quota`], ZooKeeper's `ZooKeeperServer.checkQuota`). Never logs
//! anything but malformed quota nodes; never does IO.

use super::{DataTree, Name};
use std::collections::BTreeMap;
use std::fmt;

/// `/zookeeper/quota` (ZooKeeper's `Quotas.quotaZookeeper`).
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// Name of the limits node (`Quotas.limitNode`).
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the stats node (`Quotas.statNode`).
pub const STAT_NODE: &str = "zookeeper_stats";

/// `/zookeeper/quota<path>/zookeeper_limits` (`Quotas.limitPath`).
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

/// `/zookeeper/quota<path>/zookeeper_stats` (`Quotas.statPath`).
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

/// A quota node's text could not be read as `key=value` pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed quota entry {entry:?} in {text:?}")]
pub struct StatsParseError {
    pub text: String,
    pub entry: String,
}

/// The contents of a limits or stats node (ZooKeeper's `StatsTrack`): `count`, `bytes`,
/// and since 3.7 `countHardLimit` and `byteHardLimit`; a missing key reads as -1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

/// Keys of [`StatsTrack`].
pub const COUNT: &str = "count";
pub const BYTES: &str = "bytes";
pub const COUNT_HARD_LIMIT: &str = "countHardLimit";
pub const BYTE_HARD_LIMIT: &str = "byteHardLimit";

impl StatsTrack {
    /// Parses `k=v` pairs separated by `,` or `;` (runs of them count as one); an empty
    /// value reads as -1, as ZooKeeper reads it.
    pub fn parse(text: &str) -> Result<StatsTrack, StatsParseError> {
        let mut values = BTreeMap::new();
        if text.is_empty() {
            return Ok(StatsTrack { values });
        }
        let bad = |entry: &str| StatsParseError {
            text: text.to_owned(),
            entry: entry.to_owned(),
        };
        let mut pairs: Vec<&str> = text.split([',', ';']).collect();
        // Runs of separators count as one; Java's split keeps a leading empty entry
        // (which then fails below) and drops trailing ones.
        while pairs.last().is_some_and(|p| p.is_empty()) {
            pairs.pop();
        }
        for (i, pair) in pairs.into_iter().enumerate() {
            if pair.is_empty() && i > 0 {
                continue;
            }
            let mut kv: Vec<&str> = pair.split('=').collect();
            while kv.last().is_some_and(|f| f.is_empty()) {
                kv.pop();
            }
            let (Some(key), Some(raw)) = (kv.first(), kv.get(1)) else {
                return Err(bad(pair));
            };
            let v = if raw.is_empty() {
                -1
            } else {
                raw.parse::<i64>().map_err(|_| bad(pair))?
            };
            values.insert((*key).to_owned(), v);
        }
        Ok(StatsTrack { values })
    }

    /// Parses a node's data (UTF-8, lossy as Java's decoder).
    pub fn from_bytes(data: &[u8]) -> Result<StatsTrack, StatsParseError> {
        StatsTrack::parse(&String::from_utf8_lossy(data))
    }

    /// The value of `key`, -1 when absent.
    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_owned(), value);
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }
}

impl fmt::Display for StatsTrack {
    /// ZooKeeper's layout: `count=..,bytes=..` first; other keys, sorted, after an extra
    /// `=` (so that pre-3.7 parsers ignore them) as `;key=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "count={},bytes={}", self.count(), self.bytes())?;
        let mut rest = self
            .values
            .iter()
            .filter(|(k, _)| k.as_str() != COUNT && k.as_str() != BYTES)
            .peekable();
        if rest.peek().is_some() {
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// One namespace's quota numbers ([`DataTree::quota_usage_by_namespace`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    pub count_limit: i64,
    pub bytes_limit: i64,
    pub count_usage: i64,
    pub bytes_usage: i64,
}

/// A quota node the check needed but could not read (`path`; `why`: the parse error).
/// ZooKeeper's prep throws then, and the write fails with MARSHALLINGERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaNodeUnreadable {
    pub path: String,
    pub why: String,
}

/// What a write would do to a quota, when it goes over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExcess {
    /// The quota root.
    pub root: String,
    /// `count` or `bytes`.
    pub what: &'static str,
    /// Usage after the write.
    pub new_value: i64,
    pub limit: i64,
    /// A hard limit (`countHardLimit` / `byteHardLimit`) rather than a soft one.
    pub hard: bool,
}

impl fmt::Display for QuotaExcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = match (self.hard, self.what) {
            (true, COUNT) => ("hard", "CountLimit"),
            (false, COUNT) => ("soft", "CountLimit"),
            (true, _) => ("hard", "ByteLimit"),
            (false, _) => ("soft", "ByteLimit"),
        };
        write!(
            f,
            "Quota exceeded: {} [current {}={}, {kind}{name}={}]",
            self.root, self.what, self.new_value, self.limit
        )
    }
}

/// Whether `prefix` is `path` or a component-wise ancestor of it.
fn is_prefix(prefix: &str, path: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl DataTree {
    /// The deepest quota root that is `path` or an ancestor of it (ZooKeeper's
    /// `getMaxPrefixWithQuota`); `/` never counts.
    pub fn quota_root_of(&self, path: &str) -> Option<Name> {
        if self.quota_roots.is_empty() {
            return None;
        }
        let mut end = path.len();
        loop {
            let candidate = &path[..end];
            if candidate.is_empty() || candidate == "/" {
                return None;
            }
            if let Some(root) = self.quota_roots.get(candidate) {
                debug_assert!(is_prefix(root, path));
                return Some(root.clone());
            }
            end = candidate.rfind('/')?;
        }
    }

    /// The quota roots, sorted.
    pub fn quota_roots(&self) -> Vec<String> {
        self.quota_roots.iter().map(|r| r.to_string()).collect()
    }

    /// After a node was created (ZooKeeper's `createNode` tail): a new limits node makes
    /// its path a quota root, a new stats node is filled from the subtree, and the
    /// deepest quota root above the new node counts it.
    pub(crate) fn quota_created(&mut self, path: &str, parent: &str, child: &str, bytes: usize) {
        if let Some(root) = parent.strip_prefix(QUOTA_ROOT) {
            if root.starts_with('/') {
                if child == LIMIT_NODE {
                    self.quota_roots.insert(Name::from(root));
                }
                if child == STAT_NODE {
                    self.recount_quota(root);
                }
            }
        }
        if let Some(root) = self.quota_root_of(path) {
            self.add_quota_usage(&root, bytes as i64, 1);
        }
    }

    /// After a node was deleted: a deleted limits node ends its quota, and the deepest
    /// quota root above the node stops counting it.
    pub(crate) fn quota_deleted(&mut self, path: &str, parent: &str, child: &str, bytes: usize) {
        if child == LIMIT_NODE {
            if let Some(root) = parent.strip_prefix(QUOTA_ROOT) {
                if root.starts_with('/') {
                    self.quota_roots.remove(root);
                }
            }
        }
        if let Some(root) = self.quota_root_of(path) {
            self.add_quota_usage(&root, -(bytes as i64), -1);
        }
    }

    /// After a setData: the byte difference counts against the deepest quota root.
    pub(crate) fn quota_data_changed(&mut self, path: &str, old_len: usize, new_len: usize) {
        if let Some(root) = self.quota_root_of(path) {
            self.add_quota_usage(&root, new_len as i64 - old_len as i64, 0);
        }
    }

    /// Rebuilds the quota roots and recounts every stats node from the tree, as
    /// ZooKeeper does after loading a snapshot (`setupQuota`): every childless
    /// `.../zookeeper_limits` node under `/zookeeper/quota` names a root.
    pub(crate) fn rebuild_quotas(&mut self) {
        self.quota_roots = imbl::OrdSet::new();
        let mut roots = Vec::new();
        let mut stack = vec![String::from(QUOTA_ROOT)];
        while let Some(p) = stack.pop() {
            let Some(n) = self.nodes.get(p.as_str()) else {
                continue;
            };
            if !n.has_children() {
                let suffix = format!("/{LIMIT_NODE}");
                if let Some(pos) = p.find(&suffix).filter(|_| p.ends_with(&suffix)) {
                    let root = &p[QUOTA_ROOT.len()..pos];
                    if !root.is_empty() {
                        roots.push(root.to_owned());
                    }
                }
                continue;
            }
            stack.extend(self.child_paths(&p, n));
        }
        roots.sort();
        for root in roots {
            self.recount_quota(&root);
            self.quota_roots.insert(Name::from(root));
        }
    }

    /// Count and bytes of `path` and everything beneath it.
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let Some(top) = self.nodes.get(path) else {
            return (0, 0);
        };
        let mut stack = vec![top];
        while let Some(n) = stack.pop() {
            count += 1;
            bytes += n.data().len() as i64;
            stack.extend(n.child_keys().filter_map(self.nodes.sorted_get_key()));
        }
        (count, bytes)
    }

    /// Writes the subtree's usage into the stats node of `root` (ZooKeeper's
    /// `updateQuotaForPath`: the whole content becomes `count=..,bytes=..`).
    fn recount_quota(&mut self, root: &str) {
        let (count, bytes) = self.subtree_usage(root);
        let mut stats = StatsTrack::default();
        stats.set(COUNT, count);
        stats.set(BYTES, bytes);
        let stat_path = stat_path(root);
        if !self.write_stats(&stat_path, &stats) {
            tracing::warn!(path = %stat_path, "missing quota stat node");
        }
    }

    /// Adds to the usage in `root`'s stats node (ZooKeeper's `updateQuotaStat`).
    fn add_quota_usage(&mut self, root: &str, bytes_diff: i64, count_diff: i64) {
        let stat_path = stat_path(root);
        let Some(node) = self.nodes.get(stat_path.as_str()) else {
            tracing::error!(path = %stat_path, "missing node for quota stats");
            return;
        };
        let mut stats = match StatsTrack::from_bytes(node.data()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(path = %stat_path, error = %e, "quota stats not updated");
                return;
            }
        };
        stats.set(COUNT, stats.count().wrapping_add(count_diff));
        stats.set(BYTES, stats.bytes().wrapping_add(bytes_diff));
        self.write_stats(&stat_path, &stats);
    }

    /// Replaces a stats node's data in place: no stat change, no digest or data-size
    /// change (the node is under `/zookeeper/`; see the module doc).
    fn write_stats(&mut self, stat_path: &str, stats: &StatsTrack) -> bool {
        let Some(n) = self.nodes.get_mut(stat_path) else {
            return false;
        };
        n.update(Some(Some(stats.to_string().as_bytes())), |_| ());
        debug_assert_eq!(
            super::digest::node_digest(stat_path, n.data(), &n.stat()),
            0,
            "quota stats nodes must not count in the digest"
        );
        true
    }

    /// Quota limits and usage summed by top-level namespace (`app` of `/app/x`), as
    /// ZooKeeper's `QuotaMetricsUtils` reports them (`zk_<ns>_quota_*_per_namespace`):
    /// every limits / stats node at a leaf of `/zookeeper/quota` counts, a hard limit
    /// in place of the soft one when set. Sums wrap as Java's `long` does (the nodes are
    /// client-writable).
    pub fn quota_usage_by_namespace(&self) -> BTreeMap<String, QuotaUsage> {
        let mut out: BTreeMap<String, QuotaUsage> = BTreeMap::new();
        let mut stack = vec![String::from(QUOTA_ROOT)];
        while let Some(p) = stack.pop() {
            let Some(n) = self.nodes.get(p.as_str()) else {
                continue;
            };
            if n.has_children() {
                stack.extend(self.child_paths(&p, n));
                continue;
            }
            let limits = p.ends_with(&format!("/{LIMIT_NODE}"));
            if !limits && !p.ends_with(&format!("/{STAT_NODE}")) {
                continue;
            }
            let quota_path = &p[QUOTA_ROOT.len()..];
            let Some(ns) = quota_path
                .strip_prefix('/')
                .and_then(|r| r.split('/').next())
                .filter(|ns| !ns.is_empty())
            else {
                continue;
            };
            let Ok(st) = StatsTrack::from_bytes(n.data()) else {
                continue;
            };
            let e = out.entry(ns.to_owned()).or_default();
            let pick = |hard: i64, soft: i64| if hard > -1 { hard } else { soft };
            if limits {
                e.count_limit = e
                    .count_limit
                    .wrapping_add(pick(st.count_hard_limit(), st.count()));
                e.bytes_limit = e
                    .bytes_limit
                    .wrapping_add(pick(st.byte_hard_limit(), st.bytes()));
            } else {
                e.count_usage = e.count_usage.wrapping_add(st.count());
                e.bytes_usage = e.bytes_usage.wrapping_add(st.bytes());
            }
        }
        out
    }

    /// The quota check of a create (`old_len == None`) or setData of `path` with
    /// `new_len` bytes, against the committed tree (ZooKeeper's
    /// `ZooKeeperServer.checkQuota`): the limits the write would cross, count before
    /// bytes. Each compares against the hard limit when one is set, else the soft one;
    /// as in ZooKeeper, nothing after a crossed hard limit is looked at. Sums wrap as
    /// Java's `long` does (the stats node is a client-writable znode, so its values can
    /// be anything). Errors: the
    /// quota root's limits node, or its stats node when a limit applies, does not parse.
    pub fn check_quota(
        &self,
        path: &str,
        old_len: Option<usize>,
        new_len: usize,
    ) -> Result<Vec<QuotaExcess>, QuotaNodeUnreadable> {
        let mut out = Vec::new();
        let Some(root) = self.quota_root_of(path) else {
            return Ok(out);
        };
        let (count_diff, bytes_diff) = match old_len {
            None => (1i64, new_len as i64),
            Some(old) => (0, new_len as i64 - old as i64),
        };
        // A missing node is no limit (ZooKeeper logs it and goes on); one whose text
        // does not parse stops the check.
        let parsed = |p: String| match self.nodes.get(p.as_str()) {
            None => Ok(None),
            Some(n) => {
                StatsTrack::from_bytes(n.data())
                    .map(Some)
                    .map_err(|e| QuotaNodeUnreadable {
                        path: p,
                        why: e.to_string(),
                    })
            }
        };
        let Some(limits) = parsed(limit_path(&root))? else {
            return Ok(out);
        };
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(out);
        }
        let Some(current) = parsed(stat_path(&root))? else {
            return Ok(out);
        };
        let checks = [
            (
                check_count,
                COUNT,
                current.count().wrapping_add(count_diff),
                limits.count(),
                limits.count_hard_limit(),
            ),
            (
                check_bytes,
                BYTES,
                current.bytes().wrapping_add(bytes_diff),
                limits.bytes(),
                limits.byte_hard_limit(),
            ),
        ];
        for (on, what, new_value, soft, hard) in checks {
            if !on {
                continue;
            }
            let is_hard = hard > -1;
            let limit = if is_hard { hard } else { soft };
            if new_value > limit {
                out.push(QuotaExcess {
                    root: root.to_string(),
                    what,
                    new_value,
                    limit,
                    hard: is_hard,
                });
                if is_hard {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
