//! Per-connection identity and ACL rules: the `ip` / `digest` / `sasl` / `super` ids a
//! connection holds, ACL matching (`check_perm`), `auth` expansion and validation of ACLs
//! given to create/setACL (`fix_acl`), getACL redaction and whoAmI. Which schemes exist
//! is the server's [`settings::Providers`], carried by every [`AuthInfo`]. Submodules:
//! `settings` (the authentication keys and the JAAS server section), `jaas` (the file
//! syntax) and `digest_md5` (RFC 2831), both from `rzk-sasl`, and `sasl` (ZooKeeper's SetSASL
//! handling). Must never do IO (except `settings` reading the JAAS file at start-up) or
//! keep state beyond what a connection was given.

pub use rzk_sasl::digest_md5;
pub use rzk_sasl::jaas;
pub mod digest_alg;
pub mod sasl;
pub mod settings;

use base64::Engine;
use rzk_proto::records::{Acl, ClientInfo, Id};
use rzk_proto::ErrorCode;
use settings::Providers;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The bin of `id` in a `ConcurrentHashMap` of `bins` bins (a power of two): jute's
/// `Id.hashCode` (17, then 37 * result + each field's hash), spread as the map does
/// (`h ^ h >>> 16`, sign bit cleared).
fn java_set_bin(id: &Id, bins: usize) -> usize {
    debug_assert!(bins.is_power_of_two());
    let h = 17i32
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.scheme))
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.id)) as u32;
    ((h ^ (h >> 16)) & 0x7fff_ffff) as usize & (bins - 1)
}

/// The bins of a `ConcurrentHashMap` created empty holding `n` entries: 16, doubled
/// each time the count reaches three quarters of the bins.
fn java_set_bins(n: usize) -> usize {
    let mut bins = 16;
    while n >= bins - bins / 4 {
        bins *= 2;
    }
    bins
}

/// What a connection has authenticated as. `ip:<addr>` is always present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    /// The ids in the order they were added, each once. Persistent (a clone shares
    /// it), as the connection registry holds a copy that each addauth replaces: a
    /// session that adds many ids costs O(log n) per add, not a copy of all it holds (a
    /// review found 16,000 addauths on one session kept a core busy for 28 s).
    added: imbl::Vector<Id>,
    /// `added` as (scheme, id), for the duplicate check.
    seen: imbl::OrdSet<(String, String)>,
    /// Holds `super:` (superDigest or a SASL super user): passes every ACL check.
    pub is_super: bool,
    /// The schemes the server has providers for (how `ids` are matched against ACLs).
    pub providers: Arc<Providers>,
}

impl AuthInfo {
    /// A connection from `addr` (textual IP address, e.g. `127.0.0.1`), with the default
    /// providers (`ip`, `digest`).
    pub fn for_ip(addr: &str) -> AuthInfo {
        AuthInfo::for_connection(addr, Arc::default())
    }

    /// A connection from `addr` to a server with `providers`.
    pub fn for_connection(addr: &str, providers: Arc<Providers>) -> AuthInfo {
        AuthInfo::holding([Id::new("ip", addr)], false, providers)
    }

    /// The ids a forwarded request carried (`super` among them grants super).
    pub fn from_ids(ids: Vec<Id>) -> AuthInfo {
        let is_super = ids.iter().any(|i| i.scheme == "super");
        AuthInfo::holding(ids, is_super, Arc::default())
    }

    /// The same ids judged by `providers` (the leader's, for a forwarded request).
    pub fn with_providers(mut self, providers: Arc<Providers>) -> AuthInfo {
        self.providers = providers;
        self
    }

    /// The server's own identity (internal requests such as container deletes).
    pub fn superuser() -> AuthInfo {
        AuthInfo::holding([Id::new("super", "")], true, Arc::default())
    }

