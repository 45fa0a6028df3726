//! The client side of SASL GSSAPI (RFC 4752) as Java's `GssKrb5Client` runs it for
//! ZooKeeper's `ZooKeeperSaslClient`: the Kerberos context is initiated with mutual
//! authentication (the first token is the AP-REQ); once it is established the client
//! answers the server's wrapped layer offer by choosing no security layer (`auth`,
//! which must be offered), a size of 0 and its principal as authorization id, wrapped;
//! the server's answer to that is a null token, which ends the exchange.

use super::context::{GssError, Initiated, InitiatorContext};
use super::server::LAYER_NONE;

/// Why a client exchange failed. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GssapiClientError {
    /// The Kerberos library refused a token or a call.
    #[error(transparent)]
    Gss(#[from] GssError),
    /// The server's layer offer is not 4 bytes.
    #[error("the server's security layer offer has {0} bytes, not 4")]
    BadOffer(usize),
    /// The server does not offer running without a security layer.
    #[error(
        "the server offers security layers 0x{0:02x} without 0x01 (none), the only one rzk runs"
    )]
    NoAuthLayer(u8),
    /// A token from the server after the exchange ended.
    #[error("the server sent a token after the exchange ended")]
    Over,
}

enum State<C> {
    Initiating(C),
    /// Established; the next server token is the wrapped layer offer.
    Established(C),
    Done,
}

/// One connection's GSSAPI login over a context `C` (the Kerberos one,
/// [`super::InitCtx`], outside tests).
pub struct GssapiClient<C> {
    state: State<C>,
    authzid: String,
}

impl<C> std::fmt::Debug for GssapiClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GssapiClient")
            .field("authzid", &self.authzid)
            .finish_non_exhaustive()
    }
}

impl<C: InitiatorContext> GssapiClient<C> {
    /// A login on a fresh context, asking for authorization id `authzid` (Java's client
    /// sends its principal; empty: none).
    pub fn new(ctx: C, authzid: impl Into<String>) -> GssapiClient<C> {
        GssapiClient {
            state: State::Initiating(ctx),
            authzid: authzid.into(),
        }
    }

    /// The first token (the AP-REQ).
    pub fn initial_token(&mut self) -> Result<Vec<u8>, GssapiClientError> {
        self.step(&[]).map(Option::unwrap_or_default)
    }

    /// Evaluates the server's `token`: `Some(next)` to send, `None` when the exchange is
    /// complete (the server's null token after the layer answer).
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, GssapiClientError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initiating(mut ctx) => match ctx.init(token)? {
                Initiated::Continue(t) => {
                    self.state = State::Initiating(ctx);
                    Ok(Some(t))
                }
                // Java's client sends the context's last token, or an empty one, and
                // then waits for the layer offer.
                Initiated::Established(t) => {
                    self.state = State::Established(ctx);
                    Ok(Some(t))
                }
            },
            State::Established(mut ctx) => {
                let offer = ctx.unwrap(token)?;
                if offer.len() != 4 {
                    return Err(GssapiClientError::BadOffer(offer.len()));
                }
                if offer[0] & LAYER_NONE == 0 {
                    return Err(GssapiClientError::NoAuthLayer(offer[0]));
                }
                let mut answer = vec![LAYER_NONE, 0, 0, 0];
                answer.extend_from_slice(self.authzid.as_bytes());
                Ok(Some(ctx.wrap(&answer)?))
            }
            State::Done if token.is_empty() => Ok(None),
            State::Done => Err(GssapiClientError::Over),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::{Accepted, SecurityContext};
    use super::super::server::{GssapiServer, Step};
    use super::*;

    /// Both sides of a fake context: the client needs `rounds` tokens; wrapping
    /// prefixes `W`.
    struct FakeInit(usize);
    struct FakeAccept;

    impl InitiatorContext for FakeInit {
        fn init(&mut self, token: &[u8]) -> Result<Initiated, GssError> {
            self.0 -= 1;
            let out = [b"I".as_slice(), token].concat();
            Ok(if self.0 == 0 {
                Initiated::Established(vec![])
            } else {
                Initiated::Continue(out)
            })
        }
        fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, GssError> {
            Ok([b"W".as_slice(), m].concat())
        }
        fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, GssError> {
            Ok(t.strip_prefix(b"W").unwrap_or(t).to_vec())
        }
    }

    impl SecurityContext for FakeAccept {
        fn accept(&mut self, token: &[u8]) -> Result<Accepted, GssError> {
            Ok(Accepted::Established {
                token: [b"A".as_slice(), token].concat(),
                peer: "zkcli@EXAMPLE.COM".into(),
            })
        }
        fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, GssError> {
            Ok([b"W".as_slice(), m].concat())
        }
        fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, GssError> {
            Ok(t.strip_prefix(b"W").unwrap_or(t).to_vec())
        }
    }

    #[test]
    fn client_and_server_complete_an_exchange() {
        let mut c = GssapiClient::new(FakeInit(2), "zkcli@EXAMPLE.COM");
        let mut s = GssapiServer::new(FakeAccept);
        let mut token = c.initial_token().unwrap();
        let mut rounds = 0;
        loop {
            rounds += 1;
            match s.step(&token).unwrap() {
                Step::Challenge(ch) => token = c.step(&ch).unwrap().expect("client has more"),
                Step::Success { principal, authzid } => {
                    assert_eq!(principal, "zkcli@EXAMPLE.COM");
                    assert_eq!(authzid.as_deref(), Some("zkcli@EXAMPLE.COM"));
                    // The server answers with a null token: the client is done.
                    assert_eq!(c.step(&[]), Ok(None));
                    break;
                }
            }
        }
        assert_eq!(rounds, 3);
    }

    #[test]
    fn an_offer_without_auth_only_is_refused() {
        let mut c = GssapiClient::new(FakeInit(1), "");
        assert_eq!(c.initial_token(), Ok(vec![]));
        assert_eq!(
            c.step(b"W\x04\x00\x10\x00"),
            Err(GssapiClientError::NoAuthLayer(4))
        );
        let mut c = GssapiClient::new(FakeInit(1), "");
        c.initial_token().unwrap();
        assert_eq!(c.step(b"W\x01"), Err(GssapiClientError::BadOffer(1)));
    }
}
