//! SASL login for client connections, as ZooKeeper's Java client (`ZooKeeperSaslClient`)
//! does it: right after each connection's handshake, before any other request, DIGEST-MD5
//! with the credentials of a JAAS `Client` section's `DigestLoginModule`, or GSSAPI
//! (Kerberos) when the section logs in with `Krb5LoginModule`.
//!
//! [`SaslOptions`] says who to log in as: given directly ([`SaslOptions::digest`]), read
//! from a JAAS file ([`SaslOptions::from_jaas_file`]) or found the way zkCli finds it,
//! from `-Djava.security.auth.login.config=...` in `CLIENT_JVMFLAGS` / `JVMFLAGS`
//! ([`SaslOptions::from_env`]). The mechanisms are `rzk_sasl`'s (Kerberos through the
//! system's GSS-API library, opened only when a login needs it); the exchange on the
//! socket is the session task's. The password is a [`Secret`]: never printed, logged or
//! put in an error.
//!
//! Kerberos asks for the service principal Java's client asks for
//! (`SaslServerPrincipal`): `zookeeper.server.principal` when set, else
//! `<zookeeper.sasl.client.username, default zookeeper>/<host>[@zookeeper.server.realm]`,
//! the host being the server's address looked up in reverse when
//! `zookeeper.sasl.client.canonicalize.hostname` is true (the default) and it has a
//! name, else the host as written in the connect string (an address written as such:
//! its reverse name); a principal without a realm gets the library's default realm.

use std::path::{Path, PathBuf};

use rzk_sasl::digest_md5::DigestMd5Client;
use rzk_sasl::gssapi::{GssapiClient, InitCtx, Initiator};
pub use rzk_sasl::Secret;

use crate::error::{Error, Result};

/// The system property naming the JAAS file (`java.security.auth.login.config`).
pub const JAAS_CONFIG_PROPERTY: &str = "java.security.auth.login.config";
/// The system property naming the client section (`zookeeper.sasl.clientconfig`).
pub const CLIENT_SECTION_PROPERTY: &str = "zookeeper.sasl.clientconfig";
/// The system property that turns client SASL off when `false` (`zookeeper.sasl.client`).
pub const CLIENT_SASL_PROPERTY: &str = "zookeeper.sasl.client";
/// The client section ZooKeeper reads when none is named.
pub const DEFAULT_CLIENT_SECTION: &str = "Client";
/// The system property naming the server's whole principal (`zookeeper.server.principal`).
pub const SERVER_PRINCIPAL_PROPERTY: &str = "zookeeper.server.principal";
/// The system property naming the service part of it (`zookeeper.sasl.client.username`).
pub const SERVICE_PROPERTY: &str = "zookeeper.sasl.client.username";
/// The system property naming its realm (`zookeeper.server.realm`).
pub const SERVER_REALM_PROPERTY: &str = "zookeeper.server.realm";
/// The system property that turns the reverse lookup of the server's address off.
pub const CANONICALIZE_PROPERTY: &str = "zookeeper.sasl.client.canonicalize.hostname";
/// The service name when [`SERVICE_PROPERTY`] is not set.
pub const DEFAULT_SERVICE: &str = "zookeeper";

/// Who a session logs in as with SASL, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslOptions {
    login: Login,
    /// [`SERVICE_PROPERTY`].
    service: String,
    /// [`CANONICALIZE_PROPERTY`].
    canonicalize: bool,
    /// [`SERVER_PRINCIPAL_PROPERTY`].
    server_principal: Option<String>,
    /// [`SERVER_REALM_PROPERTY`].
    server_realm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    Digest { user: String, password: Secret },
    Kerberos(Initiator),
}

/// One connection's SASL mechanism, made by [`SaslOptions::mechanism`].
#[derive(Debug)]
pub(crate) enum ClientMechanism {
    /// DIGEST-MD5 with a user name and password.
    Digest(DigestMd5Client),
    /// Kerberos: the context already initiated (its first token made off the runtime,
    /// as that is when the library asks the KDC for tickets).
    Gssapi {
        /// The exchange.
        mech: Box<GssapiClient<InitCtx>>,
        /// The principal, for messages.
        who: String,
        /// The first token, until sent.
        first: Option<Vec<u8>>,
    },
}

impl ClientMechanism {
    /// The first token.
    pub(crate) fn initial_token(&mut self) -> std::result::Result<Vec<u8>, String> {
        match self {
            ClientMechanism::Digest(m) => Ok(m.initial_token()),
            ClientMechanism::Gssapi { first, .. } => Ok(first.take().unwrap_or_default()),
        }
    }

