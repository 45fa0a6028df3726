//! Safe handles over [`super::ffi`]: a Kerberos acceptor credential read from a keytab,
//! and one security context being accepted (RFC 2743's `GSS_Accept_sec_context`,
//! `GSS_Wrap`, `GSS_Unwrap`).

use super::ffi::{self, BufferDesc, GssLibrary, OidDesc, OidSetDesc, OmUint32};
use std::ffi::{c_int, c_void, CString};
use std::path::PathBuf;

/// A failed GSS-API call: which call, and the library's words for its status codes
/// (e.g. "No key table entry found for zookeeper/host@REALM"). Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {message}")]
pub struct GssError {
    /// The GSS-API call, e.g. `gss_accept_sec_context`.
    pub call: &'static str,
    /// The major and minor statuses as the library displays them.
    pub message: String,
}

impl GssError {
    fn new(call: &'static str, message: impl Into<String>) -> GssError {
        GssError {
            call,
            message: message.into(),
        }
    }

    fn status(lib: &GssLibrary, call: &'static str, major: OmUint32, minor: OmUint32) -> GssError {
        let mut parts = display_status(lib, major, ffi::C_GSS_CODE);
        if minor != 0 {
            parts.extend(display_status(lib, minor, ffi::C_MECH_CODE));
        }
        parts.retain(|p| !p.is_empty());
        if parts.is_empty() {
            parts.push(format!("major status 0x{major:x}, minor 0x{minor:x}"));
        }
        GssError::new(call, parts.join(": "))
    }
}

/// The texts of one status code (`gss_display_status`, looping on its message context).
fn display_status(lib: &GssLibrary, code: OmUint32, kind: c_int) -> Vec<String> {
    let mut out = Vec::new();
    let mut mech = oid(ffi::MECH_KRB5);
    let mut ctx: OmUint32 = 0;
    for _ in 0..8 {
        let mut minor = 0;
        let mut buf = BufferDesc::empty();
        // SAFETY: every pointer is to a live local; `buf` is released below.
        let major =
            unsafe { (lib.display_status)(&mut minor, code, kind, &mut mech, &mut ctx, &mut buf) };
        if major & ffi::S_ERROR_MASK != 0 {
            break;
        }
        out.push(String::from_utf8_lossy(take(lib, &mut buf).as_slice()).into_owned());
        if ctx == 0 {
            break;
        }
    }
    out
}

/// Copies a buffer the library filled and releases it.
fn take(lib: &GssLibrary, buf: &mut BufferDesc) -> Vec<u8> {
    let v = if buf.value.is_null() || buf.length == 0 {
        Vec::new()
    } else {
        // SAFETY: the library filled `buf` with `length` readable bytes at `value`.
        unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec()
    };
    let mut minor = 0;
    // SAFETY: `buf` was filled by the library (or is empty, which it accepts).
    unsafe { (lib.release_buffer)(&mut minor, buf) };
    v
}

/// An OID descriptor pointing at a static identifier (the library only reads it).
fn oid(bytes: &'static [u8]) -> OidDesc {
    OidDesc {
        length: bytes.len() as OmUint32,
        elements: bytes.as_ptr() as *mut c_void,
    }
}

fn library() -> Result<&'static GssLibrary, GssError> {
    GssLibrary::get().map_err(|m| GssError::new("dlopen", m))
}

/// Where an acceptor's keys are: its principal (`service/host@REALM`) and keytab file.
/// ZooKeeper's equivalent: the `principal` and `keyTab` options of a JAAS server
/// section's `Krb5LoginModule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptor {
    /// The service principal, e.g. `zookeeper/zk1.example.com@EXAMPLE.COM`.
    pub principal: String,
    /// The keytab holding its keys.
    pub keytab: PathBuf,
}

impl Acceptor {
    /// Checks that the library opens and the keytab holds keys for the principal.
    /// Errors: [`GssError`] naming the call and the library's reason.
    pub fn check(&self) -> Result<(), GssError> {
        self.cred().map(drop)
    }

