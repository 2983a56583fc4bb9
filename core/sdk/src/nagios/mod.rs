//! Nagios objects as data: typed builders, ordered bundles, and values that are safe by
//! construction. Nothing here reads profiles or writes files.

mod object;
pub mod value;

pub use object::{Bundle, Command, Contact, ContactGroup, Host, Object, ObjectKind, Service};
pub use value::{CheckCommand, Value, ValueError};