    /// The answer to the server's `token`; `None` when the login is complete. The
    /// Kerberos steps after the first are local (no KDC).
    pub(crate) fn step(&mut self, token: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
        match self {
            ClientMechanism::Digest(m) => m.step(token).map_err(|e| e.to_string()),
            ClientMechanism::Gssapi { mech, .. } => mech.step(token).map_err(|e| e.to_string()),
        }
    }

    /// Who logs in, for messages.
    pub(crate) fn user(&self) -> &str {
        match self {
            ClientMechanism::Digest(m) => m.user(),
            ClientMechanism::Gssapi { who, .. } => who,
        }
    }
}

/// The `-Dname=value` system properties of JVM flags, in order (later ones win, as in a
/// JVM's command line).
fn jvm_properties(flags: &str) -> Vec<(&str, &str)> {
    flags
        .split_whitespace()
        .filter_map(|t| t.strip_prefix("-D"))
        .map(|t| t.split_once('=').unwrap_or((t, "")))
        .collect()
}

impl SaslOptions {
    fn with(login: Login) -> SaslOptions {
        SaslOptions {
            login,
            service: DEFAULT_SERVICE.to_owned(),
            canonicalize: true,
            server_principal: None,
            server_realm: None,
        }
    }

    /// Logs in as `user` with `password` (DIGEST-MD5).
    pub fn digest(user: impl Into<String>, password: Secret) -> SaslOptions {
        SaslOptions::with(Login::Digest {
            user: user.into(),
            password,
        })
    }

    /// Logs in with Kerberos (GSSAPI) from `initiator`'s keytab or ticket cache.
    pub fn kerberos(initiator: Initiator) -> SaslOptions {
        SaslOptions::with(Login::Kerberos(initiator))
    }

    /// The user name (DIGEST-MD5), or the Kerberos principal when configured.
    pub fn user(&self) -> &str {
        match &self.login {
            Login::Digest { user, .. } => user,
            Login::Kerberos(i) => i.principal().unwrap_or(""),
        }
    }

