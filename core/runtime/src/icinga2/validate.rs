//! Runs the real `icinga2 daemon -C` on a generated tree once per node, each run seeing
//! only what that node loads, as the user icinga2 runs as.
//!
//! A generated set directory looks like:
//!
//! ```text
//! SET/zones.conf                       Endpoint and Zone objects as the master sees them
//! SET/nodes/<zone>/zones.conf          the zones.conf of a satellite endpoint of <zone>
//! SET/zones.d/global-templates/*.conf  global zones: templates, commands, users, …
//! SET/zones.d/<zone>/**/*.conf         the hosts and services of each zone
//! ```
//!
//! For each [`Node`] (in parallel) the validator makes `WORK/<endpoint>/` with
//!
//! - `zones.d/<dir>`: a symlink to `SET/zones.d/<dir>` for each of the node's dirs
//!   (icinga2 follows symlinked zone directories);
//! - `icinga2.conf`: the node's constants, `include` of its zones.conf and the ITL;
//! - `var/{lib,cache,log,run}`: icinga2's data, cache, log and run directories, owned by
//!   the user it runs as (icinga2 writes its cache there even with `-C`).
//!
//! and runs `icinga2 daemon -C` on it ([`daemon_check_args`]). The directory of a node
//! that passed is removed afterwards; that of a node that failed is **kept** for
//! inspection (the next validation of that endpoint replaces it).
//!
//! Whom icinga2 runs as: [`Validator::run_as`] when set (this process must be root to
//! switch to it), else this process. The set must be readable by that user: run as root,
//! pass [`crate::validate::validation_user`]`(None)` (the `nagios` user) so that a file
//! icinga2 could not read fails here, not on reload. Nothing is made world-writable.

use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use thiserror::Error;

use super::{DEFAULT_ICINGA2, DEFAULT_PLUGIN_DIR, dsl_literal, dsl_string, run_as_defines};
use crate::validate::RunAs;

/// One icinga2 instance of the generated configuration, and what it loads: the writer's
/// own description of each node (`monitor_icinga2::NodeSlice`), so that what is written
/// and what is validated are described once.
pub use monitor_icinga2::NodeSlice as Node;

/// How to run `icinga2 daemon -C`.
#[derive(Debug, Clone)]
pub struct Validator {
    /// The icinga2 binary ([`DEFAULT_ICINGA2`]).
    pub bin: PathBuf,
    /// `PluginDir`, `PluginContribDir` and `ManubulonPluginDir` of the check
    /// ([`DEFAULT_PLUGIN_DIR`]).
    pub plugin_dir: PathBuf,
    /// Whom to run icinga2 as (`None`: this process; see the module docs).
    pub run_as: Option<RunAs>,
    /// Scratch space, such as `STATE/verify-icinga2`; a directory per endpoint is made in it.
    pub work_dir: PathBuf,
}

/// What `icinga2 daemon -C` said about one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeCheck {
    pub endpoint: String,
    pub zone: String,
    /// Exit status 0 and no errors.
    pub ok: bool,
    /// Each `critical/` message with its `Location:` line, and the warnings that mean
    /// configuration was not loaded (an unknown zone's directory, an unreadable file).
    /// File names are given under the set directory, not the scratch directory.
    pub errors: Vec<String>,
    /// The other `warning/` messages.
    pub warnings: Vec<String>,
    /// icinga2's whole output, for logs.
    pub output: String,
    /// How long the check took.
    pub millis: f64,
}

/// The verdict on every node.
#[derive(Debug, Clone, Serialize)]
pub struct IcingaCheck {
    /// Every node is ok.
    pub ok: bool,
    pub nodes: Vec<NodeCheck>,
}

