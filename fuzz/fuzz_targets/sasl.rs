//! SASL (the token bytes of a client's `GetSaslRequest`, opcode 102): the server side of
//! DIGEST-MD5 (`rzk_sasl::digest_md5::DigestMd5Server::step`) parsing the client's
//! response after a real challenge, the client side parsing a server's challenge
//! (`DigestMd5Client::step`), and the JAAS login file parser (`rzk_sasl::jaas::parse`).
//!
//! Input: first byte picks the parser, the rest is the token / file text.
//!
//! Must hold: no panic; failures are typed (`DigestError`, `ClientError`, `JaasError`),
//! and a failed server exchange stays failed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_sasl::digest_md5::{DigestMd5Client, DigestMd5Server, Step};
use rzk_sasl::{jaas, Secret};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, b)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            let mut s = DigestMd5Server::with_nonce("OA6MG9tEQGm2hh".to_owned());
            let pw = |u: &str| if u == "bob" { Some("secret") } else { None };
            assert!(matches!(s.step(&[], pw), Ok(Step::Challenge(_))));
            match s.step(b, pw) {
                Ok(_) => {}
                Err(e) => {
                    let _ = e.to_string();
                    assert!(s.step(b, pw).is_err(), "a failed exchange went on");
                    assert!(!s.is_complete());
                }
            }
        }
        1 => {
            let mut c = DigestMd5Client::new("bob", Secret::new("secret"));
            let _ = c.initial_token();
            if let Err(e) = c.step(b) {
                let _ = e.to_string();
            }
            let _ = c.step(b);
        }
        _ => match jaas::parse(&String::from_utf8_lossy(b)) {
            Ok(f) => {
                for name in ["Server", "Client", "QuorumServer", "QuorumLearner"] {
                    if f.section(name).is_some() {
                        let _ = f.digest_login(name);
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        },
    }
});
