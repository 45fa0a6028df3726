//! rzk-sasl: the SASL pieces ZooKeeper's clients and servers share, written once for
//! rzk-server and rzk-client.
//!
//! - [`digest_md5`]: DIGEST-MD5 (RFC 2831) with ZooKeeper's parameters (service
//!   `zookeeper`, server name and realm `zk-sasl-md5`, `auth` only): the server side
//!   (ZooKeeper's `SaslServer` for a `Server` JAAS section) and the client side (the
//!   `SaslClient` of ZooKeeper's `ZooKeeperSaslClient`). Hashes come from the `md-5`
//!   crate; only the RFC's composition of them is written here.
//! - [`gssapi`]: GSSAPI (RFC 4752) with Kerberos V5, the server side, through the
//!   system's GSS-API library opened at run time (the one part of this crate that does IO:
//!   the library reads the keytab).
//! - [`jaas`]: the JAAS login configuration files ZooKeeper deployments write, and the
//!   credentials of a `Client` section's `DigestLoginModule`.
//! - [`Secret`]: a password that never prints.
//!
//! Nothing here does network IO or logs; no error carries a password or a response hash.

pub mod digest_md5;
pub mod gssapi;
pub mod jaas;
mod secret;

pub use secret::{Secret, REDACTED};
