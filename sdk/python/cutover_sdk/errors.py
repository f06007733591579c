"""The contract's typed errors: build them, describe them, add context without losing their kind.

The kind matters: the host reports `deploy`'s error by kind (a timeout is not a refusal), so context is
added to the message and the case is kept.
"""

from typing import List, NoReturn

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
