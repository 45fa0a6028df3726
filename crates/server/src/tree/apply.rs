//! `DataTree::apply`: the deterministic effect of one committed txn, as ZooKeeper's
//! `DataTree.processTxn` (including its tolerance of replays over a fuzzy snapshot).
//! Must never look at anything but the tree and the txn.

use super::digest::node_digest;
use super::ephemeral::{self, OwnerKind};
use super::{client_stat, ApplyResult, Change, DataTree, Name, Node, NodeEdit, TxnReply};
use rzk_proto::multi::OpResult;
use rzk_proto::opcode::event;
use rzk_proto::records::{Acl, Stat, StatPersisted};
use rzk_proto::txn::{Txn, TxnHeader, TxnRecord};
use rzk_proto::{Data, ErrorCode, OpCode, SessionId, Zxid};

/// The outcome of one (sub-)operation.
enum Sub {
    Created { op: i32, path: String, stat: Stat },
    Deleted,
    SetData(Stat),
    SetAcl(Stat),
    Check,
}

/// Splits a txn path into (parent key, child name); `None` if it has no `/`.
fn split(path: &str) -> Option<(&str, &str)> {
    let i = super::last_slash(path)?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// What [`DataTree::modify`] reports about the node it changed.
pub(super) struct Modified {
    /// ACL cache index, after the change.
    pub(super) acl: i64,
    /// The client stat, after the change.
    pub(super) stat: Stat,
    /// Data length before the change.
    pub(super) old_len: usize,
}

fn code_of(err: i32) -> ErrorCode {
    ErrorCode::from_i32(err).unwrap_or(ErrorCode::SystemError)
}

impl DataTree {
    /// Applies one committed txn. Deterministic; never fails (failures are reported in
    /// the reply, as ZooKeeper does).
    pub fn apply(&mut self, rec: &TxnRecord) -> ApplyResult {
        let h = &rec.header;
        let mut changes = Vec::new();
        let reply = match &rec.txn {
            Txn::Multi(subs) => TxnReply::Multi(self.apply_multi(h, subs, &mut changes)),
            Txn::CreateSession(_) => TxnReply::SessionCreated,
            Txn::CloseSession(body) => {
                let paths = body.as_ref().map(|b| b.paths_to_delete.as_slice());
                self.kill_session(SessionId(h.client_id), Zxid(h.zxid), paths, &mut changes);
                TxnReply::SessionClosed
            }
            Txn::Error(e) => TxnReply::Error(code_of(e.err)),
            other => match self.apply_op(h, other, &mut changes) {
                Ok(Sub::Created { path, stat, .. }) => TxnReply::Created { path, stat },
                Ok(Sub::Deleted) => TxnReply::Deleted,
                Ok(Sub::SetData(s)) => TxnReply::SetData(s),
                Ok(Sub::SetAcl(s)) => TxnReply::SetAcl(s),
                Ok(Sub::Check) => TxnReply::Error(ErrorCode::Ok),
                Err(code) => {
                    tracing::debug!(zxid = h.zxid, %code, "txn failed to apply");
                    TxnReply::Error(code)
                }
            },
        };
        let zxid = Zxid(h.zxid);
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
        self.check_digest_after(zxid, rec.digest.as_ref());
        ApplyResult {
            zxid,
            reply,
            changes,
        }
    }

    fn apply_multi(
        &mut self,
        h: &TxnHeader,
        subs: &[Txn],
        changes: &mut Vec<Change>,
    ) -> Vec<OpResult> {
        let failed = subs.iter().any(|s| matches!(s, Txn::Error(_)));
        let mut post_failed = false;
        let mut results = Vec::with_capacity(subs.len());
        for sub in subs {
            if let Txn::Error(e) = sub {
                post_failed = true;
                results.push(OpResult::Error(e.err));
                continue;
            }
            if failed {
                let code = if post_failed {
                    ErrorCode::RuntimeInconsistency
                } else {
                    ErrorCode::Ok
                };
                results.push(OpResult::error(code));
                continue;
            }
            let res = match self.apply_op(h, sub, changes) {
                Ok(Sub::Created { op, path, stat }) => {
                    if op == OpCode::Create.code() {
                        OpResult::Create(path)
                    } else {
                        OpResult::Create2(path, stat)
                    }
                }
                Ok(Sub::Deleted) => OpResult::Delete,
                Ok(Sub::SetData(s)) => OpResult::SetData(s),
                Ok(Sub::Check) => OpResult::Check,
                Ok(Sub::SetAcl(_)) => OpResult::error(ErrorCode::MarshallingError),
                Err(code) => OpResult::error(code),
            };
            results.push(res);
        }
        results
    }

    fn apply_op(
        &mut self,
        h: &TxnHeader,
        txn: &Txn,
        changes: &mut Vec<Change>,
    ) -> Result<Sub, ErrorCode> {
        let (zxid, time) = (Zxid(h.zxid), h.time);
        match txn {
            Txn::Create(op, c) => {
                let owner = if c.ephemeral { h.client_id } else { 0 };
                let r = self.create_node(
                    &c.path,
                    &c.data,
                    &c.acl,
                    owner,
                    c.parent_cversion,
                    zxid,
                    time,
                    changes,
                );
                if r == Err(ErrorCode::NodeExists) && *op == OpCode::Create.code() {
                    // Replay over a fuzzy snapshot: still raise the parent's cversion.
                    if let Some((parent, _)) = split(&c.path) {
                        self.raise_cversion(parent, c.parent_cversion, zxid);
                    }
                }
                Ok(Sub::Created {
                    op: *op,
                    path: c.path.clone(),
                    stat: r?,
                })
            }
            Txn::CreateTtl(c) => {
                let owner = ephemeral::ttl_owner(c.ttl).ok_or(ErrorCode::BadArguments)?;
                let stat = self.create_node(
                    &c.path,
                    &c.data,
                    &c.acl,
                    owner,
                    c.parent_cversion,
                    zxid,
                    time,
                    changes,
                )?;
                Ok(Sub::Created {
                    op: OpCode::CreateTtl.code(),
                    path: c.path.clone(),
                    stat,
                })
            }
            Txn::CreateContainer(c) => {
                let stat = self.create_node(
                    &c.path,
                    &c.data,
                    &c.acl,
                    ephemeral::CONTAINER_OWNER,
                    c.parent_cversion,
                    zxid,
                    time,
                    changes,
                )?;
                Ok(Sub::Created {
                    op: OpCode::CreateContainer.code(),
                    path: c.path.clone(),
                    stat,
                })
            }
            Txn::Delete(d) | Txn::DeleteContainer(d) => {
                self.delete_node(&d.path, zxid, changes)?;
                Ok(Sub::Deleted)
            }
            Txn::SetData(s) | Txn::Reconfig(s) => Ok(Sub::SetData(
                self.set_data(&s.path, &s.data, s.version, zxid, time, changes)?,
            )),
            Txn::SetAcl(s) => Ok(Sub::SetAcl(self.set_acl(&s.path, &s.acl, s.version)?)),
            Txn::Check(_) => Ok(Sub::Check),
            Txn::Error(e) => Err(code_of(e.err)),
            Txn::Multi(_) | Txn::CreateSession(_) | Txn::CloseSession(_) => {
                Err(ErrorCode::MarshallingError)
            }
        }
    }

    /// Runs `f` on a node's header and, when `data` is `Some`, replaces its data
    /// (`Some(None)`: null), keeping the digest and data size in step; returns the node's
    /// ACL index and client stat afterwards, and its data length before. The node is
    /// copied first if a clone (a snapshot being written) still shares it.
    pub(super) fn modify(
        &mut self,
        path: &str,
        data: Option<Option<&[u8]>>,
        f: impl FnOnce(&mut NodeEdit),
    ) -> Option<Modified> {
        let key = self.nodes.lookup_chained(path)?.0;
        self.modify_key(key, path, data, f)
    }

    /// [`DataTree::modify`] of the node at slot `key`, whose path is `path` (for its
    /// digest), for a caller that already found it.
    fn modify_key(
        &mut self,
        key: u64,
        path: &str,
        data: Option<Option<&[u8]>>,
        f: impl FnOnce(&mut NodeEdit),
    ) -> Option<Modified> {
        let n = self.nodes.get_key_mut(key)?;
        let old_len = n.data().len();
        let old_digest = node_digest(path, n.data(), &n.stat());
        n.update(data, f);
        let d = node_digest(path, n.data(), &n.stat());
        let done = Modified {
            acl: n.acl(),
            stat: client_stat(n, self.extended_types),
            old_len,
        };
        let new_len = n.data().len() as u64;
        self.digest = self.digest.wrapping_sub(old_digest).wrapping_add(d);
        self.data_size = self
            .data_size
            .wrapping_sub(old_len as u64)
            .wrapping_add(new_len);
        Some(done)
    }

    fn raise_cversion(&mut self, path: &str, cversion: i32, zxid: Zxid) {
        let Some(cur) = self.nodes.get(path).map(|n| n.stat().cversion) else {
            return;
        };
        let new = if cversion == -1 {
            cur.wrapping_add(1)
        } else {
            cversion
        };
        if new > cur {
            self.modify(path, None, |n| {
                n.stat.cversion = new;
                n.stat.pzxid = zxid.0;
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: &Data,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: Zxid,
        time: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Stat, ErrorCode> {
        let (parent, child) = split(path).ok_or(ErrorCode::NoNode)?;
        // The parent is found once: the child goes in next to it and its stat changes
        // through the same slot.
        let Some(parent_at) = self.nodes.lookup_chained(parent) else {
            return Err(ErrorCode::NoNode);
        };
        if child.is_empty() {
            // Only the root has no name (prep refuses such paths; a txn log might not).
            return Err(ErrorCode::BadArguments);
        }
        let acl_idx = self.acls.add(acl);
        let stat = StatPersisted {
            czxid: zxid.0,
            mzxid: zxid.0,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid.0,
        };
        if !Node::acl_fits(acl_idx) {
            // Not reachable: the cache hands out small indexes (node.rs).
            self.acls.remove_usage(acl_idx);
            return Err(ErrorCode::SystemError);
        }
        let new_digest = node_digest(path, data, &stat);
        let node = Node::new(
            child,
            data.as_option().map(|b| &b[..]),
            acl_idx,
            &stat,
            None,
        );
        let out = self.client_stat(&node);
        let key = match self.nodes.insert_child(parent_at, child, node) {
            Ok(key) => key,
            Err(_) => {
                // As ZooKeeper: a replayed create over an existing node installs its ACL.
                let old = self.nodes.get_mut(path).map(|n| {
                    let old = n.acl();
                    n.update(None, |e| e.set_acl(acl_idx));
                    old
                });
                if let Some(old) = old {
                    self.acls.remove_usage(old);
                }
                return Err(ErrorCode::NodeExists);
            }
        };
        self.digest = self.digest.wrapping_add(new_digest);
        self.data_size += super::java_len(path) + data.len() as u64;
        let parent_acl_idx = self
            .modify_key(parent_at.0, parent, None, |p| {
                let cur = p.stat.cversion;
                let new = if parent_cversion == -1 {
                    cur.wrapping_add(1)
                } else {
                    parent_cversion
                };
                if new > cur {
                    p.stat.cversion = new;
                    p.stat.pzxid = zxid.0;
                }
                p.add_child(key);
            })
            .map_or(super::OPEN_ACL_INDEX, |m| m.acl);
        if owner != 0 {
            self.index_owner(&Name::from(path), owner);
        }
        self.quota_created(path, parent, child, data.len());
        changes.push(Change {
            path: path.to_owned(),
            event_type: event::NODE_CREATED,
            acl: self.acls.get(acl_idx),
        });
        changes.push(Change {
            path: parent.to_owned(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: self.acls.get(parent_acl_idx),
        });
        Ok(out)
    }

    /// Adds a node to the ephemeral / container / TTL indexes by its owner.
    pub(crate) fn index_owner(&mut self, path: &Name, owner: i64) {
        match ephemeral::kind(owner, true) {
            OwnerKind::Void => {}
            OwnerKind::Container => {
                self.containers.insert(path.clone());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
            OwnerKind::Session(s) => {
                self.ephemerals.entry(s).or_default().insert(path.clone());
            }
        }
    }

    fn unindex_owner(&mut self, path: &str, owner: i64) {
        match ephemeral::kind(owner, true) {
            OwnerKind::Void => {}
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Session(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
        }
    }

    fn delete_node(
        &mut self,
        path: &str,
        zxid: Zxid,
        changes: &mut Vec<Change>,
    ) -> Result<(), ErrorCode> {
        if path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        let (parent, child) = split(path).ok_or(ErrorCode::NoNode)?;
        // The parent is found once: the child goes in next to it and its stat changes
        // through the same slot.
        let Some(parent_at) = self.nodes.lookup_chained(parent) else {
            return Err(ErrorCode::NoNode);
        };
        // As ZooKeeper: the parent's pzxid moves even when the child is already gone
        // (a replay over a fuzzy snapshot), so the child is only looked up afterwards.
        // Out of the index first: a lookup finds a node through its parent's children.
        let removed = self.nodes.remove(path);
        let parent_acl_idx = self
            .modify_key(parent_at.0, parent, None, |p| {
                if let Some((key, _)) = &removed {
                    p.remove_child(*key);
                }
                if zxid.0 > p.stat.pzxid {
                    p.stat.pzxid = zxid.0;
                }
            })
            .ok_or(ErrorCode::NoNode)?
            .acl;
        let (_, node) = removed.ok_or(ErrorCode::NoNode)?;
        if node.has_children() {
            self.drop_orphans(path, &node);
        }
        let acl = self.acls.get(node.acl());
        self.forget(path, &node);
        self.quota_deleted(path, parent, child, node.data().len());
        changes.push(Change {
            path: path.to_owned(),
            event_type: event::NODE_DELETED,
            acl,
        });
        changes.push(Change {
            path: parent.to_owned(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: self.acls.get(parent_acl_idx),
        });
        Ok(())
    }

    /// The descendants of `node` (just deleted from `path` with children still under
    /// it: a replay over a fuzzy snapshot, which ZooKeeper allows) leave the index, the
    /// digest, the data size, the ACL counts and the owner indexes now: lookups go
    /// through parents, so nothing could find them again. ZooKeeper keeps them in its
    /// map until the log re-creates or deletes their paths, which ends in the same tree
    /// and digest. No watch events, as in ZooKeeper; quota counts are left as they are.
    fn drop_orphans(&mut self, path: &str, node: &Node) {
        let mut stack: Vec<(String, u64)> =
            node.child_keys().map(|k| (path.to_owned(), k)).collect();
        while let Some((parent, key)) = stack.pop() {
            let Some((_, child)) = self.nodes.remove_key(key) else {
                continue;
            };
            let child_path = super::child_path(&parent, child.name());
            self.forget(&child_path, &child);
            stack.extend(child.child_keys().map(|k| (child_path.clone(), k)));
        }
    }

    /// A node taken out of the index at `path` leaves the digest, the data size, its
    /// ACL's use count and the owner indexes.
    fn forget(&mut self, path: &str, node: &Node) {
        let stat = node.stat();
        self.digest = self
            .digest
            .wrapping_sub(node_digest(path, node.data(), &stat));
        self.data_size = self
            .data_size
            .wrapping_sub(super::java_len(path) + node.data().len() as u64);
        self.acls.remove_usage(node.acl());
        self.unindex_owner(path, stat.ephemeral_owner);
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &Data,
        version: i32,
        zxid: Zxid,
        time: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Stat, ErrorCode> {
        let m = self
            .modify(path, Some(data.as_option().map(|b| &b[..])), |n| {
                n.stat.mtime = time;
                n.stat.mzxid = zxid.0;
                n.stat.version = version;
            })
            .ok_or(ErrorCode::NoNode)?;
        self.quota_data_changed(path, m.old_len, data.len());
        changes.push(Change {
            path: path.to_owned(),
            event_type: event::NODE_DATA_CHANGED,
            acl: self.acls.get(m.acl),
        });
        Ok(m.stat)
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let old = self
            .nodes
            .get(path)
            .map(Node::acl)
            .ok_or(ErrorCode::NoNode)?;
        // The new list's reference first: dropping the old one first could free the
        // old entry while the node still points at it.
        let idx = self.acls.add(acl);
        if !Node::acl_fits(idx) {
            // Not reachable: the cache hands out indexes a node can hold.
            self.acls.remove_usage(idx);
            return Err(ErrorCode::SystemError);
        }
        self.acls.remove_usage(old);
        let m = self
            .modify(path, None, |n| {
                n.stat.aversion = version;
                let held = n.set_acl(idx);
                debug_assert!(held, "ACL index {idx} checked to fit");
            })
            .ok_or(ErrorCode::NoNode)?;
        Ok(m.stat)
    }

    /// Deletes a closed session's ephemerals: the txn's list first, then any the tree
    /// still knows (warning, as ZooKeeper does).
    fn kill_session(
        &mut self,
        session: SessionId,
        zxid: Zxid,
        txn_paths: Option<&[String]>,
        changes: &mut Vec<Change>,
    ) {
        let local = self.ephemerals.remove(&session);
        if let Some(paths) = txn_paths {
            for p in paths {
                if self.delete_node(p, zxid, changes).is_err() {
                    tracing::warn!(path = %p, %session, "ephemeral to delete is missing");
                }
            }
        }
        let Some(mut local) = local else { return };
        if let Some(paths) = txn_paths {
            for p in paths {
                local.remove(p.as_str());
            }
            // An empty list is how a session with too many ephemerals to list is closed
            // (`prep.rs` `prep_close_session`): those are expected here.
            if !local.is_empty() && !paths.is_empty() {
                tracing::warn!(
                    count = local.len(),
                    first = ?local.iter().next(),
                    %zxid,
                    "ephemerals not listed in closeSession txn"
                );
            }
        }
        for p in local {
            let _ = self.delete_node(&p, zxid, changes);
        }
    }
}