    /// `DIGEST-MD5` or `GSSAPI`.
    pub fn mechanism_name(&self) -> &'static str {
        match self.login {
            Login::Digest { .. } => "DIGEST-MD5",
            Login::Kerberos(_) => "GSSAPI",
        }
    }

    /// The login of section `section` of the JAAS file `path`: its `Krb5LoginModule`
    /// (Kerberos) if it has one, else its `DigestLoginModule`'s `username` and
    /// `password`.
    pub fn from_jaas_file(path: &Path, section: &str) -> Result<SaslOptions> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Sasl(format!("cannot read JAAS file {}: {e}", path.display())))?;
        let file = rzk_sasl::jaas::parse(&text)
            .map_err(|e| Error::Sasl(format!("JAAS file {}: {e}", path.display())))?;
        let krb5 = file
            .section(section)
            .and_then(|s| s.modules.iter().find(|m| m.is_kerberos()));
        if let Some(m) = krb5 {
            return kerberos_login(m).map(SaslOptions::kerberos).map_err(|why| {
                Error::Sasl(format!(
                    "JAAS file {}, section {section}: {why}",
                    path.display()
                ))
            });
        }
        let login = file
            .digest_login(section)
            .map_err(|e| Error::Sasl(format!("JAAS file {}: {e}", path.display())))?;
        Ok(SaslOptions::digest(login.username, login.password))
    }

    /// The service principal to ask a ticket for, for the server at `host` (as written
    /// in the connect string, `host:port`) whose address is `ip` (see the module's
    /// documentation).
    pub async fn service_principal(&self, host: &str, ip: Option<std::net::IpAddr>) -> String {
        if let Some(p) = &self.server_principal {
            return p.clone();
        }
        let written = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        // Java's InetSocketAddress.getHostName: the name as written, or for an address
        // written as such its reverse name (the address's text if it has none).
        let reverse = |ip: std::net::IpAddr| async move {
            tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok())
                .await
                .ok()
                .flatten()
        };
        let written_ip = written.parse::<std::net::IpAddr>().ok();
        // The connected address is looked up once, for both uses below.
        let peer_name = match ip {
            Some(ip) if self.canonicalize || written_ip == Some(ip) => reverse(ip).await,
            _ => None,
        };
        let host_name = match written_ip {
            Some(w) if Some(w) == ip => peer_name.clone().unwrap_or(written),
            Some(w) => reverse(w).await.unwrap_or(written),
            None => written,
        };
        // canonicalize (the default): the connected address's canonical name, unless
        // it has none (Java then keeps the host name rather than use a bare address).
        let name = match (self.canonicalize, ip, peer_name) {
            (true, Some(ip), Some(c)) if c != ip.to_string() => c,
            _ => host_name,
        };
        let mut p = format!("{}/{}", self.service, name.to_ascii_lowercase());
        if let Some(r) = &self.server_realm {
            p.push('@');
            p.push_str(r);
        }
        p
    }

    /// A fresh mechanism for one connection's login to `host` at `ip`. Errors (text):
    /// the Kerberos library or credentials cannot be had.
    pub(crate) async fn mechanism(
        &self,
        host: &str,
        ip: Option<std::net::IpAddr>,
    ) -> std::result::Result<ClientMechanism, String> {
        match &self.login {
            Login::Digest { user, password } => Ok(ClientMechanism::Digest(DigestMd5Client::new(
                user.clone(),
                password.clone(),
            ))),
            Login::Kerberos(initiator) => {
                let target = self.service_principal(host, ip).await;
                let who = initiator.principal().unwrap_or("(ticket cache)").to_owned();
                let authzid = initiator.principal().unwrap_or("").to_owned();
                let initiator = initiator.clone();
                // The library talks to the KDC (and DNS) here, blocking: off the
                // runtime's threads, so other sessions and pings go on meanwhile.
                let made = tokio::task::spawn_blocking(move || {
                    let ctx = initiator
                        .start(&target)
                        .map_err(|e| (target.clone(), e.to_string()))?;
                    let mut mech = GssapiClient::new(ctx, authzid);
                    let first = mech.initial_token().map_err(|e| (target, e.to_string()))?;
                    Ok::<_, (String, String)>((mech, first))
                })
                .await
                .map_err(|e| format!("Kerberos login of {who}: {e}"))?;
                let (mech, first) = made
                    .map_err(|(target, e)| format!("Kerberos login of {who} for {target}: {e}"))?;
                Ok(ClientMechanism::Gssapi {
                    mech: Box::new(mech),
                    who,
                    first: Some(first),
                })
            }
        }
    }

    /// What a Java client started with these JVM flags would log in as: `None` without
    /// `java.security.auth.login.config` or with `zookeeper.sasl.client=false`
    /// ([`Error::Sasl`] for a value other than `true`/`false`, any case); else the
    /// section named by `zookeeper.sasl.clientconfig` (default `Client`) of that file,
    /// which must exist (ZooKeeper carries on without SASL there; rzk refuses to).
    pub fn from_jvm_flags(flags: &str) -> Result<Option<SaslOptions>> {
        let props: Vec<(String, String)> = jvm_properties(flags)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        SaslOptions::from_properties(&props)
    }

    /// [`SaslOptions::from_jvm_flags`] of client properties given as (name, value) in
    /// order, later ones winning: JVM flags followed by a `ZKClientConfig` file's keys
    /// (zkCli's `-client-configuration`), which override them as in ZooKeeper.
    pub fn from_properties(props: &[(String, String)]) -> Result<Option<SaslOptions>> {
        let last = |key: &str| {
            props
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        match last(CLIENT_SASL_PROPERTY).map(str::trim) {
            None => {}
            Some(v) if v.eq_ignore_ascii_case("true") => {}
            Some(v) if v.eq_ignore_ascii_case("false") => return Ok(None),
            // Java's Boolean.valueOf reads `yes` or `1` as false and turns SASL off,
            // which is not what such a value asks for: refused, naming the key.
            Some(v) => {
                return Err(Error::Sasl(format!(
                    "{CLIENT_SASL_PROPERTY}={v}: expected true or false"
                )))
            }
        }
        let Some(file) = last(JAAS_CONFIG_PROPERTY) else {
            return Ok(None);
        };
        let section = last(CLIENT_SECTION_PROPERTY).unwrap_or(DEFAULT_CLIENT_SECTION);
        let mut o = SaslOptions::from_jaas_file(&PathBuf::from(file), section)?;
        if let Some(s) = last(SERVICE_PROPERTY) {
            o.service = s.to_owned();
        }
        // Java reads it with Boolean.parseBoolean: only `true` (any case) is true.
        o.canonicalize =
            last(CANONICALIZE_PROPERTY).is_none_or(|v| v.trim().eq_ignore_ascii_case("true"));
        o.server_principal = last(SERVER_PRINCIPAL_PROPERTY).map(str::to_owned);
        o.server_realm = last(SERVER_REALM_PROPERTY).map(str::to_owned);
        Ok(Some(o))
    }

    /// [`SaslOptions::from_jvm_flags`] of `$CLIENT_JVMFLAGS $JVMFLAGS`, the flags zkCli.sh
    /// hands its JVM.
    ///
    /// Kerberos: the system's Kerberos library reads `KRB5_CONFIG` (or /etc/krb5.conf),
    /// not `-Djava.security.krb5.conf`; a program that wants the flag's file sets
    /// `KRB5_CONFIG` to it before its threads start (as `rzk shell` does).
    pub fn from_env() -> Result<Option<SaslOptions>> {
        SaslOptions::from_jvm_flags(&client_jvm_flags_from_env())
    }
}

