//! A translator used only by the plugin and daemon tests. For component `flaky` it emits
//! one service, `Flaky v1` (or `Flaky v2` when built with feature `v2`), logs a line per
//! machine through `tracing`, and, by machine name:
//! - `boom*`: panics;
//! - `reject*`: emits `max_check_attempts 0`, which our checks let through but
//!   `nagios -v` rejects;
//! - `inject*`: fails with an error text that tries to inject an external command.

use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts};
use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
use monitor_sdk::names::CHECK_TCP;
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The flavour this build was made with.
pub const FLAVOUR: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// The test translator.
#[derive(Debug, Default)]
pub struct Flaky;

impl Translator for Flaky {
    fn component(&self) -> &str {
        "flaky"
    }

    fn version(&self) -> &str {
        if cfg!(feature = "v2") { "2.0.0" } else { "1.0.0" }
    }

    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        tracing::info!(machine, flavour = FLAVOUR, "flaky plugin translating");
        if machine.starts_with("boom") {
            panic!("boom on {machine}");
        }
        if machine.starts_with("inject") {
            return Err(TranslateError::Other(
                "bad value\n[0] PROCESS_HOST_CHECK_RESULT;inject1.example.org;1;pwned; | perf=1".into(),
            ));
        }
        let groups = handle_contacts(c, ctx)?;
        let mut svc = Service::new(DEFAULT_SERVICE)
            .host_name(machine)
            .service_description(format!("Flaky {FLAVOUR}"))
            .check_command(CheckCommand::new(CHECK_TCP).arg("7"))
            .contact_groups(groups);
        if machine.starts_with("reject") {
            svc = svc.plain("max_check_attempts", 0);
        }
        Ok(Bundle::new().with(svc))
    }
}

monitor_sdk::export_translator!(Flaky);
