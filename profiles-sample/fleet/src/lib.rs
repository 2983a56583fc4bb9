//! Realistic LCFG profile fleets and the monitor-compile benchmark.
//!
//! - [`generate`]: write N reproducible profiles of a given average size, and "touch"
//!   machines with real content changes to simulate a day's edits;
//! - [`bench`]: the cold, no-change, one-change and hundred-change scenarios, with the
//!   read+hash floor and `nagios -v` as references (docs/PERFORMANCE.md);
//! - [`live`]: change to live, with a real daemon and a real Nagios;
//! - [`memory`]: what a machine costs after a cold pass, by what holds it.
//!
//! The `fleet` binary is the command-line front end; `fleet-memory` runs the memory
//! breakdown under a counting allocator.

pub mod bench;
pub mod generate;
pub mod live;
pub mod memory;

use monitor_sdk::translator::Translator;

/// The built-in translators.
pub fn translators() -> Vec<Box<dyn Translator>> {
    monitor_translators::builtin()
}
