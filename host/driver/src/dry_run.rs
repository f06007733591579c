//! `cutover deploy --dry-run`: what a deploy would do, worked out from the platform's answers to
//! read-only calls alone (list machines: a GET). No lease is taken, nothing is created, the journal
//! is only read, and on the local platform no daemon is started and the app is not registered.

use crate::deploy::{target_release, unreachable_hosts, unreachable_refusal};
use crate::{Deploy, DeployError, Goal, current_release, resolve_strategy};
use cutover_core::contract::ParamValue;
use cutover_core::{Capabilities, EmptyApp, Machine, Release};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a deploy would do.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The app.
    pub app: String,
    /// The platform it would run on (`sim`, `local`, `fly`).
    pub platform: String,
    /// The strategy's name, as it describes itself.
    pub strategy: String,
    /// The strategy's one-line summary.
    pub strategy_summary: String,
    /// The strategy's parameters, defaults filled in.
    pub params: BTreeMap<String, ParamValue>,
    /// `[deploy] max_unavailable`, as written.
    pub max_unavailable: String,
    /// `[deploy] wait_timeout`, as fly.toml would write it.
    pub wait_timeout: String,
    /// The release most machines run.
    pub current: Option<Release>,
    /// The release the deploy would make.
    pub target: Release,
    /// Machines by process group, then region.
    pub groups: BTreeMap<String, BTreeMap<String, MachineCount>>,
    /// What the platform's traffic layer can do.
    pub capabilities: Capabilities,
    /// Each capability the platform lacks, and what the strategies do instead.
    pub missing: Vec<Missing>,
    /// How the deploy would hold the app (leases), or why it would not need to.
    pub leases: String,
    /// Machines on hosts the platform cannot reach, as "id (host status)": the deploy would refuse.
    pub unreachable: Vec<String>,
    /// What `[deploy] release_command` would do before the first change: run (what, on which release,
    /// with which timeout), be skipped, or `None` when there is none.
    pub release_command: Option<String>,
    /// Notes that change what would happen (no machines yet, a platform that is not reachable).
    pub notes: Vec<String>,
}

/// Machines of one group in one region.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MachineCount {
    /// How many.
    pub machines: usize,
    /// By state ("started": 2, "stopped": 1).
    pub states: BTreeMap<String, usize>,
    /// By release version.
    pub releases: BTreeMap<u64, usize>,
}

/// A capability the platform does not offer.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    /// The capability, as `cutover deploy --dry-run` names it.
    pub capability: &'static str,
    /// What the built-in strategies do without it.
    pub instead: &'static str,
}

/// What each built-in strategy does without a capability (see strategies/README.md).
pub fn missing(caps: Capabilities) -> Vec<Missing> {
    let mut v = Vec::new();
    if !caps.cordon {
        v.push(Missing {
            capability: "cordon",
            instead: "rolling and immediate update machines in rotation; bluegreen, canary and \
                      drain-then-destroy refuse to start (they keep new machines out of traffic by cordoning)",
        });
    }
    if !caps.weights {
        v.push(Missing {
            capability: "weights",
            instead: "canary: each canary gets its machine-count share of new connections (one machine \
                      among its group's), and the steps become pauses with health gates",
        });
    }
    if !caps.stats {
        v.push(Missing {
            capability: "stats",
            instead: "canary: no error-rate gate; each step is gated on the canaries' checks (and on \
                      `cutover promote` for manual gates)",
        });
    }
    if !caps.connection_counts {
        v.push(Missing {
            capability: "connections",
            instead: "drain-then-destroy: old machines are cordoned at the switch, then retired together \
                      once `drain_timeout` (default 5m) has passed, connections open or not",
        });
    }
    v
}

fn count(machines: &[Machine]) -> BTreeMap<String, BTreeMap<String, MachineCount>> {
    let mut groups: BTreeMap<String, BTreeMap<String, MachineCount>> = BTreeMap::new();
    for m in machines {
        let c = groups.entry(m.process_group.clone()).or_default().entry(m.region.clone()).or_default();
        c.machines += 1;
        *c.states.entry(m.state.as_str().to_string()).or_default() += 1;
        *c.releases.entry(m.release.version).or_default() += 1;
    }
    groups
}