    /// Logs in to the KDC with the keytab, as ZooKeeper's server does at start-up, and
    /// accepts a ticket for itself: so a keytab whose keys the KDC no longer has (a
    /// re-keyed principal) or an unreachable KDC is found at start-up, not at the first
    /// client. Errors: [`GssError`] naming the call and the library's reason (e.g.
    /// "Cannot contact any KDC", "Decrypt integrity check failed").
    pub fn check_with_kdc(&self) -> Result<(), GssError> {
        self.check()?;
        let me = Initiator::Keytab {
            principal: self.principal.clone(),
            keytab: self.keytab.clone(),
        };
        let mut init = me.start(&self.principal)?;
        let token = match init.init(&[])? {
            Initiated::Continue(t) | Initiated::Established(t) => t,
        };
        self.start()?.accept(&token).map(drop)
    }

    fn cred(&self) -> Result<Cred, GssError> {
        use std::os::unix::ffi::OsStrExt;
        Cred::acquire(
            Some((&self.principal, ffi::NT_KRB5_PRINCIPAL)),
            ffi::C_ACCEPT,
            &[("keytab", self.keytab.as_os_str().as_bytes())],
        )
    }

    /// A new context to accept one client's security context with.
    pub fn start(&self) -> Result<AcceptCtx, GssError> {
        Ok(AcceptCtx {
            cred: self.cred()?,
            ctx: SecCtx::new(library()?),
        })
    }
}

/// Where a client's Kerberos credentials come from, as a JAAS `Client` section's
/// `Krb5LoginModule` says: a keytab (`useKeyTab=true keyTab=... principal=...`), whose
/// tickets go to a ticket cache of this process's memory, or a ticket cache
/// (`useTicketCache=true`, `ticketCache=` or the default one, `KRB5CCNAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiator {
    /// Log in with the keys of `principal` in `keytab`.
    Keytab {
        /// The client principal, e.g. `zkcli@EXAMPLE.COM`.
        principal: String,
        /// The keytab holding its keys.
        keytab: PathBuf,
    },
    /// Use the tickets of a ticket cache (`None`: the default one).
    TicketCache {
        /// The principal to use from it, if named.
        principal: Option<String>,
        /// The cache (`FILE:/tmp/krb5cc_0`, a path), if named.
        cache: Option<String>,
    },
}

impl Initiator {
    /// The client's principal, when configured.
    pub fn principal(&self) -> Option<&str> {
        match self {
            Initiator::Keytab { principal, .. } => Some(principal),
            Initiator::TicketCache { principal, .. } => principal.as_deref(),
        }
    }

    fn cred(&self) -> Result<Cred, GssError> {
        use std::os::unix::ffi::OsStrExt;
        match self {
            Initiator::Keytab { principal, keytab } => {
                // A memory cache per principal and keytab: the tickets got with the
                // keytab stay in this process (never in the user's own cache), and every
                // reconnection reuses the one cache and its tickets (a memory cache lives
                // as long as the process: one per connection would grow with each).
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (principal, keytab).hash(&mut h);
                let cache = format!("MEMORY:rzk-{}-{:016x}", std::process::id(), h.finish());
                Cred::acquire(
                    Some((principal, ffi::NT_KRB5_PRINCIPAL)),
                    ffi::C_INITIATE,
                    &[
                        ("client_keytab", keytab.as_os_str().as_bytes()),
                        ("ccache", cache.as_bytes()),
                    ],
                )
            }
            Initiator::TicketCache { principal, cache } => {
                let store: Vec<(&str, &[u8])> =
                    cache.iter().map(|c| ("ccache", c.as_bytes())).collect();
                Cred::acquire(
                    principal.as_deref().map(|p| (p, ffi::NT_KRB5_PRINCIPAL)),
                    ffi::C_INITIATE,
                    &store,
                )
            }
        }
    }

