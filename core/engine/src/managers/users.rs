//! The user manager: defines every contact once, and every contact group exactly once
//! (those registered in the pass and those the users source names), with its members
//! from the users source.

use std::collections::{BTreeMap, BTreeSet};

use crate::base::{GENERIC_CONTACT, notify_command};
use crate::users::ContactInfo;
use monitor_sdk::nagios::{Bundle, Contact, ContactGroup};
use monitor_sdk::translator::Registration;

use super::Registered;

/// What the user manager produced.
#[derive(Debug, Default)]
pub struct UsersOutput {
    pub objects: Bundle,
    /// Every contact group defined.
    pub groups: BTreeSet<String>,
    /// Contacts that could not be defined, and why.
    pub errors: Vec<String>,
}

/// Assemble contacts and contact groups.
pub fn assemble<'a>(registered: impl IntoIterator<Item = Registered<'a>>, contacts: &[ContactInfo]) -> UsersOutput {
    let mut out = UsersOutput::default();
    for r in registered {
        for reg in r.registrations {
            if let Registration::ContactGroup { group } = reg {
                out.groups.insert(group.clone());
            }
        }
    }
    // Groups that people belong to are defined too, so that escalations may name them.
    for c in contacts {
        out.groups.extend(c.groups.iter().cloned());
    }
    let mut members: BTreeMap<&str, Vec<&str>> = out.groups.iter().map(|g| (g.as_str(), Vec::new())).collect();
    for c in contacts {
        let contact = contact_object(c);
        if let Err(e) = contact.object().check() {
            out.errors.push(format!("contact {}: {e}", c.name));
            continue;
        }
        out.objects.push(contact);
        for g in &c.groups {
            if let Some(m) = members.get_mut(g.as_str()) {
                m.push(&c.name);
            }
        }
    }
    let mut refused = Vec::new();
    for (group, mut m) in members {
        m.sort_unstable();
        m.dedup();
        let obj = ContactGroup::new(group).members(m);
        if let Err(e) = obj.object().check() {
            out.errors.push(format!("contact group {group}: {e}"));
            refused.push(group.to_string());
            continue;
        }
        out.objects.push(obj);
    }
    // A group not written is not defined: whatever names it is left out by the checks.
    for g in refused {
        out.groups.remove(&g);
    }
    out
}

fn contact_object(c: &ContactInfo) -> Contact {
    let mut host_cmds = vec![notify_command("host", "email")];
    let mut svc_cmds = vec![notify_command("service", "email")];
    let mut contact = Contact::new(GENERIC_CONTACT, &c.name).alias(c.alias.clone().unwrap_or_else(|| c.name.clone()));
    if let Some(email) = &c.email {
        contact = contact.email(email);
    }
    if let Some(jid) = &c.xmpp {
        contact = contact.text("address1", jid);
        host_cmds.push(notify_command("host", "xmpp"));
        svc_cmds.push(notify_command("service", "xmpp"));
    }
    if let Some(slack) = &c.slack {
        contact = contact.text("address2", slack);
        host_cmds.push(notify_command("host", "slack"));
        svc_cmds.push(notify_command("service", "slack"));
    }
    contact
        .host_notification_commands(host_cmds)
        .service_notification_commands(svc_cmds)
}
