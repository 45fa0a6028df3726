//! The server side of SASL DIGEST-MD5 (RFC 2831), as ZooKeeper's servers run it (the
//! `SaslServer` its `ZooKeeperSaslServer` creates for a JAAS `Server` section): realm and
//! server name `zk-sasl-md5`, service `zookeeper`, quality of protection `auth` only, UTF-8
//! offered, `md5-sess`.
//!
//! Two steps: an empty client token gets the challenge; the client's digest response is
//! checked against the user's password and answered with `rspauth`. Never logs and never
//! puts a password or a response hash in an error.

use base64::Engine;
use rand::RngCore;

use super::{parse_directives, same, DigestInput, Service, CLIENT_PORT};

/// Why authentication failed. The messages may name the user, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The first token must be empty (DIGEST-MD5 has no initial response); a GSSAPI
    /// client, for one, sends a non-empty one.
    #[error("DIGEST-MD5 expects an empty first token (is the client using another mechanism, such as GSSAPI?)")]
    InitialResponse,
    /// The response is not a list of directives.
    #[error("malformed digest response: {0}")]
    Format(&'static str),
    /// A directive that may appear once appeared twice.
    #[error("digest response has directive {0} more than once")]
    Duplicate(&'static str),
    /// A required directive is missing.
    #[error("digest response lacks the {0} directive")]
    Missing(&'static str),
    /// Not the nonce we sent.
    #[error("digest response has the wrong nonce")]
    Nonce,
    /// The nonce count must be 1 (no reauthentication).
    #[error("digest response nonce count is not 00000001")]
    NonceCount,
    /// Not our realm.
    #[error("digest response names a realm that was not offered")]
    Realm,
    /// Only `auth` is offered.
    #[error("digest response asks for a quality of protection other than auth")]
    Qop,
    /// The client used another service or host.
    #[error("digest response digest-uri is not this service's")]
    DigestUri,
    /// `charset` other than utf-8.
    #[error("digest response charset is not utf-8")]
    Charset,
    /// No such user in the JAAS server section.
    #[error("user {0:?} is not a DIGEST-MD5 user of this server")]
    UnknownUser(String),
    /// Wrong password (the response hash does not match).
    #[error("wrong password for user {0:?}")]
    BadResponse(String),
    /// A token after success.
    #[error("DIGEST-MD5 authentication is already complete")]
    AlreadyComplete,
    /// A token after a failure.
    #[error("DIGEST-MD5 authentication already failed on this connection")]
    AlreadyFailed,
}

/// What a successful step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `rspauth` (the server's proof) and stop.
    Success {
        /// `rspauth=<hex>`.
        token: Vec<u8>,
        /// The authentication id (user name).
        user: String,
        /// The authorization id the client asked for (`authzid`), if it sent one.
        authzid: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Initial,
    Challenged { nonce: String },
    Complete,
    Failed,
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Clone)]
pub struct DigestMd5Server {
    state: State,
    nonce: String,
    service: Service,
}

impl Default for DigestMd5Server {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestMd5Server {
    /// A new exchange with a fresh random nonce (30 bytes, base64).
    pub fn new() -> Self {
        let mut b = [0u8; 30];
        rand::thread_rng().fill_bytes(&mut b);
        Self::with_nonce(base64::engine::general_purpose::STANDARD.encode(b))
    }

    /// A new exchange with a given nonce (tests).
    pub fn with_nonce(nonce: String) -> Self {
        DigestMd5Server {
            state: State::Initial,
            nonce,
            service: CLIENT_PORT,
        }
    }

    /// Whether authentication succeeded.
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// The same server for another exchange (the quorum's, [`super::QUORUM`]); the
    /// client port's ([`CLIENT_PORT`]) by default.
    pub fn for_service(mut self, service: Service) -> Self {
        self.service = service;
        self
    }

    /// Evaluates the client's token. `password_of` gives a user's password, `None` for
    /// an unknown user. Any error ends the exchange for good.
    pub fn step<'p>(
        &mut self,
        token: &[u8],
        password_of: impl Fn(&str) -> Option<&'p str>,
    ) -> Result<Step, DigestError> {
        let r = match std::mem::replace(&mut self.state, State::Failed) {
            State::Initial => {
                if !token.is_empty() {
                    Err(DigestError::InitialResponse)
                } else {
                    let nonce = self.nonce.clone();
                    let realm = self.service.realm;
                    let challenge = format!(
                        "realm=\"{realm}\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess"
                    );
                    self.state = State::Challenged { nonce };
                    return Ok(Step::Challenge(challenge.into_bytes()));
                }
            }
            State::Challenged { nonce } => verify(token, &nonce, self.service, password_of),
            State::Complete => {
                self.state = State::Complete;
                return Err(DigestError::AlreadyComplete);
            }
            State::Failed => Err(DigestError::AlreadyFailed),
        };
        if let Ok(Step::Success { .. }) = &r {
            self.state = State::Complete;
        }
        r
    }
}

/// The directives of a digest response that matter here.
#[derive(Default)]
struct Response {
    username: Option<Vec<u8>>,
    realm: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
    cnonce: Option<Vec<u8>>,
    nc: Option<Vec<u8>>,
    qop: Option<Vec<u8>>,
    digest_uri: Option<Vec<u8>>,
    response: Option<Vec<u8>>,
    charset: Option<Vec<u8>>,
    authzid: Option<Vec<u8>>,
}

fn set(slot: &mut Option<Vec<u8>>, name: &'static str, v: Vec<u8>) -> Result<(), DigestError> {
    if slot.is_some() {
        return Err(DigestError::Duplicate(name));
    }
    *slot = Some(v);
    Ok(())
}

/// The directives of a client response that matter here; unknown ones are ignored.
fn parse(b: &[u8]) -> Result<Response, DigestError> {
    let mut r = Response::default();
    for (name, value) in parse_directives(b).map_err(DigestError::Format)? {
        match name.as_slice() {
            b"username" => set(&mut r.username, "username", value)?,
            b"realm" => set(&mut r.realm, "realm", value)?,
            b"nonce" => set(&mut r.nonce, "nonce", value)?,
            b"cnonce" => set(&mut r.cnonce, "cnonce", value)?,
            b"nc" => set(&mut r.nc, "nc", value)?,
            b"qop" => set(&mut r.qop, "qop", value)?,
            b"digest-uri" => set(&mut r.digest_uri, "digest-uri", value)?,
            b"response" => set(&mut r.response, "response", value)?,
            b"charset" => set(&mut r.charset, "charset", value)?,
            b"authzid" => set(&mut r.authzid, "authzid", value)?,
            _ => {}
        }
    }
    Ok(r)
}

fn utf8(v: Vec<u8>, what: &'static str) -> Result<String, DigestError> {
    String::from_utf8(v).map_err(|_| DigestError::Format(what))
}

fn verify<'p>(
    token: &[u8],
    nonce: &str,
    service: Service,
    password_of: impl Fn(&str) -> Option<&'p str>,
) -> Result<Step, DigestError> {
    let r = parse(token)?;
    if let Some(cs) = &r.charset {
        if !cs.eq_ignore_ascii_case(b"utf-8") {
            return Err(DigestError::Charset);
        }
    }
    let user = utf8(
        r.username.ok_or(DigestError::Missing("username"))?,
        "username is not UTF-8",
    )?;
    let realm = utf8(r.realm.unwrap_or_default(), "realm is not UTF-8")?;
    if realm != service.realm {
        return Err(DigestError::Realm);
    }
    let got_nonce = r.nonce.ok_or(DigestError::Missing("nonce"))?;
    if !same(&got_nonce, nonce.as_bytes()) {
        return Err(DigestError::Nonce);
    }
    let cnonce = r.cnonce.ok_or(DigestError::Missing("cnonce"))?;
    let nc = r.nc.ok_or(DigestError::Missing("nc"))?;
    if nc != b"00000001" {
        return Err(DigestError::NonceCount);
    }
    let qop = r.qop.unwrap_or_else(|| b"auth".to_vec());
    if qop != b"auth" {
        return Err(DigestError::Qop);
    }
    let uri = r.digest_uri.ok_or(DigestError::Missing("digest-uri"))?;
    if !uri.eq_ignore_ascii_case(service.digest_uri.as_bytes()) {
        return Err(DigestError::DigestUri);
    }
    let response = r.response.ok_or(DigestError::Missing("response"))?;
    let Some(password) = password_of(&user) else {
        return Err(DigestError::UnknownUser(user));
    };
    let authzid_text = match r.authzid.as_deref() {
        Some(a) => Some(utf8(a.to_vec(), "authzid is not UTF-8")?),
        None => None,
    };
    let authzid = r.authzid.as_deref();
    let input = DigestInput {
        user: &user,
        realm: &realm,
        password,
        nonce: nonce.as_bytes(),
        cnonce: &cnonce,
        authzid,
        nc: &nc,
        qop: &qop,
        digest_uri: &uri,
    };
    if !same(&input.response(), &response) {
        return Err(DigestError::BadResponse(user));
    }
    let rspauth = input.rspauth();
    let mut token = b"rspauth=".to_vec();
    token.extend_from_slice(&rspauth);
    Ok(Step::Success {
        token,
        user,
        authzid: authzid_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest_md5::{DIGEST_URI, REALM};

    /// A client response for `user`/`password` to nonce `n`, as pure-sasl builds it.
    fn client(user: &str, password: &str, n: &str) -> Vec<u8> {
        let resp = DigestInput {
            user,
            realm: REALM,
            password,
            nonce: n.as_bytes(),
            cnonce: b"c1",
            authzid: None,
            nc: b"00000001",
            qop: b"auth",
            digest_uri: DIGEST_URI.as_bytes(),
        }
        .response();
        format!(
            "qop=auth,realm=\"{REALM}\",username=\"{user}\",nonce=\"{n}\",cnonce=\"c1\",nc=00000001,digest-uri=\"{DIGEST_URI}\",response={}",
            String::from_utf8(resp).unwrap()
        )
        .into_bytes()
    }

    fn pw(u: &str) -> Option<&'static str> {
        match u {
            "bob" => Some("bobpw"),
            _ => None,
        }
    }

    #[test]
    fn exchange() {
        let mut s = DigestMd5Server::with_nonce("N0nce".into());
        let Step::Challenge(c) = s.step(b"", pw).unwrap() else {
            panic!("challenge expected")
        };
        assert_eq!(
            c,
            b"realm=\"zk-sasl-md5\",nonce=\"N0nce\",charset=utf-8,algorithm=md5-sess"
        );
        let step = s.step(&client("bob", "bobpw", "N0nce"), pw).unwrap();
        let Step::Success { token, user, .. } = step else {
            panic!("success expected")
        };
        assert_eq!(user, "bob");
        assert!(token.starts_with(b"rspauth="));
        assert!(s.is_complete());
        assert_eq!(s.step(b"", pw), Err(DigestError::AlreadyComplete));
    }

    #[test]
    fn failures() {
        let start = || {
            let mut s = DigestMd5Server::with_nonce("N".into());
            s.step(b"", pw).unwrap();
            s
        };
        assert_eq!(
            start().step(&client("bob", "wrong", "N"), pw),
            Err(DigestError::BadResponse("bob".into()))
        );
        assert_eq!(
            start().step(&client("eve", "x", "N"), pw),
            Err(DigestError::UnknownUser("eve".into()))
        );
        assert_eq!(
            start().step(&client("bob", "bobpw", "other"), pw),
            Err(DigestError::Nonce)
        );
        let with = |from: &str, to: &str| {
            String::from_utf8(client("bob", "bobpw", "N"))
                .unwrap()
                .replace(from, to)
                .into_bytes()
        };
        assert_eq!(
            start().step(&with("nc=00000001", "nc=00000002"), pw),
            Err(DigestError::NonceCount)
        );
        assert_eq!(
            start().step(&with("qop=auth", "qop=auth-conf"), pw),
            Err(DigestError::Qop)
        );
        assert_eq!(
            start().step(&with("zookeeper/zk-sasl-md5", "imap/zk-sasl-md5"), pw),
            Err(DigestError::DigestUri)
        );
        assert_eq!(
            start().step(&with("realm=\"zk-sasl-md5\",", ""), pw),
            Err(DigestError::Realm)
        );
        assert_eq!(
            start().step(&with("cnonce=\"c1\",", "cnonce=\"c1\",cnonce=\"c2\","), pw),
            Err(DigestError::Duplicate("cnonce"))
        );
        assert_eq!(
            start().step(b"username", pw),
            Err(DigestError::Format("directive without ="))
        );
        // A failed exchange stays failed.
        let mut s = start();
        assert!(s.step(b"garbage", pw).is_err());
        assert_eq!(
            s.step(&client("bob", "bobpw", "N"), pw),
            Err(DigestError::AlreadyFailed)
        );
        // GSSAPI-style non-empty first token.
        let mut s = DigestMd5Server::with_nonce("N".into());
        assert_eq!(s.step(&[0x60, 0x82], pw), Err(DigestError::InitialResponse));
    }
}
