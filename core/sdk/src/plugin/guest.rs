//! The plugin side of the ABI. A translator crate exports itself with
//!
//! ```ignore
//! #[cfg(feature = "plugin")]
//! monitor_sdk::export_translator!(Jabberd);
//! ```
//!
//! and builds as a `cdylib`. Every call is wrapped in `catch_unwind`, so a panic becomes
//! an error for that machine; building with `panic = "abort"` is refused at compile time,
//! since such a panic would take the host down. The plugin's `tracing` events (and its
//! panic messages) go to the host's log through the host's callback.
//!
//! Put the macro behind a cargo feature: its `#[no_mangle]` symbols must exist once per
//! library, and the same crate is also linked into the host as an `rlib`.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{OnceLock, RwLock};

use tracing::field::{Field, Visit};

use super::abi::{HostApi, LogFn, OutBuf, level, status};
use super::protocol::{Call, CallError, PROTOCOL_VERSION, Reply, Request, Response};
use crate::profile::Component;
use crate::translator::{Context, TranslateError, Translator};

/// The SDK that built the plugin, for the declaration's build information.
pub const SDK_INFO: &CStr =
    match CStr::from_bytes_with_nul(concat!("monitor-sdk ", env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("SDK_INFO is NUL-terminated"),
    };

/// The plugin's single translator instance.
pub struct Instance {
    cell: OnceLock<RwLock<Box<dyn Translator>>>,
}

impl Instance {
    /// An instance with no translator yet; [`init`] creates it.
    pub const fn new() -> Self {
        Instance { cell: OnceLock::new() }
    }

    fn get(&self) -> Result<&RwLock<Box<dyn Translator>>, CallError> {
        self.cell
            .get()
            .ok_or_else(|| CallError::Protocol("the plugin was called before init".into()))
    }
}

impl Default for Instance {
    fn default() -> Self {
        Instance::new()
    }
}

static HOST_LOG: OnceLock<LogFn> = OnceLock::new();

fn host_log(lvl: u32, target: &str, msg: &str) {
    if let Some(log) = HOST_LOG.get() {
        log(lvl, target.as_ptr(), target.len(), msg.as_ptr(), msg.len());
    }
}

/// A `tracing` subscriber that hands each event at or above its level to a sink, as
/// (ABI level, target, message with its fields). The plugin side uses one that forwards to
/// the host's log callback; a worker process, one that forwards over its pipe. Spans are
/// not forwarded (the host logs the call's own context), so they all share one id.
pub struct Forwarder<F> {
    max: tracing::Level,
    sink: F,
}

impl<F: Fn(u32, &str, &str) + Send + Sync + 'static> Forwarder<F> {
    /// Forward events at `max` and above (`ERROR` is the highest) to `sink`.
    pub fn new(max: tracing::Level, sink: F) -> Self {
        Forwarder { max, sink }
    }
}

/// The ABI level ([`level`]) of a `tracing` level.
pub fn abi_level(l: tracing::Level) -> u32 {
    match l {
        tracing::Level::ERROR => level::ERROR,
        tracing::Level::WARN => level::WARN,
        tracing::Level::INFO => level::INFO,
        tracing::Level::DEBUG => level::DEBUG,
        tracing::Level::TRACE => level::TRACE,
    }
}

/// The `tracing` level of an ABI level; below `ERROR` is `ERROR`, above `TRACE` `TRACE`.
pub fn tracing_level(n: u32) -> tracing::Level {
    match n {
        0 | level::ERROR => tracing::Level::ERROR,
        level::WARN => tracing::Level::WARN,
        level::INFO => tracing::Level::INFO,
        level::DEBUG => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<F: Fn(u32, &str, &str) + Send + Sync + 'static> tracing::Subscriber for Forwarder<F> {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        let mut m = Message(String::new());
        event.record(&mut m);
        (self.sink)(abi_level(*meta.level()), meta.target(), &m.0);
    }
}

