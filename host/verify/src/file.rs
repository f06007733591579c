//! Scenario files (`cutover verify STRATEGY --scenario FILE`): a simulator scenario, as `cutover deploy
//! --scenario` reads it, plus a `[verify]` table saying what the deploy must do and with which
//! parameters. The conformance scenarios run every strategy with its defaults; a gate that is off by
//! default (the canary's metric gate) is only exercised by a scenario that turns it on and describes
//! the metrics it judges:
//!
//! ```toml
//! [verify]
//! expect = "fail"                 # the deploy must fail and leave the fleet on v1 ("succeed": must succeed)
//! params = { metric_error_query = 'error_ratio{version=~"{version}",instance=~"{machines}"}' }
//!
//! [[metrics]]                     # release 2 answers 5% errors, release 1 none
//! match = 'version=~"2"'
//! values = [0.05, 0.06, 0.04]
//! ```
//!
//! The fleet starts on v1 and v2 is deployed, as in every conformance scenario; the run is judged by
//! the same invariants, with "the new release regresses" as the injected fault when `expect = "fail"`.

use crate::VerifyError;
use cutover_core::contract::{ParamKind, ParamValue, StrategyInfo};
use cutover_sim::Scenario;
use std::collections::BTreeMap;
use std::path::Path;

/// A scenario file, read and checked.
#[derive(Debug, Clone)]
pub struct FileScenario {
    /// How the report names it: the file's name.
    pub name: String,
    /// The file's path, as given: errors name it.
    pub path: String,
    /// The simulator scenario (everything but `[verify]`).
    pub scenario: Scenario,
    /// `expect = "fail"`: the scenario injects a regression the strategy must refuse.
    pub must_fail: bool,
    /// `[verify] params`, as written; checked against the strategy's parameters by [`Self::params`].
    pub params: toml::Table,
}

impl FileScenario {
    /// Read `path`; an error names the file and the key.
    pub fn load(path: &Path) -> Result<Self, VerifyError> {
        let bad = |message: String| VerifyError::Scenario { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| bad(e.to_string()))?;
        let Some(toml::Value::Table(mut verify)) = table.remove("verify") else {
            return Err(bad(
                "no `[verify]` table: expected `[verify] expect = \"fail\"` or `\"succeed\"` (what the \
                 deploy must do), and optionally `params = { ... }`"
                    .into(),
            ));
        };
        let must_fail = match verify.remove("expect") {
            Some(toml::Value::String(s)) if s == "fail" => true,
            Some(toml::Value::String(s)) if s == "succeed" => false,
            other => {
                return Err(bad(format!(
                    "`verify.expect` = {}: expected \"fail\" or \"succeed\"",
                    other.map_or("(missing)".into(), |v| v.to_string())
                )));
            }
        };
        let params = match verify.remove("params") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => return Err(bad(format!("`verify.params` = {other}: expected a table"))),
        };
        if let Some(key) = verify.keys().next() {
            return Err(bad(format!("`verify.{key}` is no key of [verify] (it has: expect, params)")));
        }
        let scenario = Scenario::parse(&table.to_string()).map_err(|e| bad(e.to_string()))?;
        let name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
        Ok(Self { name, path: path.display().to_string(), scenario, must_fail, params })
    }

    /// The strategy's parameters: its defaults, with `[verify] params` on top, each converted by
    /// `convert` to the kind the strategy declares. An unknown name or a value of the wrong kind is an
    /// error naming the key.
    pub fn params(
        &self,
        info: &StrategyInfo,
        defaults: &BTreeMap<String, ParamValue>,
        convert: fn(ParamKind, &toml::Value) -> Option<ParamValue>,
    ) -> Result<BTreeMap<String, ParamValue>, VerifyError> {
        let mut params = defaults.clone();
        for (key, raw) in &self.params {
            let bad = |message: String| VerifyError::Scenario { path: self.path.clone(), message };
            let Some(spec) = info.params.iter().find(|s| &s.name == key) else {
                let known: Vec<&str> = info.params.iter().map(|s| s.name.as_str()).collect();
                return Err(bad(format!(
                    "`verify.params.{key}`: strategy {} has no such parameter (it has: {})",
                    info.name,
                    known.join(", ")
                )));
            };
            let value = convert(spec.kind, raw).ok_or_else(|| {
                bad(format!("`verify.params.{key}` = {raw}: expected {}", spec.kind.expected()))
            })?;
            params.insert(key.clone(), value);
        }
        Ok(params)
    }
}
