//! The benchmark: for each fleet size, the cold compile, the no-change pass, and the
//! one-change and hundred-change passes, each timed from the start of the pass to the
//! assembled output written. Wall time, CPU time (user + system, all threads) and peak
//! RSS are measured in this process: the peak is reset before every scenario through
//! `/proc/self/clear_refs` and read back from `VmHWM`. The references on the same data are
//! the time to read and blake3-hash every profile byte (the floor, with the files in the
//! page cache), and the time `nagios4 -v` takes on the produced output.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_engine::{Assembly, Engine, find_profiles};
use monitor_runtime::writer::OutputWriter;
use rayon::prelude::*;
use serde::Serialize;

use crate::generate::{Spec, generate, touch};

/// One measured scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub peak_rss_mb: f64,
    pub parsed: usize,
    pub translated: usize,
    pub files_written: usize,
    /// How the pass assembled its output (full, incremental or reused).
    pub assembly: Assembly,
    /// The pass's own split of its time (`PassReport::phases`), and the writer's.
    #[serde(default)]
    pub phases: Vec<monitor_engine::report::PhaseTime>,
}

/// The figures for one fleet size.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub machines: usize,
    pub bytes: u64,
    pub services: usize,
    pub floor_ms: f64,
    pub cold: Measure,
    pub no_change: Measure,
    pub one_change: Measure,
    pub hundred_change: Measure,
    pub nagios_verify_ms: f64,
    pub nagios_ok: bool,
    /// Every translator as a plugin library in worker processes: the cold pass.
    pub plugins_cold: Option<Measure>,
    /// The same: one machine changed.
    pub plugins_one_change: Option<Measure>,
    /// The Icinga 2 backend on the same fleet, in a master and two satellite zones.
    pub icinga2: Option<IcingaRow>,
    /// The same fleet fetched over HTTP from a local nginx.
    pub http: Option<HttpRow>,
}

/// The HTTP column: the fleet served by a real nginx on 127.0.0.1 (gzip on), fetched
/// into a mirror by the daemon's fetcher, then compiled from the mirror.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRow {
    /// The first sync: every profile fetched (200), written to the mirror.
    pub cold_fetch_ms: f64,
    pub fetched: usize,
    /// A sync where nothing changed: every profile a 304.
    pub all_304_ms: f64,
    pub not_modified: usize,
    /// The cold compile from the mirror (compare the directory's cold column).
    pub compile_ms: f64,
    pub connections: usize,
}

