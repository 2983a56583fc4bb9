//! The assembled configuration, as the engine makes it and the writer and deploy write it.
//! Its own module, so that writing depends on no part of the engine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The assembled configuration: relative file name → contents. Contents are shared
/// (`Arc`): a pass that changes one machine shares every other file with the last pass,
/// and comparing an unchanged file is a pointer comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub files: BTreeMap<PathBuf, Arc<str>>,
}
