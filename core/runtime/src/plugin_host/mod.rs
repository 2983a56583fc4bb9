//! The host side: find `*.so` translators, check and load them, and call them through
//! the C ABI as ordinary [`Translator`]s.
//!
//! - A library is loaded from a **content-addressed copy** (`<copy dir>/<blake3>.so`):
//!   glibc returns the old code when the same path is `dlopen`ed again, so an upgraded
//!   file must have a new path to be picked up without a restart.
//! - Libraries are **never unloaded**: every loaded library is kept in a process-wide
//!   registry for the life of the process, so no function pointer can dangle.
//! - The magic, ABI version, declaration size and protocol version are checked before
//!   any plugin code runs (`RTLD_NOW`, so a missing symbol fails at load time).

use std::collections::{BTreeMap, HashMap};
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use thiserror::Error;

use lcfg_profile::Component;
use monitor_engine::cache::FileStat;
use monitor_sdk::nagios::Bundle;
use monitor_sdk::plugin::abi::{
    self, ABI_VERSION, CallFn, Declaration, FreeFn, HostApi, InitFn, MAGIC, OutBuf, level, status,
};
use monitor_sdk::plugin::protocol::{Call, CallError, PROTOCOL_VERSION, Reply, Response};
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The directory packages install translator libraries into.
pub const DEFAULT_TRANSLATOR_DIR: &str = "/usr/lib/monitor-compile/translators";

/// Why a library could not be used.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot load: {source}")]
    Dlopen { path: PathBuf, source: libloading::Error },
    #[error("{path}: not a monitor-compile translator (missing symbol {symbol})")]
    NotATranslator { path: PathBuf, symbol: &'static str },
    #[error("{path}: bad magic {found:?}: not a monitor-compile translator declaration")]
    BadMagic { path: PathBuf, found: [u8; 8] },
    #[error(
        "{path}: built for plugin ABI version {found}, but this monitor-compile speaks version {expected}; rebuild the translator against this SDK"
    )]
    AbiVersion { path: PathBuf, found: u32, expected: u32 },
    #[error("{path}: declaration is {found} bytes, expected at least {expected}: ABI mismatch")]
    StructSize { path: PathBuf, found: u32, expected: u32 },
    #[error(
        "{path}: speaks protocol version {found}, but this monitor-compile speaks version {expected}; rebuild the translator against this SDK"
    )]
    ProtocolVersion { path: PathBuf, found: u32, expected: u32 },
    #[error("{path}: init failed: {message}")]
    Init { path: PathBuf, message: String },
    /// Its worker process could not load it, or died while loading it (the message names
    /// the library).
    #[error("{message}")]
    Worker { path: PathBuf, message: String },
}

impl LoadError {
    /// The library the error is about.
    pub fn path(&self) -> &Path {
        use LoadError::*;
        match self {
            Io { path, .. }
            | Dlopen { path, .. }
            | NotATranslator { path, .. }
            | BadMagic { path, .. }
            | AbiVersion { path, .. }
            | StructSize { path, .. }
            | ProtocolVersion { path, .. }
            | Init { path, .. }
            | Worker { path, .. } => path,
        }
    }
}

/// A loaded library, kept for the life of the process.
struct Loaded {
    _lib: libloading::Library,
    decl: &'static Declaration,
    init: InitFn,
    calls: Calls,
}

#[derive(Clone, Copy)]
struct Calls {
    start_pass: CallFn,
    translate: CallFn,
    notify_unchanged: CallFn,
    finish_pass: CallFn,
    always_run: CallFn,
    free: FreeFn,
}

/// Every library loaded by this process, by content hash. Never shrinks: libraries are
/// never unloaded.
fn registry() -> &'static Mutex<HashMap<String, Arc<Loaded>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Loaded>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

extern "C" fn host_log(lvl: u32, target: *const u8, target_len: usize, msg: *const u8, msg_len: usize) {
    let text = |p: *const u8, n: usize| -> String {
        if p.is_null() {
            return String::new();
        }
        // SAFETY: the plugin passes a pointer valid for `n` bytes for this call.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(p, n) }).into_owned()
    };
    let (target, msg) = (text(target, target_len), text(msg, msg_len));
    log_plugin_event(None, lvl, &target, &msg);
}

/// Log one of a plugin's events in the host, at its level, under target `plugin`; with
/// the library it came from when it crossed from a worker.
pub(crate) fn log_plugin_event(library: Option<&Path>, lvl: u32, target: &str, msg: &str) {
    let library = library.map(|p| tracing::field::display(p.display()));
    match lvl {
        level::ERROR => tracing::error!(target: "plugin", library, plugin_target = %target, "{msg}"),
        level::WARN => tracing::warn!(target: "plugin", library, plugin_target = %target, "{msg}"),
        level::INFO => tracing::info!(target: "plugin", library, plugin_target = %target, "{msg}"),
        level::DEBUG => tracing::debug!(target: "plugin", library, plugin_target = %target, "{msg}"),
        _ => tracing::trace!(target: "plugin", library, plugin_target = %target, "{msg}"),
    }
}

