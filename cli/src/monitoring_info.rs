//! Hosts that register their own monitoring (the PackageMonitorInfo spec,
//! docs/monitoring-info.md): the server side of the registration, and the profiles made
//! from the registrations for the engine.
//!
//! - [`receive`] is the forced command of a host's SSH key: it reads the client's stream
//!   of `/etc/monitoring-info/*` files and replaces that host's registration,
//!   `STATE/monitoring-info/registered/<host>.conf`, with a "generated, do not edit"
//!   header. The host is the key's (`--host` in `authorized_keys`), never the client's
//!   word, so a host can replace its own declarations only.
//! - [`synthesize`], before each pass, makes one profile per registered host in
//!   `STATE/monitoring-info/profiles/` with a `monitoring_info` component holding the
//!   registration and the site's overrides (`/etc/monitor-compile/monitoring-info/<host>/`)
//!   as text, which the `monitoring_info` translator reads like any other profile. Each
//!   password moves into a file of `STATE/monitoring-info/secrets/<host>/` (mode 0640,
//!   group `nagios`), and the profile names that file instead.
//!
//! A host that never registered has no profile, and so nothing is monitored for it.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use translator_monitoring_info::format::{FILE_MARKER, Line, lex};

/// The first line of a registration stream.
pub const STREAM_HEADER: &str = "monitoring-info-registration 1";
/// The largest registration accepted, in bytes.
pub const MAX_STREAM_BYTES: u64 = 1 << 20;
/// The most files one registration may hold.
pub const MAX_FILES: usize = 256;

/// The `[monitoring_info]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MonitoringInfoSettings {
    /// The site's overrides, one directory per host.
    #[serde(default = "default_overrides")]
    pub overrides: PathBuf,
    /// The contact groups notified for registered hosts' services.
    pub contact_groups: Vec<String>,
    /// The zone of registered hosts (with `[zones]`).
    #[serde(default)]
    pub zone: Option<String>,
    /// The group that may read the password files: the one Nagios runs its checks as.
    #[serde(default = "default_secrets_group")]
    pub secrets_group: String,
}

fn default_overrides() -> PathBuf {
    PathBuf::from("/etc/monitor-compile/monitoring-info")
}

fn default_secrets_group() -> String {
    "nagios".into()
}

/// `STATE/monitoring-info/registered`: one `<host>.conf` per registered host.
pub fn registered_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("monitoring-info").join("registered")
}

/// `STATE/monitoring-info/profiles`: the profiles made from the registrations.
pub fn profiles_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("monitoring-info").join("profiles")
}

/// `STATE/monitoring-info/secrets`: the password files.
pub fn secrets_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("monitoring-info").join("secrets")
}

/// Why a registration was refused. Nothing is changed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("{0:?} is not a host name (a fully qualified name of letters, digits, '-' and '.')")]
    BadHost(String),
    #[error("the registration is not a monitoring-info stream: {0}")]
    BadStream(String),
    #[error("the registration is larger than {MAX_STREAM_BYTES} bytes")]
    TooLarge,
    #[error("cannot store the registration in {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A fully qualified host name, lower case: the only names a registration is stored
/// under, and so a file name that cannot leave its directory.
pub fn check_host(host: &str) -> Result<String, ReceiveError> {
    let h = host.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if h.len() > 253 || !h.contains('.') || !h.split('.').all(label_ok) {
        return Err(ReceiveError::BadHost(host.to_string()));
    }
    Ok(h)
}

/// Names a client may send: like run-parts, no dot files, backups or package leftovers.
pub fn acceptable_file_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && name.len() <= 128
        && ![".dpkg-old", ".dpkg-new", ".dpkg-dist", ".bak", "~"]
            .iter()
            .any(|s| name.ends_with(s))
        && !name.contains(".ucf-")
}

/// One file of a registration stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    pub name: String,
    pub text: String,
}

