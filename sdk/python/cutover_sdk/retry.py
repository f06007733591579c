"""Retrying transient (`platform`) errors, the way the built-in strategies do.

Batch calls retry only the machines whose error was transient; machines that failed for good are set
aside and reported first, so the error a deploy ends with names what stopped it (a failing check), not
a 503 that happened beside it.

Retries are bounded by time, not only by count: at least `retries` (the parameter) of them, and beyond
that as long as the budget allows, counted from the operation's first failure on the host's clock. The
budget is the deploy's `wait_timeout` once `use_plan(plan)` was called at the start of `deploy`
(5 minutes, flyctl's default `wait_timeout`, before that). Every call retried this way is idempotent
(cordon, uncordon, stop, destroy, waits), so a platform down for a minute does not fail a deploy whose
clean-up only had to wait. `clone_machines` is not idempotent and retries by count only
(`budget_ms=0`).
"""

from typing import Any, Callable, List, Optional, TypeVar

from componentize_py_types import Err
from wit_world.imports import runtime, types

from . import log, params
from .errors import describe_error, is_transient

T = TypeVar("T")


# Milliseconds an operation's transient errors are retried for, beyond the `retries` count.
_budget_ms = 300_000


def use_plan(plan: types.DeployPlan) -> None:
    """Retry idempotent calls for as long as this deploy's `wait_timeout` (call at the start of deploy)."""
    global _budget_ms
    _budget_ms = plan.wait_timeout_ms


def _backoff_ms(attempt: int) -> int:
    # Capped, so a platform that is down is still asked again every 10 s.
    return min(500 * attempt, 10_000)


def _backoff(attempt: int) -> None:
    # On the host's clock: instant under the simulator, real under the local platform and Fly.
    runtime.sleep(_backoff_ms(attempt))


def _allows(attempt: int, limit: int, started: List[int], budget_ms: Optional[int]) -> bool:
    # `started` holds the time of the first failure once there was one: the clock is read only then, so
    # a call that succeeds at once costs no extra host call.
    if not started:
        started.append(runtime.now())
    budget = _budget_ms if budget_ms is None else budget_ms
    return attempt <= limit or (budget > 0 and runtime.now() - started[0] < budget)


def _allows_in_pipeline(attempt: int, limit: int) -> bool:
    # A pipeline's machine is retried only once the whole call returns (its last machine done: a boot, a
    # drain), so its retries come a call apart: beyond `limit`, it goes again while the pauses before its
    # retries fit in the budget, as many tries as `retry_batch` would make, however long the calls.
    return attempt <= limit or sum(_backoff_ms(k) for k in range(1, attempt + 1)) < _budget_ms


def _label(attempt: int, limit: int) -> str:
    return f"retry {attempt}/{limit}" if attempt <= limit else f"retry {attempt} (within the time budget)"


def retry(
    call: Callable[[], T], what: str, retries: Optional[int] = None, budget_ms: Optional[int] = None
) -> T:
    """One host call that is not a batch (`machines.list`, `traffic.set_weights`), retried on
    `platform` errors; any other error, or the last transient one, is raised as the call raised it."""
    limit = params.retries() if retries is None else retries
    started: List[int] = []
    attempt = 0
    while True:
        try:
            return call()
        except Err as e:
            if not (is_transient(e.value) and _allows(attempt + 1, limit, started, budget_ms)):
                raise
            attempt += 1
            log.warn(f"{what} failed ({describe_error(e.value)}), {_label(attempt, limit)}")
            _backoff(attempt)


def retry_batch(
    op: Callable[..., None],
    ids: List[str],
    *args: Any,
    retries: Optional[int] = None,
    budget_ms: Optional[int] = None,
) -> List[types.MachineError]:
    """Run a batch call `op(ids, *args)` (machines.update, health.wait_healthy, traffic.cordon, ...),
    retrying the machines whose error was transient. Returns the lasting failures, lasting ones first;
    an empty list means every machine succeeded."""
    limit = params.retries() if retries is None else retries
    started: List[int] = []
    todo = list(ids)
    lasting: List[types.MachineError] = []
    attempt = 0
    while todo:
        try:
            op(todo, *args)
            break
        except Err as e:
            failures: List[types.MachineError] = list(e.value)
        transient = [f for f in failures if is_transient(f.error)]
        lasting.extend(f for f in failures if not is_transient(f.error))
        if not transient:
            break
        attempt += 1
        if not _allows(attempt, limit, started, budget_ms):
            lasting.extend(transient)
            break
        log.warn(
            f"{len(transient)} machine(s) hit a transient error, {_label(attempt, limit)}: "
            f"{describe_error(transient[0].error)}"
        )
        _backoff(attempt)
        todo = [f.id for f in transient]
    return lasting
