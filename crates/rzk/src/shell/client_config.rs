//! zkCli's client properties: the `-D` flags of `CLIENT_JVMFLAGS` / `JVMFLAGS` (what
//! zkCli.sh hands its JVM), then the file of `-client-configuration FILE` (ZooKeeper's
//! `ZKClientConfig` file, Java properties), whose keys override the flags' as in
//! ZooKeeper. What rzk shell takes from them:
//!
//! * TLS when `zookeeper.client.secure=true`: `zookeeper.ssl.keyStore.*`,
//!   `zookeeper.ssl.trustStore.*` (JKS, PKCS12, PEM), `zookeeper.ssl.hostnameVerification`,
//!   `zookeeper.ssl.protocol`, `.enabledProtocols`, `.ciphersuites`, read by the server's
//!   own translation of ZooKeeper's TLS keys (`rzk_server::tls::TlsSettings`), so a
//!   setting rzk cannot honour (CRL / OCSP checks, a Java class) stops the shell naming
//!   the key instead of connecting with less than was asked.
//! * SASL DIGEST-MD5: `zookeeper.sasl.client` and `zookeeper.sasl.clientconfig` (the JAAS
//!   section), the JAAS file named by `java.security.auth.login.config`
//!   (`rzk_client::SaslOptions::from_properties`).
//!
//! Other client keys (`zookeeper.clientCnxnSocket`, request timeouts, Kerberos names)
//! have no effect on rzk shell.

use rustls::version::TLS12;
use rzk_client::{SaslOptions, TlsOptions};
use rzk_server::config::{parse_properties, Config};
use rzk_server::tls::{TlsSettings, CLIENT_PREFIX};
use std::path::Path;

/// ZooKeeper's `zookeeper.client.secure` (`ZKClientConfig.SECURE_CLIENT`).
const SECURE_CLIENT: &str = "zookeeper.client.secure";

/// Client properties in order, later ones winning: (name, value).
#[derive(Debug, Default)]
pub struct ClientProperties(Vec<(String, String)>);

