//! Reading an app's configuration: fly.toml, then `cutover.toml` beside it if there is one, then
//! flyctl's defaults for what they leave out. The one place that knows which file a key comes from,
//! so every error and warning can name it.

use crate::checks;
use crate::config::Config;
use crate::defaults::{
    DEFAULT_KILL_SIGNAL, DEFAULT_KILL_TIMEOUT, DEFAULT_MAX_UNAVAILABLE, DEFAULT_RELEASE_COMMAND_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
};
use crate::error::ConfigError;
use crate::keys::{known_unused, parse_collecting};
use crate::options::cutover_options;
use crate::params::parse_max_unavailable;
use crate::raw::{RawCutover, RawFly};
use crate::release;
use crate::strategy::StrategyRef;
use cutover_core::contract::{MaxUnavailable, ParamKind};
use cutover_core::duration;
use std::path::Path;
use std::time::Duration;

impl Config {
    /// Read `fly.toml` (and `cutover.toml` beside it, if present).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let (mut raw, unknown): (RawFly, Vec<String>) = parse_collecting(path, &text)?;
        let mut warnings: Vec<String> = unknown
            .into_iter()
            .filter(|k| !known_unused(k))
            .map(|k| format!("{}: unknown key `{k}` (ignored)", path.display()))
            .collect();

        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let side = base.join("cutover.toml");
        let (cutover_raw, cutover_source) = match (raw.cutover.take(), side.exists()) {
            (Some(_), true) => {
                return Err(ConfigError::Other {
                    path: side,
                    message: format!(
                        "cutover options are set both here and in the [cutover] table of {}; keep one of them",
                        path.display()
                    ),
                });
            }
            (Some(c), false) => (c, path.to_path_buf()),
            (None, true) => {
                let text = std::fs::read_to_string(&side)
                    .map_err(|source| ConfigError::Read { path: side.clone(), source })?;
                let (c, unknown): (RawCutover, Vec<String>) = parse_collecting(&side, &text)?;
                warnings.extend(
                    unknown.into_iter().map(|k| format!("{}: unknown key `{k}` (ignored)", side.display())),
                );
                (c, side)
            }
            (None, false) => (RawCutover::default(), path.to_path_buf()),
        };

        let app = raw.app.take().filter(|a| !a.trim().is_empty()).ok_or_else(|| ConfigError::Other {
            path: path.into(),
            message: "`app` is missing: set `app = \"your-app-name\"` at the top of the file".into(),
        })?;
        let deploy = raw.deploy.take().unwrap_or_default();
        let max_unavailable = match deploy.max_unavailable {
            None => MaxUnavailable::Fraction(DEFAULT_MAX_UNAVAILABLE),
            Some(v) => parse_max_unavailable(&v).ok_or_else(|| ConfigError::Invalid {
                path: path.into(),
                key: "deploy.max_unavailable".into(),
                value: v.to_string(),
                expected: ParamKind::CountOrFraction.expected().into(),
            })?,
        };
        let kill_timeout = raw.kill_timeout.map(|d| d.0).unwrap_or(DEFAULT_KILL_TIMEOUT);
        if kill_timeout > Duration::from_secs(300) {
            return Err(ConfigError::Invalid {
                path: path.into(),
                key: "kill_timeout".into(),
                value: format!("{:?}", duration::display(kill_timeout)),
                expected: "at most 5m (Fly's maximum)".into(),
            });
        }

        let checks = checks::collect(&raw, path)?;
        let release_command_args = match &deploy.release_command {
            Some(c) => release::split(path, c)?,
            None => vec![],
        };
        let release_command_timeout =
            deploy.release_command_timeout.map(|d| d.0).unwrap_or(DEFAULT_RELEASE_COMMAND_TIMEOUT);
        if release_command_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                path: path.into(),
                key: "deploy.release_command_timeout".into(),
                value: "\"0s\"".into(),
                expected: "a duration above zero, e.g. \"5m\" (the default)".into(),
            });
        }
        let release_command_vm = deploy.release_command_vm.map(|v| release::vm(path, v)).transpose()?;

        let mut process_groups: Vec<String> =
            raw.processes.map(|p| p.into_keys().collect()).unwrap_or_default();
        if process_groups.is_empty() {
            process_groups.push("app".into());
        }

        let cutover = cutover_options(cutover_raw, &cutover_source, &base)?;
        let strategy = StrategyRef::parse(deploy.strategy.as_deref().unwrap_or("rolling"), &base);

        Ok(Self {
            path: path.to_path_buf(),
            app,
            image: raw.build.and_then(|b| b.image),
            strategy,
            max_unavailable,
            wait_timeout: deploy.wait_timeout.map(|d| d.0).unwrap_or(DEFAULT_WAIT_TIMEOUT),
            release_command: deploy.release_command,
            release_command_args,
            release_command_timeout,
            release_command_vm,
            skip_release_command: false,
            kill_signal: raw.kill_signal.unwrap_or_else(|| DEFAULT_KILL_SIGNAL.into()),
            kill_timeout,
            checks,
            process_groups,
            has_volumes: raw.mounts.is_some(),
            cutover,
            cutover_source,
            warnings,
        })
    }
}
