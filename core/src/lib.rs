//! # monitor-core
//!
//! The translator SDK and the compile engine of monitor-compile, which turns per-machine
//! LCFG XML profiles into a complete Nagios configuration.
//!
//! The modules follow the data flow:
//!
//! ```text
//! profile bytes ─▶ [profile] ─▶ [translator] ─▶ [nagios] fragments + registrations
//!                      ▲              │
//!                  [cache] ◀──────────┘
//!      ─▶ [engine] (+ [checks], [managers], [base]) ─▶ [writer] ─▶ [validate]
//! ```
//!
//! A translator author needs only [`profile::Component`], [`translator`], [`nagios`] and
//! [`helpers`]:
//!
//! ```
//! use monitor_core::helpers::{handle_contacts, DEFAULT_SERVICE};
//! use monitor_core::nagios::{Bundle, CheckCommand, Service};
//! use monitor_core::profile::Component;
//! use monitor_core::translator::{Context, TranslateError, Translator};
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
//! What this crate does not do: watch directories, run as a daemon, load plugins or
//! deploy to a live Nagios. Those belong to the binaries.

pub mod base;
pub mod blame;
pub mod cache;
pub mod checks;
pub mod deploy;
pub mod engine;
pub mod guard;
pub mod helpers;
pub mod managers;
pub mod nagios;
pub mod names;
pub mod output;
pub mod plugin;
pub mod profile;
pub mod store;
pub mod translator;
pub mod users;
pub mod validate;
pub mod writer;
