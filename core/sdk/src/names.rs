//! The names of the base templates and commands that translators use, all with the `mc-`
//! prefix (docs/DECISIONS.md). Part of the SDK: the engine's `base` defines the objects,
//! translators only name them.

/// The template every generated service inherits from.
pub const DEFAULT_SERVICE: &str = "mc-default-service";
/// The template every generated host inherits from.
pub const DEFAULT_HOST: &str = "mc-default-host";
/// The prefix of every object name monitor-compile makes up (docs/DECISIONS.md).
pub const PREFIX: &str = "mc-";
/// The name of the contact template.
pub const GENERIC_CONTACT: &str = "mc-generic-contact";
/// `mc-check-tcp!PORT`.
pub const CHECK_TCP: &str = "mc-check-tcp";
/// `mc-check-tcp-expect!PORT!EXPECTED-BANNER`.
pub const CHECK_TCP_EXPECT: &str = "mc-check-tcp-expect";
/// `mc-check-http!PORT`: plain HTTP on the host's address.
pub const CHECK_HTTP: &str = "mc-check-http";
/// The dummy command of passive services: CRITICAL when Nagios has to run it (stale).
pub const CHECK_PASSIVE: &str = "mc-check-passive";
/// Always UP: the host check of virtual hosts.
pub const CHECK_DUMMY_UP: &str = "mc-check-dummy-up";
/// The host check of `mc-default-host` (ping).
pub const CHECK_HOST_ALIVE: &str = "mc-check-host-alive";
/// The timeperiod every template uses.
pub const ALWAYS: &str = "mc-24x7";

/// The name of the notification command for `what` (`host` or `service`) by `channel`
/// (`email`, `xmpp` or `slack`): `mc-notify-host-by-email`, ...
pub fn notify_command(what: &str, channel: &str) -> String {
    format!("{PREFIX}notify-{what}-by-{channel}")
}
