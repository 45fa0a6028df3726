//! Parses ZooKeeper connect strings: `host1:2181,host2:2182/chroot`.
//!
//! This module owns the host list and chroot prefix handling (adding it to outgoing
//! paths, stripping it from incoming ones). It never resolves names or opens sockets.

use crate::error::{Error, Result};

/// Port used when a host has none.
pub const DEFAULT_PORT: u16 = 2181;

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` entries, in the order given.
    pub hosts: Vec<String>,
    /// The chroot (`/app`), or `None` for `/`.
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses `host[:port][,host[:port]...][/chroot]`. IPv6 literals go in brackets.
    pub fn parse(s: &str) -> Result<ConnectString> {
        let s = s.trim();
        let (hosts_part, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                rzk_proto::path::validate(c, false)?;
                Some(c.to_owned())
            }
        };
        let mut hosts = Vec::new();
        for h in hosts_part.split(',') {
            let h = h.trim();
            if h.is_empty() {
                continue;
            }
            hosts.push(normalize_host(h)?);
        }
        if hosts.is_empty() {
            return Err(Error::InvalidConnectString(format!("no hosts in {s:?}")));
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The path the server sees for a client path.
    pub fn to_server_path(&self, client_path: &str) -> String {
        prepend_chroot(self.chroot.as_deref(), client_path)
    }
}

fn normalize_host(h: &str) -> Result<String> {
    let bad = || Error::InvalidConnectString(format!("bad host {h:?}"));
    if let Some(rest) = h.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => {
                p.parse::<u16>().map_err(|_| bad())?;
                Ok(h.to_owned())
            }
            None if after.is_empty() => Ok(format!("{h}:{DEFAULT_PORT}")),
            None => Err(bad()),
        };
    }
    match h.rsplit_once(':') {
        Some((host, port)) => {
            if host.is_empty() || host.contains(':') {
                return Err(bad());
            }
            port.parse::<u16>().map_err(|_| bad())?;
            Ok(h.to_owned())
        }
        None => Ok(format!("{h}:{DEFAULT_PORT}")),
    }
}

/// `chroot + path`, with `/` mapping to the chroot itself.
pub fn prepend_chroot(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        None => path.to_owned(),
        Some(c) if path == "/" => c.to_owned(),
        Some(c) => format!("{c}{path}"),
    }
}

/// Removes the chroot from a server path; paths outside the chroot are returned unchanged.
pub fn strip_chroot(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        None => path.to_owned(),
        Some(c) => match path.strip_prefix(c) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => path.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_chroot() {
        let c = ConnectString::parse("a:1,b,[::1]:3/app/x").unwrap();
        assert_eq!(c.hosts, vec!["a:1", "b:2181", "[::1]:3"]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(c.to_server_path("/"), "/app/x");
        assert_eq!(c.to_server_path("/n"), "/app/x/n");
        assert_eq!(strip_chroot(Some("/app/x"), "/app/x/n"), "/n");
        assert_eq!(strip_chroot(Some("/app/x"), "/app/x"), "/");
        assert_eq!(strip_chroot(Some("/app/x"), "/app/xy"), "/app/xy");
        let c = ConnectString::parse("127.0.0.1:2181/").unwrap();
        assert_eq!(c.chroot, None);
    }

    #[test]
    fn rejects_bad_strings() {
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("a:notaport").is_err());
        assert!(ConnectString::parse("a:1/bad/").is_err());
    }
}
