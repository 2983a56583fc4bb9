//! # monitor-sdk-test
//!
//! The test kit for monitor-compile translators. Add it as a dev-dependency, translate an
//! LCFG XML snippet, a whole profile or a sample file with your translator, and assert on
//! the result or snapshot it with [`insta`] (re-exported, so no other dependency is needed):
//!
//! ```
//! use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts};
//! use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
//! use monitor_sdk::profile::Component;
//! use monitor_sdk::translator::{Context, TranslateError, Translator};
//!
//! struct Ntp;
//! impl Translator for Ntp {
//!     fn component(&self) -> &str { "ntp" }
//!     fn version(&self) -> &str { "1.0" }
//!     fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
//!         let groups = handle_contacts(c, ctx)?;
//!         Ok(Bundle::new().with(
//!             Service::new(DEFAULT_SERVICE)
//!                 .host_name(machine)
//!                 .service_description("NTP")
//!                 .check_command(CheckCommand::new("check_ntp_time"))
//!                 .contact_groups(groups),
//!         ))
//!     }
//! }
//!
//! let t = monitor_sdk_test::translate_xml(&Ntp, "<nagios_groups>ops</nagios_groups>");
//! assert_eq!(t.machine, monitor_sdk_test::MACHINE);
//! assert_eq!(t.bundle().len(), 1);
//! assert_eq!(t.registrations(), "notifies contact group ops\n");
//! // In a test: monitor_sdk_test::insta::assert_snapshot!(t.snapshot());
//! assert_eq!(
//!     t.snapshot(),
//!     "-- objects --
//! define service {
//!     use                             mc-default-service
//!     host_name                       h1.example.org
//!     service_description             NTP
//!     check_command                   check_ntp_time
//!     contact_groups                  ops
//! }
//!
//! -- registrations --
//! notifies contact group ops
//!
//! -- warnings --
//! "
//! );
//! ```
//!
//! [`Translated::bundle`], [`rendered`](Translated::rendered) and
//! [`snapshot`](Translated::snapshot) also check the bundle with [`Bundle::check`], so a
//! value Nagios would refuse fails the test where it is made.

#![deny(missing_docs)]

use std::fmt::Write as _;
use std::path::Path;

use lcfg_profile::{Select, parse_profile};
use monitor_sdk::nagios::Bundle;
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

pub use insta;

/// The machine of [`translate_xml`] and [`translate_flat`]: `h1.example.org`.
pub const MACHINE: &str = "h1.example.org";

/// One translation: the machine, what the translator returned, and its context (the
/// registrations and warnings it made).
#[derive(Debug)]
pub struct Translated {
    /// The machine translated (`profile.node` + `.` + `profile.domain`).
    pub machine: String,
    /// What `translate` returned.
    pub result: Result<Bundle, TranslateError>,
    /// The context after the call: registrations and warnings.
    pub context: Context,
}

impl Translated {
    /// The bundle, checked with [`Bundle::check`]; panics with the translator's error
    /// when it failed, or with the value rule the bundle breaks.
    pub fn bundle(&self) -> &Bundle {
        match &self.result {
            Ok(b) => {
                if let Err(e) = b.check() {
                    panic!("the bundle for {} breaks a Nagios value rule: {e}", self.machine);
                }
                b
            }
            Err(e) => panic!("the translation of {} failed: {e}", self.machine),
        }
    }

    /// The error; panics when the translation succeeded.
    pub fn error(&self) -> &TranslateError {
        match &self.result {
            Ok(b) => panic!("the translation of {} succeeded:\n{}", self.machine, b.render()),
            Err(e) => e,
        }
    }

    /// The bundle rendered as Nagios object definitions.
    pub fn rendered(&self) -> String {
        self.bundle().render()
    }

    /// The registrations, one per line.
    pub fn registrations(&self) -> String {
        self.context.registrations().iter().map(|r| format!("{r}\n")).collect()
    }

    /// The warnings, one per line.
    pub fn warnings(&self) -> String {
        self.context.warnings().iter().map(|w| format!("{w}\n")).collect()
    }

    /// The whole translation as one text for a snapshot: the objects (or the error), the
    /// registrations and the warnings, each under its own heading. Panics when the bundle
    /// breaks a value rule, as [`bundle`](Self::bundle) does.
    pub fn snapshot(&self) -> String {
        let mut s = String::new();
        match &self.result {
            Ok(_) => {
                let _ = write!(s, "-- objects --\n{}", self.bundle().render());
            }
            Err(e) => {
                let _ = write!(s, "-- error --\n{e}\n\n");
            }
        }
        let _ = write!(s, "-- registrations --\n{}", self.registrations());
        let _ = write!(s, "\n-- warnings --\n{}", self.warnings());
        s
    }

    /// The result and the context, for a test that matches on both. The bundle is not
    /// checked here: a test of the value rules inspects it as it is.
    pub fn into_parts(self) -> (Result<Bundle, TranslateError>, Context) {
        (self.result, self.context)
    }
}

/// A whole profile of [`MACHINE`] whose `component` element holds the XML `body`, and
/// whose `nagios_client.components` lists it.
pub fn profile_xml(component: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><profile xmlns:cfg=\"http://www.lcfg.org/namespace/profile-1.0\"><lcfg><components>\
         <profile><node>h1</node><domain>example.org</domain></profile>\
         <{component}>{body}</{component}>\
         <nagios_client><components>{component}</components></nagios_client>\
         </components></lcfg></profile>"
    )
}

/// Translate the component whose resources are the XML `body` (the inside of the
/// component's element, for example `<port>5222</port>`), on [`MACHINE`].
///
/// Panics when the snippet is not a valid profile, naming the reader's error.
pub fn translate_xml(translator: &dyn Translator, body: &str) -> Translated {
    translate_profile(translator, &profile_xml(translator.component(), body))
}

/// Translate the translator's component of a whole profile document `xml`.
///
/// Panics when the document is not a valid profile, naming the reader's error.
pub fn translate_profile(translator: &dyn Translator, xml: &str) -> Translated {
    translate_bytes(translator, Path::new("snippet.xml"), xml.as_bytes())
}

/// Translate the translator's component of the profile file at `path` (plain or gzip).
///
/// Panics when the file cannot be read or is not a valid profile.
pub fn translate_file(translator: &dyn Translator, path: impl AsRef<Path>) -> Translated {
    let path = path.as_ref();
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    translate_bytes(translator, path, &raw)
}

/// Translate a component made from flat `(resource, value)` pairs, on [`MACHINE`]. A flat
/// component has no lists: use [`translate_xml`] for tag lists.
pub fn translate_flat(translator: &dyn Translator, pairs: &[(&str, &str)]) -> Translated {
    let component = Component::from_flat(translator.component(), pairs);
    run(translator, MACHINE, &component)
}

fn translate_bytes(translator: &dyn Translator, file: &Path, raw: &[u8]) -> Translated {
    let profile = parse_profile(file, raw, Select::Monitoring)
        .unwrap_or_else(|e| panic!("{} is not a valid profile: {e}", file.display()));
    let empty = Component::from_flat(translator.component(), &[]);
    let component = profile.component(translator.component()).unwrap_or(&empty);
    run(translator, &profile.machine, component)
}

fn run(translator: &dyn Translator, machine: &str, component: &Component) -> Translated {
    let mut context = Context::new(machine, translator.component());
    let result = translator.translate(machine, component, &mut context);
    Translated {
        machine: machine.to_string(),
        result,
        context,
    }
}
