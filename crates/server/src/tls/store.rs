//! Key stores and trust stores in the formats ZooKeeper reads: JKS (`jks` crate), PKCS12
//! (`p12-keystore`) and PEM (`rustls-pki-types`; an encrypted PKCS#8 key is opened with
//! `pkcs8`). The type comes from `*.type` or, when that is unset, from the file's
//! extension as ZooKeeper infers it (`.jks`, `.pem`, `.p12`; `.bcfks` names a type rzk
//! cannot read).
//!
//! A key store yields the first private key with its certificate chain; a trust store
//! yields its trusted certificates. Passwords are never logged or put in errors.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

/// A store file format (ZooKeeper's `KeyStoreFileType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Java KeyStore.
    Jks,
    /// PEM: certificates and, for a key store, one (optionally encrypted) private key.
    Pem,
    /// PKCS#12.
    Pkcs12,
    /// BouncyCastle FIPS key store: accepted as a name, not readable by rzk.
    Bcfks,
}

impl StoreType {
    /// ZooKeeper's property value (`JKS`, `PEM`, `PKCS12`, `BCFKS`), any case; `None` for
    /// anything else.
    pub fn from_property(v: &str) -> Option<StoreType> {
        match v.to_ascii_uppercase().as_str() {
            "JKS" => Some(StoreType::Jks),
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "BCFKS" => Some(StoreType::Bcfks),
            _ => None,
        }
    }

    /// The type ZooKeeper infers from the file name's last extension (case-sensitive:
    /// `.jks`, `.pem`, `.p12`, `.bcfks`).
    pub fn from_file_name(path: &str) -> Option<StoreType> {
        let ext = &path[path.rfind('.')?..];
        match ext {
            ".jks" => Some(StoreType::Jks),
            ".pem" => Some(StoreType::Pem),
            ".p12" => Some(StoreType::Pkcs12),
            ".bcfks" => Some(StoreType::Bcfks),
            _ => None,
        }
    }
}

/// Why a store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but is not a usable store of its type.
    #[error("{path}: {reason}")]
    Bad { path: PathBuf, reason: String },
}

fn bad(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Bad {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// A private key and its certificate chain (leaf first).
#[derive(Debug)]
pub struct KeyMaterial {
    /// Leaf certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the leaf.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for KeyMaterial {
    fn clone(&self) -> Self {
        KeyMaterial {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The first four bytes of a JKS store (`0xFEEDFEED`).
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

/// The format a JKS or PKCS12 store is read as: the one its bytes show, whatever its
/// declared type or extension says. Java (9 and later) opens a store declared `JKS` that
/// holds PKCS12 and the reverse (`keystore.type.compat`), and `keytool -keystore x.jks`
/// writes PKCS12 by default, so ZooKeeper serves such stores. A store starting with
/// [`JKS_MAGIC`] is JKS, one starting with a DER SEQUENCE (`0x30`) is PKCS12; PEM and
/// BCFKS are taken as declared.
fn binary_format(data: &[u8], declared: StoreType) -> StoreType {
    match declared {
        StoreType::Jks | StoreType::Pkcs12 if data.starts_with(&JKS_MAGIC) => StoreType::Jks,
        StoreType::Jks | StoreType::Pkcs12 if data.first() == Some(&0x30) => StoreType::Pkcs12,
        other => other,
    }
}

/// Loads the first private key and its chain from a key store.
pub fn load_key_store(
    path: &Path,
    password: &str,
    ty: StoreType,
) -> Result<KeyMaterial, StoreError> {
    let data = read(path)?;
    match binary_format(&data, ty) {
        StoreType::Pem => pem_key_store(path, &data, password),
        StoreType::Pkcs12 => {
            let ks = p12_keystore::KeyStore::from_pkcs12(
                &data,
                password,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| bad(path, format!("cannot open the PKCS12 store: {e}")))?;
            let (_, chain) = ks
                .private_key_chain()
                .ok_or_else(|| bad(path, "no private key in the PKCS12 store"))?;
            if chain.certs().is_empty() {
                return Err(bad(path, "the private key has no certificate"));
            }
            Ok(KeyMaterial {
                chain: chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
            })
        }
        StoreType::Jks => {
            let ks = open_jks(path, &data, password)?;
            for alias in ks.aliases() {
                if !ks.is_private_key_entry(&alias) {
                    continue;
                }
                let entry = ks
                    .get_private_key_entry(&alias, password.as_bytes())
                    .map_err(|e| bad(path, format!("cannot decrypt key {alias:?}: {e}")))?;
                if entry.certificate_chain.is_empty() {
                    return Err(bad(path, format!("key {alias:?} has no certificate")));
                }
                return Ok(KeyMaterial {
                    chain: entry
                        .certificate_chain
                        .iter()
                        .map(|c| CertificateDer::from(c.content.clone()))
                        .collect(),
                    key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.private_key)),
                });
            }
            Err(bad(path, "no private key entry in the JKS store"))
        }
        StoreType::Bcfks => Err(bad(path, "BCFKS stores are not supported by rzk")),
    }
}

/// Loads the trusted certificates of a trust store.
pub fn load_trust_store(
    path: &Path,
    password: &str,
    ty: StoreType,
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let data = read(path)?;
    let certs: Vec<CertificateDer<'static>> = match binary_format(&data, ty) {
        StoreType::Pem => CertificateDer::pem_slice_iter(&data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(path, format!("bad PEM: {e}")))?,
        StoreType::Pkcs12 => {
            let ks = p12_keystore::KeyStore::from_pkcs12(
                &data,
                password,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| bad(path, format!("cannot open the PKCS12 store: {e}")))?;
            ks.entries()
                .filter_map(|(_, e)| match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        Some(CertificateDer::from(c.as_der().to_vec()))
                    }
                    _ => None,
                })
                .collect()
        }
        StoreType::Jks => {
            let ks = open_jks(path, &data, password)?;
            let mut out = Vec::new();
            for alias in ks.aliases() {
                if ks.is_trusted_certificate_entry(&alias) {
                    let e = ks
                        .get_trusted_certificate_entry(&alias)
                        .map_err(|e| bad(path, format!("entry {alias:?}: {e}")))?;
                    out.push(CertificateDer::from(e.certificate.content));
                }
            }
            out
        }
        StoreType::Bcfks => return Err(bad(path, "BCFKS stores are not supported by rzk")),
    };
    if certs.is_empty() {
        return Err(bad(path, "no trusted certificate in the store"));
    }
    Ok(certs)
}

