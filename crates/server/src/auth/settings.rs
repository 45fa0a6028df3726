//! Authentication settings from zoo.cfg / system properties: which schemes exist (as
//! ZooKeeper's `ProviderRegistry` would have them), `enforce.auth`, the super users, and
//! the SASL server (the JAAS `Server` section's DIGEST-MD5 users, or its Kerberos
//! principal and keytab).
//!
//! Parsed by `config.rs` (keys) and [`AuthSettings::load_jaas`] (the file). Holds
//! passwords only as [`Secret`]s, whose `Debug` is redacted.

use super::jaas::{self, JaasError};
use crate::config::keys::java_true;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rzk_sasl::Secret;

/// Which ACL schemes have a provider, and the provider switches that change how ACLs
/// match. Carried by every [`super::AuthInfo`], so ACL checks need no other state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Providers {
    /// The `digest` scheme (`DigestAuthenticationProvider.enabled`, default true).
    pub digest: bool,
    /// The `sasl` scheme (`authProvider.N=...SASLAuthenticationProvider`).
    pub sasl: bool,
    /// `zookeeper.letAnySaslUserDoX`: a `sasl` ACL naming this id matches every SASL user.
    pub let_any_sasl_user_do_x: Option<String>,
    /// The `x509` scheme (`authProvider.N=...X509AuthenticationProvider`, with TLS).
    pub x509: bool,
    /// `DigestAuthenticationProvider.digestAlg`: the hash of digest ids (default SHA1).
    pub digest_alg: crate::auth::digest_alg::DigestAlg,
}

impl Default for Providers {
    /// ZooKeeper's registry without `authProvider` keys: `ip` and `digest`.
    fn default() -> Self {
        Providers {
            digest: true,
            sasl: false,
            let_any_sasl_user_do_x: None,
            x509: false,
            digest_alg: Default::default(),
        }
    }
}

impl Providers {
    /// Whether `scheme` has a provider (`ip` always does).
    pub fn has(&self, scheme: &str) -> bool {
        match scheme {
            "ip" => true,
            "digest" => self.digest,
            "sasl" => self.sasl,
            "x509" => self.x509,
            _ => false,
        }
    }
}

/// The DIGEST-MD5 users of the JAAS server section (`user_<name>="<password>"`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SaslUsers {
    users: BTreeMap<String, Secret>,
}

impl SaslUsers {
    /// The password of `user`, if the section names it.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(Secret::expose)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SaslUsers({} users)", self.users.len())
    }
}

/// The Kerberos SASL server: the acceptor's principal and keytab (the `Krb5LoginModule`
/// options `principal` and `keyTab`) and how principals become `sasl` ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosServer {
    /// Where the service's keys are.
    pub acceptor: rzk_sasl::gssapi::Acceptor,
    /// How an authenticated principal becomes a `sasl` id.
    pub names: rzk_sasl::gssapi::NameRules,
}

