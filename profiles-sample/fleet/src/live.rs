//! The change-to-live scenario: a real `monitor-compile` daemon and a real Nagios over a
//! generated fleet. One profile changes (a web server gains a virtual host); the time is
//! taken from the write of the profile to the moment Nagios's `status.dat` shows the new
//! service, and split into the daemon's phases (from its `status.json`) and the rest,
//! which is Nagios restarting and writing its status file.
//!
//! Nagios runs with no active checks (`execute_*_checks=0`, so that 10,000 hosts are not
//! pinged) and `status_update_interval=1` (its finest); the daemon with a 100 ms
//! debounce. The daemon binary is the `monitor-compile` next to this program
//! (`cargo build --release --bin monitor-compile` first).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use monitor_engine::Engine;
use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_runtime::guard::Inventory;
use serde::Serialize;

use crate::generate::{Spec, profile};

/// The debounce the daemon runs with here.
pub const DEBOUNCE_MS: u64 = 100;

/// The figures of one change to live.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRow {
    pub machines: usize,
    /// From the profile write to the new service in `status.dat`.
    pub total_ms: f64,
    /// The daemon's debounce (configured).
    pub debounce_ms: f64,
    /// The daemon's phases, from its status.json.
    pub scan_ms: f64,
    pub compile_ms: f64,
    pub write_ms: f64,
    pub validate_ms: f64,
    pub reload_ms: f64,
    /// Everything after the daemon's reload: Nagios restarting, and writing status.dat.
    pub nagios_restart_ms: f64,
    /// The first deploy of the whole fleet (cold compile + nagios -v), for reference.
    pub first_deploy_ms: f64,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The services that profile generation `g` of machine `i` has, by a one-machine pass.
fn services_of(spec: &Spec, i: usize, g: u64, users: &Path) -> std::io::Result<Inventory> {
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("m.xml");
    std::fs::write(&f, profile(spec, i, g))?;
    let mut e = Engine::new(
        crate::translators(),
        Box::new(TomlUsers::new(users)),
        BaseConfig::default(),
    );
    let r = e.run_pass(&[f]).map_err(io)?;
    Ok(Inventory::of_output(&r.output))
}

