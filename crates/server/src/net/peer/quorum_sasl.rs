//! SASL DIGEST-MD5 between quorum members (`quorum.auth.enableSasl`,
//! `quorum.auth.learnerRequireSasl`, `quorum.auth.serverRequireSasl`; ZooKeeper's
//! `SaslQuorumAuthLearner` and `SaslQuorumAuthServer`).
//!
//! On every election connection (after the dialling side's header) and every learner
//! connection to the leader or an observer master (first thing), the dialling side
//! ("learner") logs in with the `username`/`password` of the JAAS section
//! `quorum.auth.learner.saslLoginContext` (default `QuorumLearner`), and the accepting
//! side ("server") checks it against the `user_<name>` entries of
//! `quorum.auth.server.saslLoginContext` (default `QuorumServer`). The messages are jute
//! `QuorumAuthPacket`s: `long magic` ([`MAGIC`]), `int status` (0 in progress, 1
//! success, -1 error), `buffer token`; the exchange is DIGEST-MD5 with protocol
//! `zookeeper-quorum` and server name `zk-quorum-sasl-md5` ([`rzk_sasl::digest_md5::QUORUM`]).
//!
//! As in ZooKeeper: a learner logs in only with `learnerRequireSasl=true`; a server
//! without `serverRequireSasl` lets through a learner that does not try (it looks at the
//! first 8 bytes, puts them back, and the connection goes on) and one whose login fails
//! (after answering it with an error status, which ends the learner's side anyway).
//!
//! Owns the exchange only; the connection code calls it ([`QuorumSasl::login`],
//! [`QuorumSasl::check`]).

use crate::config::Config;
use crate::net::peer::stream::PeerStream;
use rzk_sasl::digest_md5::{DigestMd5Client, DigestMd5Server, Step, QUORUM};
use rzk_sasl::jaas;
use rzk_sasl::Secret;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER` (Java's `-0xa0dbcafecafe1234L`, which wraps to
/// this positive value): the first field of every auth packet. It cannot open a quorum
/// packet (whose first 4 bytes are a small type) and comes after the election header.
pub const MAGIC: i64 = 0x5f24_3501_3501_edcc;
/// Largest token either side takes (DIGEST-MD5 tokens are a few hundred bytes).
const MAX_TOKEN: usize = rzk_sasl::digest_md5::MAX_TOKEN;
/// How long a login may take where no other deadline applies (an observer's
/// connection to an observer master).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Challenges a server answers before it gives up (ZooKeeper's `MAX_RETRIES`).
const MAX_ROUNDS: u32 = 5;

/// The status field of a `QuorumAuthPacket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InProgress,
    Success,
    Error,
}

impl Status {
    fn code(self) -> i32 {
        match self {
            Status::InProgress => 0,
            Status::Success => 1,
            Status::Error => -1,
        }
    }

    /// ZooKeeper's `Status.getStatus`: anything unknown is an error.
    fn of(code: i32) -> Status {
        match code {
            0 => Status::InProgress,
            1 => Status::Success,
            _ => Status::Error,
        }
    }
}

