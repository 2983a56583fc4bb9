//! The deploy's test seam: points at which a deploy can be made to stop for good, so
//! that a test can `kill -9` the process there and find a whole live set afterwards.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::DeployConfig;

/// A point in a deploy at which [`DeployConfig::pause_at`] stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeployPoint {
    /// The new set is written and synced in its staging directory.
    Staged,
    /// `nagios -v` accepted the staged set.
    Validated,
    /// The staging directory has been renamed to the set's own directory.
    Renamed,
    /// The live symlink points at the new set; Nagios is not reloaded yet.
    Swapped,
}

impl DeployPoint {
    /// Every point, in the order a deploy passes them.
    pub const ALL: [DeployPoint; 4] = [
        DeployPoint::Staged,
        DeployPoint::Validated,
        DeployPoint::Renamed,
        DeployPoint::Swapped,
    ];

    /// The point's name: `staged`, `validated`, `renamed` or `swapped`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployPoint::Staged => "staged",
            DeployPoint::Validated => "validated",
            DeployPoint::Renamed => "renamed",
            DeployPoint::Swapped => "swapped",
        }
    }
}

impl fmt::Display for DeployPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeployPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeployPoint::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown deploy point {s:?}: expected staged, validated, renamed or swapped"))
    }
}

/// The deploy has reached `point`: when `cfg.pause_at` names it, write
/// `STATE/paused-at-<point>` (holding our pid), log a warning and sleep for ever.
pub(super) fn pause_point(cfg: &DeployConfig, point: DeployPoint) {
    if cfg.pause_at == Some(point) {
        let point = point.as_str();
        let marker = cfg.state_dir.join(format!("paused-at-{point}"));
        let _ = std::fs::write(&marker, std::process::id().to_string());
        tracing::warn!(point, "paused for a test (DeployConfig::pause_at)");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::Reload;

    #[test]
    fn points_parse_from_their_names() {
        for p in DeployPoint::ALL {
            assert_eq!(p.as_str().parse::<DeployPoint>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        let e = "Staged".parse::<DeployPoint>().unwrap_err();
        assert!(e.contains("unknown deploy point \"Staged\""), "{e}");
    }

    #[test]
    fn a_deploy_pauses_only_at_the_point_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DeployConfig {
            live: dir.path().join("live"),
            state_dir: dir.path().to_path_buf(),
            nagios_bin: "/nonexistent/nagios".into(),
            nagios_config: "/nonexistent/nagios.cfg".into(),
            reload: Reload::None,
            keep_rejected: 1,
            validate_user: None,
            status_file: None,
            reload_timeout: Duration::from_secs(1),
            pause_at: Some(DeployPoint::Renamed),
            icinga2: None,
        };
        for p in [DeployPoint::Staged, DeployPoint::Validated, DeployPoint::Swapped] {
            pause_point(&cfg, p);
            assert!(!dir.path().join(format!("paused-at-{p}")).exists());
        }
        pause_point(
            &DeployConfig {
                pause_at: None,
                ..cfg.clone()
            },
            DeployPoint::Renamed,
        );
        // At the point itself it never returns: it marks the state directory and sleeps
        // (the thread is left asleep until the test process ends).
        let marker = dir.path().join("paused-at-renamed");
        std::thread::spawn(move || pause_point(&cfg, DeployPoint::Renamed));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&marker).is_ok_and(|pid| pid == std::process::id().to_string()) {
            assert!(
                std::time::Instant::now() < deadline,
                "no marker at {}",
                marker.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
