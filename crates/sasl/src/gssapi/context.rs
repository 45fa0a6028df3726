//! Safe handles over [`super::ffi`]: a Kerberos acceptor credential read from a keytab,
//! and one security context being accepted (RFC 2743's `GSS_Accept_sec_context`,
//! `GSS_Wrap`, `GSS_Unwrap`).

use super::ffi::{self, BufferDesc, GssLibrary, OidDesc, OidSetDesc, OmUint32};
use std::ffi::{c_int, c_void, CString};
use std::path::{Path, PathBuf};

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
    /// Checks that the library opens and the keytab holds keys for the principal, as
    /// start-up does. Errors: [`GssError`] naming the call and the library's reason.
    pub fn check(&self) -> Result<(), GssError> {
        AcceptorCred::acquire(&self.principal, &self.keytab).map(drop)
    }

    /// A new context to accept one client's security context with.
    pub fn start(&self) -> Result<AcceptCtx, GssError> {
        Ok(AcceptCtx {
            cred: AcceptorCred::acquire(&self.principal, &self.keytab)?,
            ctx: std::ptr::null_mut(),
            lib: library()?,
        })
    }
}

/// An acceptor credential (`gss_cred_id_t`), released on drop.
#[derive(Debug)]
struct AcceptorCred {
    lib: &'static GssLibrary,
    handle: ffi::CredHandle,
}

// SAFETY: a credential handle is used by one AcceptCtx at a time (it owns it); MIT's
// library lets a handle move between threads.
unsafe impl Send for AcceptorCred {}

impl AcceptorCred {
    fn acquire(principal: &str, keytab: &Path) -> Result<AcceptorCred, GssError> {
        let lib = library()?;
        let mut name_buf = BufferDesc::borrowing(principal.as_bytes());
        let mut name_type = oid(ffi::NT_KRB5_PRINCIPAL);
        let mut name: ffi::NameHandle = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: inputs are live locals; `name` is released below.
        let major =
            unsafe { (lib.import_name)(&mut minor, &mut name_buf, &mut name_type, &mut name) };
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_import_name", major, minor));
        }
        let result = Self::acquire_named(lib, name, keytab);
        // SAFETY: `name` came from gss_import_name.
        unsafe { (lib.release_name)(&mut minor, &mut name) };
        result
    }

    fn acquire_named(
        lib: &'static GssLibrary,
        name: ffi::NameHandle,
        keytab: &Path,
    ) -> Result<AcceptorCred, GssError> {
        use std::os::unix::ffi::OsStrExt;
        let key = CString::new("keytab").map_err(|e| GssError::new("keytab", e.to_string()))?;
        let value = CString::new(keytab.as_os_str().as_bytes())
            .map_err(|_| GssError::new("keytab", "the keytab path holds a NUL byte"))?;
        let mut element = ffi::KeyValueElement {
            key: key.as_ptr(),
            value: value.as_ptr(),
        };
        let store = ffi::KeyValueSet {
            count: 1,
            elements: &mut element,
        };
        let mut mech = oid(ffi::MECH_KRB5);
        let mut mechs = OidSetDesc {
            count: 1,
            elements: &mut mech,
        };
        let mut handle: ffi::CredHandle = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: every pointer is to a live local; `handle` is owned by the result.
        let major = unsafe {
            (lib.acquire_cred_from)(
                &mut minor,
                name,
                ffi::C_INDEFINITE,
                &mut mechs,
                ffi::C_ACCEPT,
                &store,
                &mut handle,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if major & ffi::S_ERROR_MASK != 0 {
            return Err(GssError::status(lib, "gss_acquire_cred_from", major, minor));
        }
        Ok(AcceptorCred { lib, handle })
    }
}

impl Drop for AcceptorCred {
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
    lib: &'static GssLibrary,
    cred: AcceptorCred,
    ctx: ffi::CtxHandle,
}

// SAFETY: the context is used from one task at a time (`&mut self`); MIT's library lets
// a context move between threads.
unsafe impl Send for AcceptCtx {}

impl SecurityContext for AcceptCtx {
    fn accept(&mut self, token: &[u8]) -> Result<Accepted, GssError> {
        let lib = self.lib;
        let mut input = BufferDesc::borrowing(token);
        let mut output = BufferDesc::empty();
        let mut src: ffi::NameHandle = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: `ctx` is null or a context this call made; outputs are released below.
        let major = unsafe {
            (lib.accept_sec_context)(
                &mut minor,
                &mut self.ctx,
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
        let lib = self.lib;
        let mut input = BufferDesc::borrowing(message);
        let mut output = BufferDesc::empty();
        let mut minor = 0;
        // SAFETY: the context is established (the mechanism wraps only after that).
        let major = unsafe {
            (lib.wrap)(
                &mut minor,
                self.ctx,
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

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        let lib = self.lib;
        let mut input = BufferDesc::borrowing(token);
        let mut output = BufferDesc::empty();
        let mut minor = 0;
        // SAFETY: as in `wrap`.
        let major = unsafe {
            (lib.unwrap)(
                &mut minor,
                self.ctx,
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

impl Drop for AcceptCtx {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            let mut minor = 0;
            // SAFETY: `ctx` came from gss_accept_sec_context and is deleted once.
            unsafe {
                (self.lib.delete_sec_context)(&mut minor, &mut self.ctx, std::ptr::null_mut())
            };
        }
    }
}
