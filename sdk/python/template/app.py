"""{{name}}: a cutover deploy strategy.

As generated, a careful rolling deploy: per process group, batches of `max_unavailable`, each batch
cordoned, updated, waited for (started, then passing its checks) and put back in rotation. The first
batch that fails is moved back to the release it ran and the deploy stops, so at most one batch is ever
on a bad release. Change `deploy` to make it yours; `wit/v0.2/strategy.wit` documents every
host call.
"""

from typing import List

from cutover_sdk import Err, Strategy, log, machines, params, traffic, types
from cutover_sdk import chunks, explain, group_by, list_machines, max_unavailable, retry_batch, use_plan
from cutover_sdk import should_run, wait_serving


class WitWorld(Strategy):
    def describe(self) -> types.StrategyInfo:
        return types.StrategyInfo(
            name="{{name}}",
            summary="Roll each process group in batches of max_unavailable, health-gated; the first bad "
            "batch is moved back and stops the deploy.",
            params=[params.spec_retries()],
        )

    def deploy(self, plan: types.DeployPlan) -> None:
        use_plan(plan)  # retry idempotent calls for as long as wait_timeout allows
        todo = [m for m in list_machines() if m.release.version != plan.target.version]
        log.info(f"{{name}}: {len(todo)} machine(s) to v{plan.target.version} ({plan.target.image})")
        for group, members in group_by(todo, lambda m: m.process_group).items():
            batches = chunks(members, max_unavailable(plan, len(members)))
            for n, batch in enumerate(batches, start=1):
                log.phase(f"{group}: batch {n}/{len(batches)}")
                try:
                    move(plan, batch, plan.target)
                except Err as failure:
                    log.warn(f"batch {n} failed; moving it back")
                    for release_batch in group_by(batch, lambda m: m.release.version).values():
                        try:
                            move(plan, release_batch, release_batch[0].release)
                        except Err as e:
                            log.error(f"moving back failed too: {e.value.value}")
                    raise failure
        log.info(f"all {len(todo)} machine(s) on v{plan.target.version}")


def move(plan: types.DeployPlan, batch: List[types.Machine], release: types.Release) -> None:
    """cordon -> update -> wait started and healthy -> uncordon, each retried on transient errors."""
    ids = [m.id for m in batch]
    running = [m.id for m in batch if should_run(m.state)]  # stopped machines stay stopped
    for step, failures in (
        ("cordon", lambda: retry_batch(traffic.cordon, running)),
        ("update", lambda: retry_batch(machines.update, ids, release)),
        ("wait", lambda: wait_serving(running, plan.wait_timeout_ms)),
        ("uncordon", lambda: retry_batch(traffic.uncordon, running)),
    ):
        failed = failures()
        if failed:
            raise Err(explain(failed, f"{step} on v{release.version}"))
