//! A quorum connection's byte stream (leader <-> learner), read the way
//! `net/peer/wire.rs` `read_packet` reads it: consecutive `QuorumPacket`s with no
//! length prefix. Each packet's data then goes through the decoder the server uses for
//! that type: LEARNERINFO of FOLLOWERINFO / OBSERVERINFO, the int of LEADERINFO /
//! ACKEPOCH, the txn of PROPOSAL / INFORM / the activate forms, the forwarded client
//! request of REQUEST (`node::forward::decode`), the session touches of PING, and
//! REVALIDATE in both directions.
//!
//! Must hold: no panic; errors are typed (`WireError`, `DecodeError`); a packet read
//! from the stream and written back reads back equal; a decoded txn round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::quorum::payload::{
    decode_activate, decode_int, decode_revalidate, decode_revalidate_reply, decode_touches,
    encode_touches,
};
use rzk_proto::quorum::{ForwardedRequest, LearnerInfo, PacketType, QuorumPacket};
use rzk_proto::txn::TxnRecord;
use rzk_proto::Jute;
use rzk_server::net::peer::wire;
use rzk_server::node::forward;

/// Packets read from one input at most (the stream is finite anyway).
const MAX_PACKETS: usize = 64;

fn txn(b: &[u8]) {
    if let Ok(rec) = TxnRecord::decode(b) {
        let again = TxnRecord::decode(&rec.encode()).expect("re-encoded txn decodes");
        assert_eq!(rec, again, "txn does not round-trip");
    }
}

fn payload(p: &QuorumPacket) {
    let d = p.data();
    match p.ty {
        PacketType::FollowerInfo | PacketType::ObserverInfo => {
            if let Ok(li) = LearnerInfo::decode(d) {
                if d.len() >= 20 {
                    assert_eq!(LearnerInfo::decode(&li.encode()).ok(), Some(li));
                }
            }
        }
        PacketType::LeaderInfo | PacketType::AckEpoch => {
            let _ = decode_int(d);
        }
        PacketType::Proposal | PacketType::Inform => txn(d),
        PacketType::CommitAndActivate | PacketType::InformAndActivate => {
            if let Ok((_, rest)) = decode_activate(d) {
                txn(rest);
            }
        }
        PacketType::Request => {
            if let Ok(f) = ForwardedRequest::decode(d) {
                assert_eq!(ForwardedRequest::decode(&f.encode()).ok(), Some(f.clone()));
                let _ = forward::decode(&f, 64 * 1024);
                let _ = forward::auth_of(p);
            }
        }
        PacketType::Ping => {
            if let Ok(t) = decode_touches(d) {
                assert_eq!(decode_touches(&encode_touches(&t)).ok(), Some(t));
            }
        }
        PacketType::Revalidate => {
            let _ = decode_revalidate(d);
            let _ = decode_revalidate_reply(d);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    rzk_fuzz::block_on(async {
        let mut s: &[u8] = data;
        for _ in 0..MAX_PACKETS {
            let p = match wire::read_packet(&mut s).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            };
            payload(&p);
            let enc = p.to_bytes();
            let mut e: &[u8] = &enc;
            let again = wire::read_packet(&mut e)
                .await
                .expect("re-encoded packet reads");
            assert_eq!(p, again, "quorum packet does not round-trip");
        }
    });
    // The jute decoder of the same record (tools, tests) must agree on not panicking.
    let _ = QuorumPacket::from_bytes(data);
});