/// `init`: remember the host's callbacks, route `tracing` and panic messages to them,
/// create the translator, and answer with its identity.
///
/// # Safety
/// `host` must point to a valid [`HostApi`] and `out` be valid for one write.
pub unsafe fn init(
    instance: &Instance,
    make: impl FnOnce() -> Box<dyn Translator>,
    host: *const HostApi,
    out: *mut OutBuf,
) -> i32 {
    if host.is_null() || out.is_null() {
        return status::ERROR;
    }
    // SAFETY: the host passes a valid HostApi (checked non-null above) for this call.
    let api = unsafe { &*host };
    if (api.struct_size as usize) < std::mem::size_of::<HostApi>() {
        return status::ERROR;
    }
    let _ = HOST_LOG.set(api.log);
    let _ = tracing::subscriber::set_global_default(Forwarder::new(tracing::Level::TRACE, host_log));
    std::panic::set_hook(Box::new(|info| host_log(level::ERROR, "panic", &info.to_string())));
    let result = match catch_unwind(AssertUnwindSafe(|| instance.cell.get_or_init(|| RwLock::new(make())))) {
        Ok(lock) => {
            let t = lock.read().unwrap_or_else(|e| e.into_inner());
            Ok(Reply::Identity {
                component: t.component().to_string(),
                version: t.version().to_string(),
            })
        }
        Err(panic) => Err(CallError::Panic(panic_message(&*panic))),
    };
    // SAFETY: `out` is non-null and valid for one write (checked above).
    unsafe { respond(result, out) }
}

/// Encode `result` into a buffer owned by this library and hand it to the host.
///
/// # Safety
/// `out` must be valid for one write.
unsafe fn respond(result: Result<Reply, CallError>, out: *mut OutBuf) -> i32 {
    let code = if result.is_ok() { status::OK } else { status::ERROR };
    let response = Response {
        protocol: PROTOCOL_VERSION,
        result,
    };
    let encoded = serde_json::to_vec(&response).unwrap_or_else(|e| {
        // A response that cannot be encoded is reported as a protocol error.
        let fallback = Response {
            protocol: PROTOCOL_VERSION,
            result: Err(CallError::Protocol(e.to_string())),
        };
        serde_json::to_vec(&fallback).unwrap_or_default()
    });
    let mut v = std::mem::ManuallyDrop::new(encoded);
    // SAFETY: the caller guarantees `out` is valid for one write.
    unsafe {
        out.write(OutBuf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        })
    };
    code
}

/// Which entry point was called; the request must match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// [`START_PASS_SYMBOL`](super::abi::START_PASS_SYMBOL); takes [`Call::StartPass`].
    StartPass,
    /// [`TRANSLATE_SYMBOL`](super::abi::TRANSLATE_SYMBOL); takes [`Call::Translate`].
    Translate,
    /// [`NOTIFY_UNCHANGED_SYMBOL`](super::abi::NOTIFY_UNCHANGED_SYMBOL); takes [`Call::NotifyUnchanged`].
    NotifyUnchanged,
    /// [`FINISH_PASS_SYMBOL`](super::abi::FINISH_PASS_SYMBOL); takes [`Call::FinishPass`].
    FinishPass,
    /// [`ALWAYS_RUN_SYMBOL`](super::abi::ALWAYS_RUN_SYMBOL); takes [`Call::AlwaysRun`].
    AlwaysRun,
}

fn dispatch(instance: &Instance, entry: Entry, input: &[u8]) -> Result<Reply, CallError> {
    let req: Request = serde_json::from_slice(input).map_err(|e| CallError::Protocol(format!("bad request: {e}")))?;
    if req.protocol != PROTOCOL_VERSION {
        return Err(CallError::Protocol(format!(
            "the host speaks protocol {}, this plugin speaks {PROTOCOL_VERSION}",
            req.protocol
        )));
    }
    // A panic in an earlier call is reported as that call's error; the lock is recovered.
    let lock = instance.get()?;
    let tr = |e: TranslateError| CallError::Translate(e);
    match (entry, req.call) {
        (Entry::StartPass, Call::StartPass) => lock
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .start_pass()
            .map(Reply::Bundle)
            .map_err(tr),
        (Entry::FinishPass, Call::FinishPass) => lock
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .finish_pass()
            .map(Reply::Bundle)
            .map_err(tr),
        (
            Entry::Translate,
            Call::Translate {
                machine,
                component,
                resources,
            },
        ) => {
            let comp = Component::from_parts(&component, resources);
            let mut ctx = Context::new(&machine, &component);
            let bundle = lock
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .translate(&machine, &comp, &mut ctx)
                .map_err(tr)?;
            let (registrations, warnings) = ctx.into_parts();
            Ok(Reply::Translated {
                bundle,
                registrations,
                warnings,
            })
        }
        (Entry::NotifyUnchanged, Call::NotifyUnchanged { machine }) => {
            lock.read()
                .unwrap_or_else(|e| e.into_inner())
                .notify_unchanged(&machine);
            Ok(Reply::Done)
        }
        (Entry::AlwaysRun, Call::AlwaysRun) => Ok(Reply::AlwaysRun(
            lock.read().unwrap_or_else(|e| e.into_inner()).always_run(),
        )),
        (entry, call) => Err(CallError::Protocol(format!("entry point {entry:?} received {call:?}"))),
    }
}

