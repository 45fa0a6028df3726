//! ZooKeeper's handling of a SetSASL request (opcode 102) on one connection: the
//! DIGEST-MD5 exchange against the JAAS server section's users, the `sasl` id and super
//! user it grants, and what a failure does (AUTHFAILED and close; -124 when SASL is
//! required; nothing when `allowSaslFailedClients` lets the client stay).

use super::digest_md5::{DigestError, DigestMd5Server, Step};
use super::settings::AuthSettings;
use rzk_proto::ErrorCode;

/// What to answer a SASL token with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslOutcome {
    /// Reply OK with this token (`None`: a null token, as ZooKeeper answers when it has
    /// no SASL server or lets a failed client stay).
    Reply(Option<Vec<u8>>),
    /// Authenticated: add `sasl:<user>` (and `super` when `is_super`), reply OK with
    /// `token`.
    Authenticated {
        /// The server's last token (`rspauth`).
        token: Vec<u8>,
        /// The authorization id.
        user: String,
        /// `zookeeper.superUser` names this user.
        is_super: bool,
    },
    /// Failed and the connection stays (`allowSaslFailedClients`): reply OK with a null
    /// token.
    FailedKept(DigestError),
    /// Failed: reply with `code` (and a null token), then close the connection.
    Refused {
        /// AUTHFAILED, or SESSIONCLOSEDREQUIRESASLAUTH when SASL is required.
        code: ErrorCode,
        /// Why, for the log.
        error: DigestError,
    },
}

/// One connection's SASL server; created on its first SASL request.
#[derive(Debug, Clone, Default)]
pub struct SaslServer {
    mech: DigestMd5Server,
}

impl SaslServer {
    /// A new exchange.
    pub fn new() -> SaslServer {
        SaslServer::default()
    }

    /// Evaluates the client's `token` under `settings`.
    pub fn evaluate(&mut self, settings: &AuthSettings, token: &[u8]) -> SaslOutcome {
        if settings.sasl.is_none() {
            // ZooKeeper without a JAAS server section has no SASL server on the
            // connection and answers OK with a null token.
            return SaslOutcome::Reply(None);
        }
        match self.mech.step(token, |u| settings.sasl_password(u)) {
            Ok(Step::Challenge(c)) => SaslOutcome::Reply(Some(c)),
            Ok(Step::Success { token, user, .. }) => {
                let is_super = settings.is_sasl_super_user(&user);
                SaslOutcome::Authenticated {
                    token,
                    user,
                    is_super,
                }
            }
            Err(error) => {
                if settings.sasl_required() {
                    SaslOutcome::Refused {
                        code: ErrorCode::SessionClosedRequireSaslAuth,
                        error,
                    }
                } else if settings.allow_sasl_failed_clients {
                    SaslOutcome::FailedKept(error)
                } else {
                    SaslOutcome::Refused {
                        code: ErrorCode::AuthFailed,
                        error,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::settings::AuthKeys;

    fn settings(extra: &[(&str, &str)]) -> AuthSettings {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("jaas.conf");
        std::fs::write(
            &p,
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"bobpw\"; };",
        )
        .unwrap();
        let mut k = AuthKeys::default();
        k.take("java.security.auth.login.config", p.to_str().unwrap());
        k.take(
            "authProvider.1",
            "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        );
        for (a, b) in extra {
            k.take(a, b);
        }
        let mut s = k.finish().unwrap();
        s.load_jaas().unwrap();
        s
    }

    #[test]
    fn no_sasl_server_answers_null() {
        let s = AuthSettings::default();
        assert_eq!(
            SaslServer::new().evaluate(&s, b"anything"),
            SaslOutcome::Reply(None)
        );
    }

    #[test]
    fn failure_modes() {
        let s = settings(&[]);
        let mut srv = SaslServer::new();
        assert!(matches!(srv.evaluate(&s, b""), SaslOutcome::Reply(Some(_))));
        assert!(matches!(
            srv.evaluate(&s, b"username=\"bob\""),
            SaslOutcome::Refused {
                code: ErrorCode::AuthFailed,
                ..
            }
        ));
        let s = settings(&[("allowSaslFailedClients", "true")]);
        let mut srv = SaslServer::new();
        srv.evaluate(&s, b"");
        assert!(matches!(
            srv.evaluate(&s, b"username=\"bob\""),
            SaslOutcome::FailedKept(_)
        ));
        let s = settings(&[
            ("allowSaslFailedClients", "true"),
            ("sessionRequireClientSASLAuth", "true"),
        ]);
        let mut srv = SaslServer::new();
        assert!(matches!(
            srv.evaluate(&s, b"\x60"),
            SaslOutcome::Refused {
                code: ErrorCode::SessionClosedRequireSaslAuth,
                ..
            }
        ));
    }
}