static HOST_API: HostApi = HostApi {
    struct_size: std::mem::size_of::<HostApi>() as u32,
    log: host_log,
};

/// A translator that lives in a plugin library.
pub struct PluginTranslator {
    loaded: Arc<Loaded>,
    component: String,
    version: String,
    /// The declaration's translator name (the plugin's package name).
    pub name: String,
    /// The declaration's build information.
    pub build_info: String,
    /// The file it was loaded from (not the content-addressed copy).
    pub path: PathBuf,
    /// blake3 of the library file, hex.
    pub digest: String,
    always_run: bool,
}

impl std::fmt::Debug for PluginTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginTranslator")
            .field("component", &self.component)
            .field("version", &self.version)
            .field("path", &self.path)
            .field("digest", &self.digest)
            .finish()
    }
}

fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: declaration strings are static NUL-terminated strings of the plugin.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Load one library. `copy_dir` receives the content-addressed copy.
pub fn load(path: &Path, copy_dir: &Path) -> Result<PluginTranslator, LoadError> {
    let (bytes, digest) = read_hashed(path)?;
    load_bytes(path, &bytes, digest, copy_dir)
}

/// A library's bytes and their blake3 (hex): its identity.
pub(crate) fn read_hashed(path: &Path) -> Result<(Vec<u8>, String), LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let digest = blake3::hash(&bytes).to_hex().to_string();
    Ok((bytes, digest))
}

/// Load a library whose bytes were read (and hashed into `digest`) from `path`.
fn load_bytes(path: &Path, bytes: &[u8], digest: String, copy_dir: &Path) -> Result<PluginTranslator, LoadError> {
    place_copy(path, bytes, &digest, copy_dir)?;
    load_placed(path, digest, copy_dir)
}

/// Put the content-addressed copy of a library (`COPY_DIR/<digest>.so`) in place, unless
/// it is there already.
pub(crate) fn place_copy(path: &Path, bytes: &[u8], digest: &str, copy_dir: &Path) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(copy_dir).map_err(io)?;
    let copy = copy_dir.join(format!("{digest}.so"));
    if !copy.exists() {
        crate::writer::write_atomic(&copy, bytes).map_err(io)?;
    }
    Ok(())
}

