//! `multi` (14) and `multiRead` (22) request and response bodies.

use crate::error::ErrorCode;
use crate::jute::{DecodeError, Jute, Reader};
use crate::opcode::{CreateMode, OpCode};
use crate::records::*;

/// One operation inside a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (1), create2 (15) or createContainer (19): the opcode is kept.
    Create(i32, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

/// The opcode ZooKeeper 3.9 (and 3.8.2+, ZOOKEEPER-4026) carries out for a create inside
/// a multi whose header says `header_op` and whose body says `flags`: flags naming a
/// container make a createContainer, flags naming a TTL mode a createTTL, otherwise the
/// header's opcode is kept -- except that a createTTL without TTL flags becomes a plain
/// create (its ttl is dropped). `None`: ZooKeeper refuses the whole multi
/// (MARSHALLINGERROR) -- unknown flags, or TTL flags, under create/create2/createContainer.
/// Non-create opcodes are returned unchanged. See docs/COMPATIBILITY.md.
pub fn effective_create_op(header_op: i32, flags: i32) -> Option<i32> {
    let mode = match OpCode::from_i32(header_op) {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
            let mode = CreateMode::from_flags(flags)?;
            if mode.is_ttl() {
                return None;
            }
            mode
        }
        // createTTL: unknown flags fall back to persistent here (and fail in prep)
        Some(OpCode::CreateTtl) => CreateMode::from_flags(flags).unwrap_or(CreateMode::Persistent),
        _ => return Some(header_op),
    };
    Some(if mode.is_ttl() {
        OpCode::CreateTtl.code()
    } else if mode.is_container() {
        OpCode::CreateContainer.code()
    } else if header_op == OpCode::CreateTtl.code() {
        OpCode::Create.code()
    } else {
        header_op
    })
}

impl MultiOp {
    /// For a create: see [`effective_create_op`]; other ops: their opcode.
    pub fn effective_op_code(&self) -> Option<i32> {
        match self {
            MultiOp::Create(t, r) => effective_create_op(*t, r.flags),
            MultiOp::CreateTtl(r) => effective_create_op(OpCode::CreateTtl.code(), r.flags),
            _ => Some(self.op_code()),
        }
    }

    pub fn op_code(&self) -> i32 {
        match self {
            MultiOp::Create(t, _) => *t,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl.code(),
            MultiOp::Delete(_) => OpCode::Delete.code(),
            MultiOp::SetData(_) => OpCode::SetData.code(),
            MultiOp::Check(_) => OpCode::Check.code(),
            MultiOp::GetChildren(_) => OpCode::GetChildren.code(),
            MultiOp::GetData(_) => OpCode::GetData.code(),
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }
}

/// A multi request: ops until the `{-1, true, -1}` terminator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

impl Jute for MultiRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h: MultiHeader = r.read()?;
            if h.done {
                break;
            }
            // Every op's record starts with its path; ZooKeeper fails the whole multi
            // (MARSHALLINGERROR) on a null one.
            if r.next_is_null() {
                return Err(DecodeError::Invalid("null path in a multi op"));
            }
            let op = match OpCode::from_i32(h.op) {
                Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
                    MultiOp::Create(h.op, r.read()?)
                }
                Some(OpCode::CreateTtl) => MultiOp::CreateTtl(r.read()?),
                Some(OpCode::Delete) => MultiOp::Delete(r.read()?),
                Some(OpCode::SetData) => MultiOp::SetData(r.read()?),
                Some(OpCode::Check) => MultiOp::Check(r.read()?),
                Some(OpCode::GetChildren) => MultiOp::GetChildren(r.read()?),
                Some(OpCode::GetData) => MultiOp::GetData(r.read()?),
                _ => {
                    return Err(DecodeError::Unknown {
                        what: "multi op",
                        value: h.op as i64,
                    })
                }
            };
            ops.push(op);
        }
        Ok(MultiRequest { ops })
    }

    fn write(&self, w: &mut Vec<u8>) {
        for op in &self.ops {
            MultiHeader {
                op: op.op_code(),
                done: false,
                err: -1,
            }
            .write(w);
            match op {
                MultiOp::Create(_, x) => x.write(w),
                MultiOp::CreateTtl(x) => x.write(w),
                MultiOp::Delete(x) => x.write(w),
                MultiOp::SetData(x) => x.write(w),
                MultiOp::Check(x) => x.write(w),
                MultiOp::GetChildren(x) => x.write(w),
                MultiOp::GetData(x) => x.write(w),
            }
        }
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(w);
    }
}

/// The result of one op in a multi response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(crate::data::Data, Stat),
    Error(i32),
}

