//! LCFG XML profiles in, component trees out.
//!
//! [`parse_profile`] reads one machine's profile (plain or gzip) and returns the
//! components that were asked for, each as a [`Component`] tree with dotted-path and
//! flat-name lookup. In [`Select::Monitoring`] mode only `profile`, `nagios_client` and
//! the components listed in `nagios_client.components` are parsed; the package list and
//! every other component are passed over by the skeleton scan without being tokenised.
//!
//! Without its default `reader` feature the crate is the component tree alone, which is
//! what a translator sees.
//!
//! This crate never looks at translators, caches or Nagios.

#![deny(missing_docs)]

#[cfg(feature = "reader")]
pub mod context;
#[cfg(feature = "reader")]
mod error;
#[cfg(feature = "reader")]
mod parse;
#[cfg(feature = "reader")]
mod read;
#[cfg(feature = "reader")]
mod scan;
#[cfg(feature = "reader")]
mod skip;
mod tree;
#[cfg(feature = "reader")]
mod values;

#[cfg(feature = "reader")]
pub use error::{ProfileError, ProfileErrorKind};
#[cfg(feature = "reader")]
pub use read::*;
pub use tree::{Component, Lookup, NodeRef, Resource, ResourceType};

/// A machine name is a host name: labels of ASCII letters, digits and `-`, 1 to 63
/// characters, not beginning or ending with `-`, joined by single dots; 253 characters
/// at most. It is written into object files and into Nagios's command file, where `;`,
/// spaces, a newline or a trailing `\\` would forge results or objects.
pub fn check_host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("it must be 1 to 253 characters long");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots, or a dot at an end)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("only ASCII letters, digits, '-' and '.' may appear in it");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label begins or ends with '-'");
        }
    }
    Ok(())
}
