//! A client frame after the handshake, exactly as `net/conn.rs` `Conn::on_frame` gets
//! it (the payload after the 4-byte length): `RequestHeader` + body, decoded by
//! `request::decode`. What decodes then goes the rest of the way a server takes it:
//! a write is prepared into a txn (`prep::Prep::prepare`: path rules, ACLs, multi) and
//! applied to a tree; a read is answered from the tree (`read::read`). A forwarded
//! REQUEST (`node::forward::decode`) takes the same decoder on a follower's behalf.
//!
//! Must hold: no panic anywhere; a refusal is a typed `RequestError`; a prepared txn
//! survives encode -> decode unchanged (the log and PROPOSAL carry exactly those bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::quorum::ForwardedRequest;
use rzk_proto::records::RequestHeader;
use rzk_proto::txn::TxnRecord;
use rzk_proto::{Reader, SessionId};
use rzk_server::auth::AuthInfo;
use rzk_server::node::forward::{self, Forwarded};
use rzk_server::prep::{Prep, WriteRequest};
use rzk_server::request::{self, Request};
use rzk_server::tree::DataTree;
use rzk_server::watch::WatchManager;

/// jute.maxbuffer as the fuzzer sees it: small, so length checks are reachable.
const MAX: usize = 64 * 1024;

fn write(tree: &mut DataTree, w: &WriteRequest, xid: i32) {
    let mut prep = Prep::new(true);
    let auth = AuthInfo::for_ip("127.0.0.1");
    let zxid = tree.last_zxid().next();
    let rec = prep.prepare(
        tree,
        SessionId(0x100),
        xid,
        w,
        &auth,
        zxid,
        1_700_000_000_000,
    );
    let again = TxnRecord::decode(&rec.encode()).expect("a prepared txn decodes");
    assert_eq!(again, rec, "prepared txn does not round-trip");
    let _ = tree.apply(&rec);
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::with_limit(data, MAX);
    let Ok(hdr) = r.read::<RequestHeader>() else {
        return;
    };
    let body = r.rest();
    let mut tree = DataTree::new();
    match request::decode(&hdr, body, MAX) {
        Ok(Request::Write(w)) => write(&mut tree, &w, hdr.xid),
        Ok(Request::Read(req)) => {
            let mut watches = WatchManager::new();
            let auth = AuthInfo::for_ip("127.0.0.1");
            let _ = rzk_server::read::read(&tree, &mut watches, 7, &auth, SessionId(0x100), &req);
        }
        Ok(_) => {}
        Err(e) => {
            // typed refusal; its Display must not panic either
            let _ = e.to_string();
        }
    }
    // The same bytes as a follower's forwarded REQUEST.
    let f = ForwardedRequest {
        session_id: 0x100,
        cxid: hdr.xid,
        op_type: hdr.op,
        body: bytes::Bytes::copy_from_slice(body),
    };
    if let Forwarded::Write(w) = forward::decode(&f, MAX) {
        write(&mut DataTree::new(), &w, hdr.xid);
    }
});