impl OpResult {
    pub fn error(code: ErrorCode) -> OpResult {
        OpResult::Error(code.code())
    }

    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            OpResult::Create(_) => (1, 0),
            OpResult::Create2(..) => (15, 0),
            OpResult::Delete => (2, 0),
            OpResult::SetData(_) => (5, 0),
            OpResult::Check => (13, 0),
            OpResult::GetChildren(_) => (8, 0),
            OpResult::GetData(..) => (4, 0),
            OpResult::Error(e) => (-1, *e),
        };
        MultiHeader {
            op,
            done: false,
            err,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<OpResult>,
}

impl Jute for MultiResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h: MultiHeader = r.read()?;
            if h.done {
                break;
            }
            let res = match h.op {
                1 => OpResult::Create(r.read()?),
                15 => OpResult::Create2(r.read()?, r.read()?),
                2 => OpResult::Delete,
                5 => OpResult::SetData(r.read()?),
                13 => OpResult::Check,
                8 => OpResult::GetChildren(r.read()?),
                4 => OpResult::GetData(r.read()?, r.read()?),
                -1 => OpResult::Error(ErrorResponse::read(r)?.err),
                other => {
                    return Err(DecodeError::Unknown {
                        what: "multi result",
                        value: other as i64,
                    })
                }
            };
            results.push(res);
        }
        Ok(MultiResponse { results })
    }

    fn write(&self, w: &mut Vec<u8>) {
        MultiResponse::write_results(&self.results, w);
    }
}

impl MultiResponse {
    /// Writes a multi response made of `results` (the same bytes as
    /// `MultiResponse { results }.write(w)`, without owning them).
    pub fn write_results(results: &[OpResult], w: &mut Vec<u8>) {
        for res in results {
            res.header().write(w);
            match res {
                OpResult::Create(p) => p.write(w),
                OpResult::Create2(p, s) => {
                    p.write(w);
                    s.write(w);
                }
                OpResult::Delete | OpResult::Check => {}
                OpResult::SetData(s) => s.write(w),
                OpResult::GetChildren(c) => c.write(w),
                OpResult::GetData(d, s) => {
                    d.write(w);
                    s.write(w);
                }
                OpResult::Error(e) => ErrorResponse { err: *e }.write(w),
            }
        }
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let req = MultiRequest {
            ops: vec![
                MultiOp::Create(
                    1,
                    CreateRequest {
                        path: "/a".into(),
                        acl: Acl::open_unsafe(),
                        ..Default::default()
                    },
                ),
                MultiOp::Check(CheckVersionRequest {
                    path: "/a".into(),
                    version: 0,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
            ],
        };
        assert_eq!(MultiRequest::from_bytes(&req.to_bytes()).unwrap(), req);
        let resp = MultiResponse {
            results: vec![
                OpResult::Create("/a".into()),
                OpResult::Error(-101),
                OpResult::Error(-2),
            ],
        };
        assert_eq!(MultiResponse::from_bytes(&resp.to_bytes()).unwrap(), resp);
    }

    #[test]
    fn effective_create_op_follows_zookeeper_3_9() {
        use OpCode::*;
        let e = |op: OpCode, flags| effective_create_op(op.code(), flags);
        // create / create2 / createContainer keep their opcode unless the flags say container
        for op in [Create, Create2, CreateContainer] {
            for flags in 0..4 {
                assert_eq!(e(op, flags), Some(op.code()), "{op:?} {flags}");
            }
            assert_eq!(e(op, 4), Some(CreateContainer.code()));
            // TTL or unknown flags: the whole multi is refused
            for flags in [5, 6, 7, -1] {
                assert_eq!(e(op, flags), None, "{op:?} {flags}");
            }
        }
        // createTTL follows its flags; without TTL flags it is a plain create
        for flags in [0, 1, 2, 3, 7, -1] {
            assert_eq!(e(CreateTtl, flags), Some(Create.code()), "{flags}");
        }
        assert_eq!(e(CreateTtl, 4), Some(CreateContainer.code()));
        assert_eq!(e(CreateTtl, 5), Some(CreateTtl.code()));
        assert_eq!(e(CreateTtl, 6), Some(CreateTtl.code()));
        assert_eq!(e(Delete, 0), Some(Delete.code()));
        let op = MultiOp::Create(
            Create2.code(),
            CreateRequest {
                path: "/a".into(),
                data: Default::default(),
                acl: vec![],
                flags: 4,
            },
        );
        assert_eq!(op.effective_op_code(), Some(CreateContainer.code()));
        assert_eq!(op.op_code(), Create2.code(), "the request itself is kept");
    }

    #[test]
    fn unknown_op_is_an_error() {
        let mut w = Vec::new();
        MultiHeader {
            op: 99,
            done: false,
            err: -1,
        }
        .write(&mut w);
        assert!(MultiRequest::from_bytes(&w).is_err());
    }
}
