//! The plugin libraries of some directories: found, loaded (in this process or in
//! workers), re-scanned before each pass, and the stand-in for a broken one.

use super::*;

/// The `*.so` files in `dirs`, sorted by file name within each directory.
pub fn find_libraries(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "so") && p.is_file())
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

/// What [`PluginSet::refresh`] found.
#[derive(Debug, Default)]
pub struct Refresh {
    /// Translators that are new or whose library changed, to (re)install (in-process).
    pub loaded: Vec<PluginTranslator>,
    /// The same, for a set whose libraries run in worker processes.
    pub workers: Vec<crate::worker::WorkerTranslator>,
    /// Libraries that failed to load (they are reported as broken).
    pub broken: Vec<LoadError>,
    /// Libraries seen before (loaded or broken) whose file is gone: uninstalled.
    pub removed: Vec<PathBuf>,
}

/// The plugin libraries of some directories, re-scanned before each pass so that an
/// upgraded library is picked up without a restart.
pub struct PluginSet {
    dirs: Vec<PathBuf>,
    copy_dir: PathBuf,
    /// When set, each library runs in worker processes (see [`crate::worker`]).
    workers: Option<crate::worker::WorkerSettings>,
    /// The worker libraries loaded, each with its component, to notice one breaking.
    health: Vec<(crate::worker::WorkerHealth, String)>,
    /// Library path → the stat (when settled) and digest of what was loaded from it (or
    /// found broken). An unchanged stat means the file is not even read.
    seen: BTreeMap<PathBuf, (Option<FileStat>, String)>,
}

impl PluginSet {
    /// Libraries of `dirs`, loaded into this process (their copies go to `copy_dir`).
    pub fn new(dirs: Vec<PathBuf>, copy_dir: PathBuf) -> Self {
        PluginSet {
            dirs,
            copy_dir,
            workers: None,
            health: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Libraries of `dirs`, each loaded in worker processes run as `settings` say.
    pub fn with_workers(dirs: Vec<PathBuf>, settings: crate::worker::WorkerSettings) -> Self {
        PluginSet {
            copy_dir: settings.copy_dir.clone(),
            workers: Some(settings),
            ..PluginSet::new(dirs, PathBuf::new())
        }
    }

    /// Worker libraries that broke (their worker died [`crate::worker::MAX_DEATHS`] times
    /// in a row) since the last call: (library, component, why). Each is reported once;
    /// it is loaded again only when its file changes.
    pub fn newly_broken(&mut self) -> Vec<(PathBuf, String, String)> {
        let mut out = Vec::new();
        self.health.retain(|(h, component)| match h.broken() {
            Some(why) => {
                out.push((h.path().to_path_buf(), component.clone(), why));
                false
            }
            None => true,
        });
        out
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Load every library that is new or changed since the last refresh. A library that
    /// fails keeps failing quietly until its file changes.
    pub fn refresh(&mut self) -> Refresh {
        let mut r = Refresh::default();
        let present = find_libraries(&self.dirs);
        let gone: Vec<PathBuf> = self.seen.keys().filter(|p| !present.contains(p)).cloned().collect();
        for path in gone {
            tracing::warn!(library = %path.display(), "translator library removed");
            self.seen.remove(&path);
            r.removed.push(path);
        }
        for path in present {
            // The same change test as for profiles: a settled, unchanged stat is enough.
            let stat = FileStat::of_path(&path);
            let seen = self.seen.get(&path);
            if stat.is_some() && seen.is_some_and(|(s, _)| *s == stat) {
                continue;
            }
            let (bytes, digest) = match read_hashed(&path) {
                Ok(read) => read,
                Err(e) => {
                    // Remembered, so that its later removal is noticed too.
                    self.seen.insert(path.clone(), (None, String::new()));
                    r.broken.push(e);
                    continue;
                }
            };
            let unchanged = seen.is_some_and(|(_, d)| *d == digest);
            self.seen.insert(path.clone(), (stat, digest.clone()));
            if unchanged {
                continue;
            }
            if let Some(settings) = &self.workers {
                // The library's earlier workers go with the translator they served.
                self.health.retain(|(h, _)| h.path() != path);
                // The workers load the copy of the bytes hashed here, without reading the
                // library again.
                let placed = place_copy(&path, &bytes, &digest, &settings.copy_dir);
                drop(bytes);
                match placed.and_then(|()| crate::worker::load_placed_in_worker(&path, &digest, settings)) {
                    Ok(t) => {
                        use monitor_sdk::translator::Translator;
                        self.health.push((t.health(), t.component().to_string()));
                        r.workers.push(t);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "translator library is broken");
                        r.broken.push(e);
                    }
                }
                continue;
            }
            match load_bytes(&path, &bytes, digest, &self.copy_dir) {
                Ok(t) => r.loaded.push(t),
                Err(e) => {
                    tracing::error!(error = %e, "translator library is broken");
                    r.broken.push(e);
                }
            }
        }
        r
    }
}

/// The stand-in for a broken library: it serves the component the library would serve
/// (its file name, `<component>.so`, by the packages' convention, or the component its
/// worker served before it broke), and fails every translation with the library's
/// error. Its machines thus keep their last good configuration, and their
/// `monitoring: <component>` services say why, until the library loads again.
#[derive(Debug, Clone)]
pub struct BrokenLibrary {
    component: String,
    reason: String,
}

impl BrokenLibrary {
    /// The stand-in for the library at `path`, broken for `reason`, serving `component`
    /// (by default its file name without `.so`).
    pub fn new(path: &Path, component: Option<&str>, reason: &str) -> Option<Self> {
        let component = match component {
            Some(c) => c.to_string(),
            None => path.file_stem()?.to_str()?.to_string(),
        };
        Some(BrokenLibrary {
            component,
            reason: reason.to_string(),
        })
    }
}

impl Translator for BrokenLibrary {
    fn component(&self) -> &str {
        &self.component
    }

    fn version(&self) -> &str {
        "broken"
    }

    fn translate(&self, _: &str, _: &Component, _: &mut Context) -> Result<Bundle, TranslateError> {
        Err(TranslateError::Other(format!(
            "broken translator library: {}",
            self.reason
        )))
    }
}

/// Installing a loaded plugin in the engine.
pub trait AddPlugin {
    /// Install `plugin`: it replaces a translator of the same component.
    fn add_plugin(&mut self, plugin: PluginTranslator);
}

impl AddPlugin for monitor_engine::Engine {
    fn add_plugin(&mut self, plugin: PluginTranslator) {
        let path = plugin.path.clone();
        let digest = plugin.digest.clone();
        self.add_library_translator(Box::new(plugin), &path, &digest);
    }
}

/// Installing a plugin that runs in worker processes in the engine.
pub trait AddWorkerPlugin {
    /// Install `plugin`: it replaces a translator of the same component.
    fn add_worker_plugin(&mut self, plugin: crate::worker::WorkerTranslator);
}

impl AddWorkerPlugin for monitor_engine::Engine {
    fn add_worker_plugin(&mut self, plugin: crate::worker::WorkerTranslator) {
        let path = plugin.path.clone();
        let digest = plugin.digest.clone();
        self.add_library_translator(Box::new(plugin), &path, &digest);
    }
}