/// Why `quorum.auth.*` cannot be honoured; start-up stops with it. Never holds a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum QuorumSaslError {
    /// A switch that is neither true nor false (ZooKeeper's `parseBoolean` refuses it).
    #[error("invalid value {value:?} for key {key}: expected true or false")]
    NotABoolean { key: &'static str, value: String },
    /// ZooKeeper's consistency checks of the three switches.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// No JAAS file is configured.
    #[error("quorum.auth.enableSasl=true needs a JAAS file (java.security.auth.login.config) with the sections {learner:?} and {server:?}")]
    NoJaasFile { learner: String, server: String },
    /// The JAAS file cannot be read or parsed.
    #[error("cannot read the JAAS login configuration {path}: {reason}")]
    Jaas { path: PathBuf, reason: String },
    /// A section is missing or unusable.
    #[error("JAAS section {section:?} of {path} ({key}): {reason}")]
    Section {
        section: String,
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// The quorum's SASL settings, loaded at start-up.
pub struct QuorumSasl {
    /// `quorum.auth.learnerRequireSasl`: log in when dialling.
    learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: refuse a learner that does not log in.
    server_require: bool,
    /// The learner section's login.
    login: jaas::DigestLogin,
    /// The server section's users.
    users: BTreeMap<String, Secret>,
    /// The hosts of the `server.N` lines: a login whose authorization id names a host
    /// (`user/host@realm`) must name one of them (ZooKeeper's `authzHosts`).
    member_hosts: Vec<String>,
}

impl std::fmt::Debug for QuorumSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumSasl")
            .field("learner_require", &self.learner_require)
            .field("server_require", &self.server_require)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// A `quorum.auth.*` switch: `true` or `false` in any case (ZooKeeper's
/// `QuorumPeerConfig.parseBoolean`), false when unset.
fn switch(cfg: &Config, key: &'static str) -> Result<bool, QuorumSaslError> {
    crate::tls::bool_property(cfg, key, false).map_err(|_| QuorumSaslError::NotABoolean {
        key,
        value: crate::tls::property(cfg, key)
            .unwrap_or_default()
            .to_owned(),
    })
}

impl QuorumSasl {
    /// Reads `quorum.auth.*` and the JAAS sections; `None` when `enableSasl` is off.
    /// Errors as ZooKeeper's `QuorumPeerConfig` and `QuorumPeer` give them: a switch that
    /// is not a boolean, `serverRequireSasl` or `learnerRequireSasl` without
    /// `enableSasl`, `serverRequireSasl` without `learnerRequireSasl`, no JAAS file, a
    /// missing section, a section without ZooKeeper's digest login module.
    pub fn from_config(cfg: &Config) -> Result<Option<QuorumSasl>, QuorumSaslError> {
        let (enabled, learner_require, server_require) = QuorumSasl::switches(cfg)?;
        if !enabled {
            return Ok(None);
        }
        QuorumSasl::load(cfg, learner_require, server_require).map(Some)
    }

    /// `quorum.auth.enableSasl`, `learnerRequireSasl` and `serverRequireSasl`, checked
    /// as ZooKeeper's `QuorumPeerConfig` checks them (each true or false; neither
    /// requirement without `enableSasl`; `serverRequireSasl` only with
    /// `learnerRequireSasl`).
    pub fn switches(cfg: &Config) -> Result<(bool, bool, bool), QuorumSaslError> {
        let enabled = switch(cfg, "quorum.auth.enableSasl")?;
        let server_require = switch(cfg, "quorum.auth.serverRequireSasl")?;
        let learner_require = switch(cfg, "quorum.auth.learnerRequireSasl")?;
        if !enabled && server_require {
            return Err(QuorumSaslError::Inconsistent(
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ));
        }
        if !enabled && learner_require {
            return Err(QuorumSaslError::Inconsistent(
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl",
            ));
        }
        if !learner_require && server_require {
            return Err(QuorumSaslError::Inconsistent(
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ));
        }
        Ok((enabled, learner_require, server_require))
    }

    /// Loads the JAAS sections of an enabled configuration.
    fn load(
        cfg: &Config,
        learner_require: bool,
        server_require: bool,
    ) -> Result<QuorumSasl, QuorumSaslError> {
        let section = |key: &'static str, default: &str| {
            crate::tls::property(cfg, key)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|| default.to_owned())
        };
        let learner_section = section("quorum.auth.learner.saslLoginContext", "QuorumLearner");
        let server_section = section("quorum.auth.server.saslLoginContext", "QuorumServer");
        let Some(path) = cfg.auth.jaas_file.clone() else {
            return Err(QuorumSaslError::NoJaasFile {
                learner: learner_section,
                server: server_section,
            });
        };
        let text =
            crate::auth::settings::read_limited(&path).map_err(|e| QuorumSaslError::Jaas {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let file = jaas::parse(&text).map_err(|e| QuorumSaslError::Jaas {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let bad = |section: &str, key: &'static str, reason: String| QuorumSaslError::Section {
            section: section.to_owned(),
            key,
            path: path.clone(),
            reason,
        };
        let login = file.digest_login(&learner_section).map_err(|e| {
            bad(
                &learner_section,
                "quorum.auth.learner.saslLoginContext",
                e.to_string(),
            )
        })?;
        let Some(server) = file.section(&server_section) else {
            return Err(bad(
                &server_section,
                "quorum.auth.server.saslLoginContext",
                "no such section".into(),
            ));
        };
        let users = crate::auth::settings::digest_users(server).map_err(|reason| {
            bad(
                &server_section,
                "quorum.auth.server.saslLoginContext",
                reason,
            )
        })?;
        Ok(QuorumSasl {
            learner_require,
            server_require,
            login,
            users,
            member_hosts: cfg.servers.values().map(|q| q.host.clone()).collect(),
        })
    }

    /// The dialling side, on a connection to `peer` (for messages): logs in with
    /// `learnerRequireSasl`, does nothing without it. Errors: the peer refused the login
    /// or broke the exchange, or `timeout` passed; the caller closes the connection.
    pub async fn login(&self, s: &mut PeerStream, peer: &str, timeout: Duration) -> io::Result<()> {
        if !self.learner_require {
            return Ok(());
        }
        let client = DigestMd5Client::new(self.login.username.clone(), self.login.password.clone())
            .for_service(QUORUM);
        match tokio::time::timeout(timeout, run_login(client, s)).await {
            Ok(Ok(())) => {
                tracing::debug!(%peer, "quorum SASL login succeeded");
                Ok(())
            }
            Ok(Err(e)) => Err(io::Error::new(
                e.kind(),
                format!("quorum SASL authentication with {peer} failed: {e}"),
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("quorum SASL authentication with {peer} timed out"),
            )),
        }
    }

    /// The accepting side, on a connection from `from` (for messages): takes a login if
    /// the connection starts with one; without `serverRequireSasl` a connection that does
    /// not, or whose login fails, goes on (the bytes looked at are put back). Errors:
    /// the login is required and missing or wrong, or `timeout` passed.
    pub async fn check(&self, s: &mut PeerStream, from: &str, timeout: Duration) -> io::Result<()> {
        let r = tokio::time::timeout(timeout, self.run_check(s, from)).await;
        let e = match r {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "timed out"),
        };
        if self.server_require {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("quorum SASL authentication of {from} failed: {e}"),
            ))
        } else {
            tracing::warn!(
                "quorum SASL authentication of {from} failed ({e}); connection kept, as quorum.auth.serverRequireSasl=false"
            );
            Ok(())
        }
    }

    async fn run_check(&self, s: &mut PeerStream, from: &str) -> io::Result<()> {
        let mut first = [0u8; 8];
        s.rd.read_exact(&mut first).await?;
        if i64::from_be_bytes(first) != MAGIC {
            // Not a login: the bytes belong to the protocol that follows.
            let rd = std::mem::replace(&mut s.rd, Box::new(tokio::io::empty()));
            s.rd = Box::new(std::io::Cursor::new(first.to_vec()).chain(rd));
            if self.server_require {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "learner not trying to authenticate and authentication is required",
                ));
            }
            return Ok(());
        }
        let (_, mut token) = read_rest(&mut s.rd).await?;
        let mut server = DigestMd5Server::new().for_service(QUORUM);
        let mut rounds = 0;
        loop {
            match server.step(&token, |u| self.users.get(u).map(Secret::expose)) {
                Ok(Step::Challenge(c)) => {
                    rounds += 1;
                    if rounds > MAX_ROUNDS {
                        write_packet(&mut s.wr, Status::Error, &c).await?;
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            "too many rounds",
                        ));
                    }
                    write_packet(&mut s.wr, Status::InProgress, &c).await?;
                    token = read_packet(&mut s.rd).await?.1;
                }
                Ok(Step::Success {
                    token,
                    user,
                    authzid,
                }) => {
                    if !self.authorized(&user, authzid.as_deref()) {
                        let _ = write_packet(&mut s.wr, Status::Error, &[]).await;
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!("{user:?} is not authorized to join the ensemble"),
                        ));
                    }
                    write_packet(&mut s.wr, Status::Success, &token).await?;
                    tracing::debug!(%from, %user, "quorum SASL login accepted");
                    return Ok(());
                }
                Err(e) => {
                    let _ = write_packet(&mut s.wr, Status::Error, &[]).await;
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        e.to_string(),
                    ));
                }
            }
        }
    }
}

