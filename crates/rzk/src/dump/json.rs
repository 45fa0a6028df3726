//! JSON forms of the dumps: one object per log record (`rzk log dump --json`, JSON Lines)
//! and ZooKeeper's `SnapshotFormatter -json` tree (`rzk snapshot dump --json`).

use base64::Engine;
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::Data;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{self, Write};

/// First inode number of `SnapshotFormatter -json` (its counter starts there).
const FIRST_INO: u64 = 1001;

fn b64(d: &Data) -> Value {
    if d.is_null() {
        Value::Null
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&d[..]))
    }
}

fn acl_list(a: &[Acl]) -> Value {
    a.iter()
        .map(|x| json!({"scheme": x.id.scheme, "id": x.id.id, "perms": super::perms(x.perms)}))
        .collect()
}

/// One log record as a JSON object: header fields (ids as `0x` hex strings, as the text
/// dump shows them), `type`, the body's fields (data base64, `null` for null data) and
/// the digest when logged.
pub fn record(rec: &TxnRecord) -> Value {
    let h = &rec.header;
    let mut m = Map::new();
    m.insert("time".into(), json!(super::format_time(h.time)));
    m.insert("session".into(), json!(format!("0x{:x}", h.client_id)));
    m.insert("cxid".into(), json!(h.cxid));
    m.insert("zxid".into(), json!(format!("0x{:x}", h.zxid)));
    m.insert("type".into(), json!(super::type_name(h.txn_type)));
    body(&rec.txn, &mut m);
    if let Some(d) = &rec.digest {
        m.insert(
            "digest".into(),
            json!({"version": d.version, "value": d.tree_digest}),
        );
    }
    Value::Object(m)
}

fn body(t: &Txn, m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    match t {
        Txn::Create(_, c) => {
            put("path", json!(c.path));
            put("data", b64(&c.data));
            put("acl", acl_list(&c.acl));
            put("ephemeral", json!(c.ephemeral));
            put("parentCVersion", json!(c.parent_cversion));
        }
        Txn::CreateTtl(c) => {
            put("path", json!(c.path));
            put("data", b64(&c.data));
            put("acl", acl_list(&c.acl));
            put("parentCVersion", json!(c.parent_cversion));
            put("ttl", json!(c.ttl));
        }
        Txn::CreateContainer(c) => {
            put("path", json!(c.path));
            put("data", b64(&c.data));
            put("acl", acl_list(&c.acl));
            put("parentCVersion", json!(c.parent_cversion));
        }
        Txn::Delete(d) | Txn::DeleteContainer(d) => put("path", json!(d.path)),
        Txn::SetData(s) | Txn::Reconfig(s) => {
            put("path", json!(s.path));
            put("data", b64(&s.data));
            put("version", json!(s.version));
        }
        Txn::SetAcl(s) => {
            put("path", json!(s.path));
            put("acl", acl_list(&s.acl));
            put("version", json!(s.version));
        }
        Txn::Check(c) => {
            put("path", json!(c.path));
            put("version", json!(c.version));
        }
        Txn::Multi(subs) => {
            let ops: Vec<Value> = subs
                .iter()
                .map(|s| {
                    let mut sm = Map::new();
                    sm.insert("type".into(), json!(super::type_name(s.txn_type())));
                    body(s, &mut sm);
                    Value::Object(sm)
                })
                .collect();
            put("ops", Value::Array(ops));
        }
        Txn::CreateSession(c) => put("timeout", json!(c.timeout_ms)),
        Txn::CloseSession(Some(c)) => put("ephemerals", json!(c.paths_to_delete)),
        Txn::CloseSession(None) => {}
        Txn::Error(e) => put("err", json!(e.err)),
    }
}

/// One node of `SnapshotFormatter -json`'s tree: `{name, asize, dsize, dev, ino}`.
fn tree_entry(path: &str, size: usize, ino: u64) -> Value {
    let name = match path.rfind('/') {
        _ if path.is_empty() => "/",
        Some(j) => &path[j + 1..],
        None => path,
    };
    json!({"name": name, "asize": size, "dsize": size, "dev": 0, "ino": ino})
}

/// The document's head: `1, 0, {progname, progver, timestamp}`.
fn doc_head(timestamp_ms: i64) -> Value {
    json!({"progname": "rzk snapshot dump", "progver": "0.01", "timestamp": timestamp_ms})
}

/// Writes [`snapshot_tree`]'s document as the nodes come, for nodes in pre-order (each
/// after its parent and its parent's earlier subtrees): only the open ancestors are
/// kept. The output is the same bytes `serde_json` writes for the whole document.
pub struct TreeWriter<'a> {
    out: &'a mut dyn Write,
    /// Open ancestors: path, and the node's entry while it is not yet known whether it
    /// has children (written as `[entry,` by its first child, or alone when it ends).
    open: Vec<(String, Option<String>)>,
    /// A `,` goes before the next item of the current array.
    comma: bool,
    ino: u64,
    any: bool,
}

