//! The server side of SASL GSSAPI (RFC 4752) as Java's `GssKrb5Server` runs it for
//! ZooKeeper: the Kerberos context is accepted over as many tokens as it takes; then
//! the server offers its security layers in a wrapped 4-byte message (layer mask `auth`
//! only, as ZooKeeper's server runs with the default QOP, and a receive size of 65,536);
//! the client answers with a wrapped choice (a layer, a size, an optional authorization
//! id) and the exchange is complete. No security layer is ever installed: after the
//! exchange the connection carries plain frames, as with ZooKeeper.

use super::context::{Accepted, GssError, SecurityContext};

/// The security layer mask offered: bit 0, no security layer (`auth`).
pub const LAYER_NONE: u8 = 1;
/// The receive buffer size offered with it (Java's default `javax.security.sasl.maxbuffer`).
pub const MAX_BUFFER: u32 = 65_536;
/// Largest client token accepted (a Kerberos AP-REQ with a PAC stays well below).
pub const MAX_TOKEN: usize = 64 * 1024;

/// Why an exchange failed. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GssapiError {
    /// The Kerberos library refused a token or a call.
    #[error(transparent)]
    Gss(#[from] GssError),
    /// A token longer than [`MAX_TOKEN`].
    #[error("token of {0} bytes is longer than {MAX_TOKEN}")]
    TooLong(usize),
    /// The client's first token was empty (a DIGEST-MD5 client talking to a Kerberos
    /// server sends nothing first).
    #[error("empty first token: the client is not using GSSAPI (DIGEST-MD5?)")]
    EmptyFirstToken,
    /// The client's security layer answer is shorter than 4 bytes.
    #[error("the client's security layer answer has {0} bytes, fewer than 4")]
    ShortLayerAnswer(usize),
    /// The client chose a layer the server did not offer, or more than one.
    #[error("the client chose security layer mask 0x{0:02x}; only 0x01 (none) is offered")]
    BadLayer(u8),
    /// The authorization id is not UTF-8.
    #[error("the client's authorization id is not UTF-8")]
    AuthzidNotUtf8,
    /// A non-empty answer where the client had nothing to say (after the context's last
    /// token).
    #[error("the client sent {0} bytes where an empty answer was due")]
    UnexpectedToken(usize),
    /// A token after the exchange ended, or after it failed.
    #[error("the exchange is over")]
    Over,
}

/// What to do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated; nothing more to send (ZooKeeper answers with a null token, which
    /// tells Java's client the GSSAPI exchange ended).
    Success {
        /// The client's Kerberos principal (`user[/instance]@REALM`): SASL's
        /// authentication id.
        principal: String,
        /// The authorization id the client asked for, if it sent one.
        authzid: Option<String>,
    },
}

enum State<C> {
    /// Accepting the security context (the first token is next when `first`).
    Accepting { ctx: C, first: bool },
    /// Established with `peer`; the client's (empty) answer to the last context token is
    /// next, and then the layer offer goes out.
    Established { ctx: C, peer: String },
    /// The layer offer went out; the client's choice is next.
    Offered { ctx: C, peer: String },
    /// Over (succeeded or failed).
    Over,
}

/// One connection's GSSAPI exchange over a security context `C` (the Kerberos one,
/// [`super::AcceptCtx`], outside tests).
pub struct GssapiServer<C> {
    state: State<C>,
}

impl<C> std::fmt::Debug for GssapiServer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.state {
            State::Accepting { .. } => "accepting",
            State::Established { .. } => "established",
            State::Offered { .. } => "offered",
            State::Over => "over",
        };
        f.debug_struct("GssapiServer").field("state", &s).finish()
    }
}

impl<C: SecurityContext> GssapiServer<C> {
    /// A new exchange on a fresh context.
    pub fn new(ctx: C) -> GssapiServer<C> {
        GssapiServer {
            state: State::Accepting { ctx, first: true },
        }
    }

    /// Whether the exchange is over (succeeded or failed).
    pub fn is_over(&self) -> bool {
        matches!(self.state, State::Over)
    }

