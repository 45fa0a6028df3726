//! The election port: the initial connection message (protocol version, server id,
//! election address; `net/peer/election_net.rs` `read_header`) and election
//! notifications (`Notification::decode`, every legacy length ZooKeeper accepts). The
//! first input byte picks which; the rest is the message.
//!
//! Must hold: no panic; errors are typed; a decoded message re-encodes to bytes that
//! decode to the same message (where the encoder writes that form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::quorum::election::{MAX_ADDRESS_LEN, MAX_FRAME_LEN};
use rzk_proto::quorum::{InitialMessage, Notification};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, b)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        if b.len() > MAX_FRAME_LEN {
            return; // the socket reader refuses longer frames before decoding
        }
        if let Ok(n) = Notification::decode(b) {
            notification_round_trip(&n);
        }
    } else if let Ok(m) = InitialMessage::decode(b) {
        if m.address.len() <= MAX_ADDRESS_LEN {
            let again = InitialMessage::decode(&m.encode()).expect("re-encoded header decodes");
            assert_eq!(again, m, "initial message does not round-trip");
        }
    }
});

/// Round trip of a notification: only the current (version 2) form is re-encoded
/// as itself; older forms encode as version 2 with the same vote.
fn notification_round_trip(n: &Notification) {
    let again = Notification::decode(&n.encode()).expect("re-encoded notification decodes");
    assert_eq!(
        (
            again.state,
            again.leader,
            again.zxid,
            again.election_epoch,
            again.peer_epoch
        ),
        (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch),
        "notification vote does not round-trip"
    );
    if n.version >= 2 {
        assert_eq!(
            again.config, n.config,
            "notification config does not round-trip"
        );
    }
}
