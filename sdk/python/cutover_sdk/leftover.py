"""Clean-up past the point of no return, as the Rust SDK's `leftover` module does it.

Once the new release took the traffic (green switched in, the last batch passed), what is left --
stopping and destroying the old machines, removing canaries -- is idempotent clean-up: retried for the
whole budget (`use_plan`), and when the platform stays down even past it, the deploy still succeeds.
The machines left are *leftovers*: each is tagged in its metadata `cutover_leftover = "<todo> by v<N>"`
with what is left to do and by which deploy, so that `cutover resume` (or the next deploy, with
`finish_earlier`) finds them by their tag and finishes them, whatever language the strategy was in.
"""

from typing import List

from componentize_py_types import Err
from wit_world.imports import machines, types

from . import log
from .batch import stop_machines
from .errors import describe_error
from .retry import retry_batch

LEFTOVER_KEY = "cutover_leftover"
"""The metadata key that marks a leftover; its value is `<todo> by v<version>`."""

STOP_AND_DESTROY = "stop-destroy"
"""An old machine that could not be stopped: stop it, then destroy it."""
DESTROY = "destroy"
"""A machine stopped already, or a removed canary: destroy it."""
STOP = "stop"
"""A machine to keep, stopped (a retired old machine kept for a rollback, a stand-in): stop it."""

_TODOS = (STOP_AND_DESTROY, DESTROY, STOP)


def _set_tags(ids: List[str], value: str) -> List[types.MachineError]:
    """Set `LEFTOVER_KEY` to `value` on every machine of `ids` ("" clears it), retried as one batch for
    the whole budget (tagging is idempotent); returns the machines left untagged."""

    def set_each(todo: List[str]) -> None:
        failed: List[types.MachineError] = []
        for id in todo:
            try:
                machines.set_metadata(id, LEFTOVER_KEY, value)
            except Err as e:
                failed.append(types.MachineError(id=id, error=e.value))
        if failed:
            raise Err(failed)

    return retry_batch(set_each, ids) if ids else []


def leave(plan: types.DeployPlan, failures: List[types.MachineError], todo: str, what: str) -> str:
    """Record `failures` as leftovers of this deploy: tag each machine and log what is left, then go on.
    Tagging is retried by the time budget, as one batch (a tag given up after a few 503s left a machine
    nothing could find again); the host records each tagging call, landed or not, with the release.
    Returns a sentence naming the machines and what is left to do."""
    if todo not in _TODOS:
        raise ValueError(f"todo must be one of {', '.join(_TODOS)}, not {todo!r}")
    value = f"{todo} by v{plan.target.version}"
    untagged = len(_set_tags([f.id for f in failures], value))
    ids = [f.id for f in failures]
    first = f" (machine {failures[0].id}: {describe_error(failures[0].error)})" if failures else ""
    note = (
        f"{len(ids)} {what} left to {todo.replace('-', ' and ')}: {', '.join(ids)}{first}; "
        f"v{plan.target.version} is serving. They are tagged {LEFTOVER_KEY}={value!r}"
        + (f" (tagging failed for {untagged})" if untagged else "")
    )
    log.warn(f"leftovers: {note}")
    return note


def todo_of(m: types.Machine) -> str:
    """What is left to do to `m` when an earlier deploy tagged it (one of the todo constants), or ""."""
    for key, value in m.metadata:
        if key == LEFTOVER_KEY and value:
            word = value.split()[0]
            return word if word in _TODOS else ""
    return ""


def finish_earlier(plan: types.DeployPlan, fleet: List[types.Machine]) -> List[types.Machine]:
    """Finish the leftovers earlier deploys tagged in `fleet`, and return the fleet without the ones
    gone or still to finish: a leftover is neither a machine to clone nor one to move. Machines to stop
    are stopped, untagged and kept; the others are stopped if need be and destroyed. What fails stays
    tagged for the next try."""
    left = [m for m in fleet if todo_of(m)]
    if not left:
        return fleet
    rest = [m for m in fleet if not todo_of(m)]
    log.info(f"finishing {len(left)} leftover machine(s) of earlier deploys (tagged {LEFTOVER_KEY})")
    to_stop = [m.id for m in left if todo_of(m) in (STOP, STOP_AND_DESTROY)]
    not_stopped = {f.id for f in stop_machines(to_stop, plan)} if to_stop else set()
    to_destroy = [
        m.id
        for m in left
        if todo_of(m) == DESTROY or (todo_of(m) == STOP_AND_DESTROY and m.id not in not_stopped)
    ]
    failed = retry_batch(machines.destroy, to_destroy) if to_destroy else []
    to_untag = [m.id for m in left if todo_of(m) == STOP and m.id not in not_stopped]
    still_tagged = {f.id for f in _set_tags(to_untag, "")}
    rest.extend(m for m in left if m.id in to_untag and m.id not in still_tagged)
    log.info(
        f"destroyed {len(to_destroy) - len(failed)} leftover machine(s) of earlier deploys; "
        f"{len(failed)} still tagged"
    )
    return rest