/// The HTTP column (`None` without nginx).
fn http_row(dir: &Path, users: &Path, work: &Path, machines: usize) -> std::io::Result<Option<HttpRow>> {
    use monitor_runtime::http_source::{Fetcher, HttpSourceConfig, MachineList};
    let nginx = Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        eprintln!("bench: no {}: no HTTP column", nginx.display());
        return Ok(None);
    }
    let site = work.join(format!("http-{machines}"));
    let _ = std::fs::remove_dir_all(&site);
    std::fs::create_dir_all(&site)?;
    // nginx takes relative paths from its prefix: give it absolute ones.
    let site = std::fs::canonicalize(&site)?;
    let root = std::fs::canonicalize(dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = format!(
        "daemon off;\nuser root;\nworker_processes 2;\npid {s}/nginx.pid;\nerror_log {s}/error.log;\n\
         events {{ worker_connections 256; }}\nhttp {{ access_log off;\n\
         server {{ listen 127.0.0.1:{port}; root {root}; gzip on; gzip_types application/xml text/xml; gzip_min_length 1; }} }}\n",
        s = site.display(),
        root = root.display()
    );
    std::fs::write(site.join("nginx.conf"), conf)?;
    let mut child = std::process::Command::new(nginx)
        .arg("-c")
        .arg(site.join("nginx.conf"))
        .arg("-p")
        .arg(&site)
        .arg("-e")
        .arg(site.join("error.log"))
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("bench: nginx did not start: no HTTP column");
        return Ok(None);
    }
    let list: String = (0..machines).map(|i| format!("m{i:06}.example.org\n")).collect();
    std::fs::write(site.join("machines.txt"), list)?;
    let mut cfg = HttpSourceConfig::new(
        format!("http://127.0.0.1:{port}"),
        MachineList::File(site.join("machines.txt")),
        site.join("mirror"),
    );
    cfg.url_template = "{base}/{node}.xml".into();
    let connections = cfg.connections;
    let result = (|| {
        let mut fetcher = Fetcher::new(cfg).map_err(std::io::Error::other)?;
        let cold = fetcher.sync(None);
        let again = fetcher.sync(None);
        if !cold.failed.is_empty() || !again.failed.is_empty() {
            eprintln!("bench: http: {} and {} failures", cold.failed.len(), again.failed.len());
        }
        let files = find_profiles(fetcher.dir())?;
        let mut engine = Engine::new(
            crate::translators(),
            Box::new(TomlUsers::new(users)),
            BaseConfig::default(),
        );
        let t = Instant::now();
        engine.run_pass(&files).map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>(HttpRow {
            cold_fetch_ms: cold.millis,
            fetched: cold.fetched,
            all_304_ms: again.millis,
            not_modified: again.not_modified,
            compile_ms: t.elapsed().as_secs_f64() * 1000.0,
            connections,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result.map(Some)
}

/// The Icinga 2 column: our share (mapping the assembled objects, writing the tree) and
/// icinga2's (`icinga2 daemon -C` on the whole tree as the master, and on each satellite's
/// slice, the two satellites in parallel).
#[derive(Debug, Clone, Serialize)]
pub struct IcingaRow {
    /// Mapping the assembled Nagios objects to the Icinga 2 tree (`monitor_icinga2::write`).
    pub map_ms: f64,
    pub map_peak_rss_mb: f64,
    /// Writing the tree.
    pub write_ms: f64,
    pub files: usize,
    /// `icinga2 daemon -C` on the whole tree (the master's node).
    pub master_ms: f64,
    pub master_ok: bool,
    /// Both satellites' slices, validated in parallel: the wall time of the two.
    pub zones_ms: f64,
    pub zones_ok: bool,
    /// The largest icinga2 process's peak RSS (the children of this process).
    pub icinga2_peak_rss_mb: f64,
}

/// The zone layout of the benchmark: names ending in 0–2 in satellite `sat-a`, 3–5 in
/// `sat-b`, the rest in the master.
fn bench_zones() -> (monitor_engine::Zones, monitor_icinga2::Tree) {
    use monitor_engine::{ZoneName, ZoneRule};
    use monitor_icinga2::{Endpoint, Tree, ZoneDef};
    let sats = ["sat-a", "sat-b"];
    let rules = (0..6)
        .map(|d| ZoneRule {
            name: Some(format!("*{d}.example.org")),
            zone: sats[d / 3].to_string(),
            ..ZoneRule::default()
        })
        .collect();
    let names = sats
        .iter()
        .map(|z| ZoneName {
            name: z.to_string(),
            parent: "master".into(),
        })
        .collect();
    // Invariant: the names and rules above are valid.
    let zones = monitor_engine::Zones::new("master", names, rules).expect("bench zones");
    let endpoint = |n: &str| Endpoint {
        name: format!("{n}.example.org"),
        host: None,
        port: None,
    };
    let mut defs = vec![ZoneDef {
        name: "master".into(),
        parent: None,
        endpoints: vec![endpoint("icinga-master")],
    }];
    defs.extend(sats.iter().map(|z| ZoneDef {
        name: z.to_string(),
        parent: Some("master".into()),
        endpoints: vec![endpoint(z)],
    }));
    (
        zones,
        Tree {
            zones: defs,
            global: "global-templates".into(),
        },
    )
}

fn children_peak_rss_mb() -> f64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss() as f64 / 1024.0)
        .unwrap_or(0.0)
}

/// The Icinga 2 column (`None` without an icinga2 binary).
fn icinga_row(files: &[PathBuf], users: &Path, work: &Path, machines: usize) -> std::io::Result<Option<IcingaRow>> {
    let bin = PathBuf::from(monitor_runtime::icinga2::DEFAULT_ICINGA2);
    if !bin.exists() {
        eprintln!("bench: no {}: no Icinga 2 column", bin.display());
        return Ok(None);
    }
    let (zones, tree) = bench_zones();
    let mut engine = Engine::new(
        crate::translators(),
        Box::new(TomlUsers::new(users)),
        BaseConfig::default(),
    );
    engine.set_zones(zones);
    let nagios = engine.run_pass(files).map_err(std::io::Error::other)?.output;
    drop(engine);
    reset_peak_rss();
    let t = Instant::now();
    let written = monitor_icinga2::write(&nagios, &tree).map_err(std::io::Error::other)?;
    let map_ms = t.elapsed().as_secs_f64() * 1000.0;
    let map_peak_rss_mb = peak_rss_mb();
    if !written.errors.is_empty() {
        eprintln!(
            "bench: icinga2 writer: {} errors, first {:?}",
            written.errors.len(),
            written.errors[0]
        );
    }
    let out = work.join(format!("out-icinga2-{machines}"));
    let _ = std::fs::remove_dir_all(&out);
    let t = Instant::now();
    let stats = monitor_runtime::writer::write_output(&out, &written.output)?;
    let write_ms = t.elapsed().as_secs_f64() * 1000.0;
    let nodes = written.nodes;
    let validator = monitor_runtime::icinga2::validate::Validator::new(work.join("verify-icinga2"));
    let (master, satellites) = nodes.split_at(1);
    let t = Instant::now();
    let m = validator.validate(&out, master).map_err(std::io::Error::other)?;
    let master_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let z = validator.validate(&out, satellites).map_err(std::io::Error::other)?;
    let zones_ms = t.elapsed().as_secs_f64() * 1000.0;
    for n in m.nodes.iter().chain(&z.nodes).filter(|n| !n.ok) {
        eprintln!("bench: icinga2 on {}: {:?}", n.endpoint, n.errors.first());
    }
    Ok(Some(IcingaRow {
        map_ms,
        map_peak_rss_mb,
        write_ms,
        files: stats.written,
        master_ms,
        master_ok: m.ok,
        zones_ms,
        zones_ok: z.ok,
        icinga2_peak_rss_mb: children_peak_rss_mb(),
    }))
}

/// The workspace's four translator plugin libraries, built in release mode (with the
/// cargo that runs the benchmark), copied into `dir` as `<component>.so`.
fn plugin_libraries(dir: &Path) -> std::io::Result<()> {
    let names = ["kerberos", "jabberd", "cosign", "apacheconf"];
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--release", "--quiet"]);
    for n in names {
        cmd.args(["-p", &format!("translator-{n}-plugin")]);
    }
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    if !cmd.status()?.success() {
        return Err(std::io::Error::other("building the plugin libraries failed"));
    }
    let target = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| std::io::Error::other("no target directory"))?;
    std::fs::create_dir_all(dir)?;
    for n in names {
        std::fs::copy(
            target.join(format!("libtranslator_{n}_plugin.so")),
            dir.join(format!("{n}.so")),
        )?;
    }
    Ok(())
}