impl ClientProperties {
    /// The flags of `CLIENT_JVMFLAGS` and `JVMFLAGS`, then the keys of `file` (if any).
    /// Errors: the file cannot be read (zkCli exits 2 on a missing one as well).
    pub fn from_env_and_file(file: Option<&Path>) -> Result<ClientProperties, String> {
        let flags = rzk_client::sasl::client_jvm_flags_from_env();
        let text = match file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read client configuration {}: {e}", f.display()))?,
            None => String::new(),
        };
        Ok(ClientProperties::from_parts(&flags, &text))
    }

    /// The krb5.conf the JVM flags of `CLIENT_JVMFLAGS` / `JVMFLAGS` name
    /// (`-Djava.security.krb5.conf`), which a Java client's Kerberos login reads.
    pub fn krb5_conf_from_env() -> Option<String> {
        let flags = rzk_client::sasl::client_jvm_flags_from_env();
        ClientProperties::from_parts(&flags, "")
            .last("java.security.krb5.conf")
            .map(str::to_owned)
    }

    /// The `-D` flags of `flags`, then the Java properties of `file_text`.
    pub fn from_parts(flags: &str, file_text: &str) -> ClientProperties {
        let mut props = rzk_server::config::jvm_flag_properties(flags);
        props.extend(parse_properties(file_text));
        ClientProperties(props)
    }

    fn last(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `zookeeper.client.secure` asks for TLS (`true`/`false`, any case; unset is
    /// false). Errors: any other value. Java's `Boolean.parseBoolean` reads `yes` as false
    /// and connects in plaintext, which is not what it asks for.
    pub fn secure(&self) -> Result<bool, String> {
        match self.last(SECURE_CLIENT).map(str::trim) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(format!("{SECURE_CLIENT}={v}: expected true or false")),
        }
    }

    /// The TLS configuration the properties ask for; `None` unless
    /// `zookeeper.client.secure=true`. Errors name the key (as written in the file).
    pub fn tls(&self) -> Result<Option<TlsOptions>, String> {
        if !self.secure()? {
            return Ok(None);
        }
        let named = |e: rzk_server::tls::TlsError| {
            // The settings are read under their zoo.cfg names (`ssl.X`); a client
            // configuration spells them `zookeeper.ssl.X`.
            let text = e.to_string();
            let text = text.replace(" ssl.", " zookeeper.ssl.");
            format!("client TLS settings: {text}")
        };
        let settings = self.settings().map_err(named)?;
        let config = settings.client_config().map_err(named)?;
        Ok(Some(TlsOptions::from_config(config)))
    }

    /// The `zookeeper.ssl.*` keys as TLS settings, whether or not TLS is asked for.
    fn settings(&self) -> Result<TlsSettings, rzk_server::tls::TlsError> {
        let mut cfg = Config::default();
        for (k, v) in &self.0 {
            if k.starts_with("zookeeper.ssl.") || k.starts_with(CLIENT_PREFIX) {
                cfg.unknown.insert(k.clone(), v.clone());
            }
        }
        let mut settings = TlsSettings::from_config(&cfg, CLIENT_PREFIX)?;
        // ZooKeeper 3.8's client makes its engine from an SSLContext of
        // `zookeeper.ssl.protocol` and sets no protocols on it, so the JVM offers that
        // version and the ones below it: TLSv1.3 also talks to a TLS 1.2 server.
        // (`enabledProtocols`, which the Java client ignores, still limits rzk shell.)
        let listed = self.last("zookeeper.ssl.enabledProtocols").is_some()
            || self.last("ssl.enabledProtocols").is_some();
        if !listed && !settings.versions.iter().any(|v| v.version == TLS12.version) {
            settings.versions.push(&TLS12);
        }
        Ok(settings)
    }

    /// The SASL login the properties ask for, `None` for none.
    pub fn sasl(&self) -> Result<Option<SaslOptions>, rzk_client::Error> {
        SaslOptions::from_properties(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_overrides_the_flags() {
        let p = ClientProperties::from_parts(
            "-Xmx1g -Dzookeeper.client.secure=true -Dzookeeper.sasl.clientconfig=A",
            "zookeeper.client.secure = false\n# comment\nzookeeper.sasl.clientconfig=B\n",
        );
        assert_eq!(p.secure(), Ok(false));
        assert_eq!(p.last("zookeeper.sasl.clientconfig"), Some("B"));
        assert!(p.tls().expect("no TLS asked").is_none());
        let p = ClientProperties::from_parts("", "zookeeper.client.secure=TRUE\n");
        assert_eq!(p.secure(), Ok(true));
        let p = ClientProperties::from_parts("", "zookeeper.client.secure=yes\n");
        let e = p.secure().expect_err("not a boolean");
        assert!(e.contains("zookeeper.client.secure=yes"), "{e}");
        assert!(p.tls().is_err(), "no plaintext for a `yes`");
    }

    #[test]
    fn a_setting_rzk_cannot_honour_is_refused_naming_the_key() {
        let p = ClientProperties::from_parts(
            "",
            "zookeeper.client.secure=true\nzookeeper.ssl.crl=true\n",
        );
        let e = p.tls().expect_err("CRL checks are not done by rzk");
        assert!(e.contains("zookeeper.ssl.crl"), "{e}");
        let p = ClientProperties::from_parts(
            "",
            "zookeeper.client.secure=true\nzookeeper.ssl.trustStore.location=/nonexistent/t.jks\n\
             zookeeper.ssl.trustStore.password=pw-3b7e\n",
        );
        let e = p.tls().expect_err("no trust store there");
        assert!(e.contains("zookeeper.ssl.trustStore.location"), "{e}");
        assert!(!e.contains("pw-3b7e"), "a password in an error: {e}");
    }

    #[test]
    fn a_protocol_is_the_highest_offered_unless_protocols_are_listed() {
        let versions = |text: &str| -> Vec<rustls::ProtocolVersion> {
            let p = ClientProperties::from_parts("", text);
            let s = p.settings().expect("valid settings");
            s.versions.iter().map(|v| v.version).collect()
        };
        let (v12, v13) = (TLS12.version, rustls::version::TLS13.version);
        let v = versions("zookeeper.ssl.protocol=TLSv1.3\n");
        assert!(v.contains(&v13) && v.contains(&v12), "{v:?}");
        assert_eq!(versions("zookeeper.ssl.protocol=TLSv1.2\n"), vec![v12]);
        let v =
            versions("zookeeper.ssl.protocol=TLSv1.3\nzookeeper.ssl.enabledProtocols=TLSv1.3\n");
        assert_eq!(v, vec![v13]);
    }

    #[test]
    fn sasl_can_be_switched_off_by_the_file() {
        let p = ClientProperties::from_parts(
            "-Djava.security.auth.login.config=/nonexistent/jaas.conf",
            "zookeeper.sasl.client=false\n",
        );
        assert!(p.sasl().expect("off").is_none());
        let p = ClientProperties::from_parts(
            "-Djava.security.auth.login.config=/nonexistent/jaas.conf",
            "",
        );
        assert!(p.sasl().is_err(), "an unreadable JAAS file is an error");
        // Java reads `yes` as false (SASL off); rzk refuses it, naming the key.
        let p = ClientProperties::from_parts(
            "-Djava.security.auth.login.config=/nonexistent/jaas.conf",
            "zookeeper.sasl.client=yes\n",
        );
        let e = p.sasl().expect_err("not a boolean").to_string();
        assert!(e.contains("zookeeper.sasl.client=yes"), "{e}");
        let p = ClientProperties::from_parts("", "zookeeper.sasl.client= TRUE\n");
        assert!(p.sasl().expect("on, but no JAAS file named").is_none());
    }
}
