//! The cluster manager: every cluster gets a servicegroup of its members and a cluster
//! check service that uses the standard `check_cluster` plugin. The check is WARNING when
//! any member is not OK and CRITICAL only when more than the cluster's threshold are not
//! OK. The default threshold is one less than the number of members: CRITICAL when every
//! member is down. A translator may set it per cluster from the profile.
//!
//! The cluster services are carried by one virtual host, [`CLUSTER_HOST`], so that a
//! cluster's state does not move or vanish when one of its members is removed. The
//! cluster name is also a dependency tag, provided by the cluster service.

use std::collections::{BTreeMap, BTreeSet};

use crate::base::{CHECK_DUMMY_UP, PREFIX};
use monitor_sdk::helpers::{DEFAULT_HOST, DEFAULT_SERVICE};
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Host, Object, ObjectKind, Service, Value};
use monitor_sdk::translator::{Registration, ServiceRef};

use super::{Finding, Registered, ServiceIndex, index_key};

/// The virtual host that carries every cluster check service.
pub const CLUSTER_HOST: &str = "monitor-compile-clusters";

/// What the cluster manager produced.
#[derive(Debug, Default)]
pub struct ClusterOutput {
    pub objects: Bundle,
    /// Cluster name → its cluster service: these are dependency tags.
    pub provides: BTreeMap<String, ServiceRef>,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

struct Member {
    service: ServiceRef,
    threshold: Option<u32>,
}

/// The cluster service's description for cluster `name`.
pub fn cluster_service_description(name: &str) -> String {
    format!("Cluster {name}")
}

/// Assemble every cluster registered in the pass.
pub fn assemble<'a>(registered: &[Registered<'a>], services: &ServiceIndex<'_>) -> ClusterOutput {
    let mut out = ClusterOutput::default();
    let mut clusters: BTreeMap<&str, Vec<Member>> = BTreeMap::new();
    for r in registered {
        for reg in r.registrations {
            let Registration::Cluster {
                name,
                service,
                threshold,
            } = reg
            else {
                continue;
            };
            if !services.contains_key(&index_key(service)) {
                out.errors.push(Finding::at(
                    r,
                    format!("cluster {name}: member {service} is not defined"),
                ));
                continue;
            }
            if service.description.contains(':') {
                out.errors.push(Finding::at(
                    r,
                    format!(
                        "cluster {name}: member {service} has ':' in its description, which check_cluster cannot name"
                    ),
                ));
                continue;
            }
            clusters.entry(name).or_default().push(Member {
                service: service.clone(),
                threshold: *threshold,
            });
        }
    }
    if clusters.is_empty() {
        return out;
    }
    let mut objects = Bundle::new();
    let mut all_groups = BTreeSet::new();
    for (name, mut members) in clusters {
        members.sort_by(|a, b| a.service.cmp(&b.service));
        members.dedup_by(|a, b| a.service == b.service);
        let n = members.len() as u32;
        let given: BTreeSet<u32> = members.iter().filter_map(|m| m.threshold).collect();
        let threshold = match given.first() {
            Some(&t) => t,
            None => n.saturating_sub(1),
        };
        if given.len() > 1 {
            out.warnings.push(Finding::global(format!(
                "cluster {name}: members disagree on the threshold ({given:?}); using {threshold}"
            )));
        }
        let command = format!("{PREFIX}check-cluster-{name}");
        let states: Vec<String> = members
            .iter()
            .map(|m| format!("$SERVICESTATEID:{}:{}$", m.service.host, m.service.description))
            .collect();
        objects.push(Command::new(
            command.clone(),
            format!(
                "$USER1$/check_cluster --service -l '{name}' -w 0 -c {threshold} -d '{}'",
                states.join(",")
            ),
        ));
        let mut groups = BTreeSet::new();
        for m in &members {
            if let Some(v) = services
                .get(&index_key(&m.service))
                .and_then(|o| o.get("contact_groups"))
            {
                groups.extend(v.names().into_iter().map(str::to_string));
            }
        }
        let description = cluster_service_description(name);
        let mut svc = Service::new(DEFAULT_SERVICE)
            .host_name(CLUSTER_HOST)
            .service_description(&description)
            .check_command(CheckCommand::new(&command))
            .text(
                "notes",
                format!("{n} members; CRITICAL when more than {threshold} are not OK"),
            );
        if !groups.is_empty() {
            all_groups.extend(groups.iter().cloned());
            svc = svc.contact_groups(groups);
        }
        objects.push(svc);
        let mut group = Object::new(ObjectKind::ServiceGroup);
        group.set("servicegroup_name", Value::Name(name.to_string()));
        group.set("alias", Value::Text(format!("Cluster {name}")));
        group.set(
            "members",
            Value::Names(
                members
                    .iter()
                    .flat_map(|m| [m.service.host.clone(), m.service.description.clone()])
                    .collect(),
            ),
        );
        objects.push(group);
        out.provides.insert(
            name.to_string(),
            ServiceRef {
                host: CLUSTER_HOST.into(),
                description,
            },
        );
    }
    let mut host = Host::new(DEFAULT_HOST)
        .host_name(CLUSTER_HOST)
        .alias("Cluster checks")
        .address("127.0.0.1")
        .set("check_command", Value::Command(CheckCommand::new(CHECK_DUMMY_UP)))
        .plain("notifications_enabled", 0);
    if !all_groups.is_empty() {
        host = host.contact_groups(all_groups);
    }
    out.objects.push(host);
    out.objects.extend(objects);
    out
}
