//! Translators as dynamic libraries: the C ABI that crosses the boundary, the wire
//! protocol, and the plugin side ([`export_translator!`](crate::export_translator)). The host
//! side, which loads libraries, lives in the runtime, not in the SDK.
//!
//! Only C types cross: one versioned declaration static ([`abi::Declaration`]), seven
//! `extern "C"` functions, and byte buffers holding a JSON-encoded request or response
//! ([`protocol`]) with an explicit protocol version. No Rust type, allocator or panic
//! crosses: the plugin frees its own buffers, catches its own panics, and sends its
//! `tracing` events to the host through a callback.
//!
//! This is the SDK's only module with `unsafe` code.

pub mod abi;
pub mod guest;
pub mod protocol;
