"""python-pipelined: a cutover:strategy@0.2.0 test guest rolling the fleet with the Python SDK's
`pipeline`: every machine not on the target goes through `move_steps` on its own, at most
`max_unavailable` machines at once, retrying transient errors from the step that failed. With the
`stop_on_failure` parameter (the default) the first lasting failure starts no further machine; the
deploy then fails naming each failed machine with its step, and the machines never started. Built
against contract 0.1 it fails with the SDK's `unsupported` error saying to rebuild against 0.2.
"""

from cutover_sdk import Err, Strategy, explain, list_machines, log, max_unavailable, params, pipeline
from cutover_sdk import should_run, types, use_plan


class WitWorld(Strategy):
    def describe(self) -> types.StrategyInfo:
        return types.StrategyInfo(
            name="python-pipelined",
            summary="test guest: a rolling deploy as one pipeline with a window, in Python",
            params=[
                params.spec_retries(),
                params.spec_boolean("stop_on_failure", True, "Start no further machine after a failure."),
            ],
        )

    def deploy(self, plan: types.DeployPlan) -> None:
        use_plan(plan)
        todo = [m for m in list_machines() if m.release.version != plan.target.version]
        serving = [m.id for m in todo if should_run(m.state)]
        idle = [m.id for m in todo if not should_run(m.state)]
        window = max_unavailable(plan, len(todo))
        log.phase(f"rolling {len(todo)} machine(s), {window} at a time")
        left = pipeline.pipeline(
            serving,
            pipeline.move_steps(plan.target, True, True, plan.wait_timeout_ms),
            window=window,
            stop_on_failure=params.boolean("stop_on_failure", True),
        )
        if not left and idle:
            left = pipeline.pipeline(idle, pipeline.move_steps(plan.target, False, True, plan.wait_timeout_ms))
        if left:
            failed = ", ".join(f"{f.id} at step {f.step}" for f in left.failed)
            log.error(f"unfinished: failed [{failed}], not started [{', '.join(left.not_started)}]")
            raise Err(
                explain(left.errors(), f"moving to v{plan.target.version} (not started: {len(left.not_started)})")
            )
