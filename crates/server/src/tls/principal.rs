//! The identity of a client certificate as ZooKeeper's `x509` scheme names it: the
//! subject's X.500 name in the RFC 2253 form Java's `X500Principal.getName()` prints
//! (`CN=client,OU=eng,O=Example\, Inc,C=US`): relative names from the last to the first,
//! joined by `,`; the RFC 2253 keywords (`CN C L ST O OU STREET DC UID`), any other
//! attribute as its dotted OID with `#` and the hex of its DER value; string values with
//! `, = + < > # ; " \` escaped by a backslash and leading/trailing spaces escaped.
//!
//! Parsing is `x509-parser`'s; this module only prints. Never panics on a certificate.

use x509_parser::asn1_rs::{Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a certificate gave no identity.
#[derive(Debug, thiserror::Error)]
pub enum PrincipalError {
    /// The DER could not be parsed as a certificate.
    #[error("not an X.509 certificate: {0}")]
    Parse(String),
}

/// The RFC 2253 subject name of a DER certificate.
pub fn subject_name(cert_der: &[u8]) -> Result<String, PrincipalError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| PrincipalError::Parse(e.to_string()))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|ava| {
                    let oid = ava.attr_type().to_id_string();
                    let value = ava.attr_value();
                    match keyword(&oid) {
                        Some(k) => match string_value(value.tag(), value.data) {
                            Some(s) => format!("{k}={}", escape(&s)),
                            None => format!("{k}={}", hex_value(value)),
                        },
                        None => format!("{oid}={}", hex_value(value)),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The RFC 2253 keyword Java prints for an attribute type.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The text of a directory string; `None` for types Java prints in hex.
fn string_value(tag: Tag, data: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String => std::str::from_utf8(data).ok().map(str::to_owned),
        // ISO-8859-1 as Java decodes the 8-bit types.
        Tag::PrintableString | Tag::Ia5String | Tag::T61String | Tag::GeneralString => {
            Some(data.iter().map(|&b| char::from(b)).collect())
        }
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// `#` and the lower-case hex of the value's DER encoding.
fn hex_value(value: &x509_parser::asn1_rs::Any<'_>) -> String {
    let der = value.to_der_vec().unwrap_or_default();
    let mut s = String::with_capacity(1 + 2 * der.len());
    s.push('#');
    for b in der {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// RFC 2253 escaping as Java applies it.
fn escape(v: &str) -> String {
    const ESCAPEES: &str = ",=+<>#;\"\\";
    let mut body = String::with_capacity(v.len() + 4);
    for c in v.chars() {
        if ESCAPEES.contains(c) {
            body.push('\\');
            body.push(c);
        } else if c == '\0' {
            body.push_str("\\00");
        } else {
            body.push(c);
        }
    }
    let chars: Vec<char> = body.chars().collect();
    let ws = |c: char| c == ' ' || c == '\r';
    let lead = chars.iter().take_while(|&&c| ws(c)).count();
    let trail_start = chars.len() - chars.iter().rev().take_while(|&&c| ws(c)).count();
    let mut out = String::with_capacity(chars.len() + 2);
    for (i, c) in chars.into_iter().enumerate() {
        if i < lead || i >= trail_start.max(lead) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `name` reads as an RFC 2253 distinguished name (`type=value` parts joined by
/// unescaped `,` or `+`), the check ZooKeeper makes (through `X500Principal`) on `x509`
/// ACL ids.
pub fn is_valid_name(name: &str) -> bool {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return false,
                }
            }
            ',' | '+' | ';' => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    if name.trim().is_empty() {
        // X500Principal accepts the empty name.
        return true;
    }
    parts.iter().all(|p| {
        let Some((k, _)) = p.split_once('=') else {
            return false;
        };
        let k = k.trim();
        let k = k.strip_prefix("OID.").unwrap_or(k);
        !k.is_empty()
            && (k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                || k.split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_as_java() {
        assert_eq!(escape("Example, Inc"), "Example\\, Inc");
        assert_eq!(escape(" a=b "), "\\ a\\=b\\ ");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(escape(""), "");
        assert_eq!(escape("   "), "\\ \\ \\ ");
    }

    #[test]
    fn names_from_certificates() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "client one");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_name(cert.der()).unwrap(),
            "CN=client one,OU=eng,O=Example\\, Inc,C=US"
        );
        assert!(subject_name(b"nope").is_err());
    }

    #[test]
    fn acl_id_validation() {
        assert!(is_valid_name("CN=client one,OU=eng,O=Example\\, Inc,C=US"));
        assert!(is_valid_name("CN=a+UID=b"));
        assert!(is_valid_name("1.2.840.113549.1.9.1=#160161"));
        assert!(!is_valid_name("not a name"));
        assert!(!is_valid_name("CN=a,junk"));
        assert!(!is_valid_name("CN=a\\"));
    }
}