    /// A new context to establish with the service `target` (`service/host`, or a full
    /// principal with `@REALM`; a name without a realm gets the host's realm from the
    /// library's krb5.conf).
    pub fn start(&self, target: &str) -> Result<InitCtx, GssError> {
        let lib = library()?;
        let cred = self.cred()?;
        let target = Name::import(lib, target, ffi::NT_KRB5_PRINCIPAL)?;
        Ok(InitCtx {
            cred,
            target,
            ctx: SecCtx::new(lib),
        })
    }
}

/// An imported name (`gss_name_t`), released on drop.
#[derive(Debug)]
struct Name {
    lib: &'static GssLibrary,
    handle: ffi::NameHandle,
}

// SAFETY: owned by one context at a time; MIT's names may move between threads.
unsafe impl Send for Name {}

impl Name {
    fn import(lib: &'static GssLibrary, name: &str, kind: &'static [u8]) -> Result<Name, GssError> {
        let mut buf = BufferDesc::borrowing(name.as_bytes());
        let mut name_type = oid(kind);
        let mut handle: ffi::NameHandle = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: inputs are live locals; `handle` is owned by the result.
        let major = unsafe { (lib.import_name)(&mut minor, &mut buf, &mut name_type, &mut handle) };
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_import_name", major, minor));
        }
        Ok(Name { lib, handle })
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: `handle` came from gss_import_name and is released once.
        unsafe { (self.lib.release_name)(&mut minor, &mut self.handle) };
    }
}

/// A credential (`gss_cred_id_t`), released on drop.
#[derive(Debug)]
struct Cred {
    lib: &'static GssLibrary,
    handle: ffi::CredHandle,
}

// SAFETY: a credential handle is used by one context at a time (it owns it); MIT's
// library lets a handle move between threads.
unsafe impl Send for Cred {}