/// The keys about Kerberos names, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosKeys {
    /// `zookeeper.kerberos.removeHostFromPrincipal` is exactly `true` (Java compares
    /// with `"true".equals`).
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal` is exactly `true`.
    pub remove_realm: bool,
    /// `zookeeper.security.auth_to_local`, when set.
    pub auth_to_local: Option<String>,
    /// `java.security.krb5.conf`, when set (else /etc/krb5.conf, as Java on Linux).
    pub krb5_conf: Option<PathBuf>,
    /// `java.security.krb5.realm`, when set.
    pub krb5_realm: Option<String>,
    /// `zookeeper.requireKerberosConfig` is `true`.
    pub require_config: bool,
}

/// Java's krb5.conf when `java.security.krb5.conf` is not set.
pub const DEFAULT_KRB5_CONF: &str = "/etc/krb5.conf";

impl KerberosKeys {
    /// The krb5.conf Java would read: `-Djava.security.krb5.conf`, else
    /// [`DEFAULT_KRB5_CONF`].
    fn krb5_conf_path(&self) -> PathBuf {
        self.krb5_conf
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KRB5_CONF))
    }

    /// The name rules these keys give. Errors: an `auth_to_local` other than `DEFAULT`
    /// (rzk applies no other rule, and refuses rather than map names differently), or
    /// `requireKerberosConfig` without a default realm.
    fn rules(&self) -> Result<rzk_sasl::gssapi::NameRules, AuthConfigError> {
        if let Some(r) = &self.auth_to_local {
            if r.trim() != "DEFAULT" {
                return Err(AuthConfigError::AuthToLocal(r.clone()));
            }
        }
        let default_realm = match &self.krb5_realm {
            Some(r) => Some(r.clone()),
            None => {
                let path = self.krb5_conf_path();
                // Includes followed, as Java's and the Kerberos library's readers do; a
                // file that cannot be used leaves no default realm, as in Java.
                match rzk_sasl::gssapi::krb5_conf::default_realm_of_file(&path) {
                    Ok(realm) => realm,
                    Err(e) => {
                        tracing::warn!("no Kerberos default realm (every client keeps its whole principal as its id): {e}");
                        None
                    }
                }
            }
        };
        if default_realm.is_none() && self.require_config {
            return Err(AuthConfigError::NoKerberosConfig);
        }
        Ok(rzk_sasl::gssapi::NameRules {
            // As ZooKeeper's KerberosName when Java finds no default realm.
            default_realm: default_realm.unwrap_or_default(),
            remove_host: self.remove_host,
            remove_realm: self.remove_realm,
        })
    }
}

/// Why the authentication settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// `enforce.auth.enabled=true` without schemes.
    #[error("enforce.auth.enabled is true but enforce.auth.schemes is not set")]
    EnforceWithoutSchemes,
    /// An enforcement switch set to something other than true or false. ZooKeeper reads
    /// such a value as false (`Boolean.parseBoolean`) and enforces nothing; rzk refuses
    /// to guess which was meant.
    #[error("{key}={value}: expected true or false (ZooKeeper would read it as false and enforce no authentication)")]
    NotABoolean {
        /// The key as given.
        key: &'static str,
        /// The value as given (a switch, never a secret).
        value: String,
    },
    /// `DigestAuthenticationProvider.digestAlg` names a hash rzk cannot compute.
    #[error("DigestAuthenticationProvider.digestAlg={0}: not a digest algorithm rzk can compute (SHA1, SHA-224/256/384/512, SHA-512/224, SHA-512/256, SHA3-224/256/384/512, MD5)")]
    DigestAlg(String),
    /// An enforced scheme no provider serves.
    #[error("enforce.auth.schemes: authentication scheme {0} is not available")]
    SchemeUnavailable(String),
    /// The JAAS file could not be read.
    #[error("cannot read the JAAS login configuration {path}: {source}")]
    JaasIo {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The JAAS file is malformed (the message never quotes its contents).
    #[error("JAAS login configuration {path}: {source}")]
    Jaas {
        /// The file.
        path: PathBuf,
        /// Where and what.
        source: JaasError,
    },
    /// The section `sasl.serverconfig` names is missing although it was set explicitly.
    #[error("no JAAS configuration section named '{section}' was found in {path} (zookeeper.sasl.serverconfig was set)")]
    NoSection {
        /// The section.
        section: String,
        /// The file.
        path: PathBuf,
    },
    /// `sasl.serverconfig` set without a JAAS file.
    #[error("zookeeper.sasl.serverconfig is set but no JAAS file is configured (java.security.auth.login.config)")]
    SectionWithoutFile,
    /// `zookeeper.security.auth_to_local` holds rules other than `DEFAULT`.
    #[error("zookeeper.security.auth_to_local={0}: rzk applies only the DEFAULT rule to Kerberos names; remove the key or set it to DEFAULT")]
    AuthToLocal(String),
    /// `zookeeper.requireKerberosConfig=true` and no default realm was found.
    #[error("zookeeper.requireKerberosConfig is true but no Kerberos default realm was found (java.security.krb5.realm, or default_realm in java.security.krb5.conf or /etc/krb5.conf)")]
    NoKerberosConfig,
    /// The Kerberos acceptor cannot be set up (library, keytab or principal).
    #[error("JAAS section '{section}' in {path}: Kerberos: {reason}")]
    Kerberos {
        /// The section.
        section: String,
        /// The file.
        path: PathBuf,
        /// What is wrong (never key material).
        reason: String,
    },
    /// A login module rzk cannot run.
    #[error("JAAS section '{section}' in {path}: {reason}")]
    Module {
        /// The section.
        section: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// ZooKeeper's `DigestLoginModule`, the one login module rzk runs.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
/// The JAAS section the server reads by default (`zookeeper.sasl.serverconfig`).
pub const DEFAULT_SERVER_SECTION: &str = "Server";
/// Largest JAAS file rzk reads.
pub const MAX_JAAS_BYTES: u64 = 1 << 20;

/// Everything about authentication the server needs.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Scheme providers, shared with every connection's [`super::AuthInfo`].
    pub providers: Arc<Providers>,
    /// `enforce.auth.enabled` (or `sessionRequireClientSASLAuth`): the schemes one of
    /// which a session must hold before anything but auth/SASL requests; `None` = off.
    pub enforce_schemes: Option<Vec<String>>,
    /// `java.security.auth.login.config`: the JAAS file.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`, when set.
    pub sasl_section: Option<String>,
    /// The DIGEST-MD5 users, once [`AuthSettings::load_jaas`] found the server section;
    /// `None` = no SASL server (SASL requests get an empty answer, as in ZooKeeper).
    pub sasl: Option<Arc<SaslUsers>>,
    /// The Kerberos (GSSAPI) SASL server, once [`AuthSettings::load_jaas`] found a
    /// `Krb5LoginModule` in the server section; it then takes the place of DIGEST-MD5,
    /// as in ZooKeeper (whose server runs GSSAPI when its login has a principal).
    pub kerberos: Option<Arc<KerberosServer>>,
    /// Kerberos name settings read from the keys (used once a `Krb5LoginModule` is found).
    pub kerberos_names: KerberosKeys,
    /// `zookeeper.superUser` / `zookeeper.superUser.*`: SASL users granted `super`.
    pub super_users: Vec<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password of SASL user
    /// `super` (when the section names that user).
    pub super_password: Option<Secret>,
    /// `zookeeper.allowSaslFailedClients`.
    pub allow_sasl_failed_clients: bool,
}