/// Read a registration stream (see the client script, `monitor-compile-register`).
pub fn read_stream<R: Read>(input: R) -> Result<Vec<SentFile>, ReceiveError> {
    let mut r = std::io::BufReader::new(input.take(MAX_STREAM_BYTES + 1));
    // The reader stops after MAX_STREAM_BYTES + 1: having read them all is too much.
    let too_large = |r: &std::io::BufReader<std::io::Take<R>>| r.get_ref().limit() == 0;
    let mut line = String::new();
    let read_line = |r: &mut std::io::BufReader<std::io::Take<R>>, line: &mut String| -> Result<(), ReceiveError> {
        line.clear();
        let n = r
            .read_line(line)
            .map_err(|e| ReceiveError::BadStream(format!("cannot read: {e}")))?;
        if too_large(r) {
            return Err(ReceiveError::TooLarge);
        }
        if n == 0 {
            return Err(ReceiveError::BadStream("it ends before its 'end' line".into()));
        }
        Ok(())
    };
    read_line(&mut r, &mut line)?;
    if line.trim_end() != STREAM_HEADER {
        return Err(ReceiveError::BadStream(format!(
            "the first line is not {STREAM_HEADER:?} (is the client's monitor-compile-register up to date?)"
        )));
    }
    let mut files: Vec<SentFile> = Vec::new();
    loop {
        read_line(&mut r, &mut line)?;
        let l = line.trim_end_matches('\n');
        if l == "end" {
            return Ok(files);
        }
        let mut parts = l.split(' ');
        let (Some("file"), Some(name), Some(len), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ReceiveError::BadStream(format!(
                "expected 'file NAME LENGTH' or 'end', not {l:?}"
            )));
        };
        if !acceptable_file_name(name) {
            return Err(ReceiveError::BadStream(format!(
                "{name:?} is not an acceptable file name"
            )));
        }
        if files.iter().any(|f| f.name == name) {
            return Err(ReceiveError::BadStream(format!("file {name:?} sent twice")));
        }
        if files.len() >= MAX_FILES {
            return Err(ReceiveError::BadStream(format!("more than {MAX_FILES} files")));
        }
        let len: u64 = len
            .parse()
            .map_err(|_| ReceiveError::BadStream(format!("{len:?} is not a length")))?;
        if len > MAX_STREAM_BYTES {
            return Err(ReceiveError::TooLarge);
        }
        let mut bytes = vec![0u8; len as usize];
        r.read_exact(&mut bytes)
            .map_err(|_| ReceiveError::BadStream(format!("file {name:?} is shorter than its length")))?;
        let mut nl = [0u8; 1];
        r.read_exact(&mut nl)
            .map_err(|_| ReceiveError::BadStream(format!("no newline after file {name:?}")))?;
        if too_large(&r) {
            return Err(ReceiveError::TooLarge);
        }
        if nl[0] != b'\n' {
            return Err(ReceiveError::BadStream(format!("no newline after file {name:?}")));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| ReceiveError::BadStream(format!("file {name:?} is not UTF-8 text")))?;
        if text.contains('\0') {
            return Err(ReceiveError::BadStream(format!("file {name:?} holds a NUL byte")));
        }
        files.push(SentFile {
            name: name.to_string(),
            text,
        });
    }
}

