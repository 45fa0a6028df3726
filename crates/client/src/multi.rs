//! Typed operations and results for `multi` (transactions) and `multiRead`.
//!
//! Owns the translation between user-facing ops (client paths) and the wire
//! `MultiOp`/`OpResult` records (server paths, chroot applied). No IO.

/// The per-op results of a failed multi as the server sent them ([`crate::Error::Multi`]
/// `results`): `Error(code)` for each op (0 for the ops rolled back before the failing
/// one, RUNTIMEINCONSISTENCY (-2) after it).
pub use rzk_proto::multi::OpResult as WireOpResult;

use rzk_proto::multi::MultiOp;
use rzk_proto::records::*;
use rzk_proto::{Data, OpCode};

use crate::connect_string::{prepend_chroot, strip_chroot};
use crate::error::{Error, Result};
use crate::types::{Acl, CreateMode, Stat};

/// One write operation of a transaction for [`crate::Client::multi`] (Java `Op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node (Java `Op.create`).
    Create {
        /// Path of the node (sequential modes append the sequence number).
        path: String,
        /// Initial data.
        data: Vec<u8>,
        /// Initial ACL.
        acl: Vec<Acl>,
        /// Persistent, ephemeral, sequential, container or TTL.
        mode: CreateMode,
        /// Milliseconds, for the TTL modes.
        ttl: Option<i64>,
    },
    /// Delete a node (Java `Op.delete`).
    Delete {
        /// Path of the node.
        path: String,
        /// Expected data version, `-1` for any.
        version: i32,
    },
    /// Replace a node's data (Java `Op.setData`).
    SetData {
        /// Path of the node.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected data version, `-1` for any.
        version: i32,
    },
    /// Fail the transaction unless the node has this data version (Java `Op.check`).
    Check {
        /// Path of the node.
        path: String,
        /// Required data version.
        version: i32,
    },
}

impl Op {
    /// Creates `path` with `data`, `acl` and `mode` (not a TTL mode; see
    /// [`Op::create_ttl`]). Java: `Op.create(path, data, acl, createMode)`.
    pub fn create(path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: data.to_vec(),
            acl: acl.to_vec(),
            mode,
            ttl: None,
        }
    }
    /// Creates `path` with a TTL (a TTL `mode`), sent in whole milliseconds as
    /// [`crate::Client::create_ttl`] sends it. Java: `Op.create(path, data, acl,
    /// createMode, ttl)`.
    pub fn create_ttl(
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: std::time::Duration,
    ) -> Op {
        Op::Create {
            path: path.into(),
            data: data.to_vec(),
            acl: acl.to_vec(),
            mode,
            ttl: Some(ttl.as_millis().min(i64::MAX as u128) as i64),
        }
    }
    /// Deletes `path` at data version `version` (`None` matches any version). Java:
    /// `Op.delete(path, version)`.
    pub fn delete(path: &str, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.into(),
            version: version.unwrap_or(-1),
        }
    }
    /// Sets the data of `path` at data version `version` (`None` matches any). Java:
    /// `Op.setData(path, data, version)`.
    pub fn set_data(path: &str, data: &[u8], version: Option<i32>) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.to_vec(),
            version: version.unwrap_or(-1),
        }
    }
    /// Requires `path` to be at data version `version`. Java: `Op.check(path, version)`.
    pub fn check(path: &str, version: i32) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }

    pub(crate) fn to_wire(&self, chroot: Option<&str>) -> Result<MultiOp> {
        Ok(match self {
            Op::Create {
                path,
                data,
                acl,
                mode,
                ttl,
            } => {
                rzk_proto::path::validate(path, mode.is_sequential())?;
                let path = prepend_chroot(chroot, path);
                let data = Data::from(data.clone());
                if mode.is_ttl() {
                    MultiOp::CreateTtl(CreateTtlRequest {
                        path,
                        data,
                        acl: acl.clone(),
                        flags: *mode as i32,
                        ttl: ttl
                            .ok_or_else(|| Error::InvalidArgument("TTL mode needs a ttl".into()))?,
                    })
                } else {
                    // A create op (type 1), as the Java client and kazoo send: ZooKeeper
                    // 3.8.0 and 3.8.1 members cannot apply the create2 sub-txn a 3.8.2+
                    // or rzk leader logs for a create2 op, and drop the rest of the multi
                    // (docs/COMPATIBILITY.md, "Create variants inside multi").
                    let code = if mode.is_container() {
                        OpCode::CreateContainer
                    } else {
                        OpCode::Create
                    };
                    MultiOp::Create(
                        code.code(),
                        CreateRequest {
                            path,
                            data,
                            acl: acl.clone(),
                            flags: *mode as i32,
                        },
                    )
                }
            }
            Op::Delete { path, version } => MultiOp::Delete(DeleteRequest {
                path: checked(chroot, path)?,
                version: *version,
            }),
            Op::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path: checked(chroot, path)?,
                data: Data::from(data.clone()),
                version: *version,
            }),
            Op::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                path: checked(chroot, path)?,
                version: *version,
            }),
        })
    }
}

fn checked(chroot: Option<&str>, path: &str) -> Result<String> {
    rzk_proto::path::validate(path, false)?;
    Ok(prepend_chroot(chroot, path))
}

