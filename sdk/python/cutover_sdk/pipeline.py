"""Pipelines (contract 0.2): the same steps on many machines, each machine going on to its next step as
soon as its own is done.

A batch call returns when its slowest machine is done; cordon, update, wait and uncordon a batch in four
calls and the deploy waits four times for the slowest machine. `pipeline` hands the host the whole
sequence: machine A is updated while B is still being cordoned. With a window, one pipeline is a whole
roll that keeps `max_unavailable` machines moving:

    from cutover_sdk import pipeline
    left = pipeline.pipeline(ids, pipeline.move_steps(plan.target, True, True, plan.wait_timeout_ms),
                             window=max_unavailable(plan, len(ids)), stop_on_failure=True)
    if left:
        raise Err(explain(left.errors(), f"moving to v{plan.target.version}"))

A machine whose step failed with a transient (`platform`) error goes through again from that step, as
long as the retry policy allows for that machine and step (`retry.py`'s `_allows_in_pipeline`: the
`retries` count, then while the pauses before its retries fit in the time budget).

The call exists only in `cutover:strategy@0.2.0`. Built against 0.1 (`-d wit`), `available()` is False
and `pipeline`, `retire` and the step constructors raise `Err(types.Error_Unsupported(...))` saying how
to rebuild, rather than an `AttributeError`; the module imports cleanly either way. `batch.py`'s
`stop_machines` retires machine by machine on 0.2 and makes two batch calls on 0.1.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import machines, types

from . import log, params
from .errors import describe_error, is_transient
from .retry import _allows_in_pipeline, _backoff, _label, retry, retry_batch

# Present only when componentize-py built the 0.2 world (the step types live beside the call).
_wit_pipeline = getattr(machines, "pipeline", None)

_NOT_0_2 = (
    "pipeline needs contract cutover:strategy@0.2.0, and this strategy was built against 0.1.0: "
    "build it with `componentize-py -d wit/v0.2 -w strategy ...` (wit/v0.2 is in every project "
    "`cutover new` makes)"
)


def available() -> bool:
    """Whether this build has `machines.pipeline` (built against contract 0.2)."""
    return _wit_pipeline is not None


def _need() -> None:
    if _wit_pipeline is None:
        raise Err(types.Error_Unsupported(_NOT_0_2))


class steps:
    """Step constructors: `steps.cordon()`, `steps.update(release)`, `steps.wait_state(S.STARTED, ms)`."""

    @staticmethod
    def cordon() -> Any:
        """`traffic.cordon` of the machine."""
        _need()
        return machines.Step_Cordon()

    @staticmethod
    def uncordon() -> Any:
        """`traffic.uncordon` of the machine."""
        _need()
        return machines.Step_Uncordon()

    @staticmethod
    def update(release: types.Release) -> Any:
        """`machines.update` to `release`."""
        _need()
        return machines.Step_Update(release)

    @staticmethod
    def start() -> Any:
        """`machines.start`."""
        _need()
        return machines.Step_Start()

    @staticmethod
    def stop(signal: str, timeout_ms: int) -> Any:
        """`machines.stop` with `signal`, killed after `timeout_ms`."""
        _need()
        return machines.Step_Stop(machines.StopSpec(signal=signal, timeout_ms=timeout_ms))

    @staticmethod
    def destroy() -> Any:
        """`machines.destroy`."""
        _need()
        return machines.Step_Destroy()

    @staticmethod
    def wait_state(state: types.MachineState, timeout_ms: int) -> Any:
        """Wait until the machine is in `state`, the timeout counting from the step's start."""
        _need()
        return machines.Step_WaitState(machines.StateWait(state=state, timeout_ms=timeout_ms))

    @staticmethod
    def wait_healthy(timeout_ms: int) -> Any:
        """`health.wait_healthy`, the timeout counting from the step's start."""
        _need()
        return machines.Step_WaitHealthy(timeout_ms)

    @staticmethod
    def wait_drained(poll_ms: int, timeout_ms: int) -> Any:
        """Count the machine's connections every `poll_ms` until none is left (`timeout` after `timeout_ms`)."""
        _need()
        return machines.Step_WaitDrained(machines.DrainWait(poll_ms=poll_ms, timeout_ms=timeout_ms))


@dataclass
class Unfinished:
    """The machines of a pipeline that did not take every step, once retries are spent. Falsy when
    every machine finished."""

    # `machines.StepError`s (id, step counted from 0 in the steps as given, error): lasting failures
    # first, in the order listed, then transient ones that outlasted their retries.
    failed: List[Any] = field(default_factory=list)
    # Machines never started because another failed first (with `stop_on_failure`).
    not_started: List[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.failed or self.not_started)

    def errors(self) -> List[types.MachineError]:
        """The failures as a batch call reports them (what `explain` takes)."""
        return [types.MachineError(id=f.id, error=f.error) for f in self.failed]

    def failed_ids(self) -> List[str]:
        """The machines that failed, whichever step."""
        return [f.id for f in self.failed]


