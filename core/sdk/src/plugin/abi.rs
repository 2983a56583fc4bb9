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
/// A [`CallFn`] that runs `Translator::start_pass`: the request is [`Call::StartPass`], the reply
/// [`Reply::Bundle`].
///
/// [`Call::StartPass`]: crate::plugin::protocol::Call::StartPass
/// [`Reply::Bundle`]: crate::plugin::protocol::Reply::Bundle
pub const START_PASS_SYMBOL: &str = "monitor_compile_start_pass";
/// A [`CallFn`] that runs `Translator::translate`: the request is [`Call::Translate`], the reply
/// [`Reply::Translated`].
///
/// [`Call::Translate`]: crate::plugin::protocol::Call::Translate
/// [`Reply::Translated`]: crate::plugin::protocol::Reply::Translated
pub const TRANSLATE_SYMBOL: &str = "monitor_compile_translate";
/// A [`CallFn`] that runs `Translator::notify_unchanged`: the request is [`Call::NotifyUnchanged`], the reply
/// [`Reply::Done`].
///
/// [`Call::NotifyUnchanged`]: crate::plugin::protocol::Call::NotifyUnchanged
/// [`Reply::Done`]: crate::plugin::protocol::Reply::Done
pub const NOTIFY_UNCHANGED_SYMBOL: &str = "monitor_compile_notify_unchanged";
/// A [`CallFn`] that runs `Translator::finish_pass`: the request is [`Call::FinishPass`], the reply
/// [`Reply::Bundle`].
///
/// [`Call::FinishPass`]: crate::plugin::protocol::Call::FinishPass
/// [`Reply::Bundle`]: crate::plugin::protocol::Reply::Bundle
pub const FINISH_PASS_SYMBOL: &str = "monitor_compile_finish_pass";
/// A [`CallFn`] that runs `Translator::always_run`: the request is [`Call::AlwaysRun`], the reply
/// [`Reply::AlwaysRun`].
///
/// [`Call::AlwaysRun`]: crate::plugin::protocol::Call::AlwaysRun
/// [`Reply::AlwaysRun`]: crate::plugin::protocol::Reply::AlwaysRun
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
    /// The translator's name (the plugin's package name, which the host reports),
    /// NUL-terminated UTF-8. The field keeps its ABI name; the component served is the
    /// one `init` answers with ([`Reply::Identity`](crate::plugin::protocol::Reply::Identity)).
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
    /// The first byte (null for an empty buffer).
    pub ptr: *mut u8,
    /// The number of bytes the response takes.
    pub len: usize,
    /// The capacity of the plugin's allocation, which its `free_buffer` needs to release it.
    pub cap: usize,
}

impl OutBuf {
    /// A null, empty buffer: the slot the host passes for a call to fill.
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
    /// `tracing` `ERROR` events, and panic messages.
    pub const ERROR: u32 = 1;
    /// `tracing` `WARN` events.
    pub const WARN: u32 = 2;
    /// `tracing` `INFO` events.
    pub const INFO: u32 = 3;
    /// `tracing` `DEBUG` events.
    pub const DEBUG: u32 = 4;
    /// `tracing` `TRACE` events; the host also logs unknown levels at this level.
    pub const TRACE: u32 = 5;
}

/// `log(level, target, target_len, message, message_len)`.
pub type LogFn = extern "C" fn(u32, *const u8, usize, *const u8, usize);

/// What the host offers the plugin.
#[repr(C)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host sees it; `init` refuses a smaller value.
    pub struct_size: u32,
    /// Writes one of the plugin's log events (a `tracing` event or a panic message) to the
    /// host's log.
    pub log: LogFn,
}

/// The call entry points: `(request, request_len, out) -> status`.
pub type CallFn = unsafe extern "C" fn(*const u8, usize, *mut OutBuf) -> i32;
/// The signature of the init function ([`INIT_SYMBOL`]): `(host, out) -> status`.
pub type InitFn = unsafe extern "C" fn(*const HostApi, *mut OutBuf) -> i32;
/// The signature of the buffer release function ([`FREE_BUFFER_SYMBOL`]).
pub type FreeFn = unsafe extern "C" fn(OutBuf);

/// Status codes of a call. With `OK` and `ERROR` the out buffer holds a response.
pub mod status {
    /// The call succeeded; the response holds the reply.
    pub const OK: i32 = 0;
    /// The call failed; the response holds the error.
    pub const ERROR: i32 = 1;
}