/// The validation could not be run at all (a configuration error is a [`NodeCheck`]).
#[derive(Debug, Error)]
pub enum IcingaValidateError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot run {}: {source}", bin.display())]
    Spawn { bin: PathBuf, source: std::io::Error },
    /// An endpoint or zone directory name that is not one plain path component.
    #[error("{what} {name:?} cannot be a directory name")]
    BadName { what: &'static str, name: String },
    /// A node's zones.conf outside the set directory.
    #[error("zones.conf {} of endpoint {endpoint} is not a relative path inside the set", path.display())]
    BadZonesConf { endpoint: String, path: PathBuf },
    /// Two nodes with one endpoint name, whose runs would share a directory.
    #[error("endpoint {0} is listed twice")]
    DuplicateEndpoint(String),
    #[error(transparent)]
    User(#[from] crate::validate::ValidateError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IcingaValidateError + '_ {
    move |source| IcingaValidateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Validator {
    /// A validator with the default binary and plugin directory that runs icinga2 as
    /// this process.
    pub fn new(work_dir: impl Into<PathBuf>) -> Validator {
        Validator {
            bin: DEFAULT_ICINGA2.into(),
            plugin_dir: DEFAULT_PLUGIN_DIR.into(),
            run_as: None,
            work_dir: work_dir.into(),
        }
    }

    /// Check `set_dir` as each of `nodes` loads it, in parallel.
    pub fn validate(&self, set_dir: &Path, nodes: &[Node]) -> Result<IcingaCheck, IcingaValidateError> {
        let set = std::fs::canonicalize(set_dir).map_err(io(set_dir))?;
        let mut seen = std::collections::BTreeSet::new();
        for node in nodes {
            if !seen.insert(node.endpoint.as_str()) {
                return Err(IcingaValidateError::DuplicateEndpoint(node.endpoint.clone()));
            }
            plain_name("endpoint", &node.endpoint)?;
            for d in &node.dirs {
                plain_name("zone directory", d)?;
            }
            let inside = node.zones_conf.components().all(|c| matches!(c, Component::Normal(_)));
            if !inside || node.zones_conf.as_os_str().is_empty() {
                return Err(IcingaValidateError::BadZonesConf {
                    endpoint: node.endpoint.clone(),
                    path: node.zones_conf.clone(),
                });
            }
        }
        std::fs::create_dir_all(&self.work_dir).map_err(io(&self.work_dir))?;
        let work = std::fs::canonicalize(&self.work_dir).map_err(io(&self.work_dir))?;
        let defines = run_as_defines(self.run_as.as_ref())?;
        let nodes = nodes
            .par_iter()
            .map(|node| self.check_node(&set, &work, node, &defines))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IcingaCheck {
            ok: nodes.iter().all(|n| n.ok),
            nodes,
        })
    }

    fn check_node(
        &self,
        set: &Path,
        work: &Path,
        node: &Node,
        defines: &[String; 2],
    ) -> Result<NodeCheck, IcingaValidateError> {
        let start = Instant::now();
        let dir = work.join(&node.endpoint);
        let main = self.prepare_node(set, &dir, node)?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(daemon_check_args(&main, &dir)).args(defines);
        if let Some(u) = &self.run_as {
            // Also drops the supplementary groups (std does so when it sets the uid).
            cmd.uid(u.uid).gid(u.gid).current_dir("/");
        }
        tracing::debug!(endpoint = %node.endpoint, dir = %dir.display(), "running icinga2 daemon -C");
        let out = cmd.output().map_err(|source| IcingaValidateError::Spawn {
            bin: self.bin.clone(),
            source,
        })?;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let scratch = format!("{}/", dir.join("zones.d").display());
        let real = format!("{}/", set.join("zones.d").display());
        let (mut errors, warnings) = parse_output(&output);
        for m in errors.iter_mut() {
            *m = m.replace(&scratch, &real);
        }
        let warnings: Vec<String> = warnings.into_iter().map(|m| m.replace(&scratch, &real)).collect();
        if !out.status.success() && errors.is_empty() {
            errors.push(format!("icinga2 daemon -C exited with {}", out.status));
        }
        let ok = out.status.success() && errors.is_empty();
        if ok {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), "cannot remove a validation directory: {e}");
            }
        } else {
            tracing::warn!(
                endpoint = %node.endpoint,
                dir = %dir.display(),
                errors = errors.len(),
                "icinga2 rejects the configuration; its validation directory is kept"
            );
        }
        Ok(NodeCheck {
            endpoint: node.endpoint.clone(),
            zone: node.zone.clone(),
            ok,
            errors,
            warnings,
            output,
            millis: start.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Make `dir` afresh for `node`; returns its main config.
    fn prepare_node(&self, set: &Path, dir: &Path, node: &Node) -> Result<PathBuf, IcingaValidateError> {
        if std::fs::symlink_metadata(dir).is_ok() {
            // remove_dir_all removes the zone symlinks, never what they point to.
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        let zones = dir.join("zones.d");
        std::fs::create_dir_all(&zones).map_err(io(&zones))?;
        for d in &node.dirs {
            let link = zones.join(d);
            std::os::unix::fs::symlink(set.join("zones.d").join(d), &link).map_err(io(&link))?;
        }
        let main = dir.join("icinga2.conf");
        let text = main_config(
            &node.endpoint,
            &node.zone,
            &self.plugin_dir,
            &set.join(&node.zones_conf),
        );
        std::fs::write(&main, text).map_err(io(&main))?;
        let mut owned = vec![dir.to_path_buf(), zones, main.clone(), dir.join("var")];
        for v in VAR_DIRS {
            let p = dir.join("var").join(v);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
            owned.push(p);
        }
        if let Some(u) = &self.run_as {
            // Nothing here is secret: the directories go to the user icinga2 runs as,
            // which must write its cache, never to everyone.
            for p in &owned {
                std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).map_err(io(p))?;
            }
        }
        Ok(main)
    }
}

/// icinga2's data, cache, log and run directories, under `var/` of a node's directory.
const VAR_DIRS: [&str; 4] = ["lib", "cache", "log", "run"];

/// The arguments of `icinga2 daemon -C` on a node's directory `dir` made by the
/// validator (main config `main`, zones in `dir/zones.d`, data in `dir/var/*`); the
/// caller adds [`run_as_defines`].
pub fn daemon_check_args(main: &Path, dir: &Path) -> Vec<String> {
    let var = dir.join("var");
    vec![
        "daemon".into(),
        "-C".into(),
        "-c".into(),
        main.display().to_string(),
        format!("-DZonesDir={}", dir.join("zones.d").display()),
        format!("-DDataDir={}", var.join("lib").display()),
        format!("-DCacheDir={}", var.join("cache").display()),
        format!("-DLogDir={}", var.join("log").display()),
        format!("-DInitRunDir={}", var.join("run").display()),
    ]
}

/// The main config of a validation run: the node's constants, its zones.conf and the
/// ITL with the plugin command definitions.
pub fn main_config(endpoint: &str, zone: &str, plugin_dir: &Path, zones_conf: &Path) -> String {
    let plugins = dsl_string(&plugin_dir.display().to_string());
    format!(
        "const NodeName = {}\nconst ZoneName = {}\nconst PluginDir = {plugins}\n\
         const PluginContribDir = {plugins}\nconst ManubulonPluginDir = {plugins}\n\
         include {}\ninclude <itl>\ninclude <plugins>\ninclude <plugins-contrib>\n",
        dsl_literal(endpoint),
        dsl_literal(zone),
        dsl_literal(&zones_conf.display().to_string()),
    )
}

fn plain_name(what: &'static str, name: &str) -> Result<(), IcingaValidateError> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains('/') => Ok(()),
        _ => Err(IcingaValidateError::BadName {
            what,
            name: name.to_string(),
        }),
    }
}

