//! SASL GSSAPI (RFC 4752) with Kerberos V5: the server side ZooKeeper runs when its JAAS
//! server section logs in with `Krb5LoginModule`, and the client side of its clients.
//!
//! - [`ffi`]: the system's GSS-API library (MIT Kerberos), opened at run time.
//! - [`context`]: the credentials (an acceptor's keytab, a client's keytab or ticket
//!   cache) and the security contexts accepted or initiated with them.
//! - [`server`]: the SASL exchange over such a context, as Java's `GssKrb5Server`.
//! - [`client`]: the client's side of it, as Java's `GssKrb5Client` (rzk-client).
//! - [`name`]: the `sasl` id a principal gets (`auth_to_local` `DEFAULT`, and ZooKeeper's
//!   `kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal`).
//! - [`krb5_conf`]: the default realm those ids depend on, from krb5.conf (includes
//!   followed, as Java and MIT's library follow them).
//!
//! Unlike the rest of this crate, [`context`] does IO: the Kerberos library reads the
//! keytab (and its krb5.conf, `KRB5_CONFIG`) when a credential is acquired.

pub mod client;
pub mod context;
pub mod ffi;
pub mod krb5_conf;
pub mod name;
pub mod server;

pub use client::{GssapiClient, GssapiClientError};
pub use context::{
    AcceptCtx, Acceptor, GssError, InitCtx, Initiated, Initiator, InitiatorContext, SecurityContext,
};
pub use name::{KerberosName, NameRules};
pub use server::{GssapiError, GssapiServer, Step};
