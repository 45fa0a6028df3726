//! Transactions: what the leader decides, the log stores and every replica applies.
//!
//! A logged record's payload is `TxnHeader`, then the body selected by `TxnHeader::txn_type`,
//! then an optional `TxnDigest`.

use crate::jute::{DecodeError, Jute, Reader};
use crate::opcode::OpCode;
use crate::record;
use crate::records::Acl;
use bytes::Bytes;

record! {
    pub struct TxnHeader {
        pub client_id: i64,
        pub cxid: i32,
        pub zxid: i64,
        pub time: i64,
        pub txn_type: i32,
    }
}

record! { pub struct CreateTxn { pub path: String, pub data: crate::data::Data, pub acl: Vec<Acl>, pub ephemeral: bool, pub parent_cversion: i32 } }
record! { pub struct CreateTtlTxn { pub path: String, pub data: crate::data::Data, pub acl: Vec<Acl>, pub parent_cversion: i32, pub ttl: i64 } }
record! { pub struct CreateContainerTxn { pub path: String, pub data: crate::data::Data, pub acl: Vec<Acl>, pub parent_cversion: i32 } }
record! { pub struct DeleteTxn { pub path: String } }
record! { pub struct SetDataTxn { pub path: String, pub data: crate::data::Data, pub version: i32 } }
record! { pub struct SetAclTxn { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
record! { pub struct CheckVersionTxn { pub path: String, pub version: i32 } }
record! { pub struct ErrorTxn { pub err: i32 } }
record! { pub struct CreateSessionTxn { pub timeout_ms: i32 } }
record! { pub struct CloseSessionTxn { pub paths_to_delete: Vec<String> } }
record! { pub struct TxnDigest { pub version: i32, pub tree_digest: i64 } }
record! { pub struct MultiTxnEntry { pub txn_type: i32, pub data: Bytes } }

/// A transaction body, typed. The `i32` on `Create` is the type it was logged with
/// (1 create or 15 create2: both have the same body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    Create(i32, CreateTxn),
    CreateTtl(CreateTtlTxn),
    CreateContainer(CreateContainerTxn),
    Delete(DeleteTxn),
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    Multi(Vec<Txn>),
    CreateSession(CreateSessionTxn),
    /// `None` for old logs that carry no body.
    CloseSession(Option<CloseSessionTxn>),
    Error(ErrorTxn),
}

impl Txn {
    pub fn txn_type(&self) -> i32 {
        match self {
            Txn::Create(t, _) => *t,
            Txn::CreateTtl(_) => OpCode::CreateTtl.code(),
            Txn::CreateContainer(_) => OpCode::CreateContainer.code(),
            Txn::Delete(_) => OpCode::Delete.code(),
            Txn::DeleteContainer(_) => OpCode::DeleteContainer.code(),
            Txn::SetData(_) => OpCode::SetData.code(),
            Txn::Reconfig(_) => OpCode::Reconfig.code(),
            Txn::SetAcl(_) => OpCode::SetAcl.code(),
            Txn::Check(_) => OpCode::Check.code(),
            Txn::Multi(_) => OpCode::Multi.code(),
            Txn::CreateSession(_) => OpCode::CreateSession.code(),
            Txn::CloseSession(_) => OpCode::CloseSession.code(),
            Txn::Error(_) => OpCode::Error.code(),
        }
    }

    pub fn error(code: crate::ErrorCode) -> Txn {
        Txn::Error(ErrorTxn { err: code.code() })
    }

    pub fn write_body(&self, w: &mut Vec<u8>) {
        match self {
            Txn::Create(_, t) => t.write(w),
            Txn::CreateTtl(t) => t.write(w),
            Txn::CreateContainer(t) => t.write(w),
            Txn::Delete(t) | Txn::DeleteContainer(t) => t.write(w),
            Txn::SetData(t) | Txn::Reconfig(t) => t.write(w),
            Txn::SetAcl(t) => t.write(w),
            Txn::Check(t) => t.write(w),
            Txn::Multi(subs) => {
                (subs.len() as i32).write(w);
                for s in subs {
                    s.txn_type().write(w);
                    let mut body = Vec::new();
                    s.write_body(&mut body);
                    Bytes::from(body).write(w);
                }
            }
            Txn::CreateSession(t) => t.write(w),
            Txn::CloseSession(Some(t)) => t.write(w),
            Txn::CloseSession(None) => {}
            Txn::Error(t) => t.write(w),
        }
    }