/// Collects the authentication keys while zoo.cfg is parsed.
#[derive(Debug, Default)]
pub struct AuthKeys {
    digest_enabled: Option<String>,
    digest_alg: Option<String>,
    /// `authProvider.N` by key: a later line of one key replaces the earlier one, as a
    /// system property does in ZooKeeper (they do not add up).
    provider_classes: std::collections::BTreeMap<String, String>,
    /// `superUser` / `superUser.*` by key, the same way.
    super_users: std::collections::BTreeMap<String, String>,
    enforce_enabled: Option<String>,
    enforce_schemes: Option<String>,
    require_sasl: Option<String>,
    settings: AuthSettings,
    let_any: Option<String>,
    /// `secureClientPort` is set: ZooKeeper's TLS connection factory registers the x509
    /// provider, so `x509` ACLs are valid even without an `authProvider` entry.
    secure_client_port: bool,
}

impl AuthKeys {
    /// Takes one key (without the `zookeeper.` prefix) if it is an authentication key;
    /// false otherwise.
    pub fn take(&mut self, bare: &str, value: &str) -> bool {
        let v = value.trim();
        if bare == "secureClientPort" {
            // Seen, not taken: the TLS settings read it too.
            self.secure_client_port = !v.is_empty();
            return false;
        }
        match bare {
            "DigestAuthenticationProvider.enabled" => self.digest_enabled = Some(v.to_owned()),
            "DigestAuthenticationProvider.digestAlg" => self.digest_alg = Some(v.to_owned()),
            "enforce.auth.enabled" => self.enforce_enabled = Some(v.to_owned()),
            "enforce.auth.schemes" => self.enforce_schemes = Some(v.to_owned()),
            "sessionRequireClientSASLAuth" => self.require_sasl = Some(v.to_owned()),
            "letAnySaslUserDoX" => self.let_any = Some(value.to_owned()),
            "java.security.auth.login.config" => self.settings.jaas_file = Some(PathBuf::from(v)),
            "sasl.serverconfig" => self.settings.sasl_section = Some(v.to_owned()),
            "SASLAuthenticationProvider.superPassword" => {
                self.settings.super_password = Some(Secret::new(value))
            }
            "allowSaslFailedClients" => self.settings.allow_sasl_failed_clients = java_true(v),
            "kerberos.removeHostFromPrincipal" => {
                self.settings.kerberos_names.remove_host = value == "true"
            }
            "kerberos.removeRealmFromPrincipal" => {
                self.settings.kerberos_names.remove_realm = value == "true"
            }
            "security.auth_to_local" => {
                self.settings.kerberos_names.auth_to_local = Some(value.to_owned())
            }
            "java.security.krb5.conf" => {
                self.settings.kerberos_names.krb5_conf = Some(PathBuf::from(v))
            }
            "java.security.krb5.realm" => {
                self.settings.kerberos_names.krb5_realm = Some(v.to_owned())
            }
            "requireKerberosConfig" => {
                self.settings.kerberos_names.require_config = value == "true"
            }
            _ if bare == "superUser" || bare.starts_with("superUser.") => {
                self.super_users.insert(bare.to_owned(), value.to_owned());
            }
            _ if bare.starts_with("authProvider.") => {
                self.provider_classes.insert(bare.to_owned(), v.to_owned());
            }
            _ => return false,
        }
        true
    }

