//! The translators of a pass: one per component, each with its identity (the cache key),
//! its failure count, and the libraries that failed to load.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use monitor_sdk::translator::{TranslateError, Translator};

use crate::cache::{ComponentRecord, TranslatorId};

pub(crate) struct Slot {
    pub(crate) translator: Box<dyn Translator>,
    pub(crate) id: TranslatorId,
    /// Consecutive passes whose start_pass or finish_pass failed.
    pub(crate) failures: u32,
    /// Set after [`MAX_FAILURES`] such passes: the translator is no longer called.
    pub(crate) broken: Option<String>,
}

impl Slot {
    /// Count a failing `start_pass` or `finish_pass`; after [`MAX_FAILURES`] in a row the
    /// translator is marked broken. Returns the reason to report.
    pub(crate) fn failed(&mut self, reason: String) -> String {
        self.failures += 1;
        if self.failures < MAX_FAILURES {
            return reason;
        }
        let reason = format!("broken after {} failing passes: {reason}", self.failures);
        tracing::error!(translator = %self.id, "{reason}");
        self.broken = Some(reason.clone());
        reason
    }
}

/// A translator whose `start_pass` or `finish_pass` fails this many passes in a row is
/// marked broken until it is replaced (a new library, or a restart).
pub const MAX_FAILURES: u32 = 3;

/// The translators of an engine: one slot per component, sorted by component (the
/// `start_pass`/`finish_pass` order), the components unavailable in this pass, and the
/// libraries that failed to load.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) slots: Vec<Slot>,
    pub(crate) by_component: rustc_hash::FxHashMap<String, usize>,
    /// Components whose translator cannot be used in this pass, and why.
    pub(crate) unavailable: HashMap<String, String>,
    /// Translator libraries that failed to load, reported on every pass until fixed.
    pub(crate) broken_libraries: BTreeMap<PathBuf, String>,
}

impl Registry {
    /// Add (or replace) the translator for its component. `origin` is part of its
    /// identity in the cache key.
    pub(crate) fn add_translator(&mut self, translator: Box<dyn Translator>, origin: &str) {
        let id = TranslatorId {
            component: translator.component().to_string(),
            version: translator.version().to_string(),
            origin: origin.to_string(),
        };
        let slot = Slot {
            translator,
            id,
            failures: 0,
            broken: None,
        };
        match self.by_component.get(&slot.id.component) {
            Some(&i) => {
                tracing::info!(component = %slot.id.component, old = %self.slots[i].id, new = %slot.id, "translator replaced");
                self.slots[i] = slot;
            }
            None => self.slots.push(slot),
        }
        self.reindex();
    }

    /// Keep the slots sorted by component (the start/finish order) and the index in step.
    pub(crate) fn reindex(&mut self) {
        self.slots.sort_by(|a, b| a.id.component.cmp(&b.id.component));
        self.by_component = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.component.clone(), i))
            .collect();
    }

    /// The identities of the loaded translators, sorted by component.
    pub(crate) fn translators(&self) -> impl Iterator<Item = &TranslatorId> {
        self.slots.iter().map(|s| &s.id)
    }

    /// Remove the translator of `component` (its library was removed or is broken). Its
    /// machines keep their last good configuration, with an error, until one returns.
    pub(crate) fn remove_translator(&mut self, component: &str) {
        self.slots.retain(|s| s.id.component != component);
        self.reindex();
    }

    /// Install a translator loaded from the plugin library at `library`, whose content
    /// digest is `digest`. It replaces a built-in translator of the same component
    /// (installing a package is an explicit choice); the replacement is logged.
    pub(crate) fn add_library_translator(&mut self, translator: Box<dyn Translator>, library: &Path, digest: &str) {
        self.broken_libraries.remove(library);
        if let Some(&i) = self.by_component.get(translator.component()) {
            tracing::info!(
                component = %translator.component(),
                replaced = %self.slots[i].id,
                library = %library.display(),
                "the plugin library takes precedence over the translator already loaded"
            );
        }
        let origin = format!("plugin {} {digest}", library.display());
        self.add_translator(translator, &origin);
    }

    /// Record a library that failed to load: it is reported on every pass until it
    /// loads, and the machines of its component keep their last good configuration.
    pub(crate) fn note_broken_library(&mut self, path: &Path, reason: &str) {
        self.broken_libraries.insert(path.to_path_buf(), reason.to_string());
    }

    /// A translator library is gone from disk (its package was uninstalled): forget it
    /// as broken, and remove the translator it provided. Returns that translator's
    /// component. Its machines lose that component's services on the next pass (no
    /// translator serves it any more), which the daemon's removal guard sees and names.
    pub(crate) fn library_removed(&mut self, path: &Path) -> Option<String> {
        self.broken_libraries.remove(path);
        let prefix = format!("plugin {} ", path.display());
        let component = self
            .slots
            .iter()
            .find(|s| s.id.origin.starts_with(&prefix))
            .map(|s| s.id.component.clone())?;
        tracing::warn!(
            component,
            library = %path.display(),
            "translator uninstalled: its services are removed from every machine"
        );
        self.remove_translator(&component);
        Some(component)
    }

    /// True when no translator serves `component` and none is expected to: it is not
    /// loaded, did not fail this pass, and no library is broken (a broken library may be
    /// the one that serves it, so then its machines keep their last good output).
    pub(crate) fn uninstalled(&self, component: &str) -> bool {
        !self.by_component.contains_key(component)
            && !self.unavailable.contains_key(component)
            && self.broken_libraries.is_empty()
    }

    /// Whether a cached component record can stand for this pass.
    pub(crate) fn record_current(&self, c: &ComponentRecord) -> bool {
        if c.translator.is_some() && self.uninstalled(&c.component) {
            // Its translator is gone for good: translate again, without it.
            return false;
        }
        if c.translator.is_some() && self.unavailable_reason(&c.component).is_some() {
            // The translator cannot run: the last good output stands.
            return true;
        }
        match self.by_component.get(&c.component) {
            Some(&i) => !self.slots[i].translator.always_run() && Some(&self.slots[i].id) == c.translator.as_ref(),
            None => c.translator.is_none(),
        }
    }

    /// Why `component`'s translator cannot be used in this pass, if it cannot.
    pub(crate) fn unavailable_reason(&self, component: &str) -> Option<String> {
        if let Some(r) = self.unavailable.get(component) {
            return Some(r.clone());
        }
        if self.by_component.contains_key(component) {
            return None;
        }
        let broken: Vec<String> = self.broken_libraries.keys().map(|p| p.display().to_string()).collect();
        Some(if broken.is_empty() {
            "no translator is loaded for it".to_string()
        } else {
            format!(
                "no translator is loaded for it (broken libraries: {})",
                broken.join(", ")
            )
        })
    }
}

/// Run translator code, turning a panic into an error for that call.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, TranslateError>) -> Result<T, TranslateError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(TranslateError::Other(format!("translator panicked: {msg}")))
        }
    }
}
