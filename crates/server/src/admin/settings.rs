//! The AdminServer's settings: ZooKeeper's `admin.*` keys (`JettyAdminServer`'s
//! `zookeeper.admin.*` system properties), read from the keys the configuration parser
//! kept in `Config::unknown`.
//!
//! Owns parsing and defaults only; [`crate::admin::http`] binds and serves.

use crate::config::{keys, ConfigError, Properties};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// ZooKeeper's default AdminServer port (`JettyAdminServer.DEFAULT_PORT`).
pub const DEFAULT_PORT: u16 = 8080;
/// ZooKeeper's default idle timeout of an AdminServer connection, in ms.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// ZooKeeper's default command URL.
pub const DEFAULT_COMMAND_URL: &str = "/commands";

/// How the AdminServer runs (ZooKeeper's `JettyAdminServer` constructor arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// `admin.enableServer`: ZooKeeper's default is true for a configuration file;
    /// rzk started without one (built-in defaults, in-process tests) runs none.
    pub enabled: bool,
    /// `admin.serverAddress` (default 0.0.0.0) and `admin.serverPort` (default 8080).
    pub addr: SocketAddr,
    /// `admin.commandURL`: where the command list is served; commands below it.
    pub command_url: String,
    /// `admin.idleTimeout`: a connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// `admin.forceHttps` / `admin.portUnification`: plain HTTP, HTTPS only, or both on
    /// one port.
    pub scheme: AdminScheme,
    /// The configuration file as read at start-up, secret values replaced by
    /// `********` (the `initial_configuration` command).
    pub initial_config: String,
}

/// What the AdminServer's port speaks (ZooKeeper's `JettyAdminServer` connector choice).
/// The HTTPS forms use the `ssl.quorum.*` key store, as ZooKeeper's does
/// (`crate::tls::admin_server_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminScheme {
    /// Plain HTTP (neither key true; ZooKeeper's default).
    Http,
    /// `admin.forceHttps=true`: TLS only (it wins over `admin.portUnification`).
    Https,
    /// `admin.portUnification=true`: TLS or plain HTTP, told apart by each
    /// connection's first byte (a plain one counts in `insecure_admin_count`).
    Unified,
}

impl Default for AdminSettings {
    /// No AdminServer (a server started without a configuration file).
    fn default() -> Self {
        AdminSettings {
            enabled: false,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
            command_url: DEFAULT_COMMAND_URL.to_owned(),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            scheme: AdminScheme::Http,
            initial_config: String::new(),
        }
    }
}

impl AdminSettings {
    /// Reads the `admin.*` keys (bare or with the `zookeeper.` prefix) of a configuration
    /// file whose text is `text`. Errors name the key: an address that is not an IP, a
    /// port or timeout that is not a number, a command URL not starting with `/`.
    pub fn from_properties(props: &Properties, text: &str) -> Result<AdminSettings, ConfigError> {
        let get = |bare: &str| {
            props
                .get(bare)
                .map(|v| (bare.to_owned(), v.trim().to_owned()))
                .or_else(|| {
                    let k = format!("zookeeper.{bare}");
                    props.get(&k).map(|v| (k, v.trim().to_owned()))
                })
        };
        let invalid = |key: String, value: String, reason: &str| ConfigError::Invalid {
            key,
            value,
            reason: reason.to_owned(),
        };
        // Boolean.parseBoolean of the property, "true" when absent.
        let enabled = get("admin.enableServer").is_none_or(|(_, v)| keys::java_true(&v));
        if !enabled {
            // ZooKeeper reads the other admin.* keys only to start the AdminServer: with
            // it off, a value it could not use does not stop the server.
            return Ok(AdminSettings {
                enabled: false,
                initial_config: redacted_text(text),
                ..AdminSettings::default()
            });
        }
        let port = match get("admin.serverPort") {
            Some((k, v)) => v
                .parse::<u16>()
                .map_err(|_| invalid(k, v, "not a port number"))?,
            None => DEFAULT_PORT,
        };
        // An IP, or a host name resolved once here (Jetty's connector takes either).
        let ip = match get("admin.serverAddress") {
            Some((k, v)) => match v.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => (v.as_str(), port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip())
                    .ok_or_else(|| {
                        invalid(k, v, "not an IP address or a host name that resolves")
                    })?,
            },
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        // Zero or less: connections never time out (Jetty's idle timeout).
        let idle_ms = match get("admin.idleTimeout") {
            Some((k, v)) => v
                .parse::<i64>()
                .map_err(|_| invalid(k, v, "not a number of milliseconds"))?
                .max(0)
                .unsigned_abs(),
            None => DEFAULT_IDLE_TIMEOUT_MS,
        };
        let command_url = match get("admin.commandURL") {
            Some((k, v)) => {
                if !v.starts_with('/') {
                    return Err(invalid(k, v, "a command URL starts with /"));
                }
                v.trim_end_matches('/').to_owned()
            }
            None => DEFAULT_COMMAND_URL.to_owned(),
        };
        // Boolean.getBoolean of each, false when absent; forceHttps wins.
        let on = |bare: &str| get(bare).is_some_and(|(_, v)| keys::java_true(&v));
        let scheme = if on("admin.forceHttps") {
            AdminScheme::Https
        } else if on("admin.portUnification") {
            AdminScheme::Unified
        } else {
            AdminScheme::Http
        };
        Ok(AdminSettings {
            enabled,
            addr: SocketAddr::new(ip, port),
            command_url,
            idle_timeout: Duration::from_millis(idle_ms),
            scheme,
            initial_config: redacted_text(text),
        })
    }
}

