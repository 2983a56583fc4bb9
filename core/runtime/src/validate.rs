//! Runs the real `nagios -v` on a generated object directory, through a minimal main
//! configuration written into a temporary directory, as the user Nagios runs as (so that
//! a file Nagios could not read fails), and finds the command lines whose program is not
//! on this machine.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use monitor_engine::Output;

use serde::Serialize;
use thiserror::Error;

/// `nagios -v` could not be run at all.
#[derive(Debug, Error)]
pub enum ValidateError {
    #[error("cannot prepare a validation directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot run {bin}: {source}")]
    Spawn { bin: PathBuf, source: std::io::Error },
    #[error("cannot validate as user {user:?}: no such user")]
    UnknownUser { user: String },
    #[error("cannot look up user {user:?}: {source}")]
    UserLookup { user: String, source: nix::Error },
}

/// The user Nagios runs as on Debian (`nagios_user` of the packaged main config).
pub const DEFAULT_NAGIOS_USER: &str = "nagios";

/// The user `nagios -v` is run as, so that it reads the output as Nagios would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// Whom to validate as. Only root can switch users: otherwise `nagios -v` runs as this
/// process (`None`). As root: the `configured` user (`"root"` for this process itself; an
/// unknown user is an error), else [`DEFAULT_NAGIOS_USER`] when it exists, else this
/// process.
pub fn validation_user(configured: Option<&str>) -> Result<Option<RunAs>, ValidateError> {
    if !is_root() {
        return Ok(None);
    }
    let name = match configured {
        Some("root") => return Ok(None),
        Some(u) => u,
        None => DEFAULT_NAGIOS_USER,
    };
    let found = nix::unistd::User::from_name(name).map_err(|source| ValidateError::UserLookup {
        user: name.to_string(),
        source,
    })?;
    match (found, configured) {
        (Some(u), _) => Ok(Some(RunAs {
            user: name.to_string(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })),
        (None, Some(_)) => Err(ValidateError::UnknownUser { user: name.to_string() }),
        (None, None) => Ok(None),
    }
}

/// What `nagios -v` said.
#[derive(Debug, Clone, Serialize)]
pub struct NagiosCheck {
    pub ok: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The full output, for logs.
    pub output: String,
    /// Who ran `nagios -v` (`None`: this process's user).
    pub run_as: Option<String>,
    /// Commands whose program is not an executable file here ([`missing_programs`]);
    /// warnings, filled in by the caller, which has the output.
    pub missing_programs: Vec<MissingProgram>,
}

/// A command whose program (the first word of its `command_line`, `$USERn$` resolved)
/// is not an executable file on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingProgram {
    pub command: String,
    pub program: String,
}

impl std::fmt::Display for MissingProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command {} runs {}, which is not an executable file on this machine",
            self.command, self.program
        )
    }
}

/// The resource file of the minimal validation config.
pub const MINIMAL_RESOURCE: &str = "$USER1$=/usr/lib/nagios/plugins\n";

