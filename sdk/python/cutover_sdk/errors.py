"""The contract's typed errors: build them, describe them, add context without losing their kind.

The kind matters: the host reports `deploy`'s error by kind (a timeout is not a refusal), so context is
added to the message and the case is kept.
"""

import functools
from typing import Any, Callable, List, NoReturn

from componentize_py_types import Err
from wit_world.imports import types

# Error case -> the words the host and the Rust strategies use for it.
_KINDS = {
    types.Error_NotFound: "not found",
    types.Error_Conflict: "conflict",
    types.Error_Timeout: "timed out",
    types.Error_Unhealthy: "unhealthy",
    types.Error_Platform: "platform error",
    types.Error_Denied: "denied",
    types.Error_Invalid: "invalid",
    types.Error_Unsupported: "unsupported",
}


def kind_of(e: types.Error) -> str:
    """The error's kind in words: "timed out", "unhealthy", ..."""
    return _KINDS.get(type(e), "error")


def describe_error(e: types.Error) -> str:
    """An error as a short sentence ("timed out: ...")."""
    return f"{kind_of(e)}: {e.value}"


def is_transient(e: types.Error) -> bool:
    """Whether retrying may help: `platform` errors are API hiccups, everything else is an answer."""
    return isinstance(e, types.Error_Platform)


def with_context(e: types.Error, context: str) -> types.Error:
    """The same kind of error, its message prefixed by `context`."""
    return type(e)(f"{context}: {describe_error(e)}")


def explain(failures: List[types.MachineError], context: str) -> types.Error:
    """One error for a failed batch, of the kind of the first machine's error, naming it and counting the rest."""
    first = failures[0]
    more = f" (and {len(failures) - 1} more machine(s))" if len(failures) > 1 else ""
    return type(first.error)(f"{context}: machine {first.id}: {describe_error(first.error)}{more}")


def fail(e: types.Error) -> NoReturn:
    """End `deploy` with `e` (what `raise Err(e)` does, spelled for readers)."""
    raise Err(e)


# How many failed machines an escaped batch failure names before counting the rest: enough to act on,
# short enough for a log line and the journal.
_NAMED_MACHINES = 10
# Frames of a plain exception's traceback kept in the error: where it was raised and what called it.
_FRAMES = 3


def batch_error(failures: List[types.MachineError], context: str = "") -> types.Error:
    """One error for a whole failed batch, of the kind of the first machine's error, naming every failed
    machine (up to ten) with its reason: what an escaped `Err([MachineError...])` becomes."""
    if not failures:
        return types.Error_Platform(f"{context or 'a batch call'} failed, naming no machine")
    named = "; ".join(f"{f.id}: {describe_error(f.error)}" for f in failures[:_NAMED_MACHINES])
    more = f"; and {len(failures) - _NAMED_MACHINES} more" if len(failures) > _NAMED_MACHINES else ""
    prefix = f"{context}: " if context else ""
    return type(failures[0].error)(f"{prefix}{len(failures)} machine(s) failed: {named}{more}")


def _is_contract_error(value: object) -> bool:
    return type(value) in _KINDS


def _is_batch(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, types.MachineError) for v in value)


def _short_traceback(exc: BaseException) -> str:
    # Walked by hand: componentize-py bundles only the modules imported at build time, and there are no
    # source files in the sandbox to show lines from. Frames as `file:line in function`, innermost first.
    frames = []
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_name == "guarded":
        tb = tb.tb_next  # the guard itself, not where it was raised
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return " <- ".join(reversed(frames[-_FRAMES:]))


def as_contract_error(exc: BaseException) -> types.Error:
    """The contract error an exception escaping `deploy` is reported as:

    - `Err(types.Error_*)`: that error, unchanged;
    - `Err([types.MachineError, ...])` (a batch call's failure): `batch_error`, naming the machines;
    - `Err(anything else)` or any other exception: a `platform` error (the contract has no kind for a
      bug in the strategy) with the exception's type, message and a short traceback.
    """
    if isinstance(exc, Err):
        value = exc.value
        if _is_contract_error(value):
            return value
        if _is_batch(value):
            return batch_error(value, "deploy let a batch failure escape")
        what = f"Err({value!r})"
    else:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    where = _short_traceback(exc)
    return types.Error_Platform(f"the strategy raised {what}" + (f" (at {where})" if where else ""))


def guard_deploy(deploy: Callable[..., None]) -> Callable[..., None]:
    """Wrap a `deploy` method so nothing but a contract error leaves it (see `as_contract_error`).

    Without it, an escaped batch failure (`Err` of a list) or a plain exception crashes inside the
    bindings' runtime (`KeyError(<class 'list'>)` and a wasm backtrace) instead of failing the deploy
    with a reason. `Strategy` applies it to every subclass's `deploy`; use it directly only on a
    `WitWorld` that does not subclass `Strategy`."""
    if getattr(deploy, "_cutover_guarded", False):
        return deploy

    @functools.wraps(deploy)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            deploy(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - everything must become the contract's error
            error = as_contract_error(exc)
            if isinstance(exc, Err) and exc.value is error:
                raise
            raise Err(error) from None

    guarded._cutover_guarded = True  # type: ignore[attr-defined]
    return guarded