/// The JVM flags zkCli.sh hands its JVM: `$CLIENT_JVMFLAGS $JVMFLAGS`, as one string.
pub fn client_jvm_flags_from_env() -> String {
    ["CLIENT_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The credentials a JAAS client section's `Krb5LoginModule` names: a keytab
/// (`useKeyTab=true`, `keyTab`, `principal`) or a ticket cache (`useTicketCache=true`,
/// optional `ticketCache` and `principal`); Java tries the cache first when both are on,
/// rzk the keytab. Errors: neither is usable (Java would prompt for a password, which
/// rzk does not).
fn kerberos_login(m: &rzk_sasl::jaas::LoginModule) -> std::result::Result<Initiator, String> {
    let opt = |k: &str| m.option(k).filter(|v| !v.is_empty()).map(str::to_owned);
    let on = |k: &str| opt(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if on("useKeyTab") {
        let keytab = opt("keyTab").ok_or("Krb5LoginModule has useKeyTab=true but no keyTab")?;
        // Checked here: the library's own error for a missing client keytab speaks of a
        // credentials cache, which misleads.
        if let Err(e) = std::fs::metadata(&keytab) {
            return Err(format!("Krb5LoginModule keyTab {keytab}: {e}"));
        }
        let principal =
            opt("principal").ok_or("Krb5LoginModule has useKeyTab=true but no principal")?;
        return Ok(Initiator::Keytab {
            principal,
            keytab: PathBuf::from(keytab),
        });
    }
    if on("useTicketCache") {
        return Ok(Initiator::TicketCache {
            principal: opt("principal"),
            cache: opt("ticketCache"),
        });
    }
    Err("Krb5LoginModule needs useKeyTab=true (with keyTab and principal) or useTicketCache=true: rzk does not prompt for a password".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_debug_hides_the_password() {
        let b = crate::Client::builder("127.0.0.1:2181").sasl_digest("bob", "pw-9f1c");
        let shown = format!("{b:?}");
        assert!(
            shown.contains("bob") && !shown.contains("pw-9f1c"),
            "{shown}"
        );
    }

    #[test]
    fn jvm_flags_as_zkcli_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("jaas.conf");
        std::fs::write(
            &p,
            "Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"bob\" password=\"pw-1\"; };\n\
             Other { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"eve\" password=\"pw-2\"; };",
        )
        .unwrap();
        let f = p.display();
        assert_eq!(SaslOptions::from_jvm_flags("-Xmx128m").unwrap(), None);
        let o = SaslOptions::from_jvm_flags(&format!("-Xmx1g -D{JAAS_CONFIG_PROPERTY}={f}"))
            .unwrap()
            .unwrap();
        assert_eq!(o.user(), "bob");
        assert!(matches!(&o.login, Login::Digest { password, .. } if password.expose() == "pw-1"));
        assert!(!format!("{o:?}").contains("pw-1"));
        let o = SaslOptions::from_jvm_flags(&format!(
            "-D{JAAS_CONFIG_PROPERTY}={f} -D{CLIENT_SECTION_PROPERTY}=Other"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(o.user(), "eve");
        assert_eq!(
            SaslOptions::from_jvm_flags(&format!(
                "-D{JAAS_CONFIG_PROPERTY}={f} -D{CLIENT_SASL_PROPERTY}=false"
            ))
            .unwrap(),
            None
        );
        let e = SaslOptions::from_jvm_flags(&format!(
            "-D{JAAS_CONFIG_PROPERTY}={f} -D{CLIENT_SECTION_PROPERTY}=Missing"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("Missing"), "{e}");
        assert!(!e.to_string().contains("pw-"), "{e}");
        assert!(
            SaslOptions::from_jvm_flags(&format!("-D{JAAS_CONFIG_PROPERTY}=/nonexistent")).is_err()
        );
    }
}
