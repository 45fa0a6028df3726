//! The client side of SASL DIGEST-MD5 (RFC 2831), as ZooKeeper's Java client runs it
//! against a server's JAAS `Server` section (the `SaslClient` its `ZooKeeperSaslClient`
//! creates for service `zookeeper`, server name `zk-sasl-md5`).
//!
//! The mechanism has no initial response: the client sends an empty token first. Then
//! [`DigestMd5Client::step`] turns the server's challenge into the digest response and
//! checks the server's final `rspauth`, which proves the server knows the password too.
//! Never logs and never puts the password or a hash in an error.

use base64::Engine;
use rand::RngCore;

use super::{
    hash_bytes, parse_directives, put_quoted, put_token, same, DigestInput, Service, CLIENT_PORT,
};
use crate::Secret;

/// Why the client gave up. The messages never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with no challenge: ZooKeeper does so when it has no SASL
    /// server (no JAAS `Server` section).
    #[error("the server sent no DIGEST-MD5 challenge (is SASL configured on the server?)")]
    EmptyChallenge,
    /// The challenge is not a list of directives.
    #[error("malformed DIGEST-MD5 challenge: {0}")]
    Format(&'static str),
    /// A directive that may appear once appeared twice.
    #[error("DIGEST-MD5 challenge has directive {0} more than once")]
    Duplicate(&'static str),
    /// The challenge has no nonce.
    #[error("DIGEST-MD5 challenge lacks a nonce")]
    MissingNonce,
    /// `algorithm` is missing or not `md5-sess`.
    #[error("DIGEST-MD5 challenge does not offer algorithm md5-sess")]
    Algorithm,
    /// The server does not offer quality of protection `auth`.
    #[error("DIGEST-MD5 challenge does not offer qop auth")]
    Qop,
    /// The server does not offer UTF-8 and the user name is not ISO 8859-1.
    #[error("DIGEST-MD5 server does not offer utf-8 and the user name needs it")]
    Charset,
    /// The server's `rspauth` is missing or wrong: it does not know the password.
    #[error("the server's DIGEST-MD5 proof (rspauth) does not match")]
    ServerProof,
    /// A token after the exchange completed.
    #[error("DIGEST-MD5 authentication is already complete")]
    AlreadyComplete,
    /// A token after a failure.
    #[error("DIGEST-MD5 authentication already failed")]
    AlreadyFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The empty first token was (to be) sent; the next token is the challenge.
    AwaitChallenge,
    /// The response was sent; the next token is `rspauth=<hex>`.
    AwaitProof {
        rspauth: Vec<u8>,
    },
    Complete,
    Failed,
}

/// One connection's DIGEST-MD5 login as `user`.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    user: String,
    password: Secret,
    cnonce: String,
    state: State,
    service: Service,
}

/// The challenge directives the client uses.
#[derive(Default)]
struct Challenge {
    realm: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
    qop: Option<Vec<u8>>,
    charset: Option<Vec<u8>>,
    algorithm: Option<Vec<u8>>,
}

fn set(slot: &mut Option<Vec<u8>>, name: &'static str, v: Vec<u8>) -> Result<(), ClientError> {
    if slot.is_some() {
        return Err(ClientError::Duplicate(name));
    }
    *slot = Some(v);
    Ok(())
}

fn parse(b: &[u8]) -> Result<Challenge, ClientError> {
    let mut c = Challenge::default();
    for (name, value) in parse_directives(b).map_err(ClientError::Format)? {
        match name.as_slice() {
            // RFC 2831 allows several realms; the first is used, as Java's client does
            // when no realm is configured.
            b"realm" if c.realm.is_none() => c.realm = Some(value),
            b"realm" => {}
            b"nonce" => set(&mut c.nonce, "nonce", value)?,
            b"qop" => set(&mut c.qop, "qop", value)?,
            b"charset" => set(&mut c.charset, "charset", value)?,
            b"algorithm" => set(&mut c.algorithm, "algorithm", value)?,
            _ => {}
        }
    }
    Ok(c)
}