impl<'a> TreeWriter<'a> {
    /// Starts the document.
    pub fn new(out: &'a mut dyn Write, timestamp_ms: i64) -> io::Result<TreeWriter<'a>> {
        write!(out, "[1,0,{},", doc_head(timestamp_ms))?;
        Ok(TreeWriter {
            out,
            open: Vec::new(),
            comma: false,
            ino: FIRST_INO,
            any: false,
        })
    }

    fn item(&mut self, s: &str) -> io::Result<()> {
        if self.comma {
            self.out.write_all(b",")?;
        }
        self.out.write_all(s.as_bytes())?;
        self.comma = true;
        Ok(())
    }

    /// Closes the innermost open node.
    fn close(&mut self) -> io::Result<()> {
        match self.open.pop() {
            Some((_, Some(entry))) => self.item(&entry),
            Some((_, None)) => {
                self.out.write_all(b"]")?;
                self.comma = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The next node (stored path, `""` for the root; data length). A node whose parent
    /// is not open is left out, as [`snapshot_tree`] leaves out nodes it cannot reach
    /// from the root (the caller checks the order first).
    pub fn node(&mut self, path: &str, size: usize) -> io::Result<()> {
        if path.is_empty() {
            if self.any {
                return Ok(());
            }
        } else {
            let parent = path.rfind('/').map(|j| &path[..j]).unwrap_or("");
            while self.open.last().is_some_and(|(p, _)| p != parent) {
                self.close()?;
            }
            let Some((_, pending)) = self.open.last_mut() else {
                return Ok(());
            };
            if let Some(entry) = pending.take() {
                if self.comma {
                    self.out.write_all(b",")?;
                }
                write!(self.out, "[{entry}")?;
                self.comma = true;
            }
        }
        self.any = true;
        let entry = tree_entry(path, size, self.ino).to_string();
        self.ino += 1;
        self.open.push((path.to_owned(), Some(entry)));
        Ok(())
    }

    /// Closes every open node and the document.
    pub fn finish(mut self) -> io::Result<()> {
        while !self.open.is_empty() {
            self.close()?;
        }
        if !self.any {
            self.out.write_all(b"[]")?;
        }
        self.out.write_all(b"]\n")
    }
}

/// `SnapshotFormatter -json`'s document: `[1, 0, {progname, progver, timestamp}, TREE]`,
/// where a node is `{name, asize, dsize, dev, ino}` (sizes = data length, `ino` counting
/// from 1001 in dump order) and a node with children is the array `[node, child...]`.
/// Children are listed in the snapshot's order (ZooKeeper lists its in-memory order).
/// `nodes` are `(stored path, data length)`; for nodes in any parents-first order
/// ([`TreeWriter`] streams pre-order ones).
pub fn snapshot_tree(nodes: &[(String, usize)], timestamp_ms: i64) -> Value {
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut root = None;
    for (i, (path, _)) in nodes.iter().enumerate() {
        if path.is_empty() {
            root = Some(i);
            continue;
        }
        let parent = path.rfind('/').map(|j| &path[..j]).unwrap_or("");
        children.entry(parent).or_default().push(i);
    }
    let mut ino = FIRST_INO;
    let tree = match root {
        Some(r) => tree_node(nodes, &children, r, &mut ino),
        None => Value::Array(Vec::new()),
    };
    json!([1, 0, doc_head(timestamp_ms), tree])
}

fn tree_node(
    nodes: &[(String, usize)],
    children: &HashMap<&str, Vec<usize>>,
    i: usize,
    ino: &mut u64,
) -> Value {
    let (path, size) = &nodes[i];
    let me = tree_entry(path, *size, *ino);
    *ino += 1;
    match children.get(path.as_str()) {
        Some(kids) if !kids.is_empty() => {
            let mut v = vec![me];
            for &k in kids {
                v.push(tree_node(nodes, children, k, ino));
            }
            Value::Array(v)
        }
        _ => me,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed tree is the bytes of the whole document written at once.
    #[test]
    fn streamed_tree_equals_the_whole_document() {
        let cases: Vec<Vec<&str>> = vec![
            vec![],
            vec![""],
            vec!["", "/a"],
            vec!["", "/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f", "/g"],
            vec![
                "",
                "/zookeeper",
                "/zookeeper/quota",
                "/zookeeper/config",
                "/x",
                "/x/y",
            ],
        ];
        for paths in cases {
            let nodes: Vec<(String, usize)> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| (p.to_string(), i * 3))
                .collect();
            let whole = format!("{}\n", snapshot_tree(&nodes, 42));
            let mut out = Vec::new();
            let mut w = TreeWriter::new(&mut out, 42).unwrap();
            for (p, n) in &nodes {
                w.node(p, *n).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), whole, "{paths:?}");
        }
    }
}
