//! One connection's SASL login, run by the session task between the ConnectResponse and
//! the first other request, as ZooKeeper's client holds back every packet while its
//! `ZooKeeperSaslClient` is in progress: SASL requests (opcode 102, `GetSASLRequest`,
//! answered by `SetSASLResponse`) with ordinary xids until the mechanism completes.
//!
//! A refusal (an error code in the reply, or a server token the mechanism rejects) is
//! [`LoginError::Refused`] and ends the session with `AuthFailed`, as ZooKeeper's client
//! goes to `AUTH_FAILED`; a broken connection is [`LoginError::Connection`] and the task
//! tries the next server. Never logs a token.

use bytes::BytesMut;
use rzk_proto::opcode::xid;
use rzk_proto::records::{GetSaslRequest, SetSaslResponse};
use rzk_proto::{ErrorCode, Jute, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sasl::ClientMechanism;

use super::frame::{put_request, split_reply, take_frame};
use super::task::{ConnRead, ConnWrite};

/// Most round trips a login may take (DIGEST-MD5 needs two, GSSAPI with Kerberos three).
const MAX_ROUNDS: usize = 4;

/// Why a login did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    /// The server or the mechanism refused: the session is over.
    #[error("{0}")]
    Refused(String),
    /// The connection broke or spoke out of turn: try another server.
    #[error("{0}")]
    Connection(String),
}

/// Logs in with `mech` on a connection whose handshake is done; `alloc_xid` hands out
/// the session's xids.
pub(crate) async fn login(
    mut mech: ClientMechanism,
    rd: &mut ConnRead,
    wr: &mut ConnWrite,
    inbuf: &mut BytesMut,
    mut alloc_xid: impl FnMut() -> i32,
) -> Result<(), LoginError> {
    let conn =
        |what: &str, e: &dyn std::fmt::Display| LoginError::Connection(format!("SASL {what}: {e}"));
    let mut token = mech
        .initial_token()
        .map_err(|e| LoginError::Refused(format!("SASL login of {:?} failed: {e}", mech.user())))?;
    for _ in 0..MAX_ROUNDS {
        let x = alloc_xid();
        let mut out = BytesMut::new();
        let req = GetSaslRequest {
            token: token.into(),
        };
        put_request(&mut out, x, OpCode::Sasl.code(), &req.to_bytes());
        wr.write_all(&out).await.map_err(|e| conn("write", &e))?;
        let frame = loop {
            match take_frame(inbuf) {
                Err(e) => return Err(conn("read", &e)),
                Ok(Some(f)) => {
                    let (hdr, body) = split_reply(&f).map_err(|e| conn("reply", &e))?;
                    if hdr.xid == xid::PING || hdr.xid == xid::NOTIFICATION {
                        continue;
                    }
                    if hdr.xid != x {
                        return Err(conn(
                            "reply",
                            &format_args!("xid {} while waiting for {x}", hdr.xid),
                        ));
                    }
                    break (hdr, body);
                }
                Ok(None) => {}
            }
            match rd.read_buf(inbuf).await {
                Ok(0) => return Err(conn("read", &"server closed the connection")),
                Ok(_) => {}
                Err(e) => return Err(conn("read", &e)),
            }
        };
        let (hdr, body) = frame;
        if hdr.err != 0 {
            let what = ErrorCode::from_i32(hdr.err)
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|| hdr.err.to_string());
            return Err(LoginError::Refused(format!(
                "the server refused the SASL login of {:?} ({what})",
                mech.user()
            )));
        }
        let reply = SetSaslResponse::from_bytes(&body).map_err(|e| conn("reply", &e))?;
        match mech.step(&reply.token) {
            Ok(Some(next)) => token = next,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(LoginError::Refused(format!(
                    "SASL login of {:?} failed: {e}",
                    mech.user()
                )))
            }
        }
    }
    Err(LoginError::Refused(format!(
        "SASL login of {:?} did not complete in {MAX_ROUNDS} round trips",
        mech.user()
    )))
}
