//! Client protocol records (`zookeeper.jute`), field for field.

use crate::jute::{DecodeError, Jute, Reader};
use crate::record;
use bytes::Bytes;

record! { pub struct Id { pub scheme: String, pub id: String } }
record! { pub struct Acl { pub perms: i32, pub id: Id } }

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }
    /// `[ALL, world:anyone]`.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(crate::opcode::perms::ALL, "world", "anyone")]
    }
}

record! {
    /// The client-visible stat (68 bytes).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

impl Stat {
    /// Bytes of an encoded [`Stat`] (ZooKeeper's `Stat` record: 6 longs and 5 ints).
    pub const SIZE: usize = 68;
}

record! {
    /// The stat as stored in snapshots (no dataLength / numChildren; cversion counts creations).
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }
}

/// First frame from a client. `read_only` is an optional trailing byte: `None` when the
/// client did not send it (an "old client"), and then the response must omit it too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read()?,
            last_zxid_seen: r.read()?,
            timeout_ms: r.read()?,
            session_id: r.read()?,
            passwd: r.read()?,
            read_only: if r.is_empty() { None } else { Some(r.read()?) },
        })
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.protocol_version.write(w);
        self.last_zxid_seen.write(w);
        self.timeout_ms.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            ro.write(w);
        }
    }
}

/// First frame from the server; `read_only` present only if the request had it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read()?,
            timeout_ms: r.read()?,
            session_id: r.read()?,
            passwd: r.read()?,
            read_only: if r.is_empty() { None } else { Some(r.read()?) },
        })
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.protocol_version.write(w);
        self.timeout_ms.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            ro.write(w);
        }
    }
}

record! { pub struct RequestHeader { pub xid: i32, pub op: i32 } }
record! { pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 } }

record! { pub struct CreateRequest { pub path: String, pub data: crate::data::Data, pub acl: Vec<Acl>, pub flags: i32 } }
record! { pub struct CreateTtlRequest { pub path: String, pub data: crate::data::Data, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64 } }
record! { pub struct CreateResponse { pub path: String } }
record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
record! { pub struct DeleteContainerRequest { pub path: String } }
record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
record! { pub struct ExistsResponse { pub stat: Stat } }
record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
record! { pub struct GetDataResponse { pub data: crate::data::Data, pub stat: Stat } }
record! { pub struct SetDataRequest { pub path: String, pub data: crate::data::Data, pub version: i32 } }
record! { pub struct SetDataResponse { pub stat: Stat } }
record! { pub struct GetAclRequest { pub path: String } }
record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
record! { pub struct SetAclResponse { pub stat: Stat } }
record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
record! { pub struct GetChildren2Request { pub path: String, pub watch: bool } }
record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
record! { pub struct SyncRequest { pub path: String } }
record! { pub struct SyncResponse { pub path: String } }
record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
record! { pub struct CheckWatchesRequest { pub path: String, pub watcher_type: i32 } }
record! { pub struct RemoveWatchesRequest { pub path: String, pub watcher_type: i32 } }
record! { pub struct ReconfigRequest { pub joining_servers: String, pub leaving_servers: String, pub new_members: String, pub cur_config_id: i64 } }
record! { pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Bytes } }
record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}
record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}
record! { pub struct GetSaslRequest { pub token: Bytes } }
record! { pub struct SetSaslResponse { pub token: Bytes } }
record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
record! { pub struct ErrorResponse { pub err: i32 } }
record! { pub struct ClientInfo { pub auth_scheme: String, pub user: String } }
record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }
record! { pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String } }
record! { pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_68_bytes() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(Stat::SIZE, 68);
    }

    #[test]
    fn connect_request_optional_read_only() {
        let mut req = ConnectRequest {
            timeout_ms: 30000,
            passwd: Bytes::from(vec![0u8; 16]),
            ..Default::default()
        };
        let old = req.to_bytes();
        assert_eq!(old.len(), 4 + 8 + 4 + 8 + 4 + 16);
        assert_eq!(ConnectRequest::from_bytes(&old).unwrap(), req);
        req.read_only = Some(false);
        let new = req.to_bytes();
        assert_eq!(new.len(), old.len() + 1);
        assert_eq!(ConnectRequest::from_bytes(&new).unwrap(), req);
    }

    #[test]
    fn create_request_bytes() {
        let r = CreateRequest {
            path: "/a".into(),
            data: Bytes::from_static(b"x").into(),
            acl: Acl::open_unsafe(),
            flags: 0,
        };
        let b = r.to_bytes();
        let expect: Vec<u8> = [
            &[0, 0, 0, 2, b'/', b'a'][..],
            &[0, 0, 0, 1, b'x'],
            &[0, 0, 0, 1, 0, 0, 0, 31],
            &[0, 0, 0, 5],
            b"world",
            &[0, 0, 0, 6],
            b"anyone",
            &[0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(b, expect);
        assert_eq!(CreateRequest::from_bytes(&b).unwrap(), r);
    }
}