/// Load the library read from `path` from its content-addressed copy, which
/// [`place_copy`] put in `copy_dir` for `digest`: exactly the bytes that were hashed,
/// without reading them again.
pub fn load_placed(path: &Path, digest: String, copy_dir: &Path) -> Result<PluginTranslator, LoadError> {
    let existing = registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&digest)
        .cloned();
    let loaded = match existing {
        Some(l) => l,
        None => {
            let copy = copy_dir.join(format!("{digest}.so"));
            let loaded = Arc::new(open(path, &copy)?);
            registry()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(digest.clone(), loaded.clone());
            loaded
        }
    };
    let mut out = OutBuf::empty();
    // SAFETY: `init` has the declared signature (ABI version checked); HOST_API is static
    // and `out` is a valid slot.
    let code = unsafe { (loaded.init)(&HOST_API, &mut out) };
    let reply = take_response(&loaded.calls, code, out).map_err(|e| LoadError::Init {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Reply::Identity { component, version } = reply else {
        return Err(LoadError::Init {
            path: path.to_path_buf(),
            message: format!("unexpected reply {reply:?}"),
        });
    };
    let mut t = PluginTranslator {
        component,
        version,
        name: cstr(loaded.decl.component),
        build_info: cstr(loaded.decl.build_info),
        path: path.to_path_buf(),
        digest,
        always_run: false,
        loaded,
    };
    t.always_run = matches!(t.call_raw(Call::AlwaysRun), Ok(Reply::AlwaysRun(true)));
    tracing::info!(component = %t.component, version = %t.version, path = %t.path.display(), digest = %t.digest, "translator plugin loaded");
    Ok(t)
}

fn open(path: &Path, copy: &Path) -> Result<Loaded, LoadError> {
    let p = || path.to_path_buf();
    // SAFETY: loading a library runs its initialisers. Translator libraries are
    // installed by the administrator from packages; this is the plugin boundary.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(copy),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
    }
    .map_err(|source| LoadError::Dlopen { path: p(), source })?;
    let lib = libloading::Library::from(lib);
    let missing = |symbol| {
        move |_| LoadError::NotATranslator {
            path: path.to_path_buf(),
            symbol,
        }
    };
    // SAFETY: the symbol is the declaration static, whose type the ABI defines; it is only
    // read after the magic is checked, and lives as long as the library (forever).
    let decl: &'static Declaration = unsafe {
        let sym = lib
            .get::<*const Declaration>(abi::DECLARATION_SYMBOL.as_bytes())
            .map_err(missing(abi::DECLARATION_SYMBOL))?;
        let ptr: *const Declaration = *sym;
        let magic = std::ptr::read_unaligned(ptr as *const [u8; 8]);
        if magic != MAGIC {
            return Err(LoadError::BadMagic {
                path: p(),
                found: magic,
            });
        }
        &*ptr
    };
    if decl.abi_version != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            path: p(),
            found: decl.abi_version,
            expected: ABI_VERSION,
        });
    }
    let size = std::mem::size_of::<Declaration>() as u32;
    if decl.struct_size < size {
        return Err(LoadError::StructSize {
            path: p(),
            found: decl.struct_size,
            expected: size,
        });
    }
    if decl.protocol_version != PROTOCOL_VERSION {
        return Err(LoadError::ProtocolVersion {
            path: p(),
            found: decl.protocol_version,
            expected: PROTOCOL_VERSION,
        });
    }
    // SAFETY: the ABI version matches, so each symbol has the signature abi.rs declares.
    // The copied function pointers stay valid because the library is never unloaded.
    unsafe {
        let call = |name: &'static str| -> Result<CallFn, LoadError> {
            lib.get::<CallFn>(name.as_bytes()).map(|s| *s).map_err(missing(name))
        };
        let calls = Calls {
            start_pass: call(abi::START_PASS_SYMBOL)?,
            translate: call(abi::TRANSLATE_SYMBOL)?,
            notify_unchanged: call(abi::NOTIFY_UNCHANGED_SYMBOL)?,
            finish_pass: call(abi::FINISH_PASS_SYMBOL)?,
            always_run: call(abi::ALWAYS_RUN_SYMBOL)?,
            free: lib
                .get::<FreeFn>(abi::FREE_BUFFER_SYMBOL.as_bytes())
                .map(|s| *s)
                .map_err(missing(abi::FREE_BUFFER_SYMBOL))?,
        };
        let init = lib
            .get::<InitFn>(abi::INIT_SYMBOL.as_bytes())
            .map(|s| *s)
            .map_err(missing(abi::INIT_SYMBOL))?;
        Ok(Loaded {
            _lib: lib,
            decl,
            init,
            calls,
        })
    }
}

/// Copy the plugin's response out of its buffer and free the buffer.
fn take_bytes(calls: &Calls, code: i32, out: OutBuf) -> Result<Vec<u8>, CallError> {
    if out.ptr.is_null() {
        return Err(CallError::Protocol(format!(
            "the plugin returned status {code} and no response"
        )));
    }
    // SAFETY: the plugin returned a buffer valid for `len` bytes; we copy it before freeing.
    let bytes = unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec();
    // SAFETY: the buffer came from this plugin and is freed exactly once, by its own free.
    unsafe { (calls.free)(out) };
    Ok(bytes)
}

/// Copy the plugin's response out of its buffer, free the buffer, and decode it.
fn take_response(calls: &Calls, code: i32, out: OutBuf) -> Result<Reply, CallError> {
    decode_response(code, &take_bytes(calls, code, out)?)
}

/// Decode a library's response to a call that returned `code`.
pub(crate) fn decode_response(code: i32, bytes: &[u8]) -> Result<Reply, CallError> {
    let response: Response =
        serde_json::from_slice(bytes).map_err(|e| CallError::Protocol(format!("bad response: {e}")))?;
    if response.protocol != PROTOCOL_VERSION {
        return Err(CallError::Protocol(format!(
            "response in protocol {}",
            response.protocol
        )));
    }
    match (code, response.result) {
        (status::OK, r @ Ok(_)) | (status::ERROR, r @ Err(_)) => r,
        (code, r) => Err(CallError::Protocol(format!(
            "status {code} does not match the response {r:?}"
        ))),
    }
}

impl PluginTranslator {
    /// Run one protocol call in the library, as its entry point for that call.
    pub fn call_raw(&self, call: Call) -> Result<Reply, CallError> {
        let (code, bytes) = self.call_bytes(entry_of(&call), &encode_request(&call))?;
        decode_response(code, &bytes)
    }

