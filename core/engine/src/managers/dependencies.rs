//! The dependency manager: services provide and depend on free-text tags, across hosts.
//! Only one service may provide a tag (clusters provide their names). At the end of the
//! pass every dependency on a provided tag becomes a `servicedependency`; a dependency
//! on a tag nobody provides is a warning. Circular dependencies are found here, before
//! Nagios sees them, and broken by leaving out the tag dependencies that form them.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;

use monitor_sdk::helpers::service_dependency;
use monitor_sdk::nagios::{Bundle, Object, ObjectKind};
use monitor_sdk::translator::{Registration, ServiceRef};

use super::{Finding, Registered};

/// What the dependency manager produced.
#[derive(Debug, Default)]
pub struct DependencyOutput {
    pub objects: Bundle,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Machines and components whose own `servicedependency` objects form a cycle: their
    /// fragments must be left out, and the managers run again without them.
    pub cyclic_sources: BTreeSet<(String, String)>,
    /// One error for each of `cyclic_sources`, naming the machine and component.
    pub cycle_errors: Vec<Finding>,
}

/// A dependency written by a translator itself (`create_dependency`).
#[derive(Debug, Clone)]
pub struct Explicit {
    pub master: ServiceRef,
    pub dependent: ServiceRef,
    pub machine: String,
    pub component: String,
}

/// The (master, dependent) services of a `servicedependency` object, when it names both.
pub fn dependency_ends(o: &Object) -> Option<(ServiceRef, ServiceRef)> {
    if o.kind != ObjectKind::ServiceDependency {
        return None;
    }
    let end = |h: &str, d: &str| {
        Some(ServiceRef {
            host: o.get_str(h)?.into(),
            description: o.get_str(d)?.into(),
        })
    };
    Some((
        end("host_name", "service_description")?,
        end("dependent_host_name", "dependent_service_description")?,
    ))
}