/// Warnings that mean configuration was not loaded, and so count as errors.
const FATAL_WARNINGS: [&str; 2] = ["Ignoring directory", "Cannot compile file"];

/// `(errors, warnings)` of icinga2's output: each `critical/` message (without its
/// timestamp) joined with the `Location:` line that follows it, the summary lines left
/// out; each `warning/` message, those of [`FATAL_WARNINGS`] counted as errors.
pub fn parse_output(text: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        let message = strip_timestamp(line);
        if message.contains("critical/") {
            if is_summary(message) {
                continue;
            }
            let location = lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with('['))
                .find(|l| l.trim_start().starts_with("Location:"));
            errors.push(match location {
                Some(l) => format!("{message} {}", l.trim()),
                None => message.to_string(),
            });
        } else if message.contains("warning/") {
            if FATAL_WARNINGS.iter().any(|w| message.contains(w)) {
                errors.push(message.to_string());
            } else {
                warnings.push(message.to_string());
            }
        }
    }
    (errors, warnings)
}

/// `critical/config: 2 errors` and `critical/cli: Config validation failed. …`.
fn is_summary(message: &str) -> bool {
    message.contains("critical/cli: Config validation failed")
        || message.split_once("critical/config: ").is_some_and(|(_, rest)| {
            rest.split_once(' ').is_some_and(|(n, what)| {
                n.parse::<u64>().is_ok() && (what.trim() == "error" || what.trim() == "errors")
            })
        })
}