    fn holding(
        ids: impl IntoIterator<Item = Id>,
        is_super: bool,
        providers: Arc<Providers>,
    ) -> AuthInfo {
        let mut a = AuthInfo {
            added: imbl::Vector::new(),
            seen: imbl::OrdSet::new(),
            is_super,
            providers,
        };
        for id in ids {
            a.push(id);
        }
        a
    }

    /// The ids, each once, in no particular order (for matching ACLs).
    pub fn ids(&self) -> impl Iterator<Item = &Id> + '_ {
        self.added.iter()
    }

    /// The ids in the order ZooKeeper lists them (see [`AuthInfo::push`]): whoAmI
    /// answers in it, an `auth` ACL expands in it, a forwarded request carries it.
    pub fn id_list(&self) -> Vec<Id> {
        let bins = java_set_bins(self.added.len());
        let mut v: Vec<Id> = self.added.iter().cloned().collect();
        // Stable: ids of one bin stay in the order they were added.
        v.sort_by_cached_key(|i| java_set_bin(i, bins));
        v
    }

    /// Adds `id` unless held. ZooKeeper keeps a connection's ids in a set backed by a
    /// `ConcurrentHashMap`, so it lists them by hash bin (of the jute `Id.hashCode`, in a
    /// table of 16 bins that doubles from 12 ids on), and in the order added within a
    /// bin: whoami after `addauth digest carol:pw` and `bob:pw` says digest bob, digest
    /// carol, ip on the Debian oracle; with the x509 super user, x509, super, ip. (Past
    /// 11 ids a real table's resize may order a shared bin otherwise.) Two ids in one
    /// bin of the final table shared a bin at every smaller size too, so that order is
    /// a stable sort of the ids as added by their final bin ([`AuthInfo::id_list`]).
    fn push(&mut self, id: Id) {
        if self
            .seen
            .insert((id.scheme.clone(), id.id.clone()))
            .is_some()
        {
            return;
        }
        self.added.push_back(id);
    }

    /// Handles an auth packet (`digest` or `ip`). `super_digest` is
    /// `zookeeper.DigestAuthenticationProvider.superDigest` (`user:base64hash`).
    /// Unknown schemes, `sasl` (negotiated with SetSASL only) and `digest` when its
    /// provider is off fail with AUTHFAILED (the caller then closes the connection).
    pub fn add_auth(
        &mut self,
        scheme: &str,
        auth: &[u8],
        super_digest: Option<&str>,
    ) -> Result<(), ErrorCode> {
        match scheme {
            // Any credentials are taken, empty ones too (id `:<hash of "">`), as by
            // ZooKeeper 3.8; null ones are refused when the request is decoded
            // (`request::decode`), and clients such as kazoo send "" as null.
            "digest" if self.providers.digest => {
                // As ZooKeeper's `new String(authData)` (UTF-8) reads it.
                let text = rzk_proto::java_utf8::decode(auth);
                let id = digest_id_with(self.providers.digest_alg, &text);
                if super_digest == Some(id.as_str()) {
                    self.push(Id::new("super", ""));
                    self.is_super = true;
                }
                self.push(Id::new("digest", &id));
                Ok(())
            }
            // The ip provider re-adds the connection's address, which is always present.
            "ip" => Ok(()),
            _ => Err(ErrorCode::AuthFailed),
        }
    }

    /// A completed SASL authentication as `user` (`super` too for a super user).
    pub fn add_sasl(&mut self, user: &str, is_super: bool) {
        self.push(Id::new("sasl", user));
        if is_super {
            self.push(Id::new("super", ""));
            self.is_super = true;
        }
    }

    /// The `x509` provider's hook (`tls`): the connection's certificate subject becomes
    /// `x509:<subject>`; when it is `X509AuthenticationProvider.superUser` the connection
    /// also holds `super:<subject>`, as in ZooKeeper.
    pub fn add_x509(&mut self, subject: &str, super_user: bool) {
        if super_user {
            self.push(Id::new("super", subject));
            self.is_super = true;
        }
        self.push(Id::new("x509", subject));
    }

    /// Whether this connection holds an id of one of `schemes` (enforce.auth).
    pub fn has_scheme(&self, schemes: &[String]) -> bool {
        self.ids().any(|i| schemes.contains(&i.scheme))
    }

    /// whoAmI's answer: (scheme, user) per id; digest users without the hash; the user
    /// is empty for a scheme without a provider (as ZooKeeper's `AuthUtil`).
    pub fn client_infos(&self) -> Vec<ClientInfo> {
        self.id_list()
            .into_iter()
            .map(|id| ClientInfo {
                auth_scheme: id.scheme.clone(),
                user: match id.scheme.as_str() {
                    "digest" if self.providers.digest => {
                        id.id.split(':').next().unwrap_or("").to_owned()
                    }
                    "ip" | "x509" => id.id.clone(),
                    "sasl" if self.providers.sasl => id.id.clone(),
                    _ => String::new(),
                },
            })
            .collect()
    }
}