    fn entry(&self, entry: u8) -> CallFn {
        let c = &self.loaded.calls;
        match entry {
            ENTRY_START_PASS => c.start_pass,
            ENTRY_TRANSLATE => c.translate,
            ENTRY_NOTIFY_UNCHANGED => c.notify_unchanged,
            ENTRY_FINISH_PASS => c.finish_pass,
            _ => c.always_run,
        }
    }

    /// Run a request already encoded (`request`: the plugin protocol's `Request`) at entry
    /// point `entry`, and return the library's status and response bytes undecoded: what
    /// a worker process does for its host.
    pub fn call_bytes(&self, entry: u8, request: &[u8]) -> Result<(i32, Vec<u8>), CallError> {
        let f = self.entry(entry);
        let mut out = OutBuf::empty();
        // SAFETY: `f` has the ABI's CallFn signature; `request` is valid for its length for
        // the duration of the call, and `out` is a valid slot.
        let code = unsafe { f(request.as_ptr(), request.len(), &mut out) };
        Ok((code, take_bytes(&self.loaded.calls, code, out)?))
    }

    fn bundle(&self, call: Call) -> Result<Bundle, TranslateError> {
        bundle_of(self.call_raw(call))
    }
}

/// The entry points, by number, as a worker's call frames name them.
pub const ENTRY_START_PASS: u8 = 0;
/// `translate`.
pub const ENTRY_TRANSLATE: u8 = 1;
/// `notify_unchanged`.
pub const ENTRY_NOTIFY_UNCHANGED: u8 = 2;
/// `finish_pass`.
pub const ENTRY_FINISH_PASS: u8 = 3;
/// `always_run`.
pub const ENTRY_ALWAYS_RUN: u8 = 4;

/// The entry point of `call`.
pub fn entry_of(call: &Call) -> u8 {
    match call {
        Call::StartPass => ENTRY_START_PASS,
        Call::Translate { .. } => ENTRY_TRANSLATE,
        Call::NotifyUnchanged { .. } => ENTRY_NOTIFY_UNCHANGED,
        Call::FinishPass => ENTRY_FINISH_PASS,
        Call::AlwaysRun => ENTRY_ALWAYS_RUN,
    }
}

/// `call` as the request bytes a library reads.
pub fn encode_request(call: &Call) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Req<'a> {
        protocol: u32,
        call: &'a Call,
    }
    // Invariant: a Call always serializes (strings and plain data only).
    serde_json::to_vec(&Req {
        protocol: PROTOCOL_VERSION,
        call,
    })
    .unwrap_or_default()
}

/// The `translate` call for `machine`'s `component`.
pub(crate) fn translate_call(machine: &str, component: &Component) -> Call {
    Call::Translate {
        machine: machine.to_string(),
        component: component.name().to_string(),
        resources: component.resources().to_vec(),
    }
}

/// A `translate` reply, with its registrations and warnings recorded in `ctx`.
pub(crate) fn translated(reply: Result<Reply, CallError>, ctx: &mut Context) -> Result<Bundle, TranslateError> {
    match reply {
        Ok(Reply::Translated {
            bundle,
            registrations,
            warnings,
        }) => {
            for r in registrations {
                ctx.record(r);
            }
            for w in warnings {
                ctx.warn(w);
            }
            Ok(bundle)
        }
        Ok(other) => Err(TranslateError::Other(format!(
            "plugin protocol error: unexpected reply {other:?}"
        ))),
        Err(e) => Err(into_translate_error(e)),
    }
}

/// A pass hook's reply as its bundle.
pub(crate) fn bundle_of(reply: Result<Reply, CallError>) -> Result<Bundle, TranslateError> {
    match reply {
        Ok(Reply::Bundle(b)) => Ok(b),
        Ok(other) => Err(TranslateError::Other(format!(
            "plugin protocol error: unexpected reply {other:?}"
        ))),
        Err(e) => Err(into_translate_error(e)),
    }
}

fn into_translate_error(e: CallError) -> TranslateError {
    match e {
        CallError::Translate(t) => t,
        other => TranslateError::Other(other.to_string()),
    }
}

impl Translator for PluginTranslator {
    fn component(&self) -> &str {
        &self.component
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        self.bundle(Call::StartPass)
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let call = translate_call(machine, component);
        translated(self.call_raw(call), ctx)
    }

    fn notify_unchanged(&self, machine: &str) {
        if let Err(e) = self.call_raw(Call::NotifyUnchanged {
            machine: machine.into(),
        }) {
            tracing::warn!(component = %self.component, error = %e, "notify_unchanged failed");
        }
    }

    fn finish_pass(&mut self) -> Result<Bundle, TranslateError> {
        self.bundle(Call::FinishPass)
    }

    fn always_run(&self) -> bool {
        self.always_run
    }
}

mod set;
pub use set::*;