    /// Decodes the body of a txn of type `ty`. The reader must hold exactly the body
    /// (and possibly a trailing digest, which callers read afterwards).
    pub fn read_body(ty: i32, r: &mut Reader<'_>) -> Result<Txn, DecodeError> {
        let op = OpCode::from_i32(ty).ok_or(DecodeError::Unknown {
            what: "txn type",
            value: ty as i64,
        })?;
        Ok(match op {
            OpCode::Create | OpCode::Create2 => Txn::Create(ty, read_create(r)?),
            OpCode::CreateTtl => Txn::CreateTtl(r.read()?),
            OpCode::CreateContainer => Txn::CreateContainer(r.read()?),
            OpCode::Delete => Txn::Delete(r.read()?),
            OpCode::DeleteContainer => Txn::DeleteContainer(r.read()?),
            OpCode::SetData => Txn::SetData(r.read()?),
            OpCode::Reconfig => Txn::Reconfig(r.read()?),
            OpCode::SetAcl => Txn::SetAcl(r.read()?),
            OpCode::Check => Txn::Check(r.read()?),
            OpCode::Multi => {
                let entries: Vec<MultiTxnEntry> = r.read()?;
                let mut subs = Vec::with_capacity(entries.len());
                for e in entries {
                    if e.txn_type == OpCode::Multi.code() {
                        return Err(DecodeError::Invalid("nested multi txn"));
                    }
                    subs.push(Txn::read_body(e.txn_type, &mut Reader::new(&e.data))?);
                }
                Txn::Multi(subs)
            }
            OpCode::CreateSession => Txn::CreateSession(r.read()?),
            OpCode::CloseSession => {
                if r.is_empty() || looks_like_digest_only(r) {
                    Txn::CloseSession(None)
                } else {
                    Txn::CloseSession(Some(r.read()?))
                }
            }
            OpCode::Error => Txn::Error(r.read()?),
            _ => {
                return Err(DecodeError::Unknown {
                    what: "txn type",
                    value: ty as i64,
                })
            }
        })
    }
}

/// A closeSession body-less record may be followed directly by a 12-byte digest.
fn looks_like_digest_only(r: &Reader<'_>) -> bool {
    let rest = r.rest();
    rest.len() == 12 && rest[..4] == [0, 0, 0, 2]
}

/// Reads a CreateTxn, accepting the legacy body without `parentCVersion` (-1).
fn read_create(r: &mut Reader<'_>) -> Result<CreateTxn, DecodeError> {
    let path = r.read()?;
    let data = r.read()?;
    let acl = r.read()?;
    let ephemeral = r.read()?;
    // A full record has 4 more bytes (then maybe a 12-byte digest); a V0 one ends here
    // or has only the digest.
    let parent_cversion = match r.remaining() {
        0 | 12 => -1,
        _ => r.read()?,
    };
    Ok(CreateTxn {
        path,
        data,
        acl,
        ephemeral,
        parent_cversion,
    })
}

/// One complete log payload: header, body, optional digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub header: TxnHeader,
    pub txn: Txn,
    pub digest: Option<TxnDigest>,
}

impl TxnRecord {
    pub fn encode(&self) -> Vec<u8> {
        // Room for the header, a path and a small value without growing.
        let mut w = Vec::with_capacity(256);
        self.header.write(&mut w);
        self.txn.write_body(&mut w);
        if let Some(d) = &self.digest {
            d.write(&mut w);
        }
        w
    }

