//! DIGEST-MD5 (RFC 2831) with ZooKeeper's parameters: service `zookeeper`, server name and
//! realm `zk-sasl-md5` (so the digest-uri is `zookeeper/zk-sasl-md5`), quality of
//! protection `auth` only (no integrity or confidentiality layer), `md5-sess`, UTF-8.
//!
//! This module holds what both sides use: the directive-list syntax and the response
//! hash. [`server`] is ZooKeeper's server side (challenge, check, `rspauth`); [`client`]
//! is its client side (empty first token, response, check of `rspauth`).

pub mod client;
pub mod server;

pub use client::{ClientError, DigestMd5Client};
pub use server::{DigestError, DigestMd5Server, Step};

use md5::{Digest, Md5};

/// The realm (and server name) ZooKeeper's DIGEST-MD5 server uses.
pub const REALM: &str = "zk-sasl-md5";
/// The protocol (service) name in the digest-uri, as ZooKeeper's client uses it.
pub const SERVICE: &str = "zookeeper";
/// The digest-uri a client must use: `<service>/<server name>`.
pub const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";
/// Where a DIGEST-MD5 exchange runs: the realm (ZooKeeper's server name, which Java's
/// server offers as its realm) and the digest-uri `<protocol>/<server name>` both sides
/// use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The realm the server offers and accepts.
    pub realm: &'static str,
    /// The digest-uri the client sends and the server accepts.
    pub digest_uri: &'static str,
}

/// The client port's exchange (`zookeeper/zk-sasl-md5`).
pub const CLIENT_PORT: Service = Service {
    realm: REALM,
    digest_uri: DIGEST_URI,
};

/// The quorum's exchange between servers (ZooKeeper's `QuorumAuth`: protocol
/// `zookeeper-quorum`, server name `zk-quorum-sasl-md5`).
pub const QUORUM: Service = Service {
    realm: "zk-quorum-sasl-md5",
    digest_uri: "zookeeper-quorum/zk-quorum-sasl-md5",
};

/// Largest token (challenge or response) either side accepts.
pub const MAX_TOKEN: usize = 4096;
/// Kept for the server's callers: largest client response accepted.
pub const MAX_RESPONSE: usize = MAX_TOKEN;

/// One `name=value` directive: the name lower-cased, the value unquoted.
pub(crate) type Directive = (Vec<u8>, Vec<u8>);

/// Parses `name=value` directives (values: tokens or quoted strings with `\` escapes),
/// separated by commas with optional white space, in order. The error says what was
/// wrong, never the text.
pub(crate) fn parse_directives(b: &[u8]) -> Result<Vec<Directive>, &'static str> {
    if b.len() > MAX_TOKEN {
        return Err("too long");
    }
    let mut out = Vec::new();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        ws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            ws(&mut i);
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = b[start..i].to_ascii_lowercase();
        if name.is_empty() {
            return Err("empty directive name");
        }
        ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err("directive without =");
        }
        i += 1;
        ws(&mut i);
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("unterminated quoted string"),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(&c) = b.get(i + 1) else {
                            return Err("unterminated quoted string");
                        };
                        value.push(c);
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                value.push(b[i]);
                i += 1;
            }
        }
        ws(&mut i);
        if i < b.len() && b[i] != b',' {
            return Err("expected , between directives");
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Appends `name="value"` (quoted, `"` and `\` escaped) with a leading comma if needed.
pub(crate) fn put_quoted(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    for &c in value {
        if c == b'"' || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// Appends `name=value` (a token) with a leading comma if needed.
pub(crate) fn put_token(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}

/// A string as RFC 2831 hashes it: ISO 8859-1 when every character fits, else UTF-8.
pub(crate) fn hash_bytes(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) <= 0xff) {
        s.chars().map(|c| c as u32 as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hex(b: &[u8]) -> Vec<u8> {
    const H: &[u8; 16] = b"0123456789abcdef";
    b.iter()
        .flat_map(|x| [H[(x >> 4) as usize], H[(x & 15) as usize]])
        .collect()
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The inputs of RFC 2831 §2.1.2.1's response value.
pub(crate) struct DigestInput<'a> {
    pub user: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a [u8],
    pub cnonce: &'a [u8],
    pub authzid: Option<&'a [u8]>,
    pub nc: &'a [u8],
    pub qop: &'a [u8],
    pub digest_uri: &'a [u8],
}

impl DigestInput<'_> {
    /// The client's `response` (`AUTHENTICATE` in A2).
    pub fn response(&self) -> Vec<u8> {
        self.value(b"AUTHENTICATE")
    }

    /// The server's `rspauth` (empty method in A2).
    pub fn rspauth(&self) -> Vec<u8> {
        self.value(b"")
    }

    fn value(&self, a2_prefix: &[u8]) -> Vec<u8> {
        let key = md5(&[
            &hash_bytes(self.user),
            b":",
            &hash_bytes(self.realm),
            b":",
            &hash_bytes(self.password),
        ]);
        let ha1 = match self.authzid {
            Some(z) => md5(&[&key, b":", self.nonce, b":", self.cnonce, b":", z]),
            None => md5(&[&key, b":", self.nonce, b":", self.cnonce]),
        };
        let ha2 = md5(&[a2_prefix, b":", self.digest_uri]);
        hex(&md5(&[
            &hex(&ha1),
            b":",
            self.nonce,
            b":",
            self.nc,
            b":",
            self.cnonce,
            b":",
            self.qop,
            b":",
            &hex(&ha2),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2831_example_hashes() {
        // RFC 2831 §4 (an IMAP exchange): response and rspauth for chris/secret.
        let d = DigestInput {
            user: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: b"OA6MG9tEQGm2hh",
            cnonce: b"OA6MHXh6VqTrRk",
            authzid: None,
            nc: b"00000001",
            qop: b"auth",
            digest_uri: b"imap/elwood.innosoft.com",
        };
        assert_eq!(d.response(), b"d388dad90d4bbd760a152321f2143af7");
        assert_eq!(d.rspauth(), b"ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn latin1_or_utf8() {
        assert_eq!(hash_bytes("caf\u{e9}"), vec![b'c', b'a', b'f', 0xe9]);
        assert_eq!(hash_bytes("\u{263a}"), "\u{263a}".as_bytes().to_vec());
    }

    #[test]
    fn directives_roundtrip_quoting() {
        let mut out = Vec::new();
        put_quoted(&mut out, "username", b"a\"b\\c");
        put_token(&mut out, "nc", b"00000001");
        let d = parse_directives(&out).unwrap();
        assert_eq!(
            d,
            vec![
                (b"username".to_vec(), b"a\"b\\c".to_vec()),
                (b"nc".to_vec(), b"00000001".to_vec())
            ]
        );
        assert_eq!(parse_directives(b"a"), Err("directive without ="));
        assert_eq!(
            parse_directives(b"a=\"x"),
            Err("unterminated quoted string")
        );
        assert_eq!(
            parse_directives(b" , a=b ,, c=d "),
            Ok(vec![
                (b"a".to_vec(), b"b".to_vec()),
                (b"c".to_vec(), b"d".to_vec())
            ])
        );
    }
}
