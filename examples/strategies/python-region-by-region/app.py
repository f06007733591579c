"""region-by-region: deploy one region at a time, each gated on health, with a pause between regions.

Regions go in the order of the `regions` parameter (the rest after them, alphabetically), or
alphabetically. In a region, each process group is rolled in batches of `max_unavailable` (counted
within the region): cordon, update, wait started, wait healthy, uncordon. Once a region is done the
deploy pauses for `pause` on the host's clock, so a bad release shows itself in one region's metrics
before it reaches the next. The first region that fails stops the deploy: its machines go back to the
release they ran, and with `rollback_earlier` (default) so do the regions finished before it, so the
app ends on one release. Regions after it are never touched.
"""

from typing import Dict, List

from cutover_sdk import Err, Strategy, leftover, log, machines, params, runtime, traffic, types
from cutover_sdk import chunks, explain, group_by, list_machines, max_unavailable, retry_batch, use_plan
from cutover_sdk import should_run, wait_serving

DEFAULT_PAUSE_MS = 30_000


class WitWorld(Strategy):
    def describe(self) -> types.StrategyInfo:
        return types.StrategyInfo(
            name="region-by-region",
            summary="Roll one region at a time, each health-gated and followed by a pause; the first bad "
            "region stops the deploy and is rolled back (with the regions before it).",
            params=[
                params.spec_retries(),
                params.spec_text("regions", "", "Regions in deploy order, e.g. \"ams, iad\"; the others follow alphabetically. Empty: alphabetical."),
                params.spec_duration("pause", DEFAULT_PAUSE_MS, "How long to watch a finished region before starting the next."),
                params.spec_boolean("rollback_earlier", True, "When a region fails, move the regions finished before it back too."),
            ],
        )

    def deploy(self, plan: types.DeployPlan) -> None:
        use_plan(plan)  # retry idempotent calls for as long as wait_timeout allows
        pause = params.duration_ms("pause", DEFAULT_PAUSE_MS)
        # Leftovers of earlier deploys (tagged by them) are finished first: neither old nor new here.
        fleet = leftover.finish_earlier(plan, list_machines())
        todo = [m for m in fleet if m.release.version != plan.target.version]
        if not todo:
            log.info(f"every machine is already on v{plan.target.version}")
            return
        by_region = group_by(todo, lambda m: m.region)
        order = region_order(list(by_region), params.words("regions", []))
        log.info(
            f"region-by-region: {len(todo)} machine(s) in {len(order)} region(s) to v{plan.target.version}, "
            f"in this order: {', '.join(order)}; {log.human(pause)} pause between regions"
        )
        can_cordon = traffic.capabilities().cordon
        done: List[types.Machine] = []
        for i, region in enumerate(order, start=1):
            log.phase(f"region {region} ({i}/{len(order)})")
            moved: List[types.Machine] = []
            try:
                roll_region(plan, by_region[region], can_cordon, moved)
            except Err as failure:
                give_up(plan, region, moved, done, can_cordon, failure)
            done.extend(moved)
            log.info(f"region {region}: {len(moved)} machine(s) on v{plan.target.version} and healthy")
            if i < len(order) and pause > 0:
                log.phase(f"watch {region}")
                log.info(f"pausing {log.human(pause)} before the next region ({order[i]})")
                runtime.sleep(pause)
        log.info(f"all {len(done)} machine(s) on v{plan.target.version}")


def region_order(present: List[str], wanted: List[str]) -> List[str]:
    """The `regions` parameter's order first (regions with nothing to deploy skipped), then the rest."""
    unknown = [r for r in wanted if r not in present]
    if unknown:
        log.warn(f"regions {', '.join(unknown)} have no machine to deploy; skipped")
    first = [r for r in dict.fromkeys(wanted) if r in present]
    return first + sorted(r for r in present if r not in first)


def roll_region(plan: types.DeployPlan, region: List[types.Machine], can_cordon: bool, moved: List[types.Machine]) -> None:
    """Roll one region, group by group, batch by batch; every machine touched is added to `moved`
    before it is touched, so a failure knows what to put back."""
    for group, members in group_by(region, lambda m: m.process_group).items():
        size = max_unavailable(plan, len(members))
        batches = chunks(members, size)
        for n, batch in enumerate(batches, start=1):
            log.progress(n - 1, len(batches))
            moved.extend(batch)
            move(plan, batch, plan.target, can_cordon, f"{group}: batch {n}/{len(batches)}")
        log.progress(len(batches), len(batches))


def move(plan: types.DeployPlan, batch: List[types.Machine], release: types.Release, can_cordon: bool, what: str) -> None:
    """cordon -> update -> wait started -> wait healthy -> uncordon; raises the first lasting failure
    as one error of its kind."""
    ids = [m.id for m in batch]
    # Stopped machines are updated and stay stopped (as flyctl does): nothing to wait for.
    running = [m.id for m in batch if should_run(m.state)]
    steps = [
        ("cordon", lambda: retry_batch(traffic.cordon, running) if can_cordon else []),
        ("update", lambda: retry_batch(machines.update, ids, release)),
        ("wait for v%d" % release.version, lambda: wait_serving(running, plan.wait_timeout_ms)),
        ("uncordon", lambda: retry_batch(traffic.uncordon, running) if can_cordon else []),
    ]
    for step, run in steps:
        failures = run()
        if failures:
            raise Err(explain(failures, f"{what}: {step}"))


def give_up(
    plan: types.DeployPlan,
    region: str,
    moved: List[types.Machine],
    done: List[types.Machine],
    can_cordon: bool,
    failure: Err,
) -> None:
    """Stop at the first bad region: put its machines (and, with rollback_earlier, the earlier
    regions') back on the release each ran, then fail with the region's error."""
    error: types.Error = failure.value
    log.error(f"region {region} failed: {error.value}")
    back = list(moved)
    if params.boolean("rollback_earlier", True):
        back = done + back
    elif done:
        log.warn(f"rollback_earlier is off: {len(done)} machine(s) of earlier regions stay on v{plan.target.version}")
    note = rollback(plan, back, can_cordon)
    # The region's error keeps its kind (unhealthy, timeout, ...): that is what the host reports.
    raise Err(type(error)(f"region {region}: {error.value}; {note}"))


def rollback(plan: types.DeployPlan, back: List[types.Machine], can_cordon: bool) -> str:
    """Move `back` to the release each machine ran before, region by region; returns what happened."""
    if not back:
        return "no machine was changed"
    log.phase("rollback")
    by_release: Dict[int, List[types.Machine]] = group_by(back, lambda m: m.release.version)
    for version, batch in by_release.items():
        for region, members in group_by(batch, lambda m: m.region).items():
            log.info(f"rolling {len(members)} machine(s) in {region} back to v{version}")
            try:
                move(plan, members, members[0].release, can_cordon, f"rollback of {region} to v{version}")
            except Err as e:
                return f"rollback failed too ({e.value.value}): check the fleet with `cutover releases`"
    return f"rolled {len(back)} machine(s) back to the release each ran before"
