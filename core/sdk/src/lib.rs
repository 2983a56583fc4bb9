//! # monitor-sdk
//!
//! The SDK for [monitor-compile] translators. A translator turns one LCFG component of one
//! machine's profile into Nagios objects, and registers what the managers need (contact
//! groups, clusters, dependencies, passive checks). It sees only this crate: the component
//! tree ([`profile`]), the [`Translator`](translator::Translator) trait and its
//! [`Context`](translator::Context), the Nagios objects and value rules ([`nagios`]), the
//! [`helpers`] and the names of the base templates ([`names`]), and the plugin ABI
//! ([`plugin`], [`export_translator!`]).
//!
//! ```
//! use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts};
//! use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
//! use monitor_sdk::profile::Component;
//! use monitor_sdk::translator::{Context, TranslateError, Translator};
//!
//! struct Ntp;
//! impl Translator for Ntp {
//!     fn component(&self) -> &str { "ntp" }
//!     fn version(&self) -> &str { env!("CARGO_PKG_VERSION") }
//!     fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
//!         let groups = handle_contacts(c, ctx)?;
//!         Ok(Bundle::new().with(
//!             Service::new(DEFAULT_SERVICE)
//!                 .host_name(machine)
//!                 .service_description("NTP")
//!                 .check_command(CheckCommand::new("check_ntp_time"))
//!                 .contact_groups(groups),
//!         ))
//!     }
//! }
//! ```
//!
//! What this crate never does: read files, parse XML, cache, load plugins, write a
//! configuration or talk to Nagios. Those belong to `lcfg-profile`, `monitor-engine` and
//! `monitor-runtime`, none of which a translator depends on.
//!
//! [monitor-compile]: https://github.com/monitor-compile/monitor-compile

#![deny(missing_docs)]

pub mod helpers;
pub mod nagios;
pub mod names;
pub mod plugin;
pub mod translator;

/// The component tree a translator reads: one LCFG component of one machine, as
/// resources with flat names and dotted-path lookup. Made by the `lcfg-profile` reader.
pub mod profile {
    pub use lcfg_profile::{Component, Lookup, NodeRef, Resource, ResourceType, check_host_name};
}
