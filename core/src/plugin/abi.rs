//! The C ABI between the host and a translator plugin. Changing anything here is an ABI
//! break: bump [`ABI_VERSION`].

use std::ffi::c_char;

/// The first bytes of every declaration.
pub const MAGIC: [u8; 8] = *b"MCTRANS\0";
/// The version of this ABI (the declaration layout and the function signatures).
pub const ABI_VERSION: u32 = 1;

/// The exported declaration static.
pub const DECLARATION_SYMBOL: &str = "monitor_compile_translator";
/// `fn(host: *const HostApi, out: *mut OutBuf) -> i32`, called once after loading; the
/// response is a `Reply::Identity`.
pub const INIT_SYMBOL: &str = "monitor_compile_init";
pub const START_PASS_SYMBOL: &str = "monitor_compile_start_pass";
pub const TRANSLATE_SYMBOL: &str = "monitor_compile_translate";
pub const NOTIFY_UNCHANGED_SYMBOL: &str = "monitor_compile_notify_unchanged";
pub const FINISH_PASS_SYMBOL: &str = "monitor_compile_finish_pass";
pub const ALWAYS_RUN_SYMBOL: &str = "monitor_compile_always_run";
/// `fn(OutBuf)`: releases a buffer the plugin returned.
pub const FREE_BUFFER_SYMBOL: &str = "monitor_compile_free_buffer";

/// What a plugin declares about itself.
#[repr(C)]
pub struct Declaration {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] the plugin was built with.
    pub abi_version: u32,
    /// `size_of::<Declaration>()` as the plugin sees it.
    pub struct_size: u32,
    /// [`crate::plugin::protocol::PROTOCOL_VERSION`] the plugin speaks.
    pub protocol_version: u32,
    /// The component served, NUL-terminated UTF-8.
    pub component: *const c_char,
    /// The translator's version, NUL-terminated UTF-8.
    pub version: *const c_char,
    /// Free-form build information (rustc, SDK version), NUL-terminated UTF-8.
    pub build_info: *const c_char,
}

// SAFETY: a Declaration is immutable static data; its pointers refer to static strings.
unsafe impl Sync for Declaration {}

/// A buffer allocated by the plugin and released by its `free_buffer`.
#[repr(C)]
#[derive(Debug)]
pub struct OutBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl OutBuf {
    pub const fn empty() -> Self {
        OutBuf {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// Log levels for [`HostApi::log`].
pub mod level {
    pub const ERROR: u32 = 1;
    pub const WARN: u32 = 2;
    pub const INFO: u32 = 3;
    pub const DEBUG: u32 = 4;
    pub const TRACE: u32 = 5;
}

/// `log(level, target, target_len, message, message_len)`.
pub type LogFn = extern "C" fn(u32, *const u8, usize, *const u8, usize);

/// What the host offers the plugin.
#[repr(C)]
pub struct HostApi {
    pub struct_size: u32,
    pub log: LogFn,
}

/// The call entry points: `(request, request_len, out) -> status`.
pub type CallFn = unsafe extern "C" fn(*const u8, usize, *mut OutBuf) -> i32;
pub type InitFn = unsafe extern "C" fn(*const HostApi, *mut OutBuf) -> i32;
pub type FreeFn = unsafe extern "C" fn(OutBuf);

/// Status codes of a call. With `OK` and `ERROR` the out buffer holds a response.
pub mod status {
    pub const OK: i32 = 0;
    /// The call failed; the response holds the error.
    pub const ERROR: i32 = 1;
}
