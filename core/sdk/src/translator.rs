//! The translator contract: what a component author implements, and the per-machine
//! context through which a translator registers what the managers need.
//!
//! The host program calls, for every pass:
//!
//! ```text
//! start_pass()                          once, before any machine
//! translate(machine, component, ctx)    for each machine whose profile changed
//! notify_unchanged(machine)             for each machine whose profile did not
//! finish_pass()                         once, after every machine
//! ```
//!
//! `translate` and `notify_unchanged` may run on several machines at once (the engine
//! uses every core, and calls them while it reads the profiles), so they take `&self`; a translator that keeps per-pass state uses a `Mutex`. Registrations are
//! recorded as data in the [`Context`], cached with the fragments, and replayed for
//! machines whose profile has not changed, so the managers always see every machine.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::nagios::{Bundle, Object};
use crate::profile::Component;

/// A translator for one LCFG component.
pub trait Translator: Send + Sync {
    /// The component this translator serves, such as `kerberos`.
    fn component(&self) -> &str;

    /// The translator's version. It is part of the cache key: a new version
    /// re-translates every machine. Use `env!("CARGO_PKG_VERSION")`.
    fn version(&self) -> &str;

    /// Called at the start of every pass; may return static objects such as commands.
    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new())
    }

    /// Translate one machine's component into Nagios objects.
    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError>;

    /// Called instead of `translate` when the machine's profile has not changed. It may
    /// not produce objects; the cached ones are used.
    fn notify_unchanged(&self, _machine: &str) {}

    /// Called at the end of every pass. Its output must not depend on which machines
    /// were translated and which were unchanged.
    fn finish_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new())
    }

    /// True to be called with `translate` even for unchanged profiles. Costly: every
    /// machine monitored for this component is then parsed on every pass.
    fn always_run(&self) -> bool {
        false
    }

    /// True when the engine should hand this translator several machines at once,
    /// through [`translate_batch`](Self::translate_batch): a translator that runs in
    /// another process answers a batch in one round trip. Translator authors leave this
    /// alone; the default is false, and the engine then calls `translate` for each
    /// machine, each isolated from the others' panics.
    fn batches(&self) -> bool {
        false
    }

    /// Translate several machines' components: each result with its own context, in the
    /// order given. The default calls [`translate`](Self::translate) for each in turn.
    fn translate_batch(&self, items: &[(&str, &Component)]) -> Vec<(Result<Bundle, TranslateError>, Context)> {
        items
            .iter()
            .map(|(machine, component)| {
                let mut ctx = Context::new(machine, self.component());
                let result = self.translate(machine, component, &mut ctx);
                (result, ctx)
            })
            .collect()
    }
}

/// Why a translator could not translate a machine. It fails that (machine, component)
/// only; the pass goes on.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum TranslateError {
    /// A resource the translator needs is absent or empty.
    #[error("missing resource {resource}")]
    MissingResource {
        /// The resource's name.
        resource: String,
    },
    /// A resource has a value the translator cannot use.
    #[error("invalid value {value:?} for resource {resource}: {reason}")]
    InvalidValue {
        /// The resource's name.
        resource: String,
        /// The value found.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Any other failure, as a message.
    #[error("{0}")]
    Other(String),
}

impl TranslateError {
    /// A [`TranslateError::MissingResource`] for `resource`.
    pub fn missing(resource: &str) -> Self {
        TranslateError::MissingResource {
            resource: resource.to_string(),
        }
    }

    /// A [`TranslateError::InvalidValue`]: `value` of `resource` is unusable for `reason`.
    pub fn invalid(resource: &str, value: &str, reason: impl Into<String>) -> Self {
        TranslateError::InvalidValue {
            resource: resource.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// A reference to a service by host and description, as the managers see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceRef {
    /// The service's `host_name`.
    pub host: String,
    /// The service's `service_description`.
    pub description: String,
}

impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' on {}", self.description, self.host)
    }
}

