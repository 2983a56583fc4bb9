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
    pub protocol: u32,
    pub call: Call,
}

/// The five translator calls.
#[derive(Debug, Serialize, Deserialize)]
pub enum Call {
    StartPass,
    Translate {
        machine: String,
        component: String,
        resources: Vec<Resource>,
    },
    NotifyUnchanged {
        machine: String,
    },
    FinishPass,
    AlwaysRun,
}

/// What a call returned.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// From `init`: the component the translator serves, and its version.
    Identity {
        component: String,
        version: String,
    },
    Bundle(Bundle),
    Translated {
        bundle: Bundle,
        registrations: Vec<Registration>,
        warnings: Vec<String>,
    },
    Done,
    AlwaysRun(bool),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Translate(TranslateError),
    #[error("translator panicked: {0}")]
    Panic(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A response from the plugin.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub protocol: u32,
    pub result: Result<Reply, CallError>,
}