struct Running(Vec<Child>, PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(self.1.join("var/nagios.lock")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> std::io::Result<Instant> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return Ok(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(io(format!("gave up waiting for {what}")))
}

/// Run the scenario on the fleet of `spec` in `fleet_dir` (generated and settled).
pub fn run(spec: &Spec, fleet_dir: &Path, work: &Path, users: &Path, nagios: &Path) -> std::io::Result<LiveRow> {
    let daemon_bin = std::env::current_exe()?
        .parent()
        .map(|d| d.join("monitor-compile"))
        .filter(|p| p.exists())
        .ok_or_else(|| io("no monitor-compile beside this program: cargo build --release --bin monitor-compile"))?;
    // A web server whose next generation adds a virtual host.
    let (machine, generation, new_service) = (0..spec.machines.min(200))
        .find_map(|i| {
            let before = services_of(spec, i, 0, users).ok()?;
            let after = services_of(spec, i, 1, users).ok()?;
            let added = after.services.difference(&before.services).next()?.clone();
            Some((i, 1, added))
        })
        .ok_or_else(|| io("no machine of the fleet gains a service"))?;
    let site = work.join(format!("live-{}", spec.machines));
    let _ = std::fs::remove_dir_all(&site);
    for sub in ["var/checkresults", "state"] {
        std::fs::create_dir_all(site.join(sub))?;
    }
    let s = site.canonicalize()?;
    let v = s.join("var");
    let root = nix::unistd::Uid::effective().is_root();
    std::fs::write(
        s.join("nagios.cfg"),
        format!(
            "cfg_dir={s}/generated\nresource_file={s}/resource.cfg\ncheck_result_path={v}/checkresults\ntemp_path={v}\n\
             lock_file={v}/nagios.lock\nlog_file={v}/nagios.log\nstatus_file={v}/status.dat\n\
             state_retention_file={v}/retention.dat\nobject_cache_file={v}/objects.cache\n\
             precached_object_file={v}/objects.precache\ncommand_file={v}/nagios.cmd\ncheck_external_commands=1\n\
             command_check_interval=-1\nstatus_update_interval=1\nexecute_service_checks=0\nexecute_host_checks=0\n\
             enable_notifications=0\n{user}illegal_object_name_chars=`~!$%^&*|'\"<>?,()=\n\
             illegal_macro_output_chars=`~$&|'\"<>\n",
            s = s.display(),
            v = v.display(),
            user = if root {
                "nagios_user=root\nnagios_group=root\n"
            } else {
                ""
            },
        ),
    )?;
    std::fs::write(s.join("resource.cfg"), "$USER1$=/usr/lib/nagios/plugins\n")?;
    let users_abs = users.canonicalize()?;
    let fleet_abs = fleet_dir.canonicalize()?;
    std::fs::write(
        s.join("monitor-compile.toml"),
        format!(
            "profiles = [\"{fleet}\"]\ntranslators = [\"{s}/no-translators\"]\nusers = \"{u}\"\noutput = \"{s}/generated\"\n\
             state_dir = \"{s}/state\"\nnagios_config = \"{s}/nagios.cfg\"\nnagios_bin = \"{n}\"\ncommand_file = \"{v}/nagios.cmd\"\n\
             debounce_ms = {DEBOUNCE_MS}\nrescan_seconds = 3600\n",
            fleet = fleet_abs.display(),
            s = s.display(),
            u = users_abs.display(),
            n = nagios.display(),
            v = v.display(),
        ),
    )?;
    let log = std::fs::File::create(s.join("daemon.log"))?;
    let daemon = Command::new(&daemon_bin)
        .arg("--config")
        .arg(s.join("monitor-compile.toml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut running = Running(vec![daemon], s.clone());
    let status = || -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(s.join("state/status.json")).ok()?).ok()
    };
    let t0 = Instant::now();
    wait_for("the first deploy", Duration::from_secs(600), || {
        status().is_some_and(|j| j["deploy"]["result"] == "deployed")
    })?;
    let first_deploy = t0.elapsed();
    let st = Command::new(nagios).arg("-d").arg(s.join("nagios.cfg")).status()?;
    if !st.success() {
        return Err(io("nagios -d failed"));
    }
    let status_dat = v.join("status.dat");
    wait_for("Nagios to run", Duration::from_secs(300), || {
        monitor_runtime::deploy::nagios_program_start(&status_dat).is_some()
    })?;
    // Let Nagios settle (its first status file, the daemon's first results).
    std::thread::sleep(Duration::from_secs(3));

    let (host, desc) = new_service;
    let needle = format!("host_name={host}\n\tservice_description={desc}\n");
    let mut seen_mtime: Option<SystemTime> = None;
    let mut shows = || {
        let m = std::fs::metadata(&status_dat).and_then(|m| m.modified()).ok();
        if m == seen_mtime {
            return false;
        }
        seen_mtime = m;
        std::fs::read(&status_dat).is_ok_and(|b| memchr::memmem::find(&b, needle.as_bytes()).is_some())
    };
    if shows() {
        return Err(io("the new service is there before the change"));
    }
    let before = status().and_then(|j| j["started_at"].as_u64()).unwrap_or(0);
    let t0 = Instant::now();
    let path = fleet_dir.join(crate::generate::file_name(machine));
    let tmp = path.with_extension("xml.tmp");
    std::fs::write(&tmp, profile(spec, machine, generation))?;
    std::fs::rename(&tmp, &path)?;
    let t_end = wait_for("the new service in status.dat", Duration::from_secs(600), &mut shows)?;
    let total = (t_end - t0).as_secs_f64() * 1000.0;
    let j = status().ok_or_else(|| io("no status.json"))?;
    if j["started_at"].as_u64().unwrap_or(0) < before || j["deploy"]["result"] != "deployed" {
        return Err(io(format!(
            "the last pass is not the deploy of the change: {}",
            j["deploy"]
        )));
    }
    let p = &j["phases"];
    let f = |k: &str| p[k].as_f64().unwrap_or(0.0);
    let daemon =
        DEBOUNCE_MS as f64 + f("scan_ms") + f("compile_ms") + f("write_ms") + f("validate_ms") + f("reload_ms");
    // Restore the fleet's file, for the next run.
    std::fs::write(&path, profile(spec, machine, 0))?;
    running.0.iter_mut().for_each(|c| {
        let _ = Command::new("kill").arg(c.id().to_string()).status();
    });
    Ok(LiveRow {
        machines: spec.machines,
        total_ms: total,
        debounce_ms: DEBOUNCE_MS as f64,
        scan_ms: f("scan_ms"),
        compile_ms: f("compile_ms"),
        write_ms: f("write_ms"),
        validate_ms: f("validate_ms"),
        reload_ms: f("reload_ms"),
        nagios_restart_ms: total - daemon,
        first_deploy_ms: first_deploy.as_secs_f64() * 1000.0,
    })
}

/// The human table of change-to-live runs.
pub fn table(rows: &[LiveRow]) -> String {
    let mut s = String::from(
        "| machines | change to live | debounce | scan | compile | write | nagios -v | reload | Nagios restart + status.dat | first deploy |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.0} ms | {:.0} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms | {:.1} ms | {:.0} ms | {:.0} ms |\n",
            r.machines,
            r.total_ms,
            r.debounce_ms,
            r.scan_ms,
            r.compile_ms,
            r.write_ms,
            r.validate_ms,
            r.reload_ms,
            r.nagios_restart_ms,
            r.first_deploy_ms
        ));
    }
    s
}