/// One call: decode the request, run it under `catch_unwind`, encode the response.
///
/// # Safety
/// `input` must be valid for reads of `len` bytes and `out` valid for one write.
pub unsafe fn call(instance: &Instance, entry: Entry, input: *const u8, len: usize, out: *mut OutBuf) -> i32 {
    if out.is_null() || (input.is_null() && len > 0) {
        return status::ERROR;
    }
    let bytes = if len == 0 {
        &[][..]
    } else {
        // SAFETY: the host guarantees `input` is valid for `len` bytes during this call.
        unsafe { std::slice::from_raw_parts(input, len) }
    };
    let result = match catch_unwind(AssertUnwindSafe(|| dispatch(instance, entry, bytes))) {
        Ok(r) => r,
        Err(panic) => Err(CallError::Panic(panic_message(&*panic))),
    };
    // SAFETY: `out` is non-null and valid for one write (the host's contract).
    unsafe { respond(result, out) }
}

/// Release a buffer returned by [`call`].
///
/// # Safety
/// `buf` must come from [`call`] in this same library and not have been freed.
pub unsafe fn free(buf: OutBuf) {
    if !buf.ptr.is_null() {
        // SAFETY: ptr/len/cap came from a Vec<u8> leaked by `call` in this library.
        drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Export a translator from a `cdylib`: `export_translator!(MyTranslator)` where the
/// argument is an expression that builds the translator. See the module docs.
#[macro_export]
macro_rules! export_translator {
    ($make:expr) => {
        #[cfg(panic = "abort")]
        compile_error!(
            "translator plugins must be built with panic = \"unwind\": with panic = \"abort\" a panic in the plugin would abort the whole host"
        );

        static __MONITOR_COMPILE_INSTANCE: $crate::plugin::guest::Instance = $crate::plugin::guest::Instance::new();

        #[unsafe(no_mangle)]
        pub static monitor_compile_translator: $crate::plugin::abi::Declaration = $crate::plugin::abi::Declaration {
            magic: $crate::plugin::abi::MAGIC,
            abi_version: $crate::plugin::abi::ABI_VERSION,
            struct_size: ::std::mem::size_of::<$crate::plugin::abi::Declaration>() as u32,
            protocol_version: $crate::plugin::protocol::PROTOCOL_VERSION,
            component: concat!(env!("CARGO_PKG_NAME"), "\0").as_ptr() as *const ::std::ffi::c_char,
            version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const ::std::ffi::c_char,
            build_info: $crate::plugin::guest::SDK_INFO.as_ptr(),
        };

        /// # Safety
        /// Called by the host with a valid `HostApi`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn monitor_compile_init(
            host: *const $crate::plugin::abi::HostApi,
            out: *mut $crate::plugin::abi::OutBuf,
        ) -> i32 {
            // SAFETY: forwarded from the host, which passes a valid HostApi and out slot.
            unsafe { $crate::plugin::guest::init(&__MONITOR_COMPILE_INSTANCE, || ::std::boxed::Box::new($make), host, out) }
        }

        $crate::__export_call!(monitor_compile_start_pass, StartPass);
        $crate::__export_call!(monitor_compile_translate, Translate);
        $crate::__export_call!(monitor_compile_notify_unchanged, NotifyUnchanged);
        $crate::__export_call!(monitor_compile_finish_pass, FinishPass);
        $crate::__export_call!(monitor_compile_always_run, AlwaysRun);

        /// # Safety
        /// `buf` must have been returned by this library and not freed yet.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn monitor_compile_free_buffer(buf: $crate::plugin::abi::OutBuf) {
            // SAFETY: forwarded from the host, which returns each buffer once.
            unsafe { $crate::plugin::guest::free(buf) }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_call {
    ($name:ident, $entry:ident) => {
        /// # Safety
        /// `input` valid for `len` bytes; `out` valid for one write.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(input: *const u8, len: usize, out: *mut $crate::plugin::abi::OutBuf) -> i32 {
            // SAFETY: forwarded from the host under the ABI's contract.
            unsafe {
                $crate::plugin::guest::call(
                    &__MONITOR_COMPILE_INSTANCE,
                    $crate::plugin::guest::Entry::$entry,
                    input,
                    len,
                    out,
                )
            }
        }
    };
}