impl QuorumSasl {
    /// ZooKeeper's `SaslQuorumServerCallbackHandler` authorization: the authorization id
    /// (the user's own when the client sent none) must be the user, and one of the form
    /// `name/host@realm` must name a member's host.
    fn authorized(&self, user: &str, authzid: Option<&str>) -> bool {
        let authz = authzid.unwrap_or(user);
        if authz != user {
            return false;
        }
        // Java's `split("[/@]")`: trailing empty parts dropped.
        let mut parts: Vec<&str> = authz.split(['/', '@']).collect();
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        parts.len() != 3 || self.member_hosts.iter().any(|h| h == parts[1])
    }
}

async fn run_login(mut client: DigestMd5Client, s: &mut PeerStream) -> io::Result<()> {
    let refused = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    // DIGEST-MD5 has no initial response: an empty token opens the exchange.
    write_packet(&mut s.wr, Status::InProgress, &client.initial_token()).await?;
    loop {
        let (status, token) = read_packet(&mut s.rd).await?;
        match status {
            Status::InProgress => {
                let response = client
                    .step(&token)
                    .map_err(|e| refused(e.to_string()))?
                    .unwrap_or_default();
                write_packet(&mut s.wr, Status::InProgress, &response).await?;
            }
            Status::Success => {
                return match client.step(&token) {
                    Ok(None) if client.is_complete() => Ok(()),
                    Ok(_) => Err(refused(
                        "protocol error: the server ended the exchange early".into(),
                    )),
                    Err(e) => Err(refused(e.to_string())),
                };
            }
            Status::Error => return Err(refused("the server refused the login".into())),
        }
    }
}