impl Cred {
    /// `gss_acquire_cred_from` for `name` (text and name type; `None`: the default),
    /// `usage`, and the credential store's `(key, value)` pairs.
    fn acquire(
        name: Option<(&str, &'static [u8])>,
        usage: c_int,
        store: &[(&str, &[u8])],
    ) -> Result<Cred, GssError> {
        let lib = library()?;
        let name = name
            .map(|(n, kind)| Name::import(lib, n, kind))
            .transpose()?;
        let owned: Vec<(CString, CString)> = store
            .iter()
            .map(|(k, v)| {
                Ok((
                    CString::new(*k)
                        .map_err(|_| GssError::new("credential store", "a key holds a NUL byte"))?,
                    CString::new(*v).map_err(|_| {
                        GssError::new("credential store", "a value holds a NUL byte")
                    })?,
                ))
            })
            .collect::<Result<_, GssError>>()?;
        let mut elements: Vec<ffi::KeyValueElement> = owned
            .iter()
            .map(|(k, v)| ffi::KeyValueElement {
                key: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        let set = ffi::KeyValueSet {
            count: elements.len() as OmUint32,
            elements: elements.as_mut_ptr(),
        };
        let mut mech = oid(ffi::MECH_KRB5);
        let mut mechs = OidSetDesc {
            count: 1,
            elements: &mut mech,
        };
        let mut handle: ffi::CredHandle = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: every pointer is to a live local (`owned` outlives the call);
        // `handle` is owned by the result.
        let major = unsafe {
            (lib.acquire_cred_from)(
                &mut minor,
                name.as_ref().map_or(std::ptr::null_mut(), |n| n.handle),
                ffi::C_INDEFINITE,
                &mut mechs,
                usage,
                // No store at all (GSS_C_NO_CRED_STORE) rather than an empty one,
                // which not every implementation accepts.
                if set.count == 0 {
                    std::ptr::null()
                } else {
                    &set
                },
                &mut handle,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_acquire_cred_from", major, minor));
        }
        Ok(Cred { lib, handle })
    }
}

impl Drop for Cred {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: `handle` came from gss_acquire_cred_from and is released once.
        unsafe { (self.lib.release_cred)(&mut minor, &mut self.handle) };
    }
}

/// What one accept step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The context needs another token from the client; send it this one.
    Continue(Vec<u8>),
    /// The context is established with the client `peer` (its principal's display
    /// form, `name[/instance]@REALM`); `token` (maybe empty) is the last one for it.
    Established {
        /// The last token for the client (Kerberos' AP-REP under mutual authentication).
        token: Vec<u8>,
        /// The client's principal.
        peer: String,
    },
}

/// The operations of an accepted security context the SASL mechanism needs; a trait so
/// the mechanism's state machine is tested without a KDC.
pub trait SecurityContext: Send {
    /// One `gss_accept_sec_context` step on the client's token.
    fn accept(&mut self, token: &[u8]) -> Result<Accepted, GssError>;
    /// `gss_wrap` without confidentiality (integrity only), QOP 0.
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError>;
    /// `gss_unwrap`.
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError>;
}

/// One security context being accepted (`gss_ctx_id_t`), deleted on drop.
#[derive(Debug)]
pub struct AcceptCtx {
    cred: Cred,
    ctx: SecCtx,
}

impl SecurityContext for AcceptCtx {
    fn accept(&mut self, token: &[u8]) -> Result<Accepted, GssError> {
        let lib = self.ctx.lib;
        let mut input = BufferDesc::borrowing(token);
        let mut output = BufferDesc::empty();
        let mut src: ffi::NameHandle = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: `ctx` is null or a context this call made; outputs are released below.
        let major = unsafe {
            (lib.accept_sec_context)(
                &mut minor,
                &mut self.ctx.handle,
                self.cred.handle,
                &mut input,
                std::ptr::null_mut(),
                &mut src,
                std::ptr::null_mut(),
                &mut output,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let out = take(lib, &mut output);
        if major & ffi::S_ERROR_MASK != 0 {
            if !src.is_null() {
                // SAFETY: `src` came from the call above.
                unsafe { (lib.release_name)(&mut 0, &mut src) };
            }
            return Err(GssError::status(
                lib,
                "gss_accept_sec_context",
                major,
                minor,
            ));
        }
        if major & ffi::S_CONTINUE_NEEDED != 0 {
            if !src.is_null() {
                // SAFETY: as above.
                unsafe { (lib.release_name)(&mut 0, &mut src) };
            }
            return Ok(Accepted::Continue(out));
        }
        if src.is_null() {
            return Err(GssError::new(
                "gss_accept_sec_context",
                "established without the client's name",
            ));
        }
        let mut shown = BufferDesc::empty();
        // SAFETY: `src` is a live name; `shown` is taken below.
        let major =
            unsafe { (lib.display_name)(&mut minor, src, &mut shown, std::ptr::null_mut()) };
        let peer = take(lib, &mut shown);
        // SAFETY: `src` came from gss_accept_sec_context and is released once.
        unsafe { (lib.release_name)(&mut 0, &mut src) };
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_display_name", major, minor));
        }
        let peer = String::from_utf8(peer)
            .map_err(|_| GssError::new("gss_display_name", "the client's name is not UTF-8"))?;
        Ok(Accepted::Established { token: out, peer })
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        self.ctx.wrap(message)
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        self.ctx.unwrap(token)
    }
}

/// A security context handle (`gss_ctx_id_t`; null until the first step), deleted on
/// drop: the part accepted and initiated contexts share.
#[derive(Debug)]
struct SecCtx {
    lib: &'static GssLibrary,
    handle: ffi::CtxHandle,
}

// SAFETY: a context is used from one task at a time (its owner's `&mut self`); MIT's
// library lets a context move between threads.
unsafe impl Send for SecCtx {}

impl SecCtx {
    fn new(lib: &'static GssLibrary) -> SecCtx {
        SecCtx {
            lib,
            handle: std::ptr::null_mut(),
        }
    }

    /// `gss_wrap` without confidentiality, QOP 0, on the established context.
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        let lib = self.lib;
        let mut input = BufferDesc::borrowing(message);
        let mut output = BufferDesc::empty();
        let mut minor = 0;
        // SAFETY: the context is established (the mechanisms wrap only after that);
        // `output` is taken below.
        let major = unsafe {
            (lib.wrap)(
                &mut minor,
                self.handle,
                0,
                0,
                &mut input,
                std::ptr::null_mut(),
                &mut output,
            )
        };
        let out = take(lib, &mut output);
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_wrap", major, minor));
        }
        Ok(out)
    }

    /// `gss_unwrap` on the established context.
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        let lib = self.lib;
        let mut input = BufferDesc::borrowing(token);
        let mut output = BufferDesc::empty();
        let mut minor = 0;
        // SAFETY: as in `wrap`.
        let major = unsafe {
            (lib.unwrap)(
                &mut minor,
                self.handle,
                &mut input,
                &mut output,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let out = take(lib, &mut output);
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_unwrap", major, minor));
        }
        Ok(out)
    }
}

impl Drop for SecCtx {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor = 0;
            // SAFETY: `handle` came from gss_accept_sec_context or gss_init_sec_context
            // and is deleted once.
            unsafe {
                (self.lib.delete_sec_context)(&mut minor, &mut self.handle, std::ptr::null_mut())
            };
        }
    }
}

