"""Fleet helpers: batches sized by max_unavailable, grouping, and the waits every strategy takes.

Batch calls run concurrently in the host, so pass whole batches of ids rather than looping per machine.
"""

import math
from typing import Callable, Dict, Iterable, List, Optional, Tuple, TypeVar

from wit_world.imports import health, machines, types

from . import log, pipeline
from .retry import retry, retry_batch

T = TypeVar("T")
K = TypeVar("K")


def chunks(items: List[T], size: int) -> List[List[T]]:
    """`items` in consecutive batches of at most `size` (at least 1)."""
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)]


def group_by(items: Iterable[T], key: Callable[[T], K]) -> Dict[K, List[T]]:
    """Items by key, keys in sorted order (a stable order for deploys, whatever `list` returned)."""
    groups: Dict[K, List[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return {k: groups[k] for k in sorted(groups)}  # type: ignore[type-var]


def max_unavailable(plan: types.DeployPlan, group_size: int) -> int:
    """How many of `group_size` machines may be out of service at once under the plan's
    `max_unavailable` (a count, or a fraction rounded up), at least 1."""
    mu = plan.max_unavailable
    if isinstance(mu, types.MaxUnavailable_Count):
        n = mu.value
    else:
        n = math.ceil(mu.value * group_size - 1e-9)
    return max(1, min(n, max(group_size, 1)))


def should_run(state: types.MachineState) -> bool:
    """Whether a machine was meant to be serving (stopped and created machines were not)."""
    S = types.MachineState
    return state not in (S.STOPPED, S.SUSPENDED, S.CREATED)


def list_machines(retries: Optional[int] = None) -> List[types.Machine]:
    """Every machine of the app, retrying transient errors."""
    return retry(machines.list, "listing machines", retries)


def wait_serving(ids: List[str], timeout_ms: int, retries: Optional[int] = None) -> List[types.MachineError]:
    """Wait until `ids` are started, then until they pass their checks: the gate before traffic.
    Returns the failures of the first wait that failed (empty: all serving)."""
    failed = retry_batch(machines.wait_state, ids, types.MachineState.STARTED, timeout_ms, retries=retries)
    if failed:
        return failed
    return retry_batch(health.wait_healthy, ids, timeout_ms, retries=retries)


def stop_machines(ids: List[str], plan: types.DeployPlan, retries: Optional[int] = None) -> List[types.MachineError]:
    """Stop `ids` gracefully (the plan's kill signal and timeout) and wait until they are stopped. On
    contract 0.2 each machine is stopped and waited for on its own (`pipeline.retire`), and a machine
    whose wait timed out but that is down counts as stopped."""
    if pipeline.available():
        return pipeline.retire(ids, plan, False, retries=retries).not_stopped
    failed = retry_batch(machines.stop, ids, plan.kill_signal, plan.kill_timeout_ms, retries=retries)
    if failed:
        return failed
    return retry_batch(machines.wait_state, ids, types.MachineState.STOPPED, plan.wait_timeout_ms, retries=retries)


def clone_machines(
    sources: List[str], target: types.Release, routable: bool = False, retries: Optional[int] = None
) -> Tuple[Dict[str, str], List[types.MachineError]]:
    """Clone each source onto `target` (cordoned unless `routable`), re-cloning only sources that hit
    transient errors. Returns the clone of each source that got one, and the lasting failures."""
    clone_of: Dict[str, str] = {}

    def once(batch: List[str]) -> None:
        from componentize_py_types import Err, Ok

        failures = []
        for source, result in zip(batch, machines.clone_from(batch, target, routable)):
            if isinstance(result, Ok):
                clone_of[source] = result.value
            else:
                failures.append(types.MachineError(id=source, error=result.value))
        if failures:
            raise Err(failures)

    # A retried clone after a lost answer could make a second machine: by count only.
    failed = retry_batch(once, sources, retries=retries, budget_ms=0)
    if clone_of:
        log.debug(f"cloned {len(clone_of)} machine(s) onto v{target.version}")
    return clone_of, failed
