//! A library that looks like a translator plugin but declares ABI version 999, so that
//! the host's refusal can be tested. It exports only the declaration: the host must
//! refuse it before looking any further.

use monitor_sdk::plugin::abi::{Declaration, MAGIC};
use monitor_sdk::plugin::protocol::PROTOCOL_VERSION;

/// The declaration, with a future ABI version.
#[unsafe(no_mangle)]
pub static monitor_compile_translator: Declaration = Declaration {
    magic: MAGIC,
    abi_version: 999,
    struct_size: std::mem::size_of::<Declaration>() as u32,
    protocol_version: PROTOCOL_VERSION,
    component: c"bad-abi".as_ptr(),
    version: c"1.0.0".as_ptr(),
    build_info: c"test".as_ptr(),
};
