//! The system's GSS-API library (MIT Kerberos' `libgssapi_krb5.so.2`, RFC 2744's C
//! bindings), opened at run time with `libloading`.
//!
//! Opened only when a server is configured for Kerberos, so rzk builds and runs without
//! Kerberos' headers or library; a server configured for Kerberos on a machine without
//! the library stops at start-up naming it ([`GssLibrary::get`]). The declarations
//! below follow RFC 2744 §3 (types) and §5 (calls) as MIT's `gssapi.h` lays them out
//! on 64-bit Linux, plus MIT's `gss_acquire_cred_from` (its credential-store
//! extension), which takes the keytab per credential instead of through the
//! process-wide `KRB5_KTNAME`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

/// `OM_uint32`: status codes and flags.
pub type OmUint32 = u32;
/// An opaque `gss_name_t`.
pub type NameHandle = *mut c_void;
/// An opaque `gss_cred_id_t`.
pub type CredHandle = *mut c_void;
/// An opaque `gss_ctx_id_t`.
pub type CtxHandle = *mut c_void;

/// `gss_buffer_desc`: a length and a pointer.
#[repr(C)]
#[derive(Debug)]
pub struct BufferDesc {
    /// Bytes at `value`.
    pub length: usize,
    /// The bytes (owned by the library when it filled the buffer).
    pub value: *mut c_void,
}

impl BufferDesc {
    /// An empty buffer for the library to fill.
    pub fn empty() -> BufferDesc {
        BufferDesc {
            length: 0,
            value: std::ptr::null_mut(),
        }
    }

    /// A buffer borrowing `b` (the library only reads input buffers).
    pub fn borrowing(b: &[u8]) -> BufferDesc {
        BufferDesc {
            length: b.len(),
            value: b.as_ptr() as *mut c_void,
        }
    }
}

/// `gss_OID_desc`: a DER-encoded object identifier's contents.
#[repr(C)]
#[derive(Debug)]
pub struct OidDesc {
    /// Bytes at `elements`.
    pub length: OmUint32,
    /// The identifier's bytes.
    pub elements: *mut c_void,
}

/// `gss_OID_set_desc`.
#[repr(C)]
#[derive(Debug)]
pub struct OidSetDesc {
    /// Identifiers at `elements`.
    pub count: usize,
    /// The identifiers.
    pub elements: *mut OidDesc,
}

/// `gss_key_value_element_desc` (MIT's credential store).
#[repr(C)]
#[derive(Debug)]
pub struct KeyValueElement {
    /// NUL-terminated key (`keytab`, `ccache`, `client_keytab`).
    pub key: *const c_char,
    /// NUL-terminated value.
    pub value: *const c_char,
}

/// `gss_key_value_set_desc` (MIT's credential store).
#[repr(C)]
#[derive(Debug)]
pub struct KeyValueSet {
    /// Elements at `elements`.
    pub count: OmUint32,
    /// The elements.
    pub elements: *mut KeyValueElement,
}

/// `GSS_S_COMPLETE`.
pub const S_COMPLETE: OmUint32 = 0;
/// `GSS_S_CONTINUE_NEEDED` (a supplementary bit).
pub const S_CONTINUE_NEEDED: OmUint32 = 1;
/// The calling-error and routine-error fields of a major status: non-zero is a failure.
pub const S_ERROR_MASK: OmUint32 = 0xffff_0000;
/// `GSS_C_INDEFINITE`.
pub const C_INDEFINITE: OmUint32 = 0xffff_ffff;
/// `GSS_C_INITIATE` (a `gss_cred_usage_t`).
pub const C_INITIATE: c_int = 1;
/// `GSS_C_ACCEPT` (a `gss_cred_usage_t`).
pub const C_ACCEPT: c_int = 2;
/// `GSS_C_MUTUAL_FLAG`: the acceptor proves itself too.
pub const C_MUTUAL_FLAG: OmUint32 = 2;
/// `GSS_C_CONF_FLAG`.
pub const C_CONF_FLAG: OmUint32 = 16;
/// `GSS_C_INTEG_FLAG`.
pub const C_INTEG_FLAG: OmUint32 = 32;
/// `GSS_C_GSS_CODE` for `gss_display_status`.
pub const C_GSS_CODE: c_int = 1;
/// `GSS_C_MECH_CODE` for `gss_display_status`.
pub const C_MECH_CODE: c_int = 2;

/// The Kerberos V5 mechanism, 1.2.840.113554.1.2.2 (RFC 1964).
pub const MECH_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// Name type `GSS_C_NT_HOSTBASED_SERVICE`, 1.2.840.113554.1.2.1.4: `service@host`.
pub const NT_HOSTBASED_SERVICE: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
/// Name type `GSS_KRB5_NT_PRINCIPAL_NAME`, 1.2.840.113554.1.2.2.1: `primary/instance@REALM`.
pub const NT_KRB5_PRINCIPAL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];