/// `critical/…` of `[2026-12-03 18:00:32 +0000] critical/…`.
fn strip_timestamp(line: &str) -> &str {
    let line = line.trim();
    match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
        Some((_, rest)) => rest,
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: &str = "[2026-12-03 18:00:32 +0000] information/cli: Loading configuration file(s).
[2026-12-03 18:00:32 +0000] warning/config: Ignoring directory '/w/zones.d/bogus' for unknown zone 'bogus'.
[2026-12-03 18:00:32 +0000] warning/ApiListener: Attribute 'key_path' is deprecated.
[2026-12-03 18:00:32 +0000] critical/config: Error: Validation failed for object 'web1!web1-router' of type 'Dependency'; Attribute 'parent_host_name': Object 'router' of type 'Host' does not exist.
Location: in /w/zones.d/sat1/deps.conf: 1:34-1:60
/w/zones.d/sat1/deps.conf(1): object Dependency \"web1-router\" { parent_host_name = \"router\" }
                                                                        ^^^^^^^^^^^^^^^^^^^^^^^^^^^
[2026-12-03 18:00:32 +0000] critical/config: 1 error
[2026-12-03 18:00:32 +0000] critical/cli: Config validation failed. Re-run with 'icinga2 daemon -C' after fixing the config.
";

    #[test]
    fn errors_keep_their_location_and_fatal_warnings_count_as_errors() {
        let (errors, warnings) = parse_output(FAILED);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("warning/config: Ignoring directory"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("critical/config: Error: Validation failed for object 'web1!web1-router'")
                && errors[1].ends_with(" does not exist. Location: in /w/zones.d/sat1/deps.conf: 1:34-1:60"),
            "{}",
            errors[1]
        );
        assert_eq!(warnings, ["warning/ApiListener: Attribute 'key_path' is deprecated."]);
    }

    #[test]
    fn main_config_quotes_its_strings() {
        let text = main_config(
            "sat\"1",
            "z",
            Path::new("/opt/plug$ins"),
            Path::new("/set/nodes/z/zones.conf"),
        );
        assert!(
            text.starts_with("const NodeName = \"sat\\\"1\"\nconst ZoneName = \"z\"\n"),
            "{text}"
        );
        assert!(text.contains("const PluginDir = \"/opt/plug$$ins\"\n"), "{text}");
        assert!(
            text.contains("include \"/set/nodes/z/zones.conf\"\ninclude <itl>\n"),
            "{text}"
        );
    }

    #[test]
    fn names_that_would_leave_the_work_directory_are_refused() {
        for bad in ["", ".", "..", "a/b", "/a"] {
            assert!(plain_name("endpoint", bad).is_err(), "{bad:?}");
        }
        plain_name("endpoint", "sat1.example.org").unwrap();
        let v = Validator::new("/nonexistent-work");
        let node = Node {
            endpoint: "e".into(),
            zone: "z".into(),
            zones_conf: "../zones.conf".into(),
            dirs: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            v.validate(dir.path(), &[node]),
            Err(IcingaValidateError::BadZonesConf { .. })
        ));
    }
}
