//! Byte streams between servers: reading and writing `QuorumPacket`s on a quorum
//! connection (no length prefix: plain consecutive jute records), election-port frames
//! (`int length` + payload) and the SNAP sync stream (snapshot body + `BenWasHere`).
//!
//! Owns only encoding over async streams, with every length bounded by a named constant.
//! Never decides protocol behaviour and never touches the tree or shared state.

use crate::storage::progress::Progress;
use crate::tree::{DataTree, SnapshotNode, TreeBuilder};
use bytes::Bytes;
use rzk_proto::quorum::{PacketType, QuorumPacket};
use rzk_proto::records::{Acl, Id, StatPersisted};
use rzk_proto::Data;
use rzk_proto::{Jute, SessionId, Zxid};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest `data` of one quorum packet (ZooKeeper bounds it by jute.maxbuffer; proposals
/// carry at most a client request plus headers).
pub const MAX_PACKET_DATA: usize = 16 * 1024 * 1024;
/// Most authinfo ids in one forwarded request.
pub const MAX_AUTH_IDS: usize = 1024;
/// Largest string (path, scheme, id) inside a snapshot stream.
pub const MAX_SNAP_STRING: usize = 1024 * 1024;
/// Largest node data inside a snapshot stream.
pub const MAX_SNAP_DATA: usize = 16 * 1024 * 1024;
/// Most entries of one list (sessions, ACL cache, one ACL) inside a snapshot stream.
pub const MAX_SNAP_LIST: usize = 64 * 1024 * 1024;
/// The signature ZooKeeper writes after a SNAP database stream.
pub const SNAP_SIGNATURE: &str = "BenWasHere";
/// Serialized `StatPersisted`: 4 longs, 3 ints, 2 longs.
const STAT_PERSISTED_LEN: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown quorum packet type {0}")]
    UnknownType(i32),
    #[error("{what} length {len} out of range (max {max})")]
    BadLength {
        what: &'static str,
        len: i64,
        max: usize,
    },
    #[error("malformed {what}: {source}")]
    Decode {
        what: &'static str,
        source: rzk_proto::DecodeError,
    },
    #[error("snapshot stream: {0}")]
    Snapshot(String),
}

async fn read_len<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
    max: usize,
) -> Result<Option<usize>, WireError> {
    let n = r.read_i32().await?;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 || n as usize > max {
        return Err(WireError::BadLength {
            what,
            len: i64::from(n),
            max,
        });
    }
    Ok(Some(n as usize))
}

async fn read_bytes<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
    max: usize,
) -> Result<Option<Vec<u8>>, WireError> {
    let Some(n) = read_len(r, what, max).await? else {
        return Ok(None);
    };
    let mut b = vec![0u8; n];
    r.read_exact(&mut b).await?;
    Ok(Some(b))
}

async fn read_string<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<String, WireError> {
    let b = read_bytes(r, what, MAX_SNAP_STRING)
        .await?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Reads one `QuorumPacket` from a quorum connection.
pub async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> Result<QuorumPacket, WireError> {
    let code = r.read_i32().await?;
    let ty = PacketType::from_code(code).ok_or(WireError::UnknownType(code))?;
    let zxid = r.read_i64().await?;
    let data = read_bytes(r, "packet data", MAX_PACKET_DATA)
        .await?
        .map(Bytes::from);
    let authinfo = match read_len(r, "authinfo", MAX_AUTH_IDS).await? {
        None => None,
        Some(n) => {
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                let scheme = read_string(r, "auth scheme").await?;
                let id = read_string(r, "auth id").await?;
                ids.push(Id::new(&scheme, &id));
            }
            Some(ids)
        }
    };
    Ok(QuorumPacket {
        ty,
        zxid,
        data,
        authinfo,
    })
}

/// Encodes one election-port frame (`int length` + payload).
pub fn election_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Serializes the database as ZooKeeper streams it after SNAP: session table, ACL
/// cache, nodes in pre-order (root as ""), the "/" terminator, then the signature.
pub fn encode_snapshot(tree: &DataTree, sessions: &[(SessionId, i32)]) -> Vec<u8> {
    let mut w = Vec::with_capacity(64 * 1024);
    let mut sorted = sessions.to_vec();
    sorted.sort_unstable();
    (sorted.len() as i32).write(&mut w);
    for (id, to) in &sorted {
        id.0.write(&mut w);
        to.write(&mut w);
    }
    let acls = tree.acl_entries();
    (acls.len() as i32).write(&mut w);
    for (idx, list) in &acls {
        idx.write(&mut w);
        list.write(&mut w);
    }
    tree.for_each_snapshot_node(|path, data, acl, stat| {
        (path.len() as i32).write(&mut w);
        w.extend_from_slice(path.as_bytes());
        crate::storage::snapshot::write_buffer(data, &mut w);
        acl.write(&mut w);
        stat.write(&mut w);
    });
    "/".to_owned().write(&mut w);
    SNAP_SIGNATURE.to_owned().write(&mut w);
    w
}

/// A database received after SNAP.
#[derive(Debug)]
pub struct ReceivedSnapshot {
    pub tree: DataTree,
    pub sessions: Vec<(SessionId, i32)>,
}

