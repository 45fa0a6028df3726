//! ZooKeeper's handling of a SetSASL request (opcode 102) on one connection: the
//! DIGEST-MD5 exchange against the JAAS server section's users, or the GSSAPI
//! (Kerberos) exchange when that section logs in with `Krb5LoginModule`; the `sasl` id
//! and super user it grants; and what a failure does (AUTHFAILED and close; -124 when
//! SASL is required; nothing when `allowSaslFailedClients` lets the client stay).

use super::digest_md5::{DigestError, DigestMd5Server, Step};
use super::settings::{AuthSettings, KerberosServer};
use rzk_proto::ErrorCode;
use rzk_sasl::gssapi::{self, AcceptCtx, GssapiError, GssapiServer};
use std::sync::Arc;

/// Why an exchange failed, for the log (never a token or a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// DIGEST-MD5 refused the client.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// GSSAPI refused the client, or the Kerberos library failed.
    #[error("GSSAPI: {0}")]
    Gssapi(#[from] GssapiError),
    /// The client's principal is not a name ZooKeeper's `KerberosName` accepts.
    #[error("GSSAPI: {0}")]
    Name(#[from] gssapi::name::MalformedName),
}

/// What to answer a SASL token with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslOutcome {
    /// Reply OK with this token (`None`: a null token, as ZooKeeper answers when it has
    /// no SASL server or lets a failed client stay).
    Reply(Option<Vec<u8>>),
    /// Authenticated: add `sasl:<user>` (and `super` when `is_super`), reply OK with
    /// `token`.
    Authenticated {
        /// The server's last token: DIGEST-MD5's `rspauth`; none (a null token) for
        /// GSSAPI, which tells Java's client the exchange ended.
        token: Option<Vec<u8>>,
        /// The authorization id.
        user: String,
        /// `zookeeper.superUser` names this user.
        is_super: bool,
    },
    /// Failed and the connection stays (`allowSaslFailedClients`): reply OK with a null
    /// token.
    FailedKept(SaslError),
    /// Failed: reply with `code` (and a null token), then close the connection.
    Refused {
        /// AUTHFAILED, or SESSIONCLOSEDREQUIRESASLAUTH when SASL is required.
        code: ErrorCode,
        /// Why, for the log.
        error: SaslError,
    },
}

/// The mechanism of one connection's exchange, chosen at its first token by the server
/// section: GSSAPI when it has a Kerberos login, else DIGEST-MD5.
#[derive(Debug, Default)]
enum Mechanism {
    /// Before the first token.
    #[default]
    Unstarted,
    Digest(DigestMd5Server),
    Gssapi(Arc<KerberosServer>, Box<GssapiServer<AcceptCtx>>),
}

/// One connection's SASL server; created on its first SASL request.
#[derive(Debug, Default)]
pub struct SaslServer {
    mech: Mechanism,
}

impl SaslServer {
    /// A new exchange.
    pub fn new() -> SaslServer {
        SaslServer::default()
    }

    /// Evaluates the client's `token` under `settings`.
    pub fn evaluate(&mut self, settings: &AuthSettings, token: &[u8]) -> SaslOutcome {
        if settings.sasl.is_none() && settings.kerberos.is_none() {
            // ZooKeeper without a JAAS server section has no SASL server on the
            // connection and answers OK with a null token.
            return SaslOutcome::Reply(None);
        }
        let step = match self.step(settings, token) {
            Ok(step) => step,
            Err(error) => return Self::failed(settings, error),
        };
        match step {
            Stepped::Challenge(c) => SaslOutcome::Reply(Some(c)),
            Stepped::Done { token, user } => {
                let is_super = settings.is_sasl_super_user(&user);
                SaslOutcome::Authenticated {
                    token,
                    user,
                    is_super,
                }
            }
        }
    }

    fn step(&mut self, settings: &AuthSettings, token: &[u8]) -> Result<Stepped, SaslError> {
        if matches!(self.mech, Mechanism::Unstarted) {
            self.mech = match &settings.kerberos {
                Some(k) => {
                    let ctx = k.acceptor.start().map_err(GssapiError::from)?;
                    Mechanism::Gssapi(k.clone(), Box::new(GssapiServer::new(ctx)))
                }
                None => Mechanism::Digest(DigestMd5Server::new()),
            };
        }
        match &mut self.mech {
            Mechanism::Unstarted => unreachable!("started above"),
            Mechanism::Digest(mech) => match mech.step(token, |u| settings.sasl_password(u))? {
                Step::Challenge(c) => Ok(Stepped::Challenge(c)),
                Step::Success { token, user, .. } => Ok(Stepped::Done {
                    token: Some(token),
                    user,
                }),
            },
            Mechanism::Gssapi(k, mech) => match mech.step(token)? {
                gssapi::Step::Challenge(c) => Ok(Stepped::Challenge(c)),
                gssapi::Step::Success { principal, authzid } => {
                    if authzid.as_deref().is_some_and(|a| a != principal) {
                        // ZooKeeper would take it where no name rule applies; rzk never
                        // lets a client choose its id (gssapi/name.rs).
                        tracing::warn!(%principal, "GSSAPI client asked for another authorization id; it gets its principal's id");
                    }
                    Ok(Stepped::Done {
                        token: None,
                        user: k.names.authorized_id(&principal)?,
                    })
                }
            },
        }
    }

    fn failed(settings: &AuthSettings, error: SaslError) -> SaslOutcome {
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

/// A step's result before the settings turn it into an outcome.
enum Stepped {
    Challenge(Vec<u8>),
    Done {
        token: Option<Vec<u8>>,
        user: String,
    },
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