    /// Evaluates the client's next token. After an error the exchange is over.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, GssapiError> {
        if token.len() > MAX_TOKEN {
            self.state = State::Over;
            return Err(GssapiError::TooLong(token.len()));
        }
        let state = std::mem::replace(&mut self.state, State::Over);
        match state {
            State::Accepting { mut ctx, first } => {
                if first && token.is_empty() {
                    return Err(GssapiError::EmptyFirstToken);
                }
                match ctx.accept(token)? {
                    Accepted::Continue(t) => {
                        self.state = State::Accepting { ctx, first: false };
                        Ok(Step::Challenge(t))
                    }
                    // Java's server answers the context's last token first when it has
                    // one, and offers the layers at the client's next (empty) token.
                    Accepted::Established { token, peer } if !token.is_empty() => {
                        self.state = State::Established { ctx, peer };
                        Ok(Step::Challenge(token))
                    }
                    Accepted::Established { peer, .. } => self.offer(ctx, peer),
                }
            }
            // The client's answer to the last context token carries nothing (Java's
            // server refuses one that does).
            State::Established { .. } if !token.is_empty() => {
                Err(GssapiError::UnexpectedToken(token.len()))
            }
            State::Established { ctx, peer } => self.offer(ctx, peer),
            State::Offered { mut ctx, peer } => {
                let answer = ctx.unwrap(token)?;
                if answer.len() < 4 {
                    return Err(GssapiError::ShortLayerAnswer(answer.len()));
                }
                let chosen = answer[0];
                if chosen != LAYER_NONE {
                    return Err(GssapiError::BadLayer(chosen));
                }
                let authzid = match &answer[4..] {
                    [] => None,
                    id => Some(
                        String::from_utf8(id.to_vec()).map_err(|_| GssapiError::AuthzidNotUtf8)?,
                    ),
                };
                Ok(Step::Success {
                    principal: peer,
                    authzid,
                })
            }
            State::Over => Err(GssapiError::Over),
        }
    }

    fn offer(&mut self, mut ctx: C, peer: String) -> Result<Step, GssapiError> {
        let size = MAX_BUFFER.to_be_bytes();
        let offer = ctx.wrap(&[LAYER_NONE, size[1], size[2], size[3]])?;
        self.state = State::Offered { ctx, peer };
        Ok(Step::Challenge(offer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context that needs `rounds` tokens, "wraps" by prefixing `W`, and records what
    /// it was given.
    struct Fake {
        rounds: usize,
        last_token: Vec<u8>,
        wrapped: Vec<Vec<u8>>,
    }

    impl SecurityContext for Fake {
        fn accept(&mut self, token: &[u8]) -> Result<Accepted, GssError> {
            if token == b"bad" {
                return Err(GssError {
                    call: "gss_accept_sec_context",
                    message: "refused".into(),
                });
            }
            self.rounds -= 1;
            if self.rounds > 0 {
                Ok(Accepted::Continue(b"more".to_vec()))
            } else {
                Ok(Accepted::Established {
                    token: self.last_token.clone(),
                    peer: "zkcli@EXAMPLE.COM".into(),
                })
            }
        }
        fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, GssError> {
            self.wrapped.push(m.to_vec());
            Ok([b"W".as_slice(), m].concat())
        }
        fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, GssError> {
            t.strip_prefix(b"W").map(<[u8]>::to_vec).ok_or(GssError {
                call: "gss_unwrap",
                message: "bad".into(),
            })
        }
    }

    fn fake(rounds: usize, last: &[u8]) -> GssapiServer<Fake> {
        GssapiServer::new(Fake {
            rounds,
            last_token: last.to_vec(),
            wrapped: vec![],
        })
    }

    #[test]
    fn mutual_authentication_then_layers_then_success() {
        let mut s = fake(1, b"ap-rep");
        assert_eq!(s.step(b"ap-req"), Ok(Step::Challenge(b"ap-rep".to_vec())));
        // The client's empty answer gets the wrapped offer: auth only, 65,536 bytes.
        assert_eq!(
            s.step(b""),
            Ok(Step::Challenge(b"W\x01\x01\x00\x00".to_vec()))
        );
        assert_eq!(
            s.step(b"W\x01\x00\x00\x00"),
            Ok(Step::Success {
                principal: "zkcli@EXAMPLE.COM".into(),
                authzid: None
            })
        );
        assert!(s.is_over());
        assert_eq!(s.step(b""), Err(GssapiError::Over));
    }

    #[test]
    fn no_last_token_offers_at_once_and_authzid_is_returned() {
        let mut s = fake(2, b"");
        assert_eq!(s.step(b"t1"), Ok(Step::Challenge(b"more".to_vec())));
        assert_eq!(
            s.step(b"t2"),
            Ok(Step::Challenge(b"W\x01\x01\x00\x00".to_vec()))
        );
        assert_eq!(
            s.step(b"W\x01\x00\x10\x00someone@EXAMPLE.COM"),
            Ok(Step::Success {
                principal: "zkcli@EXAMPLE.COM".into(),
                authzid: Some("someone@EXAMPLE.COM".into())
            })
        );
    }

    #[test]
    fn refusals_end_the_exchange() {
        assert_eq!(fake(1, b"").step(b""), Err(GssapiError::EmptyFirstToken));
        let mut s = fake(1, b"");
        assert!(matches!(s.step(b"bad"), Err(GssapiError::Gss(_))));
        assert_eq!(s.step(b"ap-req"), Err(GssapiError::Over));
        let mut s = fake(1, b"ap-rep");
        s.step(b"ap-req").unwrap();
        assert_eq!(s.step(b"x"), Err(GssapiError::UnexpectedToken(1)));
        assert!(s.is_over());
        for (answer, want) in [
            (b"W\x04\x00\x00\x00".as_slice(), GssapiError::BadLayer(4)),
            (b"W\x03\x00\x00\x00", GssapiError::BadLayer(3)),
            (b"W\x01\x00", GssapiError::ShortLayerAnswer(2)),
            (b"W\x01\x00\x00\x00\xff", GssapiError::AuthzidNotUtf8),
        ] {
            let mut s = fake(1, b"");
            s.step(b"ap-req").unwrap();
            assert_eq!(s.step(answer), Err(want));
            assert!(s.is_over());
        }
        let mut s = fake(1, b"");
        assert_eq!(
            s.step(&vec![0; MAX_TOKEN + 1]),
            Err(GssapiError::TooLong(MAX_TOKEN + 1))
        );
    }
}