/// `text` (a properties file) with the value of every secret-named key replaced by
/// `********`, comments left out, and every other line kept as written. Lines end as Java
/// properties end them (`\r\n`, `\r` or `\n`); each logical line (one ending in an odd
/// number of backslashes continues on the next) is read as Java reads it, escapes
/// included (`\u0077` in a key is a `w`), and a secret one is written back as
/// `key=********` without its continuation lines. Comments are dropped rather than
/// searched for secrets: masking only those holding a secret would tell which ones do.
pub fn redacted_text(text: &str) -> String {
    let content_of = |line: &str| line.trim_end_matches(['\n', '\r']).len();
    let continues =
        |content: &str| content.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1;
    let mut out = String::with_capacity(text.len());
    let mut lines = crate::config::physical_lines(text);
    while let Some(first) = lines.next() {
        let content = &first[..content_of(first)];
        let body = content.trim_start();
        if body.starts_with('#') || body.starts_with('!') {
            continue;
        }
        let mut logical = first.to_owned();
        let mut more = continues(content);
        while more {
            let Some(next) = lines.next() else { break };
            logical.push_str(next);
            more = continues(&next[..content_of(next)]);
        }
        match crate::config::parse_properties(&logical).into_iter().next() {
            Some((key, _)) if keys::is_secret_key(&key) => {
                let lead = &content[..content.len() - body.len()];
                let nl = &logical[content_of(&logical)..];
                out.push_str(&format!("{lead}{key}={}{nl}", keys::REDACTED));
            }
            _ => out.push_str(&logical),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.insert((*k).to_owned(), (*v).to_owned());
        }
        p
    }

    #[test]
    fn defaults_are_zookeepers() {
        let s = AdminSettings::from_properties(&props(&[]), "").unwrap();
        assert!(s.enabled);
        assert_eq!(s.addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.command_url, "/commands");
        assert_eq!(s.idle_timeout, Duration::from_millis(30_000));
        assert_eq!(s.scheme, AdminScheme::Http);
        assert!(!AdminSettings::default().enabled);
    }

    #[test]
    fn https_keys_pick_the_scheme_as_jetty_admin_server() {
        let scheme = |pairs: &[(&str, &str)]| {
            AdminSettings::from_properties(&props(pairs), "")
                .unwrap()
                .scheme
        };
        assert_eq!(scheme(&[("admin.forceHttps", "TRUE")]), AdminScheme::Https);
        assert_eq!(
            scheme(&[("zookeeper.admin.portUnification", "true")]),
            AdminScheme::Unified
        );
        assert_eq!(
            scheme(&[
                ("admin.portUnification", "true"),
                ("admin.forceHttps", "true")
            ]),
            AdminScheme::Https
        );
        // Boolean.getBoolean: anything but "true" is false.
        assert_eq!(scheme(&[("admin.forceHttps", "yes")]), AdminScheme::Http);
    }

    #[test]
    fn keys_are_read_either_spelling() {
        let s = AdminSettings::from_properties(
            &props(&[
                ("admin.enableServer", "TRUE"),
                ("zookeeper.admin.serverAddress", "127.0.0.1"),
                ("admin.serverPort", "22280"),
                ("admin.commandURL", "/cmd/"),
                ("admin.idleTimeout", "500"),
            ]),
            "",
        )
        .unwrap();
        assert!(s.enabled);
        assert_eq!(s.addr, "127.0.0.1:22280".parse().unwrap());
        assert_eq!(s.command_url, "/cmd");
        assert_eq!(s.idle_timeout, Duration::from_millis(500));
        let named = AdminSettings::from_properties(
            &props(&[
                ("admin.serverAddress", "localhost"),
                ("admin.serverPort", "1"),
            ]),
            "",
        )
        .unwrap();
        assert!(named.addr.ip().is_loopback(), "{named:?}");
        let off = AdminSettings::from_properties(&props(&[("admin.enableServer", "no")]), "");
        assert!(!off.unwrap().enabled, "anything but true is false, as Java");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (k, v) in [
            ("admin.serverPort", "80a"),
            ("admin.serverAddress", "no such host.invalid"),
            ("admin.idleTimeout", "soon"),
            ("admin.commandURL", "commands"),
        ] {
            let e = AdminSettings::from_properties(&props(&[(k, v)]), "").unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
            // With the AdminServer off ZooKeeper never reads them: neither does rzk.
            let off = AdminSettings::from_properties(
                &props(&[(k, v), ("admin.enableServer", "false")]),
                "",
            )
            .unwrap();
            assert!(!off.enabled);
        }
        // A negative idle timeout is none (ZooKeeper's Jetty serves with it).
        let s = AdminSettings::from_properties(&props(&[("admin.idleTimeout", "-5")]), "").unwrap();
        assert_eq!(s.idle_timeout, Duration::ZERO);
    }

    #[test]
    fn initial_config_hides_secrets_however_written() {
        let t =
            "ssl.trustStore.password   pw-space\nx.secret = a\\\n  pw-cont1 \\\n  pw-cont2\ny=2\n";
        let r = redacted_text(t);
        for s in ["pw-space", "pw-cont1", "pw-cont2"] {
            assert!(!r.contains(s), "{s} in {r}");
        }
        assert!(r.ends_with("x.secret=********\ny=2\n"), "{r}");
    }

    /// Keys written with escapes or split over lines are secrets too, and a password
    /// equal to another setting's value is not revealed by masking that value (found by
    /// a break-it review: both leaked).
    #[test]
    fn initial_config_reads_keys_as_java_does_and_masks_only_secrets() {
        let t = "tickTime=2000\nssl.keyStore.pass\\u0077ord=t\\u0065stpass\nssl.trustStore.pass\\\n   word=pw-split\nSASLAuthenticationProvider.superPassword=2000\n# old: pw-split\n#plain\n# each tick\n";
        let r = redacted_text(t);
        for s in ["t\\u0065stpass", "testpass", "pw-split"] {
            assert!(!r.contains(s), "{s} in {r}");
        }
        assert_eq!(
            r,
            "tickTime=2000\nssl.keyStore.password=********\nssl.trustStore.password=********\nSASLAuthenticationProvider.superPassword=********\n"
        );
        // A lone CR ends a line, as in Java: the secret after it is a key of its own.
        let r = redacted_text("a=1\rb.password=hunterR3\r# c\rx.secret=s4\n");
        assert_eq!(r, "a=1\rb.password=********\rx.secret=********\n");
    }

    #[test]
    fn initial_config_hides_secrets() {
        let t = "# c\ntickTime=2000\nssl.keyStore.password=hunter2\n  my.secret : s3\nx=1";
        let r = redacted_text(t);
        assert!(!r.contains("hunter2") && !r.contains("s3"), "{r}");
        assert!(
            r.starts_with("tickTime=2000\nssl.keyStore.password=********\n"),
            "{r}"
        );
        assert!(r.ends_with("  my.secret=********\nx=1"), "{r}");
    }
}
