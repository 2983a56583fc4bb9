//! A translator used only by the plugin tests. For component `flaky` it emits one
//! service, `Flaky v1` (or `Flaky v2` when built with feature `v2`), logs a line per
//! machine through `tracing`, and panics for machines whose name starts with `boom`.

use monitor_core::base::CHECK_TCP;
use monitor_core::helpers::{DEFAULT_SERVICE, handle_contacts};
use monitor_core::nagios::{Bundle, CheckCommand, Service};
use monitor_core::profile::Component;
use monitor_core::translator::{Context, TranslateError, Translator};

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
        let groups = handle_contacts(c, ctx)?;
        Ok(Bundle::new().with(
            Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description(format!("Flaky {FLAVOUR}"))
                .check_command(CheckCommand::new(CHECK_TCP).arg("7"))
                .contact_groups(groups),
        ))
    }
}

#[cfg(feature = "plugin")]
monitor_core::export_translator!(Flaky);
