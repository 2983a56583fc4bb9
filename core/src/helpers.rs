//! Helpers that mirror the Perl guide's base classes: contact handling from
//! `nagios_groups` and `SimpleCheck` for one-service translators.

use crate::nagios::{Bundle, CheckCommand, Service};
use crate::profile::Component;
use crate::translator::{Context, TranslateError, Translator};

/// The template every generated service inherits from.
pub const DEFAULT_SERVICE: &str = "default-service";
/// The template every generated host inherits from.
pub const DEFAULT_HOST: &str = "default-host";

/// Read the component's `nagios_groups` resource (space-separated in LCFG), register
/// every group with the user manager, and return them for `contact_groups` (which the
/// writer joins with commas, as Nagios wants).
pub fn handle_contacts(component: &Component, ctx: &mut Context) -> Result<Vec<String>, TranslateError> {
    let groups: Vec<String> = component
        .get("nagios_groups")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if groups.is_empty() {
        return Err(TranslateError::missing("nagios_groups"));
    }
    for g in &groups {
        ctx.add_contact_group(g);
    }
    Ok(groups)
}

/// A translator that monitors one service with one check command, notifying the
/// groups in `nagios_groups`. Wrap it in [`Simple`] to get a [`Translator`].
pub trait SimpleCheck: Send + Sync {
    fn component(&self) -> &str;
    fn version(&self) -> &str;
    /// The `service_description`; unique on a host.
    fn service_description(&self) -> &str;
    /// The check command for this machine, or `None` to monitor nothing here (say why
    /// with `ctx.warn`).
    fn check_command(
        &self,
        machine: &str,
        component: &Component,
        ctx: &mut Context,
    ) -> Result<Option<CheckCommand>, TranslateError>;
}

/// Adapts a [`SimpleCheck`] into a [`Translator`].
pub struct Simple<T>(pub T);

impl<T: SimpleCheck> Translator for Simple<T> {
    fn component(&self) -> &str {
        self.0.component()
    }

    fn version(&self) -> &str {
        self.0.version()
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let Some(cmd) = self.0.check_command(machine, component, ctx)? else {
            return Ok(Bundle::new());
        };
        let groups = handle_contacts(component, ctx)?;
        Ok(Bundle::new().with(
            Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description(self.0.service_description())
                .check_command(cmd)
                .contact_groups(groups),
        ))
    }
}