impl DigestMd5Client {
    /// A login as `user` with `password` and a fresh random client nonce.
    pub fn new(user: impl Into<String>, password: Secret) -> DigestMd5Client {
        let mut b = [0u8; 30];
        rand::thread_rng().fill_bytes(&mut b);
        let cnonce = base64::engine::general_purpose::STANDARD.encode(b);
        DigestMd5Client::with_cnonce(user, password, cnonce)
    }

    /// A login with a given client nonce (tests).
    pub fn with_cnonce(
        user: impl Into<String>,
        password: Secret,
        cnonce: String,
    ) -> DigestMd5Client {
        DigestMd5Client {
            user: user.into(),
            password,
            cnonce,
            state: State::AwaitChallenge,
            service: CLIENT_PORT,
        }
    }

    /// The same login for another exchange (the quorum's, [`super::QUORUM`]); the client
    /// port's ([`CLIENT_PORT`]) by default.
    pub fn for_service(mut self, service: Service) -> Self {
        self.service = service;
        self
    }

    /// The user this client logs in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The first token: DIGEST-MD5 has no initial response, so it is empty.
    pub fn initial_token(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the server proved itself and the exchange is over.
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// Evaluates the server's token: the challenge gives `Some(response)` to send; the
    /// final `rspauth` gives `None` and completes the login. Any error ends it for good.
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitChallenge => {
                let (response, rspauth) = self.respond(token)?;
                self.state = State::AwaitProof { rspauth };
                Ok(Some(response))
            }
            State::AwaitProof { rspauth } => {
                let got = parse_directives(token)
                    .map_err(|_| ClientError::ServerProof)?
                    .into_iter()
                    .find(|(n, _)| n == b"rspauth")
                    .map(|(_, v)| v)
                    .ok_or(ClientError::ServerProof)?;
                if !same(&got, &rspauth) {
                    return Err(ClientError::ServerProof);
                }
                self.state = State::Complete;
                Ok(None)
            }
            State::Complete => {
                self.state = State::Complete;
                Err(ClientError::AlreadyComplete)
            }
            State::Failed => Err(ClientError::AlreadyFailed),
        }
    }

    /// The response to `challenge` and the `rspauth` the server must answer with.
    fn respond(&self, challenge: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        if challenge.is_empty() {
            return Err(ClientError::EmptyChallenge);
        }
        let c = parse(challenge)?;
        let nonce = c.nonce.ok_or(ClientError::MissingNonce)?;
        match &c.algorithm {
            Some(a) if a.eq_ignore_ascii_case(b"md5-sess") => {}
            _ => return Err(ClientError::Algorithm),
        }
        if let Some(q) = &c.qop {
            let offers_auth = q
                .split(|&b| b == b',')
                .any(|o| o.trim_ascii().eq_ignore_ascii_case(b"auth"));
            if !offers_auth {
                return Err(ClientError::Qop);
            }
        }
        let utf8 = c
            .charset
            .as_deref()
            .is_some_and(|cs| cs.eq_ignore_ascii_case(b"utf-8"));
        if !utf8 && !self.user.chars().all(|ch| (ch as u32) <= 0xff) {
            return Err(ClientError::Charset);
        }
        let realm_bytes = c.realm.clone().unwrap_or_default();
        let realm = String::from_utf8(realm_bytes)
            .map_err(|_| ClientError::Format("realm is not UTF-8"))?;
        let input = DigestInput {
            user: &self.user,
            realm: &realm,
            password: self.password.expose(),
            nonce: &nonce,
            cnonce: self.cnonce.as_bytes(),
            authzid: None,
            nc: b"00000001",
            qop: b"auth",
            digest_uri: self.service.digest_uri.as_bytes(),
        };
        let mut out = Vec::new();
        if utf8 {
            put_token(&mut out, "charset", b"utf-8");
            put_quoted(&mut out, "username", self.user.as_bytes());
        } else {
            put_quoted(&mut out, "username", &hash_bytes(&self.user));
        }
        if c.realm.is_some() {
            put_quoted(&mut out, "realm", realm.as_bytes());
        }
        put_quoted(&mut out, "nonce", &nonce);
        put_token(&mut out, "nc", b"00000001");
        put_quoted(&mut out, "cnonce", self.cnonce.as_bytes());
        put_quoted(&mut out, "digest-uri", self.service.digest_uri.as_bytes());
        put_token(&mut out, "response", &input.response());
        put_token(&mut out, "qop", b"auth");
        Ok((out, input.rspauth()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest_md5::server::{DigestError, DigestMd5Server, Step};

    fn pw(u: &str) -> Option<&'static str> {
        match u {
            "bob" => Some("bobpw"),
            "caf\u{e9}" => Some("p\u{263a}"),
            _ => None,
        }
    }

    /// Runs a whole exchange against the server side; returns the server's verdict.
    fn login(user: &str, password: &str) -> Result<String, DigestError> {
        let mut s = DigestMd5Server::new();
        let mut c = DigestMd5Client::new(user, Secret::new(password));
        let Step::Challenge(ch) = s.step(&c.initial_token(), pw)? else {
            panic!("challenge expected")
        };
        let resp = c.step(&ch).unwrap().expect("a response");
        let Step::Success { token, user, .. } = s.step(&resp, pw)? else {
            panic!("success expected")
        };
        assert_eq!(c.step(&token), Ok(None));
        assert!(c.is_complete());
        assert_eq!(c.step(b""), Err(ClientError::AlreadyComplete));
        Ok(user)
    }

    #[test]
    fn logs_in_against_the_server_side() {
        assert_eq!(login("bob", "bobpw").unwrap(), "bob");
        assert_eq!(login("caf\u{e9}", "p\u{263a}").unwrap(), "caf\u{e9}");
        assert_eq!(
            login("bob", "wrong"),
            Err(DigestError::BadResponse("bob".into()))
        );
        assert_eq!(
            login("eve", "x"),
            Err(DigestError::UnknownUser("eve".into()))
        );
    }

    /// The response a Java DIGEST-MD5 client sends, byte for byte in the parts that are
    /// not random, to ZooKeeper's challenge.
    #[test]
    fn response_to_a_zookeeper_challenge() {
        let mut c = DigestMd5Client::with_cnonce("bob", Secret::new("bobpw"), "CN".into());
        let resp = c
            .step(b"realm=\"zk-sasl-md5\",nonce=\"N0\",charset=utf-8,algorithm=md5-sess")
            .unwrap()
            .unwrap();
        let expect = DigestInput {
            user: "bob",
            realm: "zk-sasl-md5",
            password: "bobpw",
            nonce: b"N0",
            cnonce: b"CN",
            authzid: None,
            nc: b"00000001",
            qop: b"auth",
            digest_uri: b"zookeeper/zk-sasl-md5",
        };
        let want = format!(
            "charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"N0\",nc=00000001,cnonce=\"CN\",digest-uri=\"zookeeper/zk-sasl-md5\",response={},qop=auth",
            String::from_utf8(expect.response()).unwrap()
        );
        assert_eq!(String::from_utf8(resp).unwrap(), want);
        assert!(!format!("{c:?}").contains("bobpw"));
        // A server that does not know the password cannot produce rspauth.
        assert_eq!(c.step(b"rspauth=00112233"), Err(ClientError::ServerProof));
        assert_eq!(c.step(b""), Err(ClientError::AlreadyFailed));
    }

    #[test]
    fn bad_challenges() {
        let step = |ch: &[u8]| DigestMd5Client::new("bob", Secret::new("pw")).step(ch);
        assert_eq!(step(b""), Err(ClientError::EmptyChallenge));
        assert_eq!(
            step(b"realm=\"r\",algorithm=md5-sess"),
            Err(ClientError::MissingNonce)
        );
        assert_eq!(step(b"nonce=\"n\""), Err(ClientError::Algorithm));
        assert_eq!(
            step(b"nonce=\"n\",qop=\"auth-conf\",algorithm=md5-sess"),
            Err(ClientError::Qop)
        );
        assert_eq!(
            step(b"nonce=\"n\",nonce=\"m\",algorithm=md5-sess"),
            Err(ClientError::Duplicate("nonce"))
        );
        assert!(step(b"nonce=\"n\",qop=\"auth,auth-int\",algorithm=md5-sess").is_ok());
        assert_eq!(
            step(b"nonce"),
            Err(ClientError::Format("directive without ="))
        );
    }
}
