//! `nagios -v` on a staged set, through a copy of the site's main config that points at
//! the staging directory.

use std::path::Path;

use monitor_engine::Output;

use super::{DeployConfig, DeployError, absolute, io};
use crate::validate::{
    NagiosCheck, is_executable_file, main_config_macros, main_config_values, missing_programs, run_verify,
    validation_user,
};

/// The site's main config, with its `cfg_dir=LIVE` pointed at `staging`; relative paths
/// are made absolute so that the copy can live elsewhere.
pub fn verify_config(main: &str, main_dir: &Path, live: &Path, staging: &Path) -> Result<String, DeployError> {
    let live_abs = absolute(main_dir, live);
    let mut found = false;
    let mut out = String::with_capacity(main.len() + 64);
    for line in main.lines() {
        let t = line.trim();
        let rewritten = match t.split_once('=') {
            Some((key @ ("cfg_dir" | "cfg_file" | "resource_file"), value)) if !t.starts_with('#') => {
                let abs = absolute(main_dir, Path::new(value.trim()));
                if key == "cfg_dir" && same_path(&abs, &live_abs) {
                    found = true;
                    format!("cfg_dir={}", staging.display())
                } else {
                    format!("{key}={}", abs.display())
                }
            }
            _ => line.to_string(),
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    if !found {
        return Err(DeployError::Config(format!(
            "the Nagios main config has no cfg_dir={} line: add it so that Nagios loads the generated configuration",
            live.display()
        )));
    }
    Ok(out)
}

fn same_path(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

pub(super) fn validate_staging(
    cfg: &DeployConfig,
    staging: &Path,
    output: &Output,
) -> Result<NagiosCheck, DeployError> {
    if let Some(icinga) = &cfg.icinga2 {
        return validate_icinga(icinga, staging);
    }
    let main = std::fs::read_to_string(&cfg.nagios_config).map_err(io(&cfg.nagios_config))?;
    let main_dir = cfg.nagios_config.parent().unwrap_or(Path::new("/"));
    let text = verify_config(&main, main_dir, &cfg.live, staging)?;
    let verify_dir = cfg.state_dir.join("verify");
    std::fs::create_dir_all(&verify_dir).map_err(io(&verify_dir))?;
    let path = verify_dir.join("nagios.cfg");
    std::fs::write(&path, text).map_err(io(&path))?;
    let user = cfg
        .validate_user
        .as_deref()
        .or_else(|| main_config_values(&main, "nagios_user").last());
    let run_as = validation_user(user)?;
    let mut check = run_verify(&cfg.nagios_bin, &path, run_as.as_ref())?;
    check.missing_programs = missing_programs(output, &main_config_macros(&main, main_dir), is_executable_file);
    for m in &check.missing_programs {
        tracing::warn!("{m}");
    }
    Ok(check)
}

/// `icinga2 daemon -C` on every node's slice of the staged set, as one verdict: an error
/// names its node.
fn validate_icinga(icinga: &super::Icinga2Deploy, staging: &Path) -> Result<NagiosCheck, DeployError> {
    let check = icinga
        .validator
        .validate(staging, &icinga.nodes)
        .map_err(|e| DeployError::Config(format!("icinga2 daemon -C could not run: {e}")))?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut output = String::new();
    for n in &check.nodes {
        let who = format!("{} (zone {})", n.endpoint, n.zone);
        errors.extend(n.errors.iter().map(|e| format!("icinga2 on {who}: {e}")));
        warnings.extend(n.warnings.iter().map(|w| format!("icinga2 on {who}: {w}")));
        output.push_str(&format!(
            "== {who}: {}\n{}\n",
            if n.ok { "ok" } else { "FAILED" },
            n.output
        ));
    }
    Ok(NagiosCheck {
        ok: check.ok,
        errors,
        warnings,
        output,
        run_as: icinga.validator.run_as.as_ref().map(|r| r.user.clone()),
        missing_programs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_config_points_the_live_dir_at_staging() {
        let main = "# site\ncfg_file=objects/commands.cfg\ncfg_dir=/etc/nagios4/generated\nresource_file=resource.cfg\nlog_file=/var/log/n.log\n";
        let out = verify_config(
            main,
            Path::new("/etc/nagios4"),
            Path::new("/etc/nagios4/generated"),
            Path::new("/s/x"),
        )
        .unwrap();
        assert_eq!(
            out,
            "# site\ncfg_file=/etc/nagios4/objects/commands.cfg\ncfg_dir=/s/x\nresource_file=/etc/nagios4/resource.cfg\nlog_file=/var/log/n.log\n"
        );
        assert!(verify_config("cfg_dir=/other\n", Path::new("/"), Path::new("/live"), Path::new("/s")).is_err());
    }
}