/// The stored form of a registration: the header, then each file after its marker.
pub fn stored_text(host: &str, files: &[SentFile]) -> String {
    let mut out = format!(
        "# Generated by monitor-compile from the registration of {host}: do not edit.\n\
         # It is replaced whenever {host} registers again. To change what is monitored, change\n\
         # /etc/monitoring-info/ on {host}, or override it on this server in\n\
         # /etc/monitor-compile/monitoring-info/{host}/ (docs/monitoring-info.md).\n"
    );
    for f in files {
        out.push_str(FILE_MARKER);
        out.push_str(&f.name);
        out.push('\n');
        // A line of the file that looks like a marker would rename what follows it.
        for line in f.text.split_inclusive('\n') {
            if line.starts_with(FILE_MARKER.trim_end()) {
                out.push_str("# ");
            }
            out.push_str(line);
        }
        if !f.text.is_empty() && !f.text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// What a registration did, as told to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub host: String,
    pub files: usize,
    /// The declared services' names.
    pub services: Vec<String>,
    /// Why some declarations will not be monitored.
    pub problems: Vec<String>,
}

/// Replace `host`'s registration with the stream on `input`. An empty stream (no file)
/// removes it: the host declares nothing any more.
pub fn receive(state_dir: &Path, host: &str, input: impl Read) -> Result<Received, ReceiveError> {
    let host = check_host(host)?;
    let files = read_stream(input)?;
    let dir = registered_dir(state_dir);
    let store_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReceiveError::Store { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(store_err(&dir))?;
    let path = dir.join(format!("{host}.conf"));
    let text = stored_text(&host, &files);
    // What the translator will make of it, told to the client now.
    let (sections, line_errors) = translator_monitoring_info::format::parse(
        &path.display().to_string(),
        &format!("{host}:/etc/monitoring-info/"),
        &text,
    );
    let mut problems: Vec<String> = line_errors.iter().map(ToString::to_string).collect();
    let mut services = Vec::new();
    for s in &sections {
        // Registration moves passwords into files: judge the section as it will be read.
        let mut s = s.clone();
        for p in &mut s.pairs {
            if p.key == "password" {
                p.key = "password_file".into();
                p.value = "/registered".into();
            } else if p.key == "password_file" {
                p.value = translator_monitoring_info::declare::REFUSED_PASSWORD_FILE.into();
            }
        }
        match translator_monitoring_info::declare::declare(&s, &host) {
            Ok(_) => services.push(s.name.clone()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if files.is_empty() {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(store_err(&path)(e)),
        }
    } else {
        write_private(&path, text.as_bytes(), None).map_err(store_err(&path))?;
    }
    Ok(Received {
        host,
        files: files.len(),
        services,
        problems,
    })
}

/// Write `bytes` to `path` atomically (a temporary file, fsync, rename, fsync of the
/// directory), mode 0640, group `group` when given and it exists. Unchanged content is
/// left alone.
fn write_private(path: &Path, bytes: &[u8], group: Option<&nix::unistd::Group>) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
        if let Some(g) = group {
            // Not root: the file keeps the writer's group, and Nagios may not read it
            // (its check then says so).
            if let Err(e) = nix::unistd::fchown(&f, None, Some(g.gid)) {
                tracing::warn!(file = %path.display(), group = %g.name, error = %e, "cannot give the file to the group");
            }
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// What [`synthesize`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synthesized {
    /// The registered hosts, each with a profile.
    pub hosts: Vec<String>,
    /// Registrations or overrides that could not be read: their hosts keep their last
    /// profile.
    pub problems: Vec<String>,
}

/// The overrides of `host`: every acceptable file of `DIR/<host>/`, by name, each after
/// its marker; `None` when there is no such directory.
fn read_overrides(dir: &Path, host: &str) -> Result<Option<String>, String> {
    let hdir = dir.join(host);
    let entries = match std::fs::read_dir(&hdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot be listed: {e}", hdir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| acceptable_file_name(n))
        .collect();
    names.sort();
    let mut out = String::new();
    for n in names {
        let p = hdir.join(&n);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: cannot be read: {e}", p.display()))?;
        out.push_str(FILE_MARKER);
        out.push_str(&n);
        out.push('\n');
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(Some(out))
}

/// Move each `password = …` of `text` into a file of `secrets` (named by the section),
/// leaving `password_file = <that file>` on its line. Returns the new text and the files.
/// With `from_host` (a registration, not the site's overrides), a `password_file` the
/// host sent is refused: it would make the server read a file of the host's choosing.
/// A section declared twice keeps its first password (the first section stands).
fn split_passwords(text: &str, secrets: &Path, from_host: bool) -> (String, BTreeMap<PathBuf, String>) {
    use translator_monitoring_info::declare::REFUSED_PASSWORD_FILE;
    let mut out = String::with_capacity(text.len());
    let mut files = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.split_inclusive('\n') {
        match lex(line.trim_end_matches(['\n', '\r'])) {
            Line::Section(name) => section = Some(name.to_string()),
            Line::File(_) => section = None,
            Line::Pair(k, _) if from_host && k.eq_ignore_ascii_case("password_file") => {
                out.push_str(&format!("password_file = {REFUSED_PASSWORD_FILE}\n"));
                continue;
            }
            Line::Pair(k, v) if k.eq_ignore_ascii_case("password") => {
                if let Some(s) = &section {
                    let file = secrets.join(hex(s));
                    out.push_str(&format!("password_file = {}\n", file.display()));
                    files.entry(file).or_insert_with(|| v.to_string());
                    continue;
                }
            }
            _ => {}
        }
        out.push_str(line);
    }
    (out, files)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The profile of a registered host.
fn profile_xml(
    host: &str,
    groups: &[String],
    zone: Option<&str>,
    registration: (&str, &str),
    overrides: Option<(&str, &str)>,
) -> String {
    use quick_xml::escape::escape;
    let (node, domain) = host.split_once('.').unwrap_or((host, ""));
    let mut component = format!(
        "<nagios_groups>{}</nagios_groups><registration_origin>{}</registration_origin><registration>{}</registration>",
        escape(groups.join(" ").as_str()),
        escape(registration.0),
        escape_text(registration.1)
    );
    if let Some((origin, text)) = overrides {
        component.push_str(&format!(
            "<overrides_origin>{}</overrides_origin><overrides>{}</overrides>",
            escape(origin),
            escape_text(text)
        ));
    }
    let zone = zone.map(|z| format!("<zone>{}</zone>", escape(z))).unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- Generated by monitor-compile from the registration of {host}: do not edit. -->\n\
         <profile xmlns=\"http://www.lcfg.org/namespace/profile-1.0\" xmlns:cfg=\"http://www.lcfg.org/namespace/profile-1.0\">\
         <lcfg><components>\
         <profile><node>{}</node><domain>{}</domain><components>monitoring_info nagios_client</components></profile>\
         <monitoring_info>{component}</monitoring_info>\
         <nagios_client><components>monitoring_info</components>{zone}</nagios_client>\
         </components></lcfg></profile>\n",
        escape(node),
        escape(domain),
    )
}

/// Element text that keeps every character: `&`, `<`, `>` escaped, and the characters an
/// XML reader would change (carriage returns, tabs) as character references.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Make the profiles of every registered host (and remove those of hosts no longer
/// registered). A registration or overrides directory that cannot be read leaves that
/// host's last profile as it was; a registrations directory that cannot be listed leaves
/// every profile as it was.
pub fn synthesize(state_dir: &Path, settings: &MonitoringInfoSettings) -> Result<Synthesized, String> {
    let reg_dir = registered_dir(state_dir);
    let out_dir = profiles_dir(state_dir);
    let secrets_root = secrets_dir(state_dir);
    for d in [&reg_dir, &out_dir, &secrets_root] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: cannot be made: {e}", d.display()))?;
    }
    // The password files are named in objects by absolute path.
    let secrets_root = std::fs::canonicalize(&secrets_root).map_err(|e| format!("{}: {e}", secrets_root.display()))?;
    std::fs::set_permissions(&secrets_root, std::fs::Permissions::from_mode(0o750))
        .map_err(|e| format!("{}: {e}", secrets_root.display()))?;
    // Looked up once: each lookup reads the group database.
    let group = nix::unistd::Group::from_name(&settings.secrets_group).ok().flatten();
    if let Some(g) = &group {
        let _ = nix::unistd::chown(&secrets_root, None, Some(g.gid));
    }
    let entries = std::fs::read_dir(&reg_dir).map_err(|e| format!("{}: cannot be listed: {e}", reg_dir.display()))?;
    let mut hosts: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".conf"))
                .map(str::to_string)
        })
        .filter(|h| check_host(h).is_ok_and(|c| &c == h))
        .collect();
    hosts.sort();
    let mut report = Synthesized::default();
    for host in &hosts {
        let reg_path = reg_dir.join(format!("{host}.conf"));
        let registration = match std::fs::read_to_string(&reg_path) {
            Ok(t) => t,
            Err(e) => {
                report.problems.push(format!(
                    "{}: cannot be read: {e}; {host} keeps its last profile",
                    reg_path.display()
                ));
                report.hosts.push(host.clone());
                continue;
            }
        };
        let overrides = match read_overrides(&settings.overrides, host) {
            Ok(o) => o,
            Err(e) => {
                report.problems.push(format!("{e}; {host} keeps its last profile"));
                report.hosts.push(host.clone());
                continue;
            }
        };
        let secrets = secrets_root.join(host);
        let (registration, mut files) = split_passwords(&registration, &secrets, true);
        let overrides = overrides.map(|o| {
            let (text, f) = split_passwords(&o, &secrets.join("override"), false);
            files.extend(f);
            text
        });
        let mut failed = false;
        if !files.is_empty() {
            for d in [&secrets, &secrets.join("override")] {
                if let Err(e) = std::fs::create_dir_all(d)
                    .and_then(|()| std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o750)))
                {
                    report.problems.push(format!("{}: {e}", d.display()));
                    failed = true;
                }
                if let Some(g) = &group {
                    let _ = nix::unistd::chown(d.as_path(), None, Some(g.gid));
                }
            }
        }
        for (file, password) in &files {
            if let Err(e) = write_private(file, format!("{password}\n").as_bytes(), group.as_ref()) {
                report
                    .problems
                    .push(format!("{}: cannot be written: {e}", file.display()));
                failed = true;
            }
        }
        if failed {
            report.problems.push(format!("{host} keeps its last profile"));
            report.hosts.push(host.clone());
            continue;
        }
        let override_origin = settings.overrides.join(host).display().to_string() + "/";
        let xml = profile_xml(
            host,
            &settings.contact_groups,
            settings.zone.as_deref(),
            (&reg_path.display().to_string(), &registration),
            overrides.as_deref().map(|t| (override_origin.as_str(), t)),
        );
        let path = out_dir.join(format!("{host}.xml"));
        if let Err(e) = write_private(&path, xml.as_bytes(), None) {
            report
                .problems
                .push(format!("{}: cannot be written: {e}", path.display()));
        }
        report.hosts.push(host.clone());
    }
    // Profiles of hosts that no longer have a registration.
    if let Ok(entries) = std::fs::read_dir(&out_dir) {
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(h) = name.strip_suffix(".xml")
                && !hosts.iter().any(|k| k == h)
            {
                let _ = std::fs::remove_file(e.path());
                let _ = std::fs::remove_dir_all(secrets_root.join(h));
            }
        }
    }
    Ok(report)
}