/// Assemble dependencies. `cluster_tags` are the tags the cluster manager provides.
pub fn assemble(
    registered: &[Registered<'_>],
    cluster_tags: &BTreeMap<String, ServiceRef>,
    explicit: &[Explicit],
) -> DependencyOutput {
    let mut out = DependencyOutput::default();
    let mut providers: BTreeMap<&str, (ServiceRef, String)> = cluster_tags
        .iter()
        .map(|(t, s)| (t.as_str(), (s.clone(), format!("cluster {t}"))))
        .collect();
    for r in registered {
        for reg in r.registrations {
            let Registration::Provides { tag, service } = reg else {
                continue;
            };
            let who = format!("{} on {}", r.component, r.machine);
            match providers.get(tag.as_str()) {
                Some((first, first_who)) => out.errors.push(Finding::at(
                    r,
                    format!("tag {tag} is provided twice: by {first} ({first_who}) and by {service} ({who})"),
                )),
                None => {
                    providers.insert(tag, (service.clone(), who));
                }
            }
        }
    }
    // Tag edges: dependent → master, in a deterministic order.
    let mut tag_edges: BTreeSet<(ServiceRef, ServiceRef)> = BTreeSet::new();
    for r in registered {
        for reg in r.registrations {
            let Registration::DependsOn { tag, service } = reg else {
                continue;
            };
            match providers.get(tag.as_str()) {
                None => out.warnings.push(Finding::at(
                    r,
                    format!("{service} depends on tag {tag}, which nothing provides"),
                )),
                Some((master, _)) if master == service => {
                    out.errors.push(Finding::at(
                        r,
                        format!("{service} depends on tag {tag}, which it provides itself"),
                    ));
                }
                Some((master, _)) => {
                    tag_edges.insert((service.clone(), master.clone()));
                }
            }
        }
    }

    // Cycle detection over tag and explicit edges together.
    let mut graph = Graph::default();
    for (d, m) in &tag_edges {
        graph.edge(d, m);
    }
    for e in explicit {
        graph.edge(&e.dependent, &e.master);
    }
    let mut dropped: BTreeSet<(ServiceRef, ServiceRef)> = BTreeSet::new();
    for scc in graph.cycles() {
        let in_scc: BTreeSet<&ServiceRef> = scc.iter().collect();
        let path: Vec<String> = scc.iter().map(|s| s.to_string()).collect();
        let mut msg = format!("circular service dependency among {}", path.join(", "));
        let tag_in: Vec<_> = tag_edges
            .iter()
            .filter(|(d, m)| in_scc.contains(d) && in_scc.contains(m))
            .cloned()
            .collect();
        // Does the cycle survive without the tag edges? Then translators' own objects form it.
        let mut rest = Graph::default();
        for e in explicit {
            if in_scc.contains(&e.dependent) && in_scc.contains(&e.master) {
                rest.edge(&e.dependent, &e.master);
            }
        }
        let own_cycles: Vec<BTreeSet<ServiceRef>> =
            rest.cycles().into_iter().map(|c| c.into_iter().collect()).collect();
        if !own_cycles.is_empty() {
            // The translators' own objects form it: the fragments whose edges lie on those
            // cycles are left out, and the tag dependencies are judged again without them.
            for e in explicit {
                if own_cycles
                    .iter()
                    .any(|c| c.contains(&e.dependent) && c.contains(&e.master))
                    && out.cyclic_sources.insert((e.machine.clone(), e.component.clone()))
                {
                    out.cycle_errors.push(Finding {
                        machine: Some(e.machine.clone()),
                        component: Some(e.component.clone()),
                        message: format!(
                            "{msg}: this component's own service dependencies form it, so its output is left out"
                        ),
                    });
                }
            }
            continue;
        }
        if !tag_in.is_empty() {
            msg.push_str(&format!("; {} tag dependencies left out", tag_in.len()));
        }
        out.errors.push(Finding::global(msg));
        dropped.extend(tag_in);
    }
    for (d, m) in &tag_edges {
        if !dropped.contains(&(d.clone(), m.clone())) {
            out.objects
                .push(service_dependency(&m.host, &m.description, &d.host, &d.description));
        }
    }
    out
}

/// A directed graph of services, for Tarjan's strongly connected components.
#[derive(Default)]
struct Graph {
    ids: HashMap<ServiceRef, usize>,
    nodes: Vec<ServiceRef>,
    adj: Vec<Vec<usize>>,
}

impl Graph {
    fn id(&mut self, s: &ServiceRef) -> usize {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.nodes.len();
        self.ids.insert(s.clone(), i);
        self.nodes.push(s.clone());
        self.adj.push(Vec::new());
        i
    }

    fn edge(&mut self, from: &ServiceRef, to: &ServiceRef) {
        let (a, b) = (self.id(from), self.id(to));
        self.adj[a].push(b);
    }

    /// Every strongly connected component that contains a cycle, each sorted; sorted.
    fn cycles(&self) -> Vec<Vec<ServiceRef>> {
        let n = self.nodes.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        // Iterative Tarjan: (node, next child position).
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work = vec![(root, 0usize)];
            while let Some(&mut (v, ref mut child)) = work.last_mut() {
                if *child == 0 && index[v] == usize::MAX {
                    index[v] = next;
                    low[v] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[v] = true;
                }
                if let Some(&w) = self.adj[v].get(*child) {
                    *child += 1;
                    if index[w] == usize::MAX {
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut scc = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        scc.push(w);
                        if w == v {
                            break;
                        }
                    }
                    let self_loop = scc.len() == 1 && self.adj[v].contains(&v);
                    if scc.len() > 1 || self_loop {
                        let mut names: Vec<ServiceRef> = scc.into_iter().map(|i| self.nodes[i].clone()).collect();
                        names.sort();
                        out.push(names);
                    }
                }
            }
        }
        out.sort();
        out
    }
}