/// `user:password` -> `user:base64(sha1(user:password))` (ZooKeeper's default
/// `digestAlg`).
pub fn digest_id(user_password: &str) -> String {
    digest_id_with(digest_alg::DigestAlg::Sha1, user_password)
}

/// `user:password` -> `user:base64(alg(user:password))` (ZooKeeper's
/// `DigestAuthenticationProvider.generateDigest` under `digestAlg`).
pub fn digest_id_with(alg: digest_alg::DigestAlg, user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = alg.hash(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Java's `String.split(":")` part count (trailing empty strings dropped).
fn java_split_count(s: &str, sep: char) -> usize {
    let parts: Vec<&str> = s.split(sep).collect();
    let trailing_empty = parts.iter().rev().take_while(|p| p.is_empty()).count();
    parts.len() - trailing_empty
}

/// Java's `Integer.parseInt` (optional sign, decimal digits, fits in i32).
fn java_parse_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

/// An IP address as bytes (4 for v4, 16 for v6), as ZooKeeper's ip provider parses it.
/// IPv6 is ZOOKEEPER-4240's (upstream 2025; 3.8 has only IPv4): docs/COMPATIBILITY.md.
fn addr_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        let a: Ipv6Addr = addr.split('%').next()?.parse().ok()?;
        return Some(a.octets().to_vec());
    }
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut b = Vec::with_capacity(4);
    for p in parts {
        let v = java_parse_int(p)?;
        if !(0..=255).contains(&v) {
            return None;
        }
        b.push(v as u8);
    }
    Some(b)
}

fn mask(b: &mut [u8], bits: usize) {
    for (i, byte) in b.iter_mut().enumerate() {
        let start = i * 8;
        if start >= bits {
            *byte = 0;
        } else if bits - start < 8 {
            *byte &= 0xffu8 << (8 - (bits - start));
        }
    }
}

/// Whether `expr` (`addr` or `addr/bits`) is a valid ip ACL id.
pub fn ip_acl_valid(expr: &str) -> bool {
    let mut it = expr.splitn(2, '/');
    let Some(b) = it.next().and_then(addr_bytes) else {
        return false;
    };
    match it.next() {
        None => true,
        Some(bits) => {
            matches!(java_parse_int(bits), Some(n) if n >= 0 && n as usize <= b.len() * 8)
        }
    }
}

/// Whether the client address `addr` matches the ip ACL `expr`.
pub fn ip_matches(addr: &str, expr: &str) -> bool {
    let mut it = expr.splitn(2, '/');
    let Some(mut acl) = it.next().and_then(addr_bytes) else {
        return false;
    };
    let bits = match it.next() {
        None => acl.len() * 8,
        Some(b) => match java_parse_int(b) {
            Some(n) if n >= 0 && n as usize <= acl.len() * 8 => n as usize,
            _ => return false,
        },
    };
    let Some(mut remote) = addr_bytes(addr) else {
        return false;
    };
    if remote.len() != acl.len() {
        // An IPv4-mapped IPv6 client against a v4 ACL.
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) if acl.len() == 4 => remote = v4.octets().to_vec(),
                _ => return false,
            },
            _ => return false,
        }
    }
    mask(&mut acl, bits);
    mask(&mut remote, bits);
    acl == remote
}

