//! The request/response protocol carried in byte buffers across the plugin boundary.
//! JSON, with an explicit [`PROTOCOL_VERSION`] in every message.

use serde::{Deserialize, Serialize};

use crate::nagios::Bundle;
use crate::profile::Resource;
use crate::translator::{Registration, TranslateError};

/// The version of the messages below. Bump it on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request from the host.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The [`PROTOCOL_VERSION`] the host speaks.
    pub protocol: u32,
    /// Which call to make, with its arguments.
    pub call: Call,
}

/// The five translator calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    /// Run [`Translator::start_pass`](crate::translator::Translator::start_pass).
    StartPass,
    /// Run [`Translator::translate`](crate::translator::Translator::translate) for one machine.
    Translate {
        /// The machine's name.
        machine: String,
        /// The component's name.
        component: String,
        /// The component's resources, from which the plugin rebuilds the component.
        resources: Vec<Resource>,
    },
    /// Run [`Translator::notify_unchanged`](crate::translator::Translator::notify_unchanged).
    NotifyUnchanged {
        /// The machine whose profile has not changed.
        machine: String,
    },
    /// Run [`Translator::finish_pass`](crate::translator::Translator::finish_pass).
    FinishPass,
    /// Ask [`Translator::always_run`](crate::translator::Translator::always_run).
    AlwaysRun,
}

/// What a call returned.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// From `init`: the component the translator serves, and its version.
    Identity {
        /// The component the translator serves.
        component: String,
        /// The translator's version.
        version: String,
    },
    /// From `start_pass` and `finish_pass`: the objects returned.
    Bundle(Bundle),
    /// From `translate`: the objects, and what the translator recorded in its context.
    Translated {
        /// The objects made for the machine.
        bundle: Bundle,
        /// The registrations, to be replayed into the host's context.
        registrations: Vec<Registration>,
        /// The warnings, to be replayed into the host's context.
        warnings: Vec<String>,
    },
    /// From `notify_unchanged`: it returned.
    Done,
    /// From `always_run`: its answer.
    AlwaysRun(bool),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    /// The translator returned an error.
    Translate(TranslateError),
    #[error("translator panicked: {0}")]
    /// The translator panicked; the panic message.
    Panic(String),
    #[error("protocol error: {0}")]
    /// The messages were broken: undecodable, the wrong protocol version, the wrong call
    /// for the entry point, or a call before `init`.
    Protocol(String),
}

/// A response from the plugin.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    /// The [`PROTOCOL_VERSION`] the plugin speaks.
    pub protocol: u32,
    /// The call's reply, or why it failed.
    pub result: Result<Reply, CallError>,
}