/// The result of one op of a successful transaction (Java `OpResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The created path (client-relative) and, for create2-style ops, its stat.
    Create {
        /// The created path (with the sequence suffix for sequential modes).
        path: String,
        /// The new node's stat when the server answered a create2 result: for a TTL
        /// node (createTTL); `None` for the other modes, which go as create ops.
        stat: Option<Stat>,
    },
    /// The node was deleted.
    Delete,
    /// The node's stat after setting its data.
    SetData(Stat),
    /// The version check passed.
    Check,
}

pub(crate) fn convert_results(
    chroot: Option<&str>,
    wire: Vec<WireOpResult>,
) -> Result<Vec<OpResult>> {
    if let Some(index) = wire
        .iter()
        .position(|r| matches!(r, WireOpResult::Error(e) if *e != 0))
    {
        let code = match wire[index] {
            WireOpResult::Error(e) => e,
            _ => -1,
        };
        return Err(Error::Multi {
            index,
            error: Box::new(Error::from_code(code)),
            results: wire,
        });
    }
    wire.into_iter()
        .map(|r| {
            Ok(match r {
                WireOpResult::Create(p) => OpResult::Create {
                    path: strip_chroot(chroot, &p),
                    stat: None,
                },
                WireOpResult::Create2(p, s) => OpResult::Create {
                    path: strip_chroot(chroot, &p),
                    stat: Some(s),
                },
                WireOpResult::Delete => OpResult::Delete,
                WireOpResult::SetData(s) => OpResult::SetData(s),
                WireOpResult::Check => OpResult::Check,
                other => {
                    return Err(Error::Recipe(format!(
                        "unexpected result in multi: {other:?}"
                    )));
                }
            })
        })
        .collect()
}

/// One read of [`crate::Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read a node's data and stat (Java `Op.getData(path)`).
    GetData(String),
    /// Read a node's child names (Java `Op.getChildren(path)`).
    GetChildren(String),
}

/// The result of one read; each read succeeds or fails on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and stat of a [`ReadOp::GetData`].
    Data(Vec<u8>, Stat),
    /// Child names of a [`ReadOp::GetChildren`].
    Children(Vec<String>),
    /// This read failed (e.g. [`Error::NoNode`]); the others are unaffected.
    Error(Error),
}

impl ReadOp {
    pub(crate) fn to_wire(&self, chroot: Option<&str>) -> MultiOp {
        match self {
            ReadOp::GetData(p) => MultiOp::GetData(GetDataRequest {
                path: prepend_chroot(chroot, p),
                watch: false,
            }),
            ReadOp::GetChildren(p) => MultiOp::GetChildren(GetChildrenRequest {
                path: prepend_chroot(chroot, p),
                watch: false,
            }),
        }
    }
}

pub(crate) fn convert_read_results(wire: Vec<WireOpResult>) -> Vec<ReadResult> {
    wire.into_iter()
        .map(|r| match r {
            WireOpResult::GetData(d, s) => ReadResult::Data(d.to_vec(), s),
            WireOpResult::GetChildren(c) => ReadResult::Children(c),
            WireOpResult::Error(e) => ReadResult::Error(Error::from_code(e)),
            other => ReadResult::Error(Error::Recipe(format!(
                "unexpected result in multiRead: {other:?}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_transaction_reports_first_error() {
        let r = convert_results(
            None,
            vec![
                WireOpResult::Error(0),
                WireOpResult::Error(-110),
                WireOpResult::Error(-2),
            ],
        );
        match r {
            Err(Error::Multi { index, error, .. }) => {
                assert_eq!(index, 1);
                assert_eq!(*error, Error::NodeExists);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn chroot_applied_both_ways() {
        let w = Op::create("/a", b"", &[], CreateMode::Persistent)
            .to_wire(Some("/app"))
            .unwrap();
        assert_eq!(w.path(), "/app/a");
        let r = convert_results(Some("/app"), vec![WireOpResult::Create("/app/a".into())]).unwrap();
        assert_eq!(
            r,
            vec![OpResult::Create {
                path: "/a".into(),
                stat: None
            }]
        );
    }

    #[test]
    fn creates_go_as_the_java_client_sends_them() {
        // create (1) for the plain modes, so that ZooKeeper 3.8.0/3.8.1 members apply
        // the whole multi; createContainer (19) and createTTL (21) by mode.
        let code = |mode| match Op::create("/a", b"", &[], mode).to_wire(None).unwrap() {
            MultiOp::Create(code, _) => code,
            other => panic!("{other:?}"),
        };
        for mode in [
            CreateMode::Persistent,
            CreateMode::Ephemeral,
            CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential,
        ] {
            assert_eq!(code(mode), OpCode::Create.code(), "{mode:?}");
        }
        assert_eq!(code(CreateMode::Container), OpCode::CreateContainer.code());
        let ttl = Op::create_ttl(
            "/t",
            b"",
            &[],
            CreateMode::PersistentWithTtl,
            std::time::Duration::from_secs(1),
        )
        .to_wire(None)
        .unwrap();
        assert!(matches!(ttl, MultiOp::CreateTtl(_)), "{ttl:?}");
    }
}
