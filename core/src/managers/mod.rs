//! Managers: they see the registrations of every machine in the pass (fresh or
//! replayed from the cache) and assemble the objects that span machines.
//!
//! Managers never parse profiles or call translators; they work only from
//! [`Registration`](crate::translator::Registration) data.

pub mod users;

use crate::translator::Registration;

/// One (machine, component)'s registrations, as the managers see them.
#[derive(Debug, Clone, Copy)]
pub struct Registered<'a> {
    pub machine: &'a str,
    pub component: &'a str,
    pub registrations: &'a [Registration],
}