/// Something a translator asked a manager to do, recorded as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Registration {
    /// The component notifies this contact group (user manager).
    ContactGroup {
        /// The contact group's name.
        group: String,
    },
    /// The service provides a dependency tag (dependency manager).
    Provides {
        /// The dependency tag.
        tag: String,
        /// The service that provides it.
        service: ServiceRef,
    },
    /// The service depends on whatever provides a tag (dependency manager).
    DependsOn {
        /// The dependency tag.
        tag: String,
        /// The service that depends on it.
        service: ServiceRef,
    },
    /// The service is a member of a cluster (cluster manager). `threshold` is the
    /// number of members that may be down before the cluster check goes critical.
    Cluster {
        /// The cluster's name (also a dependency tag).
        name: String,
        /// The member service.
        service: ServiceRef,
        /// How many members may be not OK before the cluster check goes CRITICAL; `None`
        /// for the default (one less than the number of members).
        threshold: Option<u32>,
    },
    /// Passive results for the service may be submitted by `identity` (passive manager).
    PassiveCheck {
        /// The passive service.
        service: ServiceRef,
        /// The authenticated identity (of a remctl or NRDP submitter) allowed to submit.
        identity: String,
    },
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registration::ContactGroup { group } => write!(f, "notifies contact group {group}"),
            Registration::Provides { tag, service } => write!(f, "provides tag {tag}: {service}"),
            Registration::DependsOn { tag, service } => write!(f, "depends on tag {tag}: {service}"),
            Registration::Cluster {
                name,
                service,
                threshold,
            } => match threshold {
                Some(t) => write!(
                    f,
                    "member of cluster {name} (critical when more than {t} down): {service}"
                ),
                None => write!(f, "member of cluster {name}: {service}"),
            },
            Registration::PassiveCheck { service, identity } => {
                write!(f, "accepts passive results from {identity}: {service}")
            }
        }
    }
}

/// The per-machine context handed to [`Translator::translate`].
#[derive(Debug, Clone)]
pub struct Context {
    machine: String,
    component: String,
    registrations: Vec<Registration>,
    warnings: Vec<String>,
}

impl Context {
    /// An empty context for `component` on `machine`.
    pub fn new(machine: &str, component: &str) -> Self {
        Context {
            machine: machine.to_string(),
            component: component.to_string(),
            registrations: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The machine being translated.
    pub fn machine(&self) -> &str {
        &self.machine
    }

    /// The component being translated.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Register a contact group that this component's services notify. Every
    /// registered group is defined exactly once by the user manager.
    pub fn add_contact_group(&mut self, group: &str) {
        let r = Registration::ContactGroup {
            group: group.to_string(),
        };
        if !self.registrations.contains(&r) {
            self.registrations.push(r);
        }
    }

    /// Declare that `service` provides dependency `tag`. Only one service in the whole
    /// configuration may provide a tag.
    pub fn add_provides(&mut self, tag: &str, service: &Object) -> Result<(), TranslateError> {
        check_tag(tag)?;
        let service = service_ref(service)?;
        self.registrations.push(Registration::Provides {
            tag: tag.to_string(),
            service,
        });
        Ok(())
    }

    /// Declare that `service` depends on the service providing `tag`, on any host.
    pub fn add_dependency(&mut self, tag: &str, service: &Object) -> Result<(), TranslateError> {
        check_tag(tag)?;
        let service = service_ref(service)?;
        self.registrations.push(Registration::DependsOn {
            tag: tag.to_string(),
            service,
        });
        Ok(())
    }

    /// Make `service` a member of cluster `name`. The cluster name is also a tag.
    pub fn add_cluster(&mut self, name: &str, service: &Object, threshold: Option<u32>) -> Result<(), TranslateError> {
        // The name becomes a servicegroup, a command and a service description.
        crate::nagios::value::check_name("cluster", name)
            .map_err(|e| TranslateError::invalid("cluster name", name, e.reason))?;
        let service = service_ref(service)?;
        self.registrations.push(Registration::Cluster {
            name: name.to_string(),
            service,
            threshold,
        });
        Ok(())
    }

    /// Allow `identity` to submit passive results for `service`.
    pub fn add_passive_check(&mut self, service: &Object, identity: &str) -> Result<(), TranslateError> {
        let service = service_ref(service)?;
        self.registrations.push(Registration::PassiveCheck {
            service,
            identity: identity.to_string(),
        });
        Ok(())
    }

    /// Record a registration as it is (used by the plugin host to replay a plugin's).
    pub fn record(&mut self, registration: Registration) {
        self.registrations.push(registration);
    }

    /// A warning for this machine and component; shown in the summary and the log.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// The registrations recorded so far, in order.
    pub fn registrations(&self) -> &[Registration] {
        &self.registrations
    }

    /// The warnings recorded so far, in order.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Split into what the engine keeps: registrations and warnings.
    pub fn into_parts(self) -> (Vec<Registration>, Vec<String>) {
        (self.registrations, self.warnings)
    }
}

/// Tags are free text, but one line and not blank (a cluster name is also a tag).
fn check_tag(tag: &str) -> Result<(), TranslateError> {
    if tag.trim().is_empty() || tag.contains(['\n', '\r']) {
        return Err(TranslateError::invalid(
            "dependency tag",
            tag,
            "a tag is one non-blank line",
        ));
    }
    Ok(())
}

fn service_ref(o: &Object) -> Result<ServiceRef, TranslateError> {
    match (o.get_str("host_name"), o.get_str("service_description")) {
        (Some(h), Some(d)) => Ok(ServiceRef {
            host: h.to_string(),
            description: d.to_string(),
        }),
        _ => Err(TranslateError::Other(
            "a registered service needs host_name and service_description".into(),
        )),
    }
}
