//! A translator used only by the worker tests: everything a plugin library can do to the
//! process that runs it. For component `evil` it emits one service, `Evil`, unless its
//! `mode` resource asks it to misbehave in `translate`:
//! - `segv`: killed by SIGSEGV;
//! - `abort`: calls `abort()`;
//! - `stack`: overflows its stack;
//! - `loop`: loops for ever;
//! - `alloc`: allocates (and touches) memory without bound;
//! - `panic`: panics (caught by the SDK: an error, no crash);
//! - `garbage`: writes garbage into every pipe it holds open for writing, its host's
//!   included.
//!
//! Built with feature `exit-in-start-pass`, it exits in `start_pass`; with `v2`, it is
//! version 1.0.1 (another library file, for replacing a broken one).

use std::hint::black_box;
use std::io::Write;

use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts};
use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
use monitor_sdk::names::CHECK_TCP;
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The test translator.
#[derive(Debug, Default)]
pub struct Evil;

/// Write garbage into every pipe this process holds open for writing: its standard
/// output, and whatever pipe its host talks to it through.
fn garbage_into_pipes() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for e in dir.flatten() {
        let fd = e.file_name().to_string_lossy().to_string();
        let is_pipe = std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"));
        let write_only = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).is_ok_and(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|f| f & 3 == 1)
        });
        if is_pipe
            && write_only
            && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(e.path())
        {
            let _ = f.write_all(b"\xff\xff\xff\x7fgarbage on the pipe");
        }
    }
}

fn recurse(n: u64) -> u64 {
    let pad = black_box([n; 64]);
    if black_box(true) { recurse(n + 1) + pad[3] } else { 0 }
}

impl Translator for Evil {
    fn component(&self) -> &str {
        "evil"
    }

    fn version(&self) -> &str {
        if cfg!(feature = "v2") { "1.0.1" } else { "1.0.0" }
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        if cfg!(feature = "exit-in-start-pass") {
            std::process::exit(3);
        }
        Ok(Bundle::new())
    }

    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        match c.get("mode").unwrap_or("ok") {
            "segv" => loop {
                // The first SIGSEGV meets std's stack-overflow handler, which puts the
                // default action back; the next one kills the process.
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV);
            },
            "abort" => std::process::abort(),
            "stack" => {
                black_box(recurse(0));
            }
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 64 << 20]);
                    black_box(&hoard);
                }
            }
            "panic" => panic!("evil panics on {machine}"),
            "garbage" => garbage_into_pipes(),
            _ => {}
        }
        let groups = handle_contacts(c, ctx)?;
        Ok(Bundle::new().with(
            Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description("Evil")
                .check_command(CheckCommand::new(CHECK_TCP).arg("7"))
                .contact_groups(groups),
        ))
    }
}

monitor_sdk::export_translator!(Evil);