    /// The settings, checked as ZooKeeper's `AuthenticationHelper` checks them: an
    /// enforced scheme must have a provider.
    pub fn finish(mut self) -> Result<AuthSettings, AuthConfigError> {
        use crate::config::keys::{DIGEST_PROVIDER, SASL_PROVIDER, X509_PROVIDER};
        let mut s = self.settings;
        s.super_users = std::mem::take(&mut self.super_users)
            .into_values()
            .collect();
        let has = |class: &str| self.provider_classes.values().any(|c| c == class);
        // An explicit authProvider entry registers the provider even when the digest
        // switch is off, as in ZooKeeper.
        let digest = self.digest_enabled.as_deref().is_none_or(java_true) || has(DIGEST_PROVIDER);
        let providers = Providers {
            digest,
            sasl: has(SASL_PROVIDER),
            let_any_sasl_user_do_x: self.let_any,
            // Named by authProvider, or registered by the TLS client port. Without either
            // ZooKeeper 3.8 answers an x509 ACL with InvalidACL (tests/tls/tls_test.py).
            x509: has(X509_PROVIDER) || self.secure_client_port,
            digest_alg: match self.digest_alg.as_deref() {
                None => Default::default(),
                Some(name) => crate::auth::digest_alg::DigestAlg::from_java_name(name)
                    .ok_or_else(|| AuthConfigError::DigestAlg(name.to_owned()))?,
            },
        };
        for (key, v) in [
            ("sessionRequireClientSASLAuth", &self.require_sasl),
            ("enforce.auth.enabled", &self.enforce_enabled),
        ] {
            // Empty reads as false in both (templates leave the value out).
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return Err(AuthConfigError::NotABoolean {
                        key,
                        value: v.to_owned(),
                    });
                }
            }
        }
        let enforce = if self.require_sasl.as_deref().is_some_and(java_true) {
            Some(vec!["sasl".to_owned()])
        } else if self.enforce_enabled.as_deref().is_some_and(java_true) {
            let schemes: Vec<String> = self
                .enforce_schemes
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if schemes.is_empty() {
                return Err(AuthConfigError::EnforceWithoutSchemes);
            }
            Some(schemes)
        } else {
            None
        };
        if let Some(schemes) = &enforce {
            if let Some(missing) = schemes.iter().find(|s| !providers.has(s)) {
                return Err(AuthConfigError::SchemeUnavailable(missing.clone()));
            }
        }
        s.providers = Arc::new(providers);
        s.enforce_schemes = enforce;
        Ok(s)
    }
}

