//! JSON forms of the dumps: one object per log record (`rzk log dump --json`, JSON Lines)
//! and ZooKeeper's `SnapshotFormatter -json` tree (`rzk snapshot dump --json`).

use base64::Engine;
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::Data;
use rzk_server::storage::snapshot::SnapNode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

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

/// `SnapshotFormatter -json`'s document: `[1, 0, {progname, progver, timestamp}, TREE]`,
/// where a node is `{name, asize, dsize, dev, ino}` (sizes = data length, `ino` counting
/// from 1001 in dump order) and a node with children is the array `[node, child...]`.
/// Children are listed in the snapshot's order (ZooKeeper lists its in-memory order).
pub fn snapshot_tree(nodes: &[SnapNode], timestamp_ms: i64) -> Value {
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut root = None;
    for (i, n) in nodes.iter().enumerate() {
        if n.path.is_empty() {
            root = Some(i);
            continue;
        }
        let parent = n.path.rfind('/').map(|j| &n.path[..j]).unwrap_or("");
        children.entry(parent).or_default().push(i);
    }
    let mut ino = FIRST_INO;
    let tree = match root {
        Some(r) => tree_node(nodes, &children, r, &mut ino),
        None => Value::Array(Vec::new()),
    };
    json!([
        1,
        0,
        {"progname": "rzk snapshot dump", "progver": "0.01", "timestamp": timestamp_ms},
        tree
    ])
}

fn tree_node(
    nodes: &[SnapNode],
    children: &HashMap<&str, Vec<usize>>,
    i: usize,
    ino: &mut u64,
) -> Value {
    let n = &nodes[i];
    let name = match n.path.rfind('/') {
        _ if n.path.is_empty() => "/",
        Some(j) => &n.path[j + 1..],
        None => n.path.as_str(),
    };
    let size = n.data.len();
    let me = json!({"name": name, "asize": size, "dsize": size, "dev": 0, "ino": *ino});
    *ino += 1;
    match children.get(n.path.as_str()) {
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
