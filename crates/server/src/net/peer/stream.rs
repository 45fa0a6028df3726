//! Peer sockets, plaintext or TLS (`sslQuorum`, `portUnification`, `ssl.quorum.*`): the
//! dialling side connects and, with `sslQuorum`, runs the TLS handshake; the accepting
//! side takes TLS, plaintext, or either (told apart by the first byte) as `tls::QuorumTls`
//! says, and checks that a TLS peer's certificate names its address when
//! `ssl.quorum.hostnameVerification` is on (as ZooKeeper's quorum trust manager does).
//!
//! Owns only the byte stream: election and quorum protocols run unchanged on top.

use crate::tls::QuorumTls;
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The reading half of a peer connection.
pub type PeerRead = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a peer connection.
pub type PeerWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A connected peer socket, split.
pub struct PeerStream {
    /// Bytes from the peer.
    pub rd: PeerRead,
    /// Bytes to the peer.
    pub wr: PeerWrite,
    /// Whether the connection is TLS.
    pub tls: bool,
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl PeerStream {
    fn plain(s: TcpStream) -> PeerStream {
        let _ = s.set_nodelay(true);
        let (rd, wr) = s.into_split();
        PeerStream {
            rd: Box::new(rd),
            wr: Box::new(wr),
            tls: false,
        }
    }

    fn tls<S: AsyncRead + AsyncWrite + Send + 'static>(s: S) -> PeerStream {
        let (rd, wr) = tokio::io::split(s);
        PeerStream {
            rd: Box::new(rd),
            wr: Box::new(wr),
            tls: true,
        }
    }
}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why)
}

/// Connects to a peer within `timeout`: TLS when `sslQuorum` is on, the peer's
/// certificate checked against `host` (its `server.N` host: a name or an address).
pub async fn dial(
    addr: SocketAddr,
    host: &str,
    timeout: Duration,
    tls: Option<&QuorumTls>,
) -> io::Result<PeerStream> {
    let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let Some(t) = tls.filter(|t| t.dial_tls) else {
        return Ok(PeerStream::plain(s));
    };
    let _ = s.set_nodelay(true);
    let name = crate::tls::name_for(host).unwrap_or(ServerName::IpAddress(addr.ip().into()));
    let s = tokio::time::timeout(timeout, t.connector().connect(name, s))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(PeerStream::tls(s))
}

/// Takes an accepted peer socket as the quorum TLS settings allow: plaintext only without
/// them; TLS only with `sslQuorum`; either with `portUnification`.
pub async fn accept(
    s: TcpStream,
    addr: SocketAddr,
    tls: Option<&QuorumTls>,
) -> io::Result<PeerStream> {
    let Some(t) = tls else {
        return Ok(PeerStream::plain(s));
    };
    if t.accept_plain && !crate::tls::starts_with_tls(&s, t.detection_timeout).await {
        return Ok(PeerStream::plain(s));
    }
    let _ = s.set_nodelay(true);
    let s = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, t.acceptor().accept(s))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    if t.verify_peer_names {
        let leaf = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| refused("peer sent no certificate".into()))?;
        let cert = webpki::EndEntityCert::try_from(leaf)
            .map_err(|e| refused(format!("peer certificate unreadable: {e}")))?;
        let valid_for = |names: &[ServerName<'static>]| {
            names
                .iter()
                .any(|n| cert.verify_is_valid_for_subject_name(n).is_ok())
        };
        // The address first; then the server.N host names that resolve to it now (a
        // member that came back on a new address is accepted there, not at its old one).
        if !valid_for(&[ServerName::IpAddress(addr.ip().into())])
            && !valid_for(&t.names_for_peer_now(addr.ip()).await)
        {
            return Err(refused(format!(
                "peer certificate names neither {} nor a server.N host at that address",
                addr.ip()
            )));
        }
    }
    Ok(PeerStream::tls(s))
}