/// Whether `auth` may do `perm` on a node with `acl` (ZooKeeper's checkACL).
pub fn check_perm(acl: &[Acl], auth: &AuthInfo, perm: i32) -> bool {
    // Every way a `super` id is added sets `is_super` too.
    debug_assert!(auth.is_super || !auth.ids().any(|i| i.scheme == "super"));
    if acl.is_empty() || auth.is_super {
        return true;
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            return true;
        }
        let p = &auth.providers;
        let matched = auth.ids().any(|mine| {
            mine.scheme == id.scheme
                && match id.scheme.as_str() {
                    "digest" => p.digest && mine.id == id.id,
                    "ip" => ip_matches(&mine.id, &id.id),
                    "sasl" => p.sasl && sasl_matches(p, &mine.id, &id.id),
                    "x509" => mine.id == id.id,
                    _ => false,
                }
        });
        if matched {
            return true;
        }
    }
    false
}

/// ZooKeeper's `SASLAuthenticationProvider.matches`: the same id, SASL user `super`, or
/// any user when the ACL names `zookeeper.letAnySaslUserDoX`.
fn sasl_matches(p: &Providers, mine: &str, acl_id: &str) -> bool {
    mine == "super" || mine == acl_id || p.let_any_sasl_user_do_x.as_deref() == Some(acl_id)
}

/// Whether `id` is a valid `sasl` ACL id: a Kerberos-style name, `name`,
/// `name/host@REALM` or `name@REALM` (ZooKeeper's `KerberosName` check).
pub fn sasl_id_valid(id: &str) -> bool {
    if !id.contains('@') {
        return true;
    }
    let Some((principal, realm)) = id.split_once('@') else {
        return false;
    };
    if realm.contains('@') || realm.contains('/') {
        return false;
    }
    match principal.split_once('/') {
        None => true,
        Some((_, host)) => !host.contains('/'),
    }
}

