//! # monitor-engine
//!
//! One monitor-compile pass: profile files in, an assembled Nagios configuration
//! ([`Output`]) and a report out. The modules follow the data:
//!
//! ```text
//! [source] ─▶ [ingest] ◀─▶ [cache]      (read, hash, parse, translate with [registry]'s translators)
//!     ─▶ [checks] + [managers] ─▶ [assemble] ─▶ [render] ─▶ [layout]::Output + [report]
//!                      └─ [incremental] patches the last assembly instead, when it provably may
//! ```
//!
//! [`pass`] drives one pass. [`base`] holds the base definitions; [`users`] is the contacts
//! source.
//!
//! It never writes files, runs Nagios or loads plugins: those belong to
//! `monitor-runtime`, which this crate does not depend on.

pub mod assemble;
pub mod base;
pub mod cache;
pub mod checks;
pub mod incremental;
pub mod ingest;
pub mod kept;
pub mod layout;
pub mod managers;
pub mod pass;
pub mod registry;
pub mod render;
pub mod report;
pub mod source;
pub mod users;
pub mod zones;

pub use layout::{DEPLOY_FILE, HEADER, MACHINE_SHARDS, MACHINES_DIR, Output, machine_file};
pub use pass::Engine;
pub use registry::MAX_FAILURES;
pub use render::{DEPLOY_SERVICE, DeployService, NO_SERVICE};
pub use report::{Assembly, EngineError, Outcome, PassReport, PassResult, Problem, status_service_description};
pub use source::{Listing, find_profiles, list_profiles, path_names_machine};
pub use zones::{ZoneName, ZoneRule, Zones, ZonesError};
