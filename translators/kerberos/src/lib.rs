//! Translator for the LCFG `kerberos` component: monitors a machine's Kerberos KDC.
//!
//! For a machine whose `kerberos.type` is `master` or `slave`, it emits one service,
//! `Kerberos KDC`, checked by the `check_kdc` plugin, which asks the KDC on the machine
//! for a ticket for the monitoring principal in the machine's realm. `start_pass`
//! defines the `mc-check-kdc` command once per pass.
//!
//! Resources read:
//! - `type` (required): `master` or `slave`; anything else is warned about and the
//!   machine is not monitored;
//! - `realm` (required): the realm the KDC serves;
//! - `nagios_principal` (optional): the principal the check authenticates as, by
//!   default `nagios/monitor@<realm>`;
//! - `nagios_keytab` (optional): the keytab on the monitoring server holding that
//!   principal's key, by default `/etc/nagios4/krb5.keytab`;
//! - `nagios_groups` (required): the contact groups to notify;
//! - `nagios_cluster_threshold` (optional): how many KDCs of the realm may be down before
//!   the realm's cluster check goes CRITICAL (default: all but one may be down);
//! - `nagios_depends` (optional): further dependency tags of the KDC service;
//! - `nagios_escalations` (optional): escalations, see `merge_escalation`.
//!
//! Registrations: every KDC is a member of cluster `kdc-<realm>`; the master provides tag
//! `kdc-master-<realm>` and every slave depends on it, so slaves stay quiet while their
//! master is down.
//!
//! It deliberately does not monitor `kprop` propagation to the slaves, and does not use
//! the monitoring server's own host name (the Perl `Sys::Hostname`): the principal comes
//! from the profile or the default above. Values
//! are passed through as check command arguments; the SDK escapes them when written
//! and refuses any that cannot be written safely.

use monitor_sdk::helpers::{DEFAULT_SERVICE, get_u32, handle_contacts, handle_dependencies, merge_escalation};
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Service};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The `mc-check-kdc` command name (it runs the `check_kdc` plugin).
pub const CHECK_KDC: &str = "mc-check-kdc";
/// The `mc-check-kdc` command line: `$ARG1$` realm, `$ARG2$` principal, `$ARG3$` keytab.
pub const CHECK_KDC_LINE: &str = "$USER1$/check_kdc -H '$HOSTADDRESS$' -r '$ARG1$' -P '$ARG2$' -k '$ARG3$'";
/// The keytab used when `nagios_keytab` is unset.
pub const DEFAULT_KEYTAB: &str = "/etc/nagios4/krb5.keytab";
/// The service description of the KDC check.
pub const SERVICE_DESCRIPTION: &str = "Kerberos KDC";

/// The cluster of every KDC of `realm`: `kdc-<realm>`.
pub fn cluster_name(realm: &str) -> String {
    format!("kdc-{realm}")
}

/// The dependency tag the master KDC of `realm` provides: `kdc-master-<realm>`.
pub fn master_tag(realm: &str) -> String {
    format!("kdc-master-{realm}")
}

/// The `kerberos` translator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kerberos;

/// A resource's value, trimmed, or `None` when it is absent or blank.
fn resource<'a>(component: &'a Component, name: &str) -> Option<&'a str> {
    component.get_nonempty(name).map(str::trim)
}

impl Translator for Kerberos {
    fn component(&self) -> &str {
        "kerberos"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new().with(Command::new(CHECK_KDC, CHECK_KDC_LINE)))
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let kdc_type = resource(component, "type").ok_or_else(|| TranslateError::missing("type"))?;
        let realm = resource(component, "realm").ok_or_else(|| TranslateError::missing("realm"))?;
        if kdc_type != "master" && kdc_type != "slave" {
            ctx.warn(format!(
                "kerberos: monitoring machine '{machine}' that is neither master nor slave"
            ));
            return Ok(Bundle::new());
        }
        let groups = handle_contacts(component, ctx)?;
        let principal = match resource(component, "nagios_principal") {
            Some(p) => p.to_string(),
            None => format!("nagios/monitor@{realm}"),
        };
        let keytab = resource(component, "nagios_keytab").unwrap_or(DEFAULT_KEYTAB);
        let threshold = match resource(component, "nagios_cluster_threshold") {
            Some(_) => Some(get_u32(component, "nagios_cluster_threshold", 0)?),
            None => None,
        };
        let kdc = Service::new(DEFAULT_SERVICE)
            .host_name(machine)
            .service_description(SERVICE_DESCRIPTION)
            .check_command(CheckCommand::new(CHECK_KDC).arg(realm).arg(principal).arg(keytab))
            .contact_groups(groups);
        // The KDCs of a realm form a cluster; the slaves depend on their master.
        ctx.add_cluster(&cluster_name(realm), kdc.object(), threshold)?;
        let master_tag = master_tag(realm);
        if kdc_type == "master" {
            ctx.add_provides(&master_tag, kdc.object())?;
        } else {
            ctx.add_dependency(&master_tag, kdc.object())?;
        }
        handle_dependencies(component, ctx, kdc.object())?;
        merge_escalation(kdc, component)
    }
}