/// Validates and normalises an ACL for create/setACL: duplicates removed (first kept),
/// `auth` expanded to the caller's digest and sasl ids; INVALIDACL for an empty list,
/// schemes without a provider, malformed ids, or `auth` when the caller has no
/// authenticated id.
pub fn fix_acl(acl: &[Acl], auth: &AuthInfo) -> Result<Vec<Acl>, ErrorCode> {
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        let id = &a.id;
        match id.scheme.as_str() {
            "world" if id.id == "anyone" => out.push(a.clone()),
            "auth" => {
                let mut any = false;
                for mine in auth.id_list() {
                    // The providers that report themselves "authenticated".
                    let authenticated = match mine.scheme.as_str() {
                        "digest" => auth.providers.digest,
                        "sasl" => auth.providers.sasl,
                        "x509" => true,
                        _ => false,
                    };
                    if authenticated {
                        any = true;
                        out.push(Acl {
                            perms: a.perms,
                            id: mine.clone(),
                        });
                    }
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if auth.providers.digest && java_split_count(&id.id, ':') == 2 => {
                out.push(a.clone())
            }
            "sasl" if auth.providers.sasl && sasl_id_valid(&id.id) => out.push(a.clone()),
            "ip" if ip_acl_valid(&id.id) => out.push(a.clone()),
            "x509" if auth.providers.x509 && crate::tls::principal::is_valid_name(&id.id) => {
                out.push(a.clone())
            }
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// getACL for a caller without ADMIN: digest ids become `user:x`.
pub fn redact_acl(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                let redacted = if a.id.id.contains(':') {
                    format!("{user}:x")
                } else {
                    a.id.id.clone()
                };
                Acl::new(a.perms, "digest", &redacted)
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::opcode::perms::*;

    #[test]
    fn digest_example_from_spec() {
        assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
    }

    #[test]
    fn add_auth_digest_and_super() {
        let mut a = AuthInfo::for_ip("127.0.0.1");
        a.add_auth("digest", b"bob:secret", None).unwrap();
        assert!(!a.is_super);
        assert_eq!(
            a.id_list()[0],
            Id::new("digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=")
        );
        a.add_auth("digest", b"bob:secret", None).unwrap();
        assert_eq!(a.ids().count(), 2, "no duplicate ids");
        let mut e = AuthInfo::for_ip("127.0.0.1");
        e.add_auth("digest", b"", None).unwrap();
        assert!(
            e.ids()
                .any(|i| *i == Id::new("digest", ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=")),
            "empty credentials are an id with an empty user: {:?}",
            e.id_list()
        );

        assert_eq!(
            a.add_auth("kerberos", b"x", None),
            Err(ErrorCode::AuthFailed)
        );
        let mut s = AuthInfo::for_ip("127.0.0.1");
        s.add_auth("digest", b"super:pw", Some(&digest_id("super:pw")))
            .unwrap();
        assert!(s.is_super);
        assert!(check_perm(
            &[Acl::new(READ, "digest", "other:xyz")],
            &s,
            ADMIN
        ));
        // ZooKeeper's whoami order (its ids' hash bins), whichever was added first.
        a.add_auth("digest", b"carol:pw", None).unwrap();
        let infos: Vec<(String, String)> = a
            .client_infos()
            .into_iter()
            .map(|i| (i.auth_scheme, i.user))
            .collect();
        let want = [("digest", "bob"), ("digest", "carol"), ("ip", "127.0.0.1")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(infos, want);
    }

    #[test]
    fn ids_are_listed_in_the_order_of_zookeepers_hash_set() {
        // Seen on ZooKeeper 3.8 (whoami with the x509 super user's certificate).
        let mut a = AuthInfo::for_ip("127.0.0.21");
        a.add_x509("CN=admin,O=rzk", true);
        let schemes: Vec<String> = a.id_list().into_iter().map(|i| i.scheme).collect();
        assert_eq!(schemes, ["x509", "super", "ip"]);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_set_bins(11), 16);
        assert_eq!(java_set_bins(12), 32);
        // Many ids: every one is kept, each once.
        let mut m = AuthInfo::for_ip("127.0.0.1");
        for i in 0..40 {
            m.add_auth("digest", format!("u{i}:pw").as_bytes(), None)
                .unwrap();
        }
        assert_eq!(m.ids().count(), 41);
    }

    /// The table lists ids exactly as re-sorting the whole list by bin after each add
    /// did (the rule ZooKeeper's order was checked against), for any number of ids.
    #[test]
    fn the_table_lists_ids_as_a_stable_sort_by_bin_after_each_add() {
        let mut reference: Vec<Id> = vec![Id::new("ip", "10.0.0.1")];
        let mut a = AuthInfo::for_ip("10.0.0.1");
        let mut x = 0x2545_f491_u32;
        for i in 0..300 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Some repeats, several schemes.
            let id = match x % 4 {
                0 => Id::new("digest", &format!("u{}:h", x % 97)),
                1 => Id::new("sasl", &format!("user{i}")),
                2 => Id::new("x509", &format!("CN=n{}", x % 13)),
                _ => Id::new("super", ""),
            };
            if !reference.contains(&id) {
                reference.push(id.clone());
                let bins = java_set_bins(reference.len());
                reference.sort_by_key(|i| java_set_bin(i, bins));
            }
            a.push(id);
            assert_eq!(a.id_list(), reference, "after {i} adds");
        }
    }

    #[test]
    fn ip_rules() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.2", "127.0.0.1"));
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!ip_matches("192.168.1.128", "192.168.1.64/26"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
        assert!(!ip_matches("1.2.3.4", "1.2.3.4/33"));
        assert!(ip_acl_valid("10.0.0.0/8"));
        assert!(!ip_acl_valid("10.0.0/8"));
        assert!(!ip_acl_valid("10.0.0.256"));
        assert!(!ip_acl_valid("10.0.0.1/x"));
        assert!(!ip_acl_valid("nonsense"));
        assert!(ip_acl_valid("::1"));
        assert!(ip_matches("::1", "::1"));
        assert!(ip_matches("::ffff:10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("::ffff:11.1.2.3", "10.0.0.0/8"));
    }

    #[test]
    fn check_perm_rules() {
        let bob = {
            let mut a = AuthInfo::for_ip("10.0.0.5");
            a.add_auth("digest", b"bob:secret", None).unwrap();
            a
        };
        let anon = AuthInfo::for_ip("127.0.0.1");
        assert!(check_perm(&[], &anon, ADMIN), "empty ACL allows all");
        let acl = vec![
            Acl::new(READ, "world", "anyone"),
            Acl::new(ALL, "digest", &digest_id("bob:secret")),
        ];
        assert!(check_perm(&acl, &anon, READ));
        assert!(!check_perm(&acl, &anon, WRITE));
        assert!(check_perm(&acl, &bob, WRITE));
        let ipacl = vec![Acl::new(CREATE, "ip", "10.0.0.0/24")];
        assert!(check_perm(&ipacl, &bob, CREATE));
        assert!(!check_perm(&ipacl, &anon, CREATE));
        assert!(!check_perm(&ipacl, &bob, DELETE));
        // READ|ADMIN: either bit suffices (getACL)
        assert!(check_perm(
            &[Acl::new(ADMIN, "world", "anyone")],
            &anon,
            READ | ADMIN
        ));
    }

    #[test]
    fn x509_acls_need_the_x509_provider() {
        // ZooKeeper 3.8 without TLS has no x509 provider: InvalidACL (tests/tls).
        let acl = [Acl::new(ALL, "x509", "CN=client,O=rzk")];
        let plain = AuthInfo::for_ip("127.0.0.1");
        assert_eq!(fix_acl(&acl, &plain), Err(ErrorCode::InvalidAcl));
        let tls = AuthInfo::for_connection(
            "127.0.0.1",
            Arc::new(Providers {
                x509: true,
                ..Providers::default()
            }),
        );
        assert_eq!(fix_acl(&acl, &tls), Ok(acl.to_vec()));
        let bad = [Acl::new(ALL, "x509", "not a name")];
        assert_eq!(fix_acl(&bad, &tls), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn fix_acl_rules() {
        let anon = AuthInfo::for_ip("127.0.0.1");
        assert_eq!(fix_acl(&[], &anon), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "auth", "")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "world", "someone")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "super", "")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "digest", "bob")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "digest", "a:b:c")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "digest", "bob:")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fix_acl(&[Acl::new(ALL, "digest", "bob:h")], &anon).is_ok());
        assert_eq!(
            fix_acl(&[Acl::new(ALL, "ip", "300.1.1.1")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = vec![
            Acl::new(ALL, "world", "anyone"),
            Acl::new(ALL, "world", "anyone"),
        ];
        assert_eq!(fix_acl(&dup, &anon).unwrap(), Acl::open_unsafe());
        let mut bob = AuthInfo::for_ip("127.0.0.1");
        bob.add_auth("digest", b"bob:secret", None).unwrap();
        let fixed = fix_acl(&[Acl::new(READ | WRITE, "auth", "")], &bob).unwrap();
        assert_eq!(
            fixed,
            vec![Acl::new(
                READ | WRITE,
                "digest",
                "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="
            )]
        );
    }

    #[test]
    fn redaction() {
        let acl = vec![
            Acl::new(ALL, "digest", "bob:hash"),
            Acl::new(READ, "ip", "1.2.3.4"),
        ];
        let r = redact_acl(&acl);
        assert_eq!(r[0].id.id, "bob:x");
        assert_eq!(r[1], acl[1]);
    }
}