/// Reads the SNAP database stream and its signature; `zxid` is the SNAP packet's. A long
/// transfer says every few seconds how far it got, and every transfer what it took.
pub async fn read_snapshot<R: AsyncRead + Unpin>(
    r: &mut R,
    zxid: Zxid,
    extended_types: bool,
) -> Result<ReceivedSnapshot, WireError> {
    let mut progress = Progress::start(Instant::now());
    let n = read_len(r, "session count", MAX_SNAP_LIST)
        .await?
        .unwrap_or(0);
    let mut sessions = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let id = r.read_i64().await?;
        let to = r.read_i32().await?;
        sessions.push((SessionId(id), to));
    }
    let mut b = TreeBuilder::new();
    let n = read_len(r, "acl cache size", MAX_SNAP_LIST)
        .await?
        .unwrap_or(0);
    for _ in 0..n {
        let idx = r.read_i64().await?;
        let m = read_len(r, "acl list", MAX_SNAP_LIST).await?.unwrap_or(0);
        let mut list = Vec::with_capacity(m.min(1024));
        for _ in 0..m {
            let perms = r.read_i32().await?;
            let scheme = read_string(r, "acl scheme").await?;
            let id = read_string(r, "acl id").await?;
            list.push(Acl {
                perms,
                id: Id::new(&scheme, &id),
            });
        }
        b.add_acl(idx, list);
    }
    loop {
        let path = read_string(r, "node path").await?;
        if path == "/" {
            break;
        }
        let data = read_bytes(r, "node data", MAX_SNAP_DATA).await?;
        let acl = r.read_i64().await?;
        let mut st = [0u8; STAT_PERSISTED_LEN];
        r.read_exact(&mut st).await?;
        let stat = StatPersisted::from_bytes(&st).map_err(|source| WireError::Decode {
            what: "node stat",
            source,
        })?;
        b.add_node(SnapshotNode {
            path,
            data: Data::from(data.map(Bytes::from)),
            acl,
            stat,
        })
        .map_err(|e| WireError::Snapshot(e.to_string()))?;
        if progress.item(Instant::now) {
            tracing::info!(
                "receiving the leader's snapshot at zxid {zxid}: {} znodes so far",
                progress.items()
            );
        }
    }
    let sig = read_string(r, "signature").await?;
    if sig != SNAP_SIGNATURE {
        return Err(WireError::Snapshot(format!(
            "missing signature (got {sig:?})"
        )));
    }
    let mut tree = b
        .finish(zxid)
        .map_err(|e| WireError::Snapshot(e.to_string()))?;
    tree.set_extended_types(extended_types);
    tree.begin_snap_sync();
    tracing::info!(
        "received the leader's snapshot at zxid {zxid}: {} znodes, {} sessions in {} ms",
        progress.items(),
        sessions.len(),
        progress.elapsed(Instant::now()).as_millis()
    );
    Ok(ReceivedSnapshot { tree, sessions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::txn::{CreateTxn, Txn, TxnHeader, TxnRecord};

    #[tokio::test]
    async fn packet_roundtrip_over_a_stream() {
        let p = QuorumPacket {
            ty: PacketType::Request,
            zxid: -1,
            data: Some(Bytes::from_static(b"abc")),
            authinfo: Some(vec![Id::new("ip", "127.0.0.1")]),
        };
        let mut b = p.to_bytes();
        b.extend(QuorumPacket::new(PacketType::Ack, 5).to_bytes());
        let mut r = &b[..];
        assert_eq!(read_packet(&mut r).await.unwrap(), p);
        assert_eq!(
            read_packet(&mut r).await.unwrap(),
            QuorumPacket::new(PacketType::Ack, 5)
        );
        assert!(read_packet(&mut r).await.is_err());
    }

    #[tokio::test]
    async fn snapshot_stream_roundtrip() {
        let mut t = DataTree::new();
        let rec = TxnRecord {
            header: TxnHeader {
                client_id: 7,
                cxid: 1,
                zxid: 0x1_0000_0001,
                time: 1,
                txn_type: 1,
            },
            txn: Txn::Create(
                1,
                CreateTxn {
                    path: "/a".into(),
                    data: Bytes::from_static(b"x").into(),
                    acl: vec![Acl {
                        perms: 31,
                        id: Id::new("world", "anyone"),
                    }],
                    ephemeral: false,
                    parent_cversion: 1,
                },
            ),
            digest: None,
        };
        t.apply(&rec);
        // a node with null data (length -1) must stay null through SNAP
        let mut null = rec.clone();
        null.header.zxid += 1;
        if let Txn::Create(_, c) = &mut null.txn {
            c.path = "/null".into();
            c.data = Data::NULL;
            c.parent_cversion = 2;
        }
        t.apply(&null);
        let bytes = encode_snapshot(&t, &[(SessionId(7), 4000)]);
        let got = read_snapshot(&mut &bytes[..], t.last_zxid(), false)
            .await
            .unwrap();
        assert_eq!(got.sessions, vec![(SessionId(7), 4000)]);
        assert_eq!(got.tree.digest(), t.digest());
        assert_eq!(
            got.tree.get_data("/a").map(|d| d.0),
            Some(Data::from(Bytes::from_static(b"x")))
        );
        assert!(got.tree.get_data("/null").unwrap().0.is_null());
        assert!(!got.tree.get_data("/").unwrap().0.is_null());
        assert_eq!(got.tree.last_zxid(), Zxid(0x1_0000_0002));
    }
}
