//! ZooKeeper's admin interfaces: the four-letter words (`ruok`, `srvr`, `stat`, `mntr`,
//! ...: plain-text commands sent instead of a ConnectRequest, with its whitelist and
//! output formats; here and in `format.rs`) and the AdminServer over HTTP (`http.rs`,
//! JSON answers in `commands.rs`, settings in `settings.rs`). Both render the same
//! values (`data.rs`, `mntr.rs`).
//!
//! Owns rendering server state. It only reads shared state (and resets counters for
//! `crst`/`srst`); it must never change the tree, sessions or watches.

pub mod commands;
pub mod data;
pub mod format;
pub mod http;
pub mod mntr;
pub mod number;
pub mod settings;

use crate::node::status::Status;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The version rzk reports where ZooKeeper reports its own.
pub const ZK_COMPAT_VERSION: &str = "3.8.4";

/// ZooTrace's default mask (CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING).
const DEFAULT_TRACE_MASK: i64 = 306;
static TRACE_MASK: AtomicI64 = AtomicI64::new(DEFAULT_TRACE_MASK);

/// ZooTrace's text trace mask (`gtmk`, `get_trace_mask`).
pub fn trace_mask() -> i64 {
    TRACE_MASK.load(Ordering::Relaxed)
}

/// Sets the trace mask (`stmk`, `set_trace_mask`); rzk's logging is filtered by
/// `RUST_LOG`, so the mask is only reported back.
pub fn set_trace_mask(mask: i64) {
    TRACE_MASK.store(mask, Ordering::Relaxed);
}

/// `Zookeeper version:` text.
pub fn full_version() -> String {
    format!(
        "{ZK_COMPAT_VERSION}-rzk-{}, built on rzk",
        env!("CARGO_PKG_VERSION")
    )
}

/// How long `stmk` waits for its 8-byte mask after the word; then the connection
/// closes with no answer, as ZooKeeper closes on a short mask.
const STMK_MASK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What ZooKeeper's four-letter commands answer while no server runs (the AdminServer's
/// error text, the same words).
pub use commands::NOT_SERVING;

/// Runs one four-letter word (already recognised) and returns its output. `rd` is the
/// connection, for `stmk`'s 8-byte argument.
pub async fn four_letter_word<R: AsyncRead + Unpin>(
    status: Status<'_>,
    cmd: &str,
    rd: &mut R,
) -> String {
    if cmd == "telnet close" {
        return String::new();
    }
    // As ZooKeeper's FourLetterCommands: `isro` is always allowed with read-only mode on.
    let isro_allowed = cmd == "isro" && status.config().read_only_mode_enabled;
    if !isro_allowed && !status.config().four_letter_whitelist.allows(cmd) {
        tracing::debug!("four-letter word {cmd} is not in the whitelist");
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    tracing::info!("processing four-letter word {cmd}");
    // ZooKeeper's commands that need a running server answer this instead while none
    // runs (an ensemble member without a leader): `hash` without the newline, `isro`
    // "null"; ruok, envi, gtmk and stmk answer as usual, srvr and stat say it themselves.
    if !status.is_serving() {
        match cmd {
            "conf" | "cons" | "crst" | "dump" | "dirs" | "mntr" | "srst" | "wchs" | "wchc"
            | "wchp" => return format!("{NOT_SERVING}\n"),
            "hash" => return NOT_SERVING.to_owned(),
            "isro" => return "null".to_owned(),
            _ => {}
        }
    }
    match cmd {
        "ruok" => "imok".to_owned(),
        "isro" => if status.is_read_only() { "ro" } else { "rw" }.to_owned(),
        "srvr" => format::server_stats(status, false),
        "stat" => format::server_stats(status, true),
        "cons" => format::cons(status),
        "conf" => format::conf(status),
        "envi" => format::envi(),
        "mntr" => format::mntr(status),
        "dump" => format::dump(status),
        "dirs" => format::dirs(status),
        "wchs" => format::wchs(status),
        "wchc" => format::wchc(status),
        "wchp" => format::wchp(status),
        "hash" => format::hash(status),
        "crst" => {
            status.reset_connection_stats();
            "Connection stats reset.\n".to_owned()
        }
        "srst" => {
            status.reset_server_stats();
            "Server stats reset.\n".to_owned()
        }
        "gtmk" => trace_mask().to_string(),
        "stmk" => {
            // ZooKeeper reads the mask from what has arrived with the word and closes
            // without an answer when it is short; rzk waits for it a little (a mask
            // sent in a later segment still counts) but not for ever.
            let mut b = [0u8; 8];
            match tokio::time::timeout(STMK_MASK_WAIT, rd.read_exact(&mut b)).await {
                Ok(Ok(_)) => {
                    let m = i64::from_be_bytes(b);
                    set_trace_mask(m);
                    m.to_string()
                }
                Ok(Err(_)) | Err(_) => String::new(),
            }
        }
        _ => String::new(),
    }
}

/// Short operation names as ZooKeeper's `cons` prints them (`lop=`).
pub fn op_abbrev(op: i32) -> &'static str {
    match op {
        0 => "NOTIFICATION",
        1 => "CREA",
        2 => "DELE",
        3 => "EXIS",
        4 => "GETD",
        5 => "SETD",
        6 => "GETA",
        7 => "SETA",
        8 => "GETC",
        9 => "SYNC",
        11 => "PING",
        12 => "GETC",
        13 => "CHEC",
        14 => "MULT",
        15 => "CREA",
        16 => "RECO",
        17 => "CHKW",
        18 => "REMW",
        19 => "CREA",
        20 => "DELE",
        21 => "CREA",
        22 => "MLTR",
        100 => "AUTH",
        101 => "SETW",
        102 => "SASL",
        103 => "GETE",
        104 => "GETACN",
        105 => "SETW",
        106 => "ADDW",
        107 => "WHOAMI",
        -10 => "SESS",
        -11 => "CLOS",
        _ => "UNKNOWN",
    }
}