type ImportName =
    unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc, *mut OidDesc, *mut NameHandle) -> OmUint32;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut OmUint32,
    NameHandle,
    OmUint32,
    *mut OidSetDesc,
    c_int,
    *const KeyValueSet,
    *mut CredHandle,
    *mut *mut OidSetDesc,
    *mut OmUint32,
) -> OmUint32;
type AcceptSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    *mut CtxHandle,
    CredHandle,
    *mut BufferDesc,
    *mut c_void,
    *mut NameHandle,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
    *mut CredHandle,
) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    CredHandle,
    *mut CtxHandle,
    NameHandle,
    *mut OidDesc,
    OmUint32,
    OmUint32,
    *mut c_void,
    *mut BufferDesc,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type DisplayName =
    unsafe extern "C" fn(*mut OmUint32, NameHandle, *mut BufferDesc, *mut *mut OidDesc) -> OmUint32;
type Wrap = unsafe extern "C" fn(
    *mut OmUint32,
    CtxHandle,
    c_int,
    OmUint32,
    *mut BufferDesc,
    *mut c_int,
    *mut BufferDesc,
) -> OmUint32;
type Unwrap = unsafe extern "C" fn(
    *mut OmUint32,
    CtxHandle,
    *mut BufferDesc,
    *mut BufferDesc,
    *mut c_int,
    *mut OmUint32,
) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut NameHandle) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut CredHandle) -> OmUint32;
type DeleteSecContext =
    unsafe extern "C" fn(*mut OmUint32, *mut CtxHandle, *mut BufferDesc) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *mut OidDesc,
    *mut OmUint32,
    *mut BufferDesc,
) -> OmUint32;

/// The library's entry points rzk uses.
#[derive(Debug)]
pub struct GssLibrary {
    /// Kept open for the process's life: the pointers below point into it.
    _library: libloading::Library,
    /// `gss_import_name`: a name from text and a name type.
    pub import_name: ImportName,
    /// `gss_acquire_cred_from` (MIT): a credential, its keytab or cache given in a store.
    pub acquire_cred_from: AcquireCredFrom,
    /// `gss_accept_sec_context`: one acceptor step.
    pub accept_sec_context: AcceptSecContext,
    /// `gss_init_sec_context`: one initiator step.
    pub init_sec_context: InitSecContext,
    /// `gss_display_name`: a name's text.
    pub display_name: DisplayName,
    /// `gss_wrap`: protect a message with an established context.
    pub wrap: Wrap,
    /// `gss_unwrap`: check and open a wrapped message.
    pub unwrap: Unwrap,
    /// `gss_release_buffer`: free a buffer the library filled.
    pub release_buffer: ReleaseBuffer,
    /// `gss_release_name`.
    pub release_name: ReleaseName,
    /// `gss_release_cred`.
    pub release_cred: ReleaseCred,
    /// `gss_delete_sec_context`.
    pub delete_sec_context: DeleteSecContext,
    /// `gss_display_status`: the text of a major or minor status.
    pub display_status: DisplayStatus,
}

/// The file names tried, in order.
pub const LIBRARY_NAMES: [&str; 2] = ["libgssapi_krb5.so.2", "libgssapi_krb5.so"];

static LIBRARY: OnceLock<Result<GssLibrary, String>> = OnceLock::new();

impl GssLibrary {
    /// The library, opened on first use. Errors: none of [`LIBRARY_NAMES`] could be
    /// opened, or one lacks an entry point (the text names which).
    pub fn get() -> Result<&'static GssLibrary, String> {
        LIBRARY
            .get_or_init(Self::open)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn open() -> Result<GssLibrary, String> {
        let mut errors = Vec::new();
        for name in LIBRARY_NAMES {
            // SAFETY: opening MIT's GSS-API library runs only its (and libkrb5's)
            // initialisers, which have no preconditions.
            match unsafe { libloading::Library::new(name) } {
                Ok(lib) => return Self::bind(lib, name),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(format!(
            "cannot open the GSS-API library ({}; Debian package libgssapi-krb5-2): {}",
            LIBRARY_NAMES.join(" or "),
            errors.join("; ")
        ))
    }

    fn bind(lib: libloading::Library, name: &str) -> Result<GssLibrary, String> {
        macro_rules! sym {
            ($s:literal) => {{
                // SAFETY: each symbol is declared above with RFC 2744's (or MIT's
                // documented) C signature for that name.
                let f = unsafe { lib.get($s) }.map_err(|e| {
                    format!(
                        "{name} has no {}: {e}",
                        String::from_utf8_lossy(&$s[..$s.len() - 1])
                    )
                })?;
                *f
            }};
        }
        Ok(GssLibrary {
            import_name: sym!(b"gss_import_name\0"),
            acquire_cred_from: sym!(b"gss_acquire_cred_from\0"),
            accept_sec_context: sym!(b"gss_accept_sec_context\0"),
            init_sec_context: sym!(b"gss_init_sec_context\0"),
            display_name: sym!(b"gss_display_name\0"),
            wrap: sym!(b"gss_wrap\0"),
            unwrap: sym!(b"gss_unwrap\0"),
            release_buffer: sym!(b"gss_release_buffer\0"),
            release_name: sym!(b"gss_release_name\0"),
            release_cred: sym!(b"gss_release_cred\0"),
            delete_sec_context: sym!(b"gss_delete_sec_context\0"),
            display_status: sym!(b"gss_display_status\0"),
            _library: lib,
        })
    }
}