    pub fn decode(payload: &[u8]) -> Result<TxnRecord, DecodeError> {
        // The payload is already bounded (a log record's length, a quorum packet's
        // size), so a field may take all of it: with a `jute.maxbuffer` above the
        // default, a 3 MB znode's txn is a 3 MB field (a break-it review: such a txn was
        // logged and then could not be read back, by start-up or `rzk log dump`).
        let mut r = Reader::with_limit(payload, payload.len());
        let header: TxnHeader = r.read()?;
        let txn = Txn::read_body(header.txn_type, &mut r)?;
        let digest = if r.remaining() >= 12 {
            Some(r.read()?)
        } else {
            None
        };
        Ok(TxnRecord {
            header,
            txn,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A txn whose data is larger than the default `jute.maxbuffer` (a server configured
    /// with a larger one logs it) decodes: its payload bounds its fields.
    #[test]
    fn a_txn_larger_than_the_default_jute_maxbuffer_decodes() {
        let data = vec![7u8; 3 * 1024 * 1024];
        let r = rec(
            Txn::Create(
                1,
                CreateTxn {
                    path: "/big".into(),
                    data: bytes::Bytes::from(data).into(),
                    acl: vec![],
                    ephemeral: false,
                    parent_cversion: 1,
                },
            ),
            true,
        );
        let payload = r.encode();
        assert!(payload.len() > 2 * crate::jute::DEFAULT_MAX_BUFFER);
        assert_eq!(TxnRecord::decode(&payload).expect("decodes"), r);
        // A length beyond the payload still fails.
        let mut cut = payload.clone();
        cut.truncate(payload.len() - 100);
        assert!(TxnRecord::decode(&cut).is_err());
    }

    fn rec(txn: Txn, digest: bool) -> TxnRecord {
        TxnRecord {
            header: TxnHeader {
                client_id: 0x100,
                cxid: 3,
                zxid: 0x1_0000_0005,
                time: 1_700_000_000_000,
                txn_type: txn.txn_type(),
            },
            txn,
            digest: digest.then_some(TxnDigest {
                version: 2,
                tree_digest: 12345,
            }),
        }
    }

    #[test]
    fn roundtrip_all_kinds() {
        let create = CreateTxn {
            path: "/a".into(),
            data: Bytes::from_static(b"hi").into(),
            acl: Acl::open_unsafe(),
            ephemeral: true,
            parent_cversion: 4,
        };
        let kinds = vec![
            Txn::Create(1, create.clone()),
            Txn::Create(15, create.clone()),
            Txn::Delete(DeleteTxn { path: "/a".into() }),
            Txn::SetData(SetDataTxn {
                path: "/a".into(),
                data: crate::Data::empty(),
                version: 2,
            }),
            Txn::SetData(SetDataTxn {
                path: "/n".into(),
                data: crate::Data::NULL,
                version: 3,
            }),
            Txn::CreateSession(CreateSessionTxn { timeout_ms: 30000 }),
            Txn::CloseSession(Some(CloseSessionTxn {
                paths_to_delete: vec!["/e".into()],
            })),
            Txn::CloseSession(None),
            Txn::error(crate::ErrorCode::NodeExists),
            Txn::Multi(vec![
                Txn::Create(1, create),
                Txn::Check(CheckVersionTxn {
                    path: "/b".into(),
                    version: 1,
                }),
            ]),
        ];
        for t in kinds {
            for d in [false, true] {
                let r = rec(t.clone(), d);
                assert_eq!(TxnRecord::decode(&r.encode()).unwrap(), r, "{t:?} {d}");
            }
        }
    }

    #[test]
    fn legacy_create_without_parent_cversion() {
        let mut w = Vec::new();
        "/x".to_string().write(&mut w);
        Bytes::new().write(&mut w);
        Acl::open_unsafe().write(&mut w);
        false.write(&mut w);
        let t = Txn::read_body(1, &mut Reader::new(&w)).unwrap();
        match t {
            Txn::Create(_, c) => assert_eq!(c.parent_cversion, -1),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn decode_garbage_never_panics(b: Vec<u8>) {
            let _ = TxnRecord::decode(&b);
        }
    }
}
