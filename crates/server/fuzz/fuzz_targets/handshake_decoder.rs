//! Fuzzes the connection's first bytes: four-letter-word detection, frame-length checks
//! and ConnectRequest decoding must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::records::ConnectRequest;
use rzk_proto::Jute;
use rzk_server::net::frame::{check_len, four_letter_word};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4 {
        let first = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if four_letter_word(first).is_none() {
            if let Ok(n) = check_len(first, rzk_proto::jute::DEFAULT_MAX_BUFFER) {
                let body = &data[4..];
                let _ = ConnectRequest::from_bytes(&body[..n.min(body.len())]);
            }
        }
    }
    if let Ok(req) = ConnectRequest::from_bytes(data) {
        // Whatever decodes must re-encode to a prefix-equal form.
        let again = req.to_bytes();
        let back = ConnectRequest::from_bytes(&again).expect("re-decodes");
        assert_eq!(back, req);
    }
});
