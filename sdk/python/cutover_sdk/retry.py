"""Retrying transient (`platform`) errors, the way the built-in strategies do.

Batch calls retry only the machines whose error was transient; machines that failed for good are set
aside and reported first, so the error a deploy ends with names what stopped it (a failing check), not
a 503 that happened beside it.
"""

from typing import Any, Callable, List, Optional, TypeVar

from componentize_py_types import Err
from wit_world.imports import runtime, types

from . import log, params
from .errors import describe_error, is_transient

T = TypeVar("T")


def _backoff(attempt: int) -> None:
    # On the host's clock: instant under the simulator, real under the local platform and Fly.
    runtime.sleep(500 * attempt)


def retry(call: Callable[[], T], what: str, retries: Optional[int] = None) -> T:
    """One host call that is not a batch (`machines.list`, `traffic.set_weights`), retried on
    `platform` errors; any other error, or the last transient one, is raised as the call raised it."""
    limit = params.retries() if retries is None else retries
    attempt = 0
    while True:
        try:
            return call()
        except Err as e:
            if not (is_transient(e.value) and attempt < limit):
                raise
            attempt += 1
            log.warn(f"{what} failed ({describe_error(e.value)}), retry {attempt}/{limit}")
            _backoff(attempt)


def retry_batch(
    op: Callable[..., None], ids: List[str], *args: Any, retries: Optional[int] = None
) -> List[types.MachineError]:
    """Run a batch call `op(ids, *args)` (machines.update, health.wait_healthy, traffic.cordon, ...),
    retrying the machines whose error was transient. Returns the lasting failures, lasting ones first;
    an empty list means every machine succeeded."""
    limit = params.retries() if retries is None else retries
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
        if attempt >= limit:
            lasting.extend(transient)
            break
        attempt += 1
        log.warn(
            f"{len(transient)} machine(s) hit a transient error, retry {attempt}/{limit}: "
            f"{describe_error(transient[0].error)}"
        )
        _backoff(attempt)
        todo = [f.id for f in transient]
    return lasting