/// What one initiate step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiated {
    /// Send this token; the acceptor's answer is needed.
    Continue(Vec<u8>),
    /// Established; send `token` if it is not empty.
    Established(Vec<u8>),
}

/// The operations of an initiated security context the SASL client needs; a trait so the
/// mechanism is tested without a KDC.
pub trait InitiatorContext: Send {
    /// One `gss_init_sec_context` step on the acceptor's token (empty at first).
    fn init(&mut self, token: &[u8]) -> Result<Initiated, GssError>;
    /// `gss_wrap` without confidentiality, QOP 0.
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError>;
    /// `gss_unwrap`.
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError>;
}

/// One security context being initiated with a service, deleted on drop.
#[derive(Debug)]
pub struct InitCtx {
    cred: Cred,
    target: Name,
    ctx: SecCtx,
}

impl InitiatorContext for InitCtx {
    fn init(&mut self, token: &[u8]) -> Result<Initiated, GssError> {
        let lib = self.ctx.lib;
        // The first call has no input token: GSS_C_NO_BUFFER, not a zero-length one.
        let mut input = BufferDesc::borrowing(token);
        let input_ptr: *mut BufferDesc = if self.ctx.handle.is_null() && token.is_empty() {
            std::ptr::null_mut()
        } else {
            &mut input
        };
        let mut output = BufferDesc::empty();
        let mut mech = oid(ffi::MECH_KRB5);
        let mut minor = 0;
        // SAFETY: `ctx` is null or a context this call made; `output` is taken below.
        let major = unsafe {
            (lib.init_sec_context)(
                &mut minor,
                self.cred.handle,
                &mut self.ctx.handle,
                self.target.handle,
                &mut mech,
                ffi::C_MUTUAL_FLAG | ffi::C_CONF_FLAG | ffi::C_INTEG_FLAG,
                0,
                std::ptr::null_mut(),
                input_ptr,
                std::ptr::null_mut(),
                &mut output,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let out = take(lib, &mut output);
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_init_sec_context", major, minor));
        }
        if major & ffi::S_CONTINUE_NEEDED != 0 {
            Ok(Initiated::Continue(out))
        } else {
            Ok(Initiated::Established(out))
        }
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        self.ctx.wrap(message)
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        self.ctx.unwrap(token)
    }
}
