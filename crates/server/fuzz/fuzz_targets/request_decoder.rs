//! Fuzzes the post-handshake request decoder: any frame payload (RequestHeader + body)
//! must decode or be refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::records::RequestHeader;
use rzk_proto::{Jute, Reader};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    if let Ok(h) = r.read::<RequestHeader>() {
        let _ = rzk_server::request::decode(&h, r.rest(), rzk_proto::jute::DEFAULT_MAX_BUFFER);
        // Also with every opcode the server knows, so bodies get exercised even when the
        // fuzzer has not found the opcode bytes yet.
        if let Some(&sel) = data.first() {
            let ops = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102, 103, 104, 105, 106, 107, -11];
            let op = ops[sel as usize % ops.len()];
            let h = RequestHeader { xid: h.xid, op };
            let _ = rzk_server::request::decode(&h, r.rest(), rzk_proto::jute::DEFAULT_MAX_BUFFER);
        }
    }
});