/// What loading the JAAS file found, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JaasOutcome {
    /// No JAAS file configured.
    NoFile,
    /// The file has no server section: no SASL server.
    NoServerSection {
        /// The section looked for.
        section: String,
    },
    /// The SASL server is on with this many users.
    Users(usize),
    /// The SASL server runs GSSAPI (Kerberos) as this principal.
    Kerberos(String),
}

impl AuthSettings {
    /// Whether SASL authentication is required (`enforce.auth.schemes` has `sasl`).
    pub fn sasl_required(&self) -> bool {
        self.enforce_schemes
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == "sasl"))
    }

    /// Whether `user` (a SASL authorization id) is a super user.
    pub fn is_sasl_super_user(&self, user: &str) -> bool {
        !user.is_empty() && self.super_users.iter().any(|u| u == user)
    }

    /// The password of SASL user `user`: `superPassword` for `super` when set (and the
    /// section names `super`), else the section's.
    pub fn sasl_password(&self, user: &str) -> Option<&str> {
        let users = self.sasl.as_ref()?;
        let pw = users.password(user)?;
        match (&self.super_password, user) {
            (Some(sp), "super") => Some(sp.expose()),
            _ => Some(pw),
        }
    }

    /// Reads the JAAS file (if configured) and sets up the SASL server from its server
    /// section, as ZooKeeper's `ServerCnxnFactory.configureSaslLogin` does: a missing or
    /// malformed file stops start-up; a file without the section means no SASL server
    /// (unless the section was named explicitly). Kerberos and other login modules are
    /// refused. Never puts the file's contents in an error.
    pub fn load_jaas(&mut self) -> Result<JaasOutcome, AuthConfigError> {
        let Some(path) = self.jaas_file.clone() else {
            if self.sasl_section.is_some() {
                return Err(AuthConfigError::SectionWithoutFile);
            }
            return Ok(JaasOutcome::NoFile);
        };
        let text = read_limited(&path).map_err(|source| AuthConfigError::JaasIo {
            path: path.clone(),
            source,
        })?;
        let file = jaas::parse(&text).map_err(|source| AuthConfigError::Jaas {
            path: path.clone(),
            source,
        })?;
        let section_name = self
            .sasl_section
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER_SECTION.to_owned());
        let Some(section) = file.section(&section_name) else {
            if self.sasl_section.is_some() {
                return Err(AuthConfigError::NoSection {
                    section: section_name,
                    path,
                });
            }
            return Ok(JaasOutcome::NoServerSection {
                section: section_name,
            });
        };
        if let Some(krb5) = section.modules.iter().find(|m| m.is_kerberos()) {
            let fail = |reason: String| AuthConfigError::Kerberos {
                section: section_name.clone(),
                path: path.clone(),
                reason,
            };
            let acceptor = kerberos_acceptor(krb5).map_err(fail)?;
            let names = self.kerberos_names.rules()?;
            // Krb5LoginModule's isInitiator (default true) logs in to the KDC at
            // start-up; false only reads the keytab, and so does rzk then.
            let initiator = krb5
                .option("isInitiator")
                .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
            let checked = if initiator {
                acceptor.check_with_kdc()
            } else {
                acceptor.check()
            };
            let krb5_conf = self.kerberos_names.krb5_conf_path();
            checked.map_err(|e| {
                fail(format!(
                    "cannot use principal {} from keyTab {}: {e} (Kerberos settings from {}: as Java, rzk reads -Djava.security.krb5.conf from SERVER_JVMFLAGS, else /etc/krb5.conf, never KRB5_CONFIG)",
                    acceptor.principal,
                    acceptor.keytab.display(),
                    krb5_conf.display()
                ))
            })?;
            let principal = acceptor.principal.clone();
            self.kerberos = Some(Arc::new(KerberosServer { acceptor, names }));
            return Ok(JaasOutcome::Kerberos(principal));
        }
        let users = digest_users(section).map_err(|reason| AuthConfigError::Module {
            section: section_name,
            path,
            reason,
        })?;
        let n = users.len();
        self.sasl = Some(Arc::new(SaslUsers { users }));
        Ok(JaasOutcome::Users(n))
    }
}

