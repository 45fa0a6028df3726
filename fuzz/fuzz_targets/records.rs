//! Every jute record a peer can send rzk (client requests including the handshake's
//! `ConnectRequest`, the replies a client decodes, txns, multi) through its own
//! decoder. The first input byte picks the record, the rest is its bytes.
//!
//! Must hold: no panic; a record that decodes encodes back to bytes that decode to the
//! same value (decode(encode(x)) == x for every decoded x).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::multi::{MultiRequest, MultiResponse};
use rzk_proto::records::*;
use rzk_proto::txn::*;
use rzk_proto::{Jute, Reader};

const MAX: usize = 64 * 1024;

fn round_trip<T: Jute + PartialEq + std::fmt::Debug>(b: &[u8]) {
    let Ok(x) = T::read(&mut Reader::with_limit(b, MAX)) else {
        return;
    };
    let enc = x.to_bytes();
    let y = T::read(&mut Reader::with_limit(&enc, usize::MAX)).unwrap_or_else(|e| {
        panic!(
            "{} re-encoding does not decode: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(x, y, "{} does not round-trip", std::any::type_name::<T>());
}

macro_rules! pick {
    ($sel:expr, $b:expr, $($t:ty),* $(,)?) => {{
        let all: &[fn(&[u8])] = &[$(round_trip::<$t>),*];
        all[$sel as usize % all.len()]($b)
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, b)) = data.split_first() else {
        return;
    };
    if sel == 0xff {
        // a whole logged / proposed transaction
        if let Ok(rec) = TxnRecord::decode(b) {
            let again = TxnRecord::decode(&rec.encode()).expect("re-encoded txn decodes");
            assert_eq!(rec, again, "TxnRecord does not round-trip");
        }
        return;
    }
    pick!(
        sel,
        b,
        ConnectRequest,
        ConnectResponse,
        RequestHeader,
        ReplyHeader,
        CreateRequest,
        CreateTtlRequest,
        DeleteRequest,
        ExistsRequest,
        GetDataRequest,
        SetDataRequest,
        GetAclRequest,
        SetAclRequest,
        GetChildrenRequest,
        GetChildren2Request,
        SyncRequest,
        CheckVersionRequest,
        CheckWatchesRequest,
        RemoveWatchesRequest,
        ReconfigRequest,
        AuthPacket,
        SetWatches,
        SetWatches2,
        GetSaslRequest,
        GetEphemeralsRequest,
        GetAllChildrenNumberRequest,
        AddWatchRequest,
        MultiRequest,
        MultiResponse,
        Stat,
        StatPersisted,
        Acl,
        WatcherEvent,
        GetDataResponse,
        GetChildren2Response,
        GetAclResponse,
        Create2Response,
        SetSaslResponse,
        WhoAmIResponse,
        TxnHeader,
        CreateTxn,
        CreateTtlTxn,
        SetAclTxn,
        CloseSessionTxn,
        MultiTxnEntry,
    );
});
