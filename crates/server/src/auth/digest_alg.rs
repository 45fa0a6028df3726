//! The hash of `digest` ids (`DigestAuthenticationProvider.digestAlg`, ZooKeeper's
//! `zookeeper.DigestAuthenticationProvider.digestAlg`, default SHA1): an id is
//! `user:base64(hash("user:password"))`, for `addauth digest`, digest ACLs and
//! `superDigest` alike, so every server of an ensemble must use the same algorithm.
//!
//! Owns the algorithm names (as Java's `MessageDigest.getInstance` takes them, case
//! insensitive) and the hashing; `auth.rs` builds the ids.

use sha2::Digest;

/// A `MessageDigest` algorithm rzk can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestAlg {
    /// `SHA1`, `SHA-1` or `SHA` (ZooKeeper's default).
    #[default]
    Sha1,
    /// `SHA-224` (or `SHA224`).
    Sha224,
    /// `SHA-256` (or `SHA256`).
    Sha256,
    /// `SHA-384` (or `SHA384`).
    Sha384,
    /// `SHA-512` (or `SHA512`).
    Sha512,
    /// `SHA-512/224` (or `SHA512/224`).
    Sha512_224,
    /// `SHA-512/256` (or `SHA512/256`).
    Sha512_256,
    /// `SHA3-224`.
    Sha3_224,
    /// `SHA3-256`.
    Sha3_256,
    /// `SHA3-384`.
    Sha3_384,
    /// `SHA3-512`.
    Sha3_512,
    /// `MD5`.
    Md5,
}

impl DigestAlg {
    /// The algorithm a Java name stands for (any case, surrounding blanks ignored), as
    /// the JDK's SUN provider reads it; `None` for a name rzk cannot compute (`MD2`, an
    /// OID, a provider-specific name, a misspelling).
    pub fn from_java_name(name: &str) -> Option<DigestAlg> {
        use DigestAlg::*;
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "SHA" | "SHA1" | "SHA-1" => Sha1,
            "SHA-224" | "SHA224" => Sha224,
            "SHA-256" | "SHA256" => Sha256,
            "SHA-384" | "SHA384" => Sha384,
            "SHA-512" | "SHA512" => Sha512,
            "SHA-512/224" | "SHA512/224" => Sha512_224,
            "SHA-512/256" | "SHA512/256" => Sha512_256,
            "SHA3-224" => Sha3_224,
            "SHA3-256" => Sha3_256,
            "SHA3-384" => Sha3_384,
            "SHA3-512" => Sha3_512,
            "MD5" => Md5,
            _ => return None,
        })
    }

    /// The hash of `bytes`.
    pub fn hash(self, bytes: &[u8]) -> Vec<u8> {
        use DigestAlg::*;
        match self {
            Sha1 => sha1::Sha1::digest(bytes).to_vec(),
            Sha224 => sha2::Sha224::digest(bytes).to_vec(),
            Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            Sha384 => sha2::Sha384::digest(bytes).to_vec(),
            Sha512 => sha2::Sha512::digest(bytes).to_vec(),
            Sha512_224 => sha2::Sha512_224::digest(bytes).to_vec(),
            Sha512_256 => sha2::Sha512_256::digest(bytes).to_vec(),
            Sha3_224 => sha3::Sha3_224::digest(bytes).to_vec(),
            Sha3_256 => sha3::Sha3_256::digest(bytes).to_vec(),
            Sha3_384 => sha3::Sha3_384::digest(bytes).to_vec(),
            Sha3_512 => sha3::Sha3_512::digest(bytes).to_vec(),
            Md5 => md5::Md5::digest(bytes).to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(alg: &str, text: &str) -> String {
        use base64::Engine;
        let a = DigestAlg::from_java_name(alg).unwrap();
        base64::engine::general_purpose::STANDARD.encode(a.hash(text.as_bytes()))
    }

    #[test]
    fn names_as_java_reads_them() {
        assert_eq!(DigestAlg::from_java_name(" sha-1 "), Some(DigestAlg::Sha1));
        assert_eq!(DigestAlg::from_java_name("SHA"), Some(DigestAlg::Sha1));
        assert_eq!(DigestAlg::from_java_name("sha256"), Some(DigestAlg::Sha256));
        assert_eq!(
            DigestAlg::from_java_name("SHA512/256"),
            Some(DigestAlg::Sha512_256)
        );
        assert_eq!(
            DigestAlg::from_java_name("sha3-256"),
            Some(DigestAlg::Sha3_256)
        );
        // Java has no hyphenless SHA3 names; rzk has no MD2.
        assert_eq!(DigestAlg::from_java_name("SHA3256"), None);
        assert_eq!(DigestAlg::from_java_name("MD2"), None);
    }

    #[test]
    fn hashes_match_the_standard_vectors() {
        // sha1/sha256/sha3-256 of "abc", as any reference implementation gives them.
        assert_eq!(b64("SHA1", "abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(
            b64("SHA-256", "abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            b64("SHA3-256", "abc"),
            "Ophdp0/iJbIEXBcta9OQvYVfCG4+nVJbRr/iRRFDFTI="
        );
        assert_eq!(b64("MD5", "abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }
}