/// The `$USERn$` macros a resource file defines (`$USER1$=/usr/lib/nagios/plugins`).
pub fn parse_resource(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| k.starts_with("$USER") && k.ends_with('$'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The macros of every `resource_file=` of a main config (`main_dir` resolves relative
/// paths); an unreadable file contributes none.
pub fn main_config_macros(main: &str, main_dir: &Path) -> BTreeMap<String, String> {
    let mut macros = BTreeMap::new();
    for value in main_config_values(main, "resource_file") {
        let path = main_dir.join(value);
        if let Ok(text) = std::fs::read_to_string(&path) {
            macros.extend(parse_resource(&text));
        }
    }
    macros
}

/// Every value of `key` in a Nagios main config, in order (comments skipped).
pub fn main_config_values<'a>(main: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    main.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |l| l.split_once('=').filter(|(k, _)| k.trim() == key))
        .map(|(_, v)| v.trim())
}

/// Why the notification commands would not be safe under the main config `main`: our
/// commands single-quote plugin output (`$SERVICEOUTPUT$`), which only Nagios can clean,
/// by stripping `illegal_macro_output_chars` from it. `None` when that setting holds `'`
/// and the other shell quoting characters.
pub fn macro_output_unsafe(main: &str) -> Option<String> {
    let chars = main_config_values(main, "illegal_macro_output_chars")
        .last()
        .unwrap_or("");
    let missing: String = ['\'', '`', '"', '$'].iter().filter(|c| !chars.contains(**c)).collect();
    (!missing.is_empty()).then(|| {
        format!(
            "illegal_macro_output_chars lacks {missing:?}: plugin output could break out of the quoting in notification commands; Debian's packaged nagios.cfg sets `~$&|'\"<>"
        )
    })
}

/// `(command_name, command_line)` of every `define command` in rendered object text.
pub fn command_lines(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut in_command = false;
    let (mut name, mut line) = (None, None);
    for l in text.lines().map(str::trim) {
        if l.starts_with("define command") {
            in_command = true;
            (name, line) = (None, None);
        } else if in_command && l == "}" {
            if let (Some(n), Some(c)) = (name, line) {
                out.push((n, c));
            }
            in_command = false;
        } else if in_command {
            match l.split_once(char::is_whitespace) {
                Some(("command_name", v)) => name = Some(v.trim()),
                Some(("command_line", v)) => line = Some(v.trim()),
                _ => {}
            }
        }
    }
    out
}

/// The commands of `output` whose program is not executable: the first word of the
/// command line, each `$USERn$` replaced from `macros` (an undefined one stays as it is,
/// and so is reported), checked with `is_executable`.
pub fn missing_programs(
    output: &Output,
    macros: &BTreeMap<String, String>,
    is_executable: impl Fn(&Path) -> bool,
) -> Vec<MissingProgram> {
    let mut out = Vec::new();
    for text in output.files.values() {
        for (command, line) in command_lines(text) {
            let Some(first) = line.split_whitespace().next() else {
                continue;
            };
            let mut program = first.to_string();
            for (k, v) in macros {
                program = program.replace(k.as_str(), v);
            }
            if !is_executable(Path::new(&program)) {
                out.push(MissingProgram {
                    command: command.to_string(),
                    program,
                });
            }
        }
    }
    out
}

/// True for an existing regular file with an execute bit.
pub fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The default Nagios binary (Debian's `nagios4-core`).
pub const DEFAULT_NAGIOS: &str = "/usr/sbin/nagios4";

/// A minimal main configuration that loads `objects_dir` and keeps every other path
/// inside `work_dir`. `as_self`: `nagios -v` runs as this process (not as [`RunAs`]).
pub fn minimal_main_config(objects_dir: &Path, work_dir: &Path, as_self: bool) -> String {
    let w = work_dir.display();
    let mut cfg = format!(
        "cfg_dir={}\nresource_file={w}/resource.cfg\ncheck_result_path={w}/checkresults\ntemp_path={w}\n\
         lock_file={w}/nagios.lock\nlog_file={w}/nagios.log\nstatus_file={w}/status.dat\n\
         state_retention_file={w}/retention.dat\nobject_cache_file={w}/objects.cache\n\
         precached_object_file={w}/objects.precache\ncommand_file={w}/nagios.cmd\n\
         illegal_object_name_chars=`~!$%^&*|'\"<>?,()=\nillegal_macro_output_chars=`~$&|'\"<>\n",
        objects_dir.display()
    );
    if as_self && is_root() {
        cfg.push_str("nagios_user=root\nnagios_group=root\n");
    }
    cfg
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Prepare `work_dir` for [`minimal_main_config`]; returns the main config's path. With
/// `run_as`, the work directory is given to that user (nothing in it is secret).
pub fn prepare_work_dir(objects_dir: &Path, work_dir: &Path, run_as: Option<&RunAs>) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(work_dir.join("checkresults"))?;
    std::fs::write(work_dir.join("resource.cfg"), MINIMAL_RESOURCE)?;
    let main = work_dir.join("nagios.cfg");
    std::fs::write(&main, minimal_main_config(objects_dir, work_dir, run_as.is_none()))?;
    if let Some(u) = run_as {
        for p in [
            work_dir.to_path_buf(),
            work_dir.join("checkresults"),
            work_dir.join("resource.cfg"),
            main.clone(),
        ] {
            std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid))?;
        }
    }
    Ok(main)
}

/// Validate `objects_dir` with `nagios_bin -v`, using a throw-away main config, as the
/// user Nagios runs as ([`validation_user`] with nothing configured).
pub fn validate_dir(nagios_bin: &Path, objects_dir: &Path) -> Result<NagiosCheck, ValidateError> {
    validate_dir_as(nagios_bin, objects_dir, validation_user(None)?.as_ref())
}

/// [`validate_dir`] as `run_as` (`None`: as this process).
pub fn validate_dir_as(
    nagios_bin: &Path,
    objects_dir: &Path,
    run_as: Option<&RunAs>,
) -> Result<NagiosCheck, ValidateError> {
    let work = tempfile::tempdir()?;
    let objects = std::fs::canonicalize(objects_dir)?;
    let main = prepare_work_dir(&objects, work.path(), run_as)?;
    run_verify(nagios_bin, &main, run_as)
}

/// Run `nagios_bin -v main_cfg` (as `run_as`, when given) and parse its verdict.
pub fn run_verify(nagios_bin: &Path, main_cfg: &Path, run_as: Option<&RunAs>) -> Result<NagiosCheck, ValidateError> {
    let mut cmd = Command::new(nagios_bin);
    cmd.arg("-v").arg(main_cfg);
    if let Some(u) = run_as {
        // Also drops the supplementary groups (std does so when it sets the uid).
        cmd.uid(u.uid).gid(u.gid).current_dir("/");
    }
    let out = cmd.output().map_err(|source| ValidateError::Spawn {
        bin: nagios_bin.to_path_buf(),
        source,
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let errors: Vec<String> = text
        .lines()
        .filter(|l| l.contains("Error:"))
        .map(|l| l.trim().to_string())
        .collect();
    let warnings: Vec<String> = text
        .lines()
        .filter(|l| l.contains("Warning:"))
        .map(|l| l.trim().to_string())
        .collect();
    let total_zero = text.lines().any(|l| l.trim() == "Total Errors:   0");
    Ok(NagiosCheck {
        ok: out.status.success() && total_zero && errors.is_empty(),
        errors,
        warnings,
        output: text,
        run_as: run_as.map(|u| u.user.clone()),
        missing_programs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn plugin_output_must_lose_its_quotes_before_notifications_see_it() {
        assert_eq!(macro_output_unsafe("illegal_macro_output_chars=`~$&|'\"<>\n"), None);
        let e = macro_output_unsafe("log_file=/x\n").unwrap();
        assert!(e.contains("lacks \"'`\\\"$\""), "{e}");
        assert!(
            macro_output_unsafe("illegal_macro_output_chars=`~$&|\"<>\n")
                .unwrap()
                .contains("lacks \"'\"")
        );
    }

    #[test]
    fn resource_files_and_main_config_values() {
        let macros = parse_resource("# comment\n$USER1$=/usr/lib/nagios/plugins\n $USER3$ = /opt/x \nlog_file=/x\n");
        assert_eq!(macros.len(), 2);
        assert_eq!(macros["$USER1$"], "/usr/lib/nagios/plugins");
        assert_eq!(macros["$USER3$"], "/opt/x");
        let main = "#nagios_user=x\nnagios_user=nagios\nresource_file=res.cfg\nresource_file=/nonexistent/r.cfg\n";
        assert_eq!(main_config_values(main, "nagios_user").collect::<Vec<_>>(), ["nagios"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("res.cfg"), "$USER2$=/site/plugins\n").unwrap();
        let m = main_config_macros(main, dir.path());
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("$USER2$".into(), "/site/plugins".into())]
        );
    }

    #[test]
    fn missing_programs_resolve_user_macros_and_ask_the_predicate() {
        let text = "define command {\n    command_name                    a\n    command_line                    $USER1$/check_tcp -H x\n}\n\n\
                    define command {\n    command_name                    b\n    command_line                    $USER1$/check_kdc -r 'R\\;S'\n}\n\n\
                    define command {\n    command_name                    c\n    command_line                    $USER9$/check_x\n}\n\n\
                    define host {\n    host_name                       command_line\n}\n";
        assert_eq!(
            command_lines(text),
            [
                ("a", "$USER1$/check_tcp -H x"),
                ("b", "$USER1$/check_kdc -r 'R\\;S'"),
                ("c", "$USER9$/check_x")
            ]
        );
        let output = Output {
            files: [(PathBuf::from("00-base.cfg"), Arc::from(text))].into(),
        };
        let macros = parse_resource(MINIMAL_RESOURCE);
        let missing = missing_programs(&output, &macros, |p| {
            p == Path::new("/usr/lib/nagios/plugins/check_tcp")
        });
        assert_eq!(
            missing,
            [
                MissingProgram {
                    command: "b".into(),
                    program: "/usr/lib/nagios/plugins/check_kdc".into()
                },
                MissingProgram {
                    command: "c".into(),
                    program: "$USER9$/check_x".into()
                }
            ]
        );
        assert!(
            missing[0]
                .to_string()
                .contains("command b runs /usr/lib/nagios/plugins/check_kdc")
        );
        assert!(is_executable_file(Path::new("/bin/sh")));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(!is_executable_file(&plain));
        assert!(!is_executable_file(Path::new("/bin")));
    }

    #[test]
    fn root_validates_as_nagios_and_others_as_themselves() {
        let user = validation_user(None).unwrap();
        if !is_root() {
            assert_eq!(user, None);
            return;
        }
        assert_eq!(validation_user(Some("root")).unwrap(), None);
        assert!(matches!(
            validation_user(Some("no-such-user-here")),
            Err(ValidateError::UnknownUser { .. })
        ));
        if let Some(u) = user {
            assert_eq!(u.user, DEFAULT_NAGIOS_USER);
            assert_ne!(u.uid, 0);
        }
    }
}
