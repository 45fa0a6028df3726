//! The database stream a learner receives after SNAP (`net/peer/wire.rs`
//! `read_snapshot`): session table, ACL cache, nodes, "/" and the `BenWasHere`
//! signature, built into a `DataTree` (`tree::TreeBuilder`).
//!
//! Must hold: no panic; errors are typed `WireError`s; a stream that is accepted
//! re-encodes (`wire::encode_snapshot`) to a stream that is accepted with the same
//! nodes and sessions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_server::net::peer::wire;

fuzz_target!(|data: &[u8]| {
    rzk_fuzz::block_on(async {
        let mut s: &[u8] = data;
        match wire::read_snapshot(&mut s, rzk_proto::Zxid(0x1_0000_0005), true).await {
            Ok(got) => {
                let enc = wire::encode_snapshot(&got.tree, &got.sessions);
                let mut e: &[u8] = &enc;
                let again = wire::read_snapshot(&mut e, rzk_proto::Zxid(0x1_0000_0005), true)
                    .await
                    .expect("re-encoded snapshot stream reads");
                assert_eq!(
                    again.tree.snapshot_nodes(),
                    got.tree.snapshot_nodes(),
                    "snapshot stream nodes do not round-trip"
                );
                let mut a = again.sessions.clone();
                let mut b = got.sessions.clone();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "snapshot stream sessions do not round-trip");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    });
});