fn cpu_time() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    match u {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak RSS in MB (MiB, as every figure of the benchmark).
pub(crate) fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// The process's RSS now, in MB (MiB).
pub(crate) fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// What one measured pass reports: parsed, translated, files written, how it assembled,
/// and its phases.
type PassFigures = (usize, usize, usize, Assembly, Vec<monitor_engine::report::PhaseTime>);

fn measure(f: impl FnOnce() -> PassFigures) -> Measure {
    reset_peak_rss();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let (parsed, translated, files_written, assembly, phases) = f();
    let wall = t0.elapsed();
    let cpu = cpu_time() - cpu0;
    Measure {
        wall_ms: wall.as_secs_f64() * 1000.0,
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        peak_rss_mb: peak_rss_mb(),
        parsed,
        translated,
        files_written,
        assembly,
        phases,
    }
}

/// Read and hash every file, in parallel, each thread reusing one buffer (as the engine
/// does): the floor.
pub fn floor(files: &[PathBuf]) -> (Duration, u64) {
    use std::io::Read;
    let t0 = Instant::now();
    let bytes: u64 = files
        .par_iter()
        .map_init(Vec::new, |buf, f| {
            buf.clear();
            let read = std::fs::File::open(f).and_then(|mut file| file.read_to_end(buf));
            let _ = blake3::hash(buf);
            read.unwrap_or(0) as u64
        })
        .sum();
    (t0.elapsed(), bytes)
}

/// Generate the fleet of `spec` under `work` (once), reset the files earlier runs
/// touched, and let them settle. Returns its directory and files.
pub fn prepare(spec: &Spec, work: &Path) -> std::io::Result<(PathBuf, Vec<PathBuf>)> {
    let (machines, avg_kb) = (spec.machines, spec.avg_kb);
    let dir = work.join(format!("fleet-{machines}"));
    let marker = dir.join(".generated");
    if !marker.exists() {
        eprintln!("generating {machines} profiles into {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        generate(spec, &dir)?;
        std::fs::write(&marker, format!("{machines} {avg_kb}"))?;
    }
    // Start from the generated content (earlier runs touched some files).
    for f in touch_list(&dir) {
        let i: usize = f
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s[1..].parse().ok())
            .unwrap_or(0);
        std::fs::write(&f, crate::generate::profile(spec, i, 0))?;
    }
    let files = find_profiles(&dir)?;
    // Profiles written less than 2 s ago are re-read on every pass (racy timestamps): a
    // real fleet is settled, so let the files settle as they would.
    std::thread::sleep(Duration::from_millis(2100));
    Ok((dir, files))
}

/// The change-to-live scenario (see [`crate::live`]) on the fleet of `machines`.
pub fn run_live(
    machines: usize,
    work: &Path,
    users: &Path,
    nagios: &Path,
    avg_kb: usize,
) -> std::io::Result<crate::live::LiveRow> {
    let spec = Spec {
        machines,
        avg_kb,
        seed: 2026,
    };
    let (dir, _) = prepare(&spec, work)?;
    crate::live::run(&spec, &dir, work, users, nagios)
}

/// Run every scenario for a fleet of `machines` under `work`; with `core_only`, without
/// the plugin, Icinga 2 and HTTP columns.
pub fn run(
    machines: usize,
    work: &Path,
    users: &Path,
    nagios: &Path,
    avg_kb: usize,
    core_only: bool,
) -> std::io::Result<Row> {
    let spec = Spec {
        machines,
        avg_kb,
        seed: 2026,
    };
    let (dir, files) = prepare(&spec, work)?;
    floor(&files); // warm the page cache
    let (floor_time, bytes) = floor(&files);

    let out = work.join(format!("out-{machines}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut engine = Engine::new(
        crate::translators(),
        Box::new(TomlUsers::new(users)),
        BaseConfig::default(),
    );
    let mut writer = OutputWriter::new(&out);
    let mut services = 0;
    let mut pass = |engine: &mut Engine, writer: &mut OutputWriter| {
        let r = engine.run_pass(&files).expect("pass");
        services = r.report.services;
        let t = Instant::now();
        let w = writer.write(&r.output).expect("write");
        let mut phases = r.report.pass_phases.clone();
        phases.push(monitor_engine::report::PhaseTime {
            phase: "write".into(),
            ms: t.elapsed().as_secs_f64() * 1000.0,
        });
        (
            r.report.parsed,
            r.report.translated,
            w.written,
            r.report.assembly,
            phases,
        )
    };
    let cold = measure(|| pass(&mut engine, &mut writer));
    let no_change = measure(|| pass(&mut engine, &mut writer));
    // One machine changed: a web server (the touched file itself is then re-read once more
    // on the next pass, being recent; that is part of the measured cost).
    let changed = vec![crate::generate::touch_one(&spec, &dir, 12, 1)?];
    let one_change = measure(|| pass(&mut engine, &mut writer));
    let mut changed100 = touch(&spec, &dir, 100, 2)?;
    let hundred_change = measure(|| pass(&mut engine, &mut writer));
    changed100.extend(changed);
    std::fs::write(
        dir.join(".touched"),
        changed100
            .iter()
            .map(|p| p.display().to_string() + "\n")
            .collect::<String>(),
    )?;

    let t0 = Instant::now();
    let check = monitor_runtime::validate::validate_dir(nagios, &out).map_err(std::io::Error::other)?;
    let nagios_verify = t0.elapsed();
    drop(engine);
    let (icinga2, http) = if core_only {
        (None, None)
    } else {
        (
            icinga_row(&files, users, work, machines)?,
            http_row(&dir, users, work, machines)?,
        )
    };

    // Every translator as a plugin in worker processes (the daemon's default for
    // packaged translators): cold, then one change.
    let libs = work.join("plugin-libs");
    let libraries = if core_only {
        Ok(None)
    } else {
        plugin_libraries(&libs).map(Some)
    };
    let (plugins_cold, plugins_one_change) = match libraries {
        Ok(None) => (None, None),
        Ok(Some(())) => {
            let settings =
                monitor_runtime::worker::WorkerSettings::new(std::env::current_exe()?, work.join("plugin-copies"));
            let mut set = monitor_runtime::plugin_host::PluginSet::with_workers(vec![libs], settings);
            let mut engine = Engine::new(Vec::new(), Box::new(TomlUsers::new(users)), BaseConfig::default());
            use monitor_runtime::plugin_host::AddWorkerPlugin;
            for t in set.refresh().workers {
                engine.add_worker_plugin(t);
            }
            let plugin_out = work.join(format!("out-plugins-{machines}"));
            let _ = std::fs::remove_dir_all(&plugin_out);
            let mut writer = OutputWriter::new(&plugin_out);
            let cold = measure(|| pass(&mut engine, &mut writer));
            let changed = crate::generate::touch_one(&spec, &dir, 13, 3)?;
            let one = measure(|| pass(&mut engine, &mut writer));
            let mut touched = touch_list(&dir);
            touched.push(changed);
            std::fs::write(
                dir.join(".touched"),
                touched
                    .iter()
                    .map(|p| p.display().to_string() + "\n")
                    .collect::<String>(),
            )?;
            (Some(cold), Some(one))
        }
        Err(e) => {
            eprintln!("bench: no plugin mode: {e}");
            (None, None)
        }
    };
    Ok(Row {
        machines,
        bytes,
        services,
        floor_ms: floor_time.as_secs_f64() * 1000.0,
        cold,
        no_change,
        one_change,
        hundred_change,
        nagios_verify_ms: nagios_verify.as_secs_f64() * 1000.0,
        nagios_ok: check.ok,
        plugins_cold,
        plugins_one_change,
        icinga2,
        http,
    })
}

fn touch_list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(dir.join(".touched"))
        .unwrap_or_default()
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn kind(a: Assembly) -> &'static str {
    match a {
        Assembly::Full => "full",
        Assembly::Incremental => "incremental",
        Assembly::Reused => "reused",
    }
}

/// The human table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| machines | data | floor (read+hash) | cold | cold/floor | nagios -v | no-change | one-change | hundred-change | cold peak RSS | plugins cold | plugins one-change |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.0} MB | {:.0} ms | {:.0} ms (cpu {:.0} ms) | {:.2}x | {:.0} ms ({}) | {:.1} ms ({}) | {:.1} ms ({}) | {:.1} ms ({}) | {:.0} MB | {} | {} |\n",
            r.machines,
            r.bytes as f64 / 1e6,
            r.floor_ms,
            r.cold.wall_ms,
            r.cold.cpu_ms,
            r.cold.wall_ms / r.floor_ms,
            r.nagios_verify_ms,
            if r.nagios_ok { "ok" } else { "FAILED" },
            r.no_change.wall_ms,
            kind(r.no_change.assembly),
            r.one_change.wall_ms,
            kind(r.one_change.assembly),
            r.hundred_change.wall_ms,
            kind(r.hundred_change.assembly),
            r.cold.peak_rss_mb,
            r.plugins_cold
                .as_ref()
                .map(|m| format!("{:.0} ms ({:.2}x)", m.wall_ms, m.wall_ms / r.cold.wall_ms))
                .unwrap_or_else(|| "-".into()),
            r.plugins_one_change
                .as_ref()
                .map(|m| format!("{:.1} ms ({})", m.wall_ms, kind(m.assembly)))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    // The cold column split by phase: wall time of the pass's phases and the write, the
    // files phase's CPU time by step (summed over the threads), and the full assembly's
    // phases.
    if rows.iter().any(|r| !r.cold.phases.is_empty()) {
        s.push_str("\n| machines | cold, by phase (ms) |\n|---|---|\n");
        for r in rows {
            let split: Vec<String> = r
                .cold
                .phases
                .iter()
                .filter(|p| p.ms >= 0.5)
                .map(|p| format!("{} {:.0}", p.phase, p.ms))
                .collect();
            s.push_str(&format!("| {} | {} |\n", r.machines, split.join(", ")));
        }
    }
    if rows.iter().any(|r| r.http.is_some()) {
        s.push_str("\n| machines | HTTP cold fetch (all 200) | all unchanged (all 304) | compile from the mirror, cold | connections |\n");
        s.push_str("|---|---|---|---|---|\n");
        for r in rows {
            if let Some(h) = &r.http {
                s.push_str(&format!(
                    "| {} | {:.0} ms ({} fetched) | {:.0} ms ({} not modified) | {:.0} ms | {} |\n",
                    r.machines, h.cold_fetch_ms, h.fetched, h.all_304_ms, h.not_modified, h.compile_ms, h.connections
                ));
            }
        }
    }
    if rows.iter().any(|r| r.icinga2.is_some()) {
        s.push_str("\n| machines | icinga2: map (ours) | map peak RSS | write tree | `icinga2 daemon -C` whole tree | 2 satellite slices (parallel) | icinga2 peak RSS |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for r in rows {
            if let Some(i) = &r.icinga2 {
                s.push_str(&format!(
                    "| {} | {:.0} ms | {:.0} MB | {:.0} ms ({} files) | {:.0} ms ({}) | {:.0} ms ({}) | {:.0} MB |\n",
                    r.machines,
                    i.map_ms,
                    i.map_peak_rss_mb,
                    i.write_ms,
                    i.files,
                    i.master_ms,
                    if i.master_ok { "ok" } else { "FAILED" },
                    i.zones_ms,
                    if i.zones_ok { "ok" } else { "FAILED" },
                    i.icinga2_peak_rss_mb
                ));
            }
        }
    }
    s
}
