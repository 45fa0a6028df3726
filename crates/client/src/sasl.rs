//! SASL login for client connections, as ZooKeeper's Java client (`ZooKeeperSaslClient`)
//! does it: DIGEST-MD5 right after each connection's handshake, before any other request,
//! with the credentials of a JAAS `Client` section's `DigestLoginModule`.
//!
//! [`SaslOptions`] says who to log in as: given directly ([`SaslOptions::digest`]), read
//! from a JAAS file ([`SaslOptions::from_jaas_file`]) or found the way zkCli finds it,
//! from `-Djava.security.auth.login.config=...` in `CLIENT_JVMFLAGS` / `JVMFLAGS`
//! ([`SaslOptions::from_env`]). The mechanism itself is `rzk_sasl`'s; the exchange on the
//! socket is the session task's. The password is a [`Secret`]: never printed, logged or
//! put in an error.

use std::path::{Path, PathBuf};

use rzk_sasl::digest_md5::DigestMd5Client;
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

/// Who a session logs in as with SASL DIGEST-MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslOptions {
    user: String,
    password: Secret,
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
    /// Logs in as `user` with `password`.
    pub fn digest(user: impl Into<String>, password: Secret) -> SaslOptions {
        SaslOptions {
            user: user.into(),
            password,
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `username` and `password` of the `DigestLoginModule` in section `section` of
    /// the JAAS file `path`.
    pub fn from_jaas_file(path: &Path, section: &str) -> Result<SaslOptions> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Sasl(format!("cannot read JAAS file {}: {e}", path.display())))?;
        let file = rzk_sasl::jaas::parse(&text)
            .map_err(|e| Error::Sasl(format!("JAAS file {}: {e}", path.display())))?;
        let login = file
            .digest_login(section)
            .map_err(|e| Error::Sasl(format!("JAAS file {}: {e}", path.display())))?;
        Ok(SaslOptions {
            user: login.username,
            password: login.password,
        })
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
        SaslOptions::from_jaas_file(&PathBuf::from(file), section).map(Some)
    }

    /// [`SaslOptions::from_jvm_flags`] of `$CLIENT_JVMFLAGS $JVMFLAGS`, the flags zkCli.sh
    /// hands its JVM.
    pub fn from_env() -> Result<Option<SaslOptions>> {
        let flags = ["CLIENT_JVMFLAGS", "JVMFLAGS"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .collect::<Vec<_>>()
            .join(" ");
        SaslOptions::from_jvm_flags(&flags)
    }

    /// A fresh mechanism for one connection's login.
    pub(crate) fn mechanism(&self) -> DigestMd5Client {
        DigestMd5Client::new(self.user.clone(), self.password.clone())
    }
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
        assert_eq!(o.password.expose(), "pw-1");
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
