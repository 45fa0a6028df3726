//! A transaction log file (`version-2/log.<zxid>`) as rzk finds it on disk: read
//! record by record with `storage::log_reader::LogFileReader` (also in the
//! `rzk log recover` mode that accepts bad checksums), then loaded the way start-up
//! loads it (`storage::open` + `Recovered::replay_log`: recovery, torn-tail repair, replay onto a tree).
//!
//! Input: first byte bit 0 = 0: the rest is the whole file. Bit 0 = 1: the rest is a
//! list of `u16 length + payload` chunks, each framed as a valid record (header,
//! Adler-32, length, 0x42), so the fuzzer reaches the txn decoder behind the checksum.
//! Bit 1 turns on `accept_bad_checksums`.
//!
//! Must hold: no panic; a corrupt file is a typed error naming the file and the byte
//! offset; every record returned round-trips through its encoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_fuzz::{fresh_dir, Cursor};
use rzk_proto::txn::TxnRecord;
use rzk_server::config::Config;
use rzk_server::storage;
use rzk_server::storage::files::FileHeader;
use rzk_server::storage::log_reader::{LogFileReader, LogReadError};
use rzk_server::storage::txnlog::frame_record;

fn file_bytes(mode: u8, c: &mut Cursor<'_>) -> Vec<u8> {
    if mode & 1 == 0 {
        return c.rest().to_vec();
    }
    let mut out = FileHeader::txn_log().to_bytes().to_vec();
    while !c.is_empty() {
        let n = c.u16() as usize;
        frame_record(c.take(n), &mut out);
    }
    out
}

fn check_error(e: &LogReadError, file: &str) {
    let text = e.to_string();
    assert!(
        text.contains(file),
        "log error does not name the file: {text}"
    );
    if let LogReadError::Corrupt { .. } = e {
        assert!(
            text.contains("offset"),
            "corrupt log error has no offset: {text}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.byte();
    let bytes = file_bytes(mode, &mut c);
    let dir = fresh_dir("txnlog");
    let vdir = dir.join("version-2");
    std::fs::create_dir_all(&vdir).expect("version dir");
    let path = vdir.join("log.100000001");
    std::fs::write(&path, &bytes).expect("write log");
    let name = path.display().to_string();

    match LogFileReader::open(&path) {
        Ok(mut r) => {
            if mode & 2 != 0 {
                r.accept_bad_checksums();
            }
            loop {
                match r.next_entry() {
                    Ok(Some(e)) => {
                        assert!(e.end_offset > e.offset);
                        let again = TxnRecord::decode(&e.record.encode())
                            .expect("re-encoded logged txn decodes");
                        assert_eq!(again, e.record, "logged txn does not round-trip");
                    }
                    Ok(None) => break,
                    Err(e) => {
                        check_error(&e, &name);
                        break;
                    }
                }
            }
        }
        Err(e) => check_error(&e, &name),
    }

    // The start-up path over the same file (it may truncate a torn tail in place).
    let mut cfg = Config {
        data_dir: dir.clone(),
        data_log_dir: dir.clone(),
        extended_types_enabled: mode & 4 != 0,
        ..Config::default()
    };
    cfg.unknown
        .insert("snapshot.trust.empty".to_string(), "true".to_string());
    if let Err(e) = storage::open(&cfg).and_then(|r| r.replay_log()) {
        let _ = e.to_string();
    }
});