/// Make the registered hosts' profiles, and list them. No profile is no error: no host
/// has registered (yet). What could not be read is returned as problems for the report.
pub fn registered_profiles(
    state_dir: &Path,
    settings: &MonitoringInfoSettings,
) -> Result<(monitor_engine::Listing, Vec<monitor_engine::Problem>), String> {
    let made = synthesize(state_dir, settings)?;
    let dir = profiles_dir(state_dir);
    let listing =
        monitor_engine::list_profiles(&dir, false).map_err(|e| format!("{}: cannot be listed: {e}", dir.display()))?;
    let problems = made
        .problems
        .into_iter()
        .map(|message| monitor_engine::Problem {
            component: Some(translator_monitoring_info::COMPONENT.into()),
            message,
            ..monitor_engine::Problem::default()
        })
        .collect();
    Ok((listing, problems))
}

/// The `authorized_keys` line that lets `host`'s key register for `host` alone.
pub fn authorized_keys_line(program: &Path, state_dir: &Path, host: &str, public_key: &str) -> Result<String, String> {
    let host = check_host(host).map_err(|e| e.to_string())?;
    let key = public_key.trim();
    let mut words = key.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err("the public key is not 'TYPE BASE64 [COMMENT]'".into());
    };
    if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") && !kind.starts_with("sk-") {
        return Err(format!("{kind:?} is not an SSH public key type"));
    }
    if !blob
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err("the key's base64 holds other characters".into());
    }
    let quoted = |p: &Path| {
        let s = p.display().to_string();
        if s.contains(['"', '\\', ' ', '\'', '$', '`']) {
            Err(format!(
                "{s:?}: a path in a forced command must have no quotes, spaces or '$'"
            ))
        } else {
            Ok(s)
        }
    };
    Ok(format!(
        "restrict,command=\"{} monitoring-info receive --state-dir {} --host {host}\" {kind} {blob} monitoring-info:{host}",
        quoted(program)?,
        quoted(state_dir)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(files: &[(&str, &str)]) -> Vec<u8> {
        let mut s = format!("{STREAM_HEADER}\n").into_bytes();
        for (n, t) in files {
            s.extend(format!("file {n} {}\n", t.len()).bytes());
            s.extend(t.bytes());
            s.push(b'\n');
        }
        s.extend(b"end\n");
        s
    }

    #[test]
    fn a_stream_is_read_exactly() {
        let files = read_stream(&stream(&[("apache2", "[a]\ntype = http\nend\n"), ("x", "no newline")])[..]).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].text, "[a]\ntype = http\nend\n");
        assert_eq!(files[1].text, "no newline");
        for bad in [
            &b"hello\n"[..],
            b"monitoring-info-registration 1\nfile ../etc 1\nx\nend\n",
            b"monitoring-info-registration 1\nfile a 10\nshort\n",
            b"monitoring-info-registration 1\nfile a 1\nx\n",
            b"monitoring-info-registration 1\nfile .hidden 1\nx\nend\n",
        ] {
            assert!(read_stream(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn host_names_cannot_leave_the_directory() {
        for bad in ["../x.org", "a/b.org", "nodot", "-a.org", "a..org", "a.org/", ""] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
        assert_eq!(check_host("Web3.Example.ORG").unwrap(), "web3.example.org");
    }

    #[test]
    fn passwords_move_into_files_and_markers_cannot_be_forged() {
        let (text, files) = split_passwords("[imap]\ntype = imap\nPassword = p$w'd\n", Path::new("/s/h"), true);
        assert_eq!(text, "[imap]\ntype = imap\npassword_file = /s/h/696d6170\n");
        assert_eq!(files[Path::new("/s/h/696d6170")], "p$w'd");
        // A host cannot point the server at a file (another host's password).
        let (text, files) = split_passwords(
            "[x]\npassword_file = /s/other/78\n[x]\npassword = 2\n[x]\npassword = 3\n",
            Path::new("/s/h"),
            true,
        );
        assert_eq!(
            text,
            "[x]\npassword_file = refused:sent-by-the-host\n[x]\npassword_file = /s/h/78\n[x]\npassword_file = /s/h/78\n"
        );
        assert_eq!(files[Path::new("/s/h/78")], "2", "the first section's password");
        let (text, _) = split_passwords("[x]\npassword_file = /etc/site/pw\n", Path::new("/s/h"), false);
        assert_eq!(
            text, "[x]\npassword_file = /etc/site/pw\n",
            "the site's overrides may name files"
        );
        let stored = stored_text(
            "h.example.org",
            &[SentFile {
                name: "a".into(),
                text: "#@file b\n[x]\n".into(),
            }],
        );
        assert!(stored.contains("#@file a\n# #@file b\n[x]\n"), "{stored}");
        assert!(stored.starts_with("# Generated by monitor-compile"), "{stored}");
    }

    #[test]
    fn the_authorized_keys_line_binds_the_host() {
        let l = authorized_keys_line(
            Path::new("/usr/bin/monitor-compile"),
            Path::new("/var/lib/monitor-compile"),
            "web3.example.org",
            "ssh-ed25519 AAAAC3Nza== root@web3",
        )
        .unwrap();
        assert_eq!(
            l,
            "restrict,command=\"/usr/bin/monitor-compile monitoring-info receive --state-dir /var/lib/monitor-compile --host web3.example.org\" ssh-ed25519 AAAAC3Nza== monitoring-info:web3.example.org"
        );
        assert!(authorized_keys_line(Path::new("/usr/bin/x"), Path::new("/v"), "a\".org", "ssh-ed25519 AAAA").is_err());
        assert!(authorized_keys_line(Path::new("/usr/bin/x"), Path::new("/v"), "a.org", "ssh-ed25519 AA\"AA").is_err());
    }
}
