//! The first bytes of a client connection, dispatched as `net/conn.rs` does: a
//! four-letter word (`net::frame::read_first_word`, then
//! `admin::four_letter_word` with the rest of the stream, which `stmk` reads its
//! 8-byte argument from) or a frame length followed by the `ConnectRequest`. Then the
//! AdminServer's command dispatch (`admin::commands::run`) with a fuzzed command name
//! and query arguments (`setTraceMask`'s `traceMask` is the one argument parsed).
//!
//! Input: the connection's bytes, a NUL, then `name` and `key=value` lines for the
//! AdminServer command.
//!
//! Must hold: no panic; a malformed start is a typed `FrameError` / `DecodeError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::records::ConnectRequest;
use rzk_proto::Jute;
use rzk_server::admin::{self, commands};
use rzk_server::config::Config;
use rzk_server::net::frame::{self, FirstWord};
use rzk_server::node::shared::Shared;
use rzk_server::node::status::Status;
use rzk_server::tree::DataTree;
use std::sync::OnceLock;

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let dir = rzk_fuzz::fresh_dir("four-letter");
        let text = format!(
            "4lw.commands.whitelist=*\ndataDir={}\nadmin.enableServer=false\n",
            dir.display()
        );
        let cfg = Config::from_properties(&text).expect("fuzz config");
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        // The job queue is never read: no fuzzed input submits a job.
        std::mem::forget(rx);
        let (shared, writer) = Shared::new(cfg, DataTree::new(), tx);
        std::mem::forget(writer);
        shared
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let conn = parts.next().unwrap_or_default();
    let admin_text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let s = shared();

    rzk_fuzz::block_on(async {
        let mut rd: &[u8] = conn;
        match frame::read_first_word(&mut rd, 64 * 1024).await {
            Ok(FirstWord::FourLetter(w)) => {
                let out = admin::four_letter_word(Status::of(s), w, &mut rd).await;
                let _ = out.len();
            }
            Ok(FirstWord::Length(n)) => {
                let mut buf = Vec::new();
                if frame::read_payload(&mut rd, n, &mut buf).await.is_ok() {
                    if let Ok(req) = ConnectRequest::from_bytes(&buf) {
                        let again = ConnectRequest::from_bytes(&req.to_bytes())
                            .expect("re-encoded ConnectRequest decodes");
                        assert_eq!(again, req, "ConnectRequest does not round-trip");
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    });

    if !admin_text.is_empty() {
        let mut lines = admin_text.lines();
        let name = lines.next().unwrap_or_default();
        // Commands that only report are safe to run on every input; the resets are
        // harmless too (they reset counters of this fuzz server).
        let mut args = commands::Args::new();
        for l in lines {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            args.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
        let _ = commands::run(Status::of(s), name, &args);
    }
});