def pipeline(
    ids: Sequence[str],
    steps: Sequence[Any],
    window: int = 0,
    stop_on_failure: bool = False,
    retries: Optional[int] = None,
) -> Unfinished:
    """Take `steps` on every machine of `ids`, at most `window` machines under way at once (0: no
    bound), retrying transient failures from the step that failed. Returns what did not finish
    (empty, falsy: every machine took every step)."""
    _need()
    limit = params.retries() if retries is None else retries
    options = machines.PipelineOptions(window=max(0, int(window)), stop_on_failure=bool(stop_on_failure))
    steps = list(steps)
    left = Unfinished()
    # Machines still to go, by the step they go on from, each with the transient failure that sent it
    # back (None for a machine not started yet).
    todo: Dict[int, List[Tuple[str, Any]]] = {0: [(i, None) for i in ids]} if ids else {}
    # Per machine and step, its retries so far: each step of each machine is one operation with a policy
    # of its own, however many others share the pipeline (per machine alone, a cordon that failed early
    # would count against a wait failing later); see `_allows_in_pipeline`.
    tries: Dict[Tuple[str, int], int] = {}
    while True:
        transient: List[Any] = []
        kept_out: List[str] = []
        deferred: List[Tuple[int, str, Any]] = []
        # Machines furthest along first. A machine that failed half-way may be out of service, so with a
        # window, once a call leaves a failure the calls after it wait for the next round: a full window
        # of others beside the failed machine would take more out than the window allows.
        order = sorted(todo, reverse=True)
        for n, start in enumerate(order):
            try:
                _wit_pipeline([m for m, _ in todo[start]], steps[start:], options)
                continue
            except Err as e:
                failure = e.value
            kept_out.extend(failure.not_started)
            for f in failure.failed:
                f.step += start
                (transient if is_transient(f.error) else left.failed).append(f)
            if options.window > 0:
                for later in order[n + 1 :]:
                    deferred.extend((later, m, err) for m, err in todo[later])
                break
        todo = {}
        # Each machine that failed for now goes again from the step that failed, while its policy
        # allows; one that outlasts it has failed.
        again: List[Tuple[int, str, Any]] = []
        attempt = 0
        for f in transient:
            count = tries.get((f.id, f.step), 0) + 1
            tries[(f.id, f.step)] = count
            if _allows_in_pipeline(count, limit):
                attempt = max(attempt, count)
                again.append((f.step, f.id, f))
            else:
                left.failed.append(f)
        # Machines half-way go on with the retries; those not started yet too, unless a lasting failure
        # stopped the pipeline: then they stay not started.
        lasting = bool(left.failed)
        for start, m, err in deferred:
            if err is None and lasting:
                left.not_started.append(m)
            else:
                again.append((start, m, err))
        if lasting:
            left.not_started.extend(kept_out)
        else:
            again.extend((0, m, None) for m in kept_out)
        errors = [err for _, _, err in again if err is not None]
        if not errors:
            left.not_started.extend(m for _, m, _ in again)
            break
        if attempt > 0:
            log.warn(
                f"{len(errors)} machine(s) hit a transient error, {_label(attempt, limit)}: "
                f"{describe_error(errors[0].error)}"
            )
            _backoff(attempt)
        for start, m, err in again:
            todo.setdefault(start, []).append((m, err))
    return left


def move_steps(release: types.Release, serving: bool, can_cordon: bool, wait_timeout_ms: int) -> List[Any]:
    """The steps that move a machine in place to `release`: cordon (when the platform can), update, and
    for a machine that was serving, wait until started and passing, then uncordon. A stopped machine is
    updated and stays stopped, its routing as it was (as flyctl does)."""
    out = [steps.cordon()] if can_cordon else []
    out.append(steps.update(release))
    if serving:
        out.append(steps.wait_state(types.MachineState.STARTED, wait_timeout_ms))
        out.append(steps.wait_healthy(wait_timeout_ms))
    if can_cordon:
        out.append(steps.uncordon())
    return out


@dataclass
class NotRetired:
    """Which part of `retire` machines did not get through. Falsy when every machine did."""

    # Still running, or not known to be down: a stop is still to do (and the destroy, if asked).
    not_stopped: List[types.MachineError] = field(default_factory=list)
    # Down, but not destroyed.
    not_destroyed: List[types.MachineError] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.not_stopped or self.not_destroyed)


def retire(ids: Sequence[str], plan: types.DeployPlan, destroy: bool, retries: Optional[int] = None) -> NotRetired:
    """Stop `ids` gracefully (the plan's kill signal and timeout), wait until each is down and, with
    `destroy`, destroy it, each machine on its own. A machine whose process exits while it stops ends
    `failed`, not `stopped`, and its wait times out: those are looked up in one `list`, and the ones
    down count as stopped (and are destroyed)."""
    S = types.MachineState
    todo = [
        steps.stop(plan.kill_signal, plan.kill_timeout_ms),
        steps.wait_state(S.STOPPED, plan.wait_timeout_ms),
    ]
    if destroy:
        todo.append(steps.destroy())
    unfinished = pipeline(ids, todo, retries=retries)
    left = NotRetired()
    timed_out: List[types.MachineError] = []
    for f in unfinished.failed:
        e = types.MachineError(id=f.id, error=f.error)
        if f.step == 1 and isinstance(f.error, types.Error_Timeout):
            timed_out.append(e)
        elif f.step <= 1:
            left.not_stopped.append(e)
        else:
            left.not_destroyed.append(e)
    if timed_out:
        try:
            fleet: Optional[Dict[str, Any]] = {m.id: m for m in retry(machines.list, "listing machines", retries)}
        except Err:
            fleet = None  # unreadable: nothing is known to be down

        def down(mid: str) -> bool:
            if fleet is None:
                return False
            m = fleet.get(mid)
            return m is None or m.state in (S.STOPPED, S.FAILED, S.DESTROYED)

        gone = [e for e in timed_out if down(e.id)]
        left.not_stopped.extend(e for e in timed_out if not down(e.id))
        if gone:
            log.info("machines that failed while stopping are down: counted as stopped")
            if destroy:
                left.not_destroyed.extend(retry_batch(machines.destroy, [e.id for e in gone], retries=retries))
    return left
