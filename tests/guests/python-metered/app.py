"""python-metered: a cutover:strategy@0.2.0 test guest on the Python SDK, as `metered` is in Rust.

By default a canary judged on metrics through the SDK's wrappers, then the template's careful rolling
deploy: one canary is cloned, the error ratio of its release over the last five minutes is judged
against the previous release's, and only if the judge passes is the fleet rolled in batches of
`max_unavailable` (the first bad batch moved back); else the canary goes and the deploy fails. With no
metrics server (verify's scenarios) the gate is the canary's checks, as a strategy's must be.

The `escape` parameter makes it fail the way a new author's strategy does, to test what the SDK turns
that into: `batch` lets a batch call's `Err([MachineError...])` escape `deploy` (a stop of every
machine, which fails when the platform's stop is down), `exception` raises a plain `ValueError`, `value`
raises `Err` of something that is not a contract error.
"""

from typing import List

from cutover_sdk import Err, Strategy, log, machines, metrics, params, runtime, traffic, types
from cutover_sdk import chunks, clone_machines, explain, group_by, list_machines, max_unavailable
from cutover_sdk import retry_batch, should_run, use_plan, wait_serving

# Five minutes of points every 15 s, as the Rust guest reads them.
WINDOW_MS = 300_000
STEP_MS = 15_000


def error_ratio(version: int, now: int):
    return metrics.values(metrics.query_range(f'error_ratio{{version="{version}"}}', now - WINDOW_MS, now, STEP_MS))


class WitWorld(Strategy):
    def describe(self) -> types.StrategyInfo:
        return types.StrategyInfo(
            name="python-metered",
            summary="test guest: a canary judged on metrics, then a rolling deploy, in Python",
            params=[params.spec_retries(), params.spec_text("escape", "", "Fail on purpose: batch, exception or value.")],
        )

    def deploy(self, plan: types.DeployPlan) -> None:
        use_plan(plan)
        escape = params.text("escape", "")
        fleet = list_machines()
        if escape == "batch":
            machines.stop([m.id for m in fleet], plan.kill_signal, plan.kill_timeout_ms)  # escapes on purpose
        elif escape == "exception":
            raise ValueError(f"{len(fleet)} machines is not what I expected")
        elif escape == "value":
            raise Err("not a contract error")
        todo = [m for m in fleet if m.release.version != plan.target.version]
        serving = [m for m in todo if should_run(m.state)]
        if serving:
            canary(plan, serving[0])
        for group, members in group_by(todo, lambda m: m.process_group).items():
            batches = chunks(members, max_unavailable(plan, len(members)))
            for n, batch in enumerate(batches, start=1):
                log.phase(f"{group}: batch {n}/{len(batches)}")
                try:
                    move(plan, batch, plan.target)
                except Err as failure:
                    for back in group_by(batch, lambda m: m.release.version).values():
                        try:
                            move(plan, back, back[0].release)
                        except Err as e:
                            log.error(f"moving back failed too: {e.value.value}")
                    raise failure


def canary(plan: types.DeployPlan, source: types.Machine) -> None:
    """A routable clone of `source` on the target, judged, then destroyed; raises if it fails."""
    log.phase("canary")
    clone_of, failed = clone_machines([source.id], plan.target, routable=True)
    if failed:
        raise Err(explain(failed, "canary clone"))
    made = list(clone_of.values())
    try:
        failed = wait_serving(made, plan.wait_timeout_ms)
        if failed:
            raise Err(explain(failed, "canary"))
        if not gate(plan):
            raise Err(types.Error_Unhealthy("the metric judge failed the canary"))
    finally:
        gone = retry_batch(machines.destroy, made)
        if gone:
            log.error(f"the canary could not be destroyed: {gone[0].error.value}")


def move(plan: types.DeployPlan, batch: List[types.Machine], release: types.Release) -> None:
    """cordon -> update -> wait started and healthy -> uncordon, each retried on transient errors."""
    ids = [m.id for m in batch]
    running = [m.id for m in batch if should_run(m.state)]
    for step, failures in (
        ("cordon", lambda: retry_batch(traffic.cordon, running)),
        ("update", lambda: retry_batch(machines.update, ids, release)),
        ("wait", lambda: wait_serving(running, plan.wait_timeout_ms)),
        ("uncordon", lambda: retry_batch(traffic.uncordon, running)),
    ):
        failed = failures()
        if failed:
            raise Err(explain(failed, f"{step} on v{release.version}"))


def gate(plan: types.DeployPlan) -> bool:
    """Whether the canary's release may go on: the judge's verdict, or (no metrics server) its checks."""
    now = runtime.now()
    try:
        instant = metrics.query(f'error_ratio{{version="{plan.target.version}"}}')
    except Err as e:
        if isinstance(e.value, types.Error_Unsupported):
            log.info(f"no metrics ({e.value.value}): the canary's checks are the gate")
            return True
        raise
    log.info(f"canary error ratio now: {metrics.values(instant)}")
    previous = plan.previous.version if plan.previous else 0
    j = metrics.judge(error_ratio(plan.target.version, now), error_ratio(previous, now))
    log.info(f"judge: {metrics.verdict_name(j)}, p-value {j.p_value:.4f}, effect size {j.effect_size:.4f}")
    return j.verdict != metrics.Verdict.FAIL