fn open_jks(path: &Path, data: &[u8], password: &str) -> Result<jks::KeyStore, StoreError> {
    let mut ks = jks::KeyStore::new();
    ks.load(data, password.as_bytes()).map_err(|e| {
        bad(
            path,
            format!("cannot open the JKS store (wrong password?): {e}"),
        )
    })?;
    Ok(ks)
}

fn pem_key_store(path: &Path, data: &[u8], password: &str) -> Result<KeyMaterial, StoreError> {
    let chain = CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, format!("bad PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(bad(path, "no certificate in the PEM key store"));
    }
    let key = match PrivateKeyDer::from_pem_slice(data) {
        Ok(k) => k,
        Err(_) => encrypted_pem_key(path, data, password)?,
    };
    Ok(KeyMaterial { chain, key })
}

/// An `ENCRYPTED PRIVATE KEY` (PKCS#8 with PBES2) opened with the store password.
fn encrypted_pem_key(
    path: &Path,
    data: &[u8],
    password: &str,
) -> Result<PrivateKeyDer<'static>, StoreError> {
    let text = std::str::from_utf8(data).map_err(|_| bad(path, "PEM file is not text"))?;
    let begin = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    let end = "-----END ENCRYPTED PRIVATE KEY-----";
    let start = text
        .find(begin)
        .ok_or_else(|| bad(path, "no private key in the PEM key store"))?;
    let stop = text[start..]
        .find(end)
        .map(|i| start + i + end.len())
        .ok_or_else(|| bad(path, "unterminated encrypted private key"))?;
    let body: String = text[start + begin.len()..stop - end.len()]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| bad(path, "bad base64 in the encrypted private key"))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| bad(path, format!("bad encrypted private key: {e}")))?;
    let doc = info
        .decrypt(password.as_bytes())
        .map_err(|_| bad(path, "cannot decrypt the private key (wrong password?)"))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        doc.as_bytes().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_inference() {
        assert_eq!(StoreType::from_file_name("/a/b.jks"), Some(StoreType::Jks));
        assert_eq!(StoreType::from_file_name("x.p12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_file_name("x.pem"), Some(StoreType::Pem));
        assert_eq!(StoreType::from_file_name("x.PEM"), None);
        assert_eq!(StoreType::from_file_name("x.pkcs12"), None);
        assert_eq!(StoreType::from_file_name("noext"), None);
        assert_eq!(StoreType::from_property("pkcs12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_property("pfx"), None);
    }

    #[test]
    fn jks_and_pkcs12_are_read_as_their_bytes_show() {
        let jks = [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2];
        let p12 = [0x30, 0x82, 0x0a, 0x1b];
        for declared in [StoreType::Jks, StoreType::Pkcs12] {
            assert_eq!(binary_format(&jks, declared), StoreType::Jks);
            assert_eq!(binary_format(&p12, declared), StoreType::Pkcs12);
            assert_eq!(binary_format(b"junk", declared), declared);
        }
        assert_eq!(binary_format(&p12, StoreType::Pem), StoreType::Pem);
        assert_eq!(binary_format(&jks, StoreType::Bcfks), StoreType::Bcfks);
    }

    #[test]
    fn pem_stores() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ks = dir.path().join("k.pem");
        std::fs::write(&ks, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        let m = load_key_store(&ks, "", StoreType::Pem).unwrap();
        assert_eq!(m.chain.len(), 1);
        let ts = dir.path().join("t.pem");
        std::fs::write(&ts, cert.pem()).unwrap();
        assert_eq!(load_trust_store(&ts, "", StoreType::Pem).unwrap().len(), 1);
        std::fs::write(&ts, "junk").unwrap();
        assert!(load_trust_store(&ts, "", StoreType::Pem).is_err());
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            load_trust_store(&missing, "", StoreType::Pem),
            Err(StoreError::Io { .. })
        ));
    }
}
