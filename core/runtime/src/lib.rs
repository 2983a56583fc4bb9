//! # monitor-runtime
//!
//! Everything of monitor-compile that touches the live system: the plugin host, the redb
//! store, the writer, validation with the real `nagios -v`, the removal guard, deploy and
//! Nagios's external commands.

pub mod blame;
pub mod commands;
pub mod deploy;
pub mod guard;
pub mod http_source;
pub mod icinga2;
pub mod plugin_host;
pub mod store;
pub mod tls;
pub mod users_ldap;
pub mod validate;
pub mod worker;
pub mod writer;