impl Deploy<'_> {
    /// What deploying `image` would do, without changing anything.
    pub async fn dry_run(&self, goal: Goal) -> Result<DryRun, DeployError> {
        let config = self.config;
        let strategy = resolve_strategy(self.runtime, &config.strategy).await?;
        let (params, _) = config.strategy_params(&strategy.info.params, &strategy.info.name)?;
        let mut notes = Vec::new();
        let (platform, caps, has_leases, machines, empty_app) = match self.target.open_to_read(config).await?
        {
            Some(opened) => {
                let p = opened.platform;
                let machines = p.list().await.map_err(|e| {
                    DeployError::platform_in(format_args!("listing machines of {}", config.app), &e)
                })?;
                (p.name().to_string(), p.capabilities(), p.has_leases(), machines, Some(p.empty_app()))
            }
            None => {
                notes.push(format!(
                    "no local daemon is running: the deploy would start one and launch {} machine(s) on the \
                     new release",
                    config.cutover.local.machines
                ));
                (self.target.kind().to_string(), cutover_local::CAPABILITIES, true, vec![], None)
            }
        };
        let current = current_release(&machines);
        // Read the journal only if there is one: a dry run creates nothing.
        let journal = match self.target.state() {
            Some(s) if s.has_journal() => Some(s.journal()?),
            _ => None,
        };
        let goal_kind = match goal {
            Goal::Deploy { .. } => GoalKind::Deploy,
            Goal::Rollback { .. } => GoalKind::Rollback,
        };
        let target = target_release(goal, journal.as_ref(), &config.app, &machines, current.as_ref())?;
        let unreachable = unreachable_hosts(&machines);
        if !unreachable.is_empty() {
            notes
                .push(format!("the deploy would refuse: {}", unreachable_refusal(&config.app, &unreachable)));
        }
        if machines.is_empty() {
            notes.extend(empty_app.map(|empty| match empty {
                EmptyApp::Refuse(why) => format!("the deploy would refuse: {why}"),
                EmptyApp::Launch => {
                    format!("{} has no machines: the deploy would launch them on the new release", config.app)
                }
                EmptyApp::RunStrategy => {
                    format!("{} has no machines: the strategy would run on an empty fleet", config.app)
                }
            }));
        }
        let leases = if machines.is_empty() {
            "none: there is no machine to lease".to_string()
        } else if has_leases {
            let ttl = config.cutover.lease_ttl;
            format!(
                "all {} machine(s) leased before the first change ({} TTL, refreshed every {}), released at the end",
                machines.len(),
                cutover_core::duration::display(ttl),
                cutover_core::duration::display(ttl / 2)
            )
        } else {
            format!("none: the {platform} platform has no leases")
        };
        let release_command = self.release_command_plan(&target, matches!(goal_kind, GoalKind::Rollback));
        Ok(DryRun {
            app: config.app.clone(),
            platform,
            strategy: strategy.info.name.clone(),
            strategy_summary: strategy.info.summary.clone(),
            params,
            max_unavailable: config.max_unavailable.to_string(),
            wait_timeout: cutover_core::duration::display(config.wait_timeout),
            current,
            target,
            groups: count(&machines),
            capabilities: caps,
            missing: missing(caps),
            leases,
            unreachable,
            release_command,
            notes,
        })
    }

    /// What the release command would do for `target`, in words.
    fn release_command_plan(&self, target: &Release, rollback: bool) -> Option<String> {
        let config = self.config;
        let command = config.release_command.as_ref()?;
        Some(if rollback {
            format!("`{command}` would not run: a rollback returns to code whose release command already ran")
        } else if config.skip_release_command {
            format!("`{command}` would not run (--skip-release-command)")
        } else {
            format!(
                "`{command}` would run once on v{} ({}) with RELEASE_COMMAND=1 before the first machine \
                 change, for at most {}; a non-zero exit aborts the deploy with nothing changed",
                target.version,
                target.image,
                cutover_core::duration::display(config.release_command_timeout)
            )
        })
    }
}

/// Whether a dry run is of a rollback (which runs no release command).
enum GoalKind {
    Deploy,
    Rollback,
}

impl DryRun {
    /// The plan as text, for people.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let release = |r: &Release| format!("v{} ({})", r.version, r.image);
        let _ = writeln!(o, "Dry run: nothing was changed (only read-only calls were made)");
        let _ = writeln!(o, "  app         {} on {}", self.app, self.platform);
        let _ = writeln!(
            o,
            "  release     {} -> {}",
            self.current.as_ref().map(release).unwrap_or_else(|| "nothing".into()),
            release(&self.target)
        );
        let _ = writeln!(o, "  strategy    {}: {}", self.strategy, self.strategy_summary);
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let _ = writeln!(
            o,
            "  params      {}",
            if params.is_empty() { "none".into() } else { params.join(", ") }
        );
        let _ = writeln!(
            o,
            "  limits      max_unavailable {}, wait_timeout {}",
            self.max_unavailable, self.wait_timeout
        );
        let _ = writeln!(o, "  leases      {}", self.leases);
        if let Some(r) = &self.release_command {
            let _ = writeln!(o, "  release command  {r}");
        }
        let total: usize = self.groups.values().flat_map(|g| g.values()).map(|c| c.machines).sum();
        let _ = writeln!(o, "  machines    {total}");
        for (group, regions) in &self.groups {
            for (region, c) in regions {
                let states: Vec<String> = c.states.iter().map(|(s, n)| format!("{n} {s}")).collect();
                let releases: Vec<String> = c.releases.iter().map(|(v, n)| format!("{n} on v{v}")).collect();
                let _ = writeln!(
                    o,
                    "    {group:<12} {region:<8} {:>4}  {}; {}",
                    c.machines,
                    states.join(", "),
                    releases.join(", ")
                );
            }
        }
        if !self.unreachable.is_empty() {
            let _ = writeln!(o, "  unreachable {}", self.unreachable.join(", "));
        }
        if self.missing.is_empty() {
            let _ = writeln!(o, "  capabilities: all (cordon, weights, stats, connections)");
        } else {
            let _ = writeln!(
                o,
                "  capabilities the {} platform lacks, and what strategies do instead:",
                self.platform
            );
            for m in &self.missing {
                let _ = writeln!(o, "    {:<12} {}", m.capability, m.instead);
            }
        }
        for n in &self.notes {
            let _ = writeln!(o, "  note: {n}");
        }
        o
    }
}
