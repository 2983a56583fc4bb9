//! The Icinga 2 backend's contact with the live system: validation of a generated tree
//! with the real `icinga2 daemon -C`, one run per node ([`validate`]), the REST API
//! client ([`api`]) and reloads by signal ([`reload`]).
//!
//! What was measured on icinga2 2.13 (Debian bookworm), which the code relies on:
//!
//! - Debian's `/usr/sbin/icinga2` is a shell wrapper that `exec`s the real binary
//!   (`/usr/lib/x86_64-linux-gnu/icinga2/sbin/icinga2`): a daemon's `/proc/PID/exe` names
//!   the latter.
//! - Every icinga2 command (`daemon -C`, `daemon`, even `pki new-ca`) started as root
//!   switches to the `RunAsUser`/`RunAsGroup` constants (`nagios` on Debian), and one
//!   started as any other user fails unless it *is* that user. Both constants can be set
//!   on the command line (`-DRunAsUser=… -DRunAsGroup=…`): [`run_as_defines`] names the
//!   user the process really runs as, so that icinga2 never switches by itself.
//! - Zone directories under `ZonesDir` may be symlinks: icinga2 follows them, and names
//!   the files by their path through the symlink.
//! - A directory under `ZonesDir` that names no zone is skipped with only a *warning*
//!   (`Ignoring directory '…' for unknown zone '…'`), and so is a file that cannot be read
//!   (`Cannot compile file '…': … Permission denied`): the validator counts both as errors.
//! - `$$` is no escape of the configuration language: it stays `$$` in the string (and an
//!   `include "a$$b"` looks for a file named `a$$b`). It is the escape of *runtime macros*,
//!   which icinga2 resolves in command lines, arguments and notification texts. Hence two
//!   helpers: [`dsl_literal`] for names and paths, [`dsl_string`] for values that go
//!   through macro resolution.

pub mod api;
pub mod reload;
pub mod validate;

use crate::validate::RunAs;

/// The default icinga2 binary (Debian's wrapper script; see the module docs).
pub const DEFAULT_ICINGA2: &str = "/usr/sbin/icinga2";

/// Where Debian's icinga2 writes its pid.
pub const DEFAULT_PID_FILE: &str = "/run/icinga2/icinga2.pid";

/// The default directory of the monitoring plugins (Debian's `monitoring-plugins`).
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/nagios/plugins";

/// A string value for the Icinga 2 configuration language, quotes included, for a value
/// that icinga2 resolves runtime macros in (a command line, an argument, a plugin
/// directory that commands are built from): `\` → `\\`, `"` → `\"`, `$` → `$$`, and
/// newline, carriage return and tab as `\n`, `\r`, `\t`. For names and file paths, which
/// see no macro resolution, use [`dsl_literal`].
pub fn dsl_string(s: &str) -> String {
    quote(s, true)
}

/// A string literal for the Icinga 2 configuration language, quotes included, taken
/// exactly as `s` (object names, constants such as `NodeName`, `include` paths):
/// [`dsl_string`]'s escapes without the doubling of `$`, which the language itself does
/// not undo.
pub fn dsl_literal(s: &str) -> String {
    quote(s, false)
}

fn quote(s: &str, macros: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' if macros => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `-DRunAsUser=NAME` and `-DRunAsGroup=GROUP` for an icinga2 process that runs as
/// `run_as` (`None`: as this process), so that icinga2 keeps that user instead of
/// switching to its built-in one (see the module docs).
pub fn run_as_defines(run_as: Option<&RunAs>) -> Result<[String; 2], crate::validate::ValidateError> {
    use crate::validate::ValidateError;
    use nix::unistd::{Gid, Group, Uid, User};
    let (uid, gid) = match run_as {
        Some(u) => (Uid::from_raw(u.uid), Gid::from_raw(u.gid)),
        None => (Uid::effective(), Gid::effective()),
    };
    let user = User::from_uid(uid)
        .map_err(|source| ValidateError::UserLookup {
            user: uid.to_string(),
            source,
        })?
        .ok_or_else(|| ValidateError::UnknownUser { user: uid.to_string() })?;
    let group = Group::from_gid(gid)
        .map_err(|source| ValidateError::UserLookup {
            user: format!("group {gid}"),
            source,
        })?
        .ok_or_else(|| ValidateError::UnknownUser {
            user: format!("group {gid}"),
        })?;
    Ok([
        format!("-DRunAsUser={}", user.name),
        format!("-DRunAsGroup={}", group.name),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_the_dsl() {
        assert_eq!(dsl_string(r#"a\b"c$d"#), r#""a\\b\"c$$d""#);
        assert_eq!(dsl_literal(r#"a\b"c$d"#), r#""a\\b\"c$d""#);
        assert_eq!(dsl_literal("x\ny\tz\r"), r#""x\ny\tz\r""#);
        assert_eq!(dsl_string(""), r#""""#);
    }

    #[test]
    fn run_as_defines_name_this_process_by_default() {
        let [user, group] = run_as_defines(None).unwrap();
        let me = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
            .unwrap()
            .unwrap();
        assert_eq!(user, format!("-DRunAsUser={}", me.name));
        assert!(group.starts_with("-DRunAsGroup="), "{group}");
    }
}