/// Writes one `QuorumAuthPacket`.
async fn write_packet<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    status: Status,
    token: &[u8],
) -> io::Result<()> {
    let mut b = Vec::with_capacity(16 + token.len());
    b.extend_from_slice(&MAGIC.to_be_bytes());
    b.extend_from_slice(&status.code().to_be_bytes());
    b.extend_from_slice(&(token.len() as i32).to_be_bytes());
    b.extend_from_slice(token);
    w.write_all(&b).await?;
    w.flush().await
}

/// Reads one `QuorumAuthPacket`: its status and token (a null token is empty).
async fn read_packet<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> io::Result<(Status, Vec<u8>)> {
    let magic = r.read_i64().await?;
    if magic != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a quorum auth packet",
        ));
    }
    read_rest(r).await
}

/// The status and token of a packet whose magic was read.
async fn read_rest<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> io::Result<(Status, Vec<u8>)> {
    let status = Status::of(r.read_i32().await?);
    let len = r.read_i32().await?;
    if len < 0 {
        return Ok((status, Vec::new()));
    }
    if len as usize > MAX_TOKEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("auth token of {len} bytes"),
        ));
    }
    let mut token = vec![0u8; len as usize];
    r.read_exact(&mut token).await?;
    Ok((status, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(learner_require: bool, server_require: bool, pw: &str) -> QuorumSasl {
        QuorumSasl {
            learner_require,
            server_require,
            login: jaas::DigestLogin {
                username: "test".into(),
                password: Secret::new(pw),
            },
            users: [("test".to_owned(), Secret::new("secret"))].into(),
            member_hosts: vec!["127.0.0.1".into()],
        }
    }

    #[test]
    fn authorization_as_zookeeper_checks_it() {
        let s = sasl(true, true, "x");
        assert!(s.authorized("test", None));
        assert!(s.authorized("test", Some("test")));
        assert!(
            !s.authorized("test", Some("other")),
            "another authorization id"
        );
        assert!(s.authorized("zk/127.0.0.1@R", None));
        assert!(
            !s.authorized("zk/10.0.0.9@R", None),
            "a host outside the ensemble"
        );
        assert!(
            s.authorized("zk/10.0.0.9@", None),
            "two parts once the empty one goes"
        );
    }

    fn pair() -> (PeerStream, PeerStream) {
        let (a, b) = tokio::io::duplex(4096);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        (
            PeerStream {
                rd: Box::new(ar),
                wr: Box::new(aw),
                tls: false,
            },
            PeerStream {
                rd: Box::new(br),
                wr: Box::new(bw),
                tls: false,
            },
        )
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_right_password_passes_and_the_stream_goes_on() {
        let (mut l, mut s) = pair();
        let learner = sasl(true, true, "secret");
        let server = sasl(true, true, "secret");
        let (a, b) = tokio::join!(learner.login(&mut l, "s", T), server.check(&mut s, "l", T));
        a.unwrap();
        b.unwrap();
        l.wr.write_all(b"next").await.unwrap();
        let mut got = [0u8; 4];
        s.rd.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"next");
    }

    #[tokio::test]
    async fn a_wrong_password_fails_both_sides_when_required() {
        let (mut l, mut s) = pair();
        let learner = sasl(true, true, "wrong");
        let server = sasl(true, true, "secret");
        let (a, b) = tokio::join!(learner.login(&mut l, "s", T), server.check(&mut s, "l", T));
        assert!(a.is_err());
        assert!(b.is_err());
    }

    #[tokio::test]
    async fn without_a_login_the_bytes_are_put_back_unless_required() {
        for required in [false, true] {
            let (mut l, mut s) = pair();
            let learner = sasl(false, false, "secret");
            let server = sasl(required, required, "secret");
            learner.login(&mut l, "s", T).await.unwrap();
            l.wr.write_all(&7i64.to_be_bytes()).await.unwrap();
            l.wr.write_all(b"rest").await.unwrap();
            let r = server.check(&mut s, "l", T).await;
            if required {
                assert!(r.is_err());
                continue;
            }
            r.unwrap();
            let mut got = [0u8; 12];
            s.rd.read_exact(&mut got).await.unwrap();
            assert_eq!(&got[..8], &7i64.to_be_bytes());
            assert_eq!(&got[8..], b"rest");
        }
    }

    #[tokio::test]
    async fn a_failed_login_is_let_through_when_not_required_but_the_learner_fails() {
        let (mut l, mut s) = pair();
        let learner = sasl(true, false, "wrong");
        let server = sasl(true, false, "secret");
        let (a, b) = tokio::join!(learner.login(&mut l, "s", T), server.check(&mut s, "l", T));
        assert!(a.is_err(), "the learner gets the error status");
        b.unwrap();
    }
}