/// The acceptor a server section's `Krb5LoginModule` describes. ZooKeeper's server logs
/// in with the module and accepts as `<service>@<host>` split from its principal
/// `service/host@REALM`; rzk reads the same keys from the keytab through the system's
/// Kerberos library. Errors (text for [`AuthConfigError::Kerberos`]): the options a
/// server needs (`useKeyTab=true`, `keyTab`, `storeKey=true`, a `principal` of that
/// form, the realm optional) are missing, which ZooKeeper would find only at the first
/// client.
fn kerberos_acceptor(m: &jaas::LoginModule) -> Result<rzk_sasl::gssapi::Acceptor, String> {
    let opt = |k: &str| m.option(k).map(str::to_owned);
    let is_true = |k: &str| opt(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !is_true("useKeyTab") {
        return Err("Krb5LoginModule needs useKeyTab=true: rzk reads the service's keys from keyTab (it has no ticket cache or password prompt for a server)".into());
    }
    if !is_true("storeKey") {
        return Err(
            "Krb5LoginModule needs storeKey=true: a server accepts with the keys it stores".into(),
        );
    }
    let keytab = opt("keyTab")
        .filter(|k| !k.is_empty())
        .ok_or("Krb5LoginModule has no keyTab")?;
    let principal = opt("principal")
        .filter(|p| !p.is_empty())
        .ok_or("Krb5LoginModule has no principal")?;
    // service/host, with or without @REALM (without: the default realm, as Java's
    // login completes it).
    let host = principal
        .split_once('/')
        .filter(|(service, _)| !service.is_empty())
        .map(|(_, rest)| rest.split_once('@').map_or(rest, |(h, _)| h));
    if host.is_none_or(str::is_empty) {
        return Err(format!(
            "principal {principal} is not of the form service/host[@REALM], which ZooKeeper's server needs"
        ));
    }
    Ok(rzk_sasl::gssapi::Acceptor {
        principal,
        keytab: PathBuf::from(keytab),
    })
}

/// The DIGEST-MD5 users of a JAAS server section: its `user_<name>="<password>"` options
/// (the server section of the client port, or the quorum's `QuorumServer`). Errors say
/// why a login module is refused (Kerberos, or any module but `DigestLoginModule`).
pub(crate) fn digest_users(section: &jaas::Section) -> Result<BTreeMap<String, Secret>, String> {
    let mut users = BTreeMap::new();
    for m in &section.modules {
        let class = m.class.as_str();
        if m.is_kerberos() {
            return Err(format!(
                "login module {class}: Kerberos (GSSAPI) is supported on the client port only, not between servers; use {DIGEST_LOGIN_MODULE} (SASL DIGEST-MD5)"
            ));
        }
        if class != DIGEST_LOGIN_MODULE {
            return Err(format!(
                "login module {class} is not supported by rzk; only {DIGEST_LOGIN_MODULE} (SASL DIGEST-MD5) is"
            ));
        }
        for (k, v) in &m.options {
            if let Some(user) = k.strip_prefix("user_") {
                users.insert(user.to_owned(), v.clone());
            }
        }
    }
    Ok(users)
}

/// The JAAS file at `path`, at most [`MAX_JAAS_BYTES`] of it.
pub(crate) fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut s = String::new();
    f.take(MAX_JAAS_BYTES + 1).read_to_string(&mut s)?;
    if s.len() as u64 > MAX_JAAS_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_JAAS_BYTES} bytes"),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Result<AuthSettings, AuthConfigError> {
        let mut k = AuthKeys::default();
        for (a, b) in pairs {
            // secureClientPort is seen but left to the TLS settings.
            assert_eq!(k.take(a, b), *a != "secureClientPort", "{a}");
        }
        k.finish()
    }

    #[test]
    fn providers_and_enforcement() {
        let s = keys(&[]).unwrap();
        assert_eq!(*s.providers, Providers::default());
        assert!(s.enforce_schemes.is_none());
        let s = keys(&[(
            "authProvider.1",
            "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        )])
        .unwrap();
        assert!(s.providers.sasl);
        let s = keys(&[
            ("enforce.auth.enabled", "true"),
            ("enforce.auth.schemes", " digest , ip "),
        ])
        .unwrap();
        assert_eq!(s.enforce_schemes, Some(vec!["digest".into(), "ip".into()]));
        assert!(!s.sasl_required());
        assert!(matches!(
            keys(&[("enforce.auth.enabled", "true")]),
            Err(AuthConfigError::EnforceWithoutSchemes)
        ));
        assert!(matches!(
            keys(&[("enforce.auth.enabled", "true"), ("enforce.auth.schemes", "sasl")]),
            Err(AuthConfigError::SchemeUnavailable(s)) if s == "sasl"
        ));
        let s = keys(&[
            ("sessionRequireClientSASLAuth", "true"),
            (
                "authProvider.sasl",
                "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            ),
        ])
        .unwrap();
        assert!(s.sasl_required());
        let s = keys(&[("DigestAuthenticationProvider.enabled", "false")]).unwrap();
        assert!(!s.providers.digest);
        assert!(matches!(
            keys(&[
                ("DigestAuthenticationProvider.enabled", "false"),
                ("enforce.auth.enabled", "true"),
                ("enforce.auth.schemes", "digest")
            ]),
            Err(AuthConfigError::SchemeUnavailable(_))
        ));
        let s = keys(&[("superUser", "alice"), ("superUser.2", "bob")]).unwrap();
        assert!(s.is_sasl_super_user("alice") && s.is_sasl_super_user("bob"));
        assert!(!s.is_sasl_super_user("carol") && !s.is_sasl_super_user(""));
        // x509: named by authProvider or registered by a TLS client port, else absent.
        assert!(!keys(&[]).unwrap().providers.x509);
        assert!(
            keys(&[("secureClientPort", "2281")])
                .unwrap()
                .providers
                .x509
        );
        let s = keys(&[(
            "authProvider.x509",
            "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        )])
        .unwrap();
        assert!(s.providers.x509);
    }

    #[test]
    fn jaas_loading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("jaas.conf");
        std::fs::write(
            &p,
            "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_super=\"adminpw\"\n user_bob=\"bobpw\";\n};\nClient { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"bob\" password=\"bobpw\"; };\n",
        )
        .unwrap();
        let mut s = keys(&[
            ("java.security.auth.login.config", p.to_str().unwrap()),
            ("SASLAuthenticationProvider.superPassword", "override"),
        ])
        .unwrap();
        assert_eq!(s.load_jaas().unwrap(), JaasOutcome::Users(2));
        assert_eq!(s.sasl_password("bob"), Some("bobpw"));
        assert_eq!(s.sasl_password("super"), Some("override"));
        assert_eq!(s.sasl_password("eve"), None);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("bobpw") && !dbg.contains("override"), "{dbg}");

        // Another section name, explicitly set and missing: refused.
        let mut s = keys(&[
            ("java.security.auth.login.config", p.to_str().unwrap()),
            ("sasl.serverconfig", "Other"),
        ])
        .unwrap();
        assert!(matches!(
            s.load_jaas(),
            Err(AuthConfigError::NoSection { .. })
        ));

        // Kerberos: the options a server needs are checked at start-up, and so is the
        // keytab (here missing), each error naming what is wrong.
        for (options, want) in [
            ("keyTab=\"/k\" principal=\"zk/host@R\" storeKey=true", "useKeyTab=true"),
            ("useKeyTab=true keyTab=\"/k\" principal=\"zk/host@R\"", "storeKey=true"),
            ("useKeyTab=true storeKey=true principal=\"zk/host@R\"", "no keyTab"),
            ("useKeyTab=true storeKey=true keyTab=\"/k\"", "no principal"),
            ("useKeyTab=true storeKey=true keyTab=\"/k\" principal=\"zk@R\"", "service/host[@REALM]"),
            ("useKeyTab=true storeKey=true keyTab=\"/k\" principal=\"zk/@R\"", "service/host[@REALM]"),
            ("useKeyTab=true storeKey=true keyTab=\"/nonexistent.keytab\" principal=\"zk/host@R\"", "/nonexistent.keytab"),
        ] {
            std::fs::write(
                &p,
                format!("Server {{ com.sun.security.auth.module.Krb5LoginModule required {options}; }};"),
            )
            .unwrap();
            let mut s = keys(&[("java.security.auth.login.config", p.to_str().unwrap())]).unwrap();
            let e = s.load_jaas().unwrap_err().to_string();
            assert!(e.contains("Kerberos") && e.contains(want), "{options}: {e}");
            assert!(s.kerberos.is_none());
        }

        // No server section: no SASL server.
        std::fs::write(&p, "Client { x required; };").unwrap();
        let mut s = keys(&[("java.security.auth.login.config", p.to_str().unwrap())]).unwrap();
        assert!(matches!(
            s.load_jaas().unwrap(),
            JaasOutcome::NoServerSection { .. }
        ));
        assert!(s.sasl.is_none());

        // Missing file.
        let mut s = keys(&[(
            "java.security.auth.login.config",
            dir.path().join("nope").to_str().unwrap(),
        )])
        .unwrap();
        assert!(matches!(s.load_jaas(), Err(AuthConfigError::JaasIo { .. })));
    }

    #[test]
    fn kerberos_name_keys() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("krb5.conf");
        std::fs::write(&conf, "[libdefaults]\n default_realm = EXAMPLE.COM\n").unwrap();
        let conf = conf.to_str().unwrap();
        let s = keys(&[
            ("java.security.krb5.conf", conf),
            ("kerberos.removeHostFromPrincipal", "true"),
            // Java compares with "true".equals: anything else is false.
            ("kerberos.removeRealmFromPrincipal", "TRUE"),
        ])
        .unwrap();
        let rules = s.kerberos_names.rules().unwrap();
        assert_eq!(rules.default_realm, "EXAMPLE.COM");
        assert!(rules.remove_host && !rules.remove_realm);
        let s = keys(&[
            ("java.security.krb5.conf", conf),
            ("java.security.krb5.realm", "R2"),
        ])
        .unwrap();
        assert_eq!(s.kerberos_names.rules().unwrap().default_realm, "R2");
        let s = keys(&[("security.auth_to_local", " DEFAULT ")]).unwrap();
        assert!(s.kerberos_names.rules().is_ok());
        let s = keys(&[("security.auth_to_local", "RULE:[1:$1@$0](.*@X)s/@.*//")]).unwrap();
        assert!(matches!(
            s.kerberos_names.rules(),
            Err(AuthConfigError::AuthToLocal(_))
        ));
        let nowhere = dir.path().join("none.conf");
        let s = keys(&[
            ("java.security.krb5.conf", nowhere.to_str().unwrap()),
            ("requireKerberosConfig", "true"),
        ])
        .unwrap();
        assert!(matches!(
            s.kerberos_names.rules(),
            Err(AuthConfigError::NoKerberosConfig)
        ));
    }
}
