//! Translators as dynamic libraries: the C ABI that crosses the boundary, the wire
//! protocol, the plugin side ([`export_translator!`](crate::export_translator)) and the
//! host side ([`host`]).
//!
//! Only C types cross: one versioned declaration static ([`abi::Declaration`]), seven
//! `extern "C"` functions, and byte buffers holding a JSON-encoded request or response
//! ([`protocol`]) with an explicit protocol version. No Rust type, allocator or panic
//! crosses: the plugin frees its own buffers, catches its own panics, and sends its
//! `tracing` events to the host through a callback.
//!
//! This is the only module with `unsafe` code.

pub mod abi;
pub mod guest;
pub mod host;
pub mod protocol;
