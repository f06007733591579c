"""Logging and progress, as the deploy log and the journal show them.

Strategies have no stdout worth reading (the sandbox has no terminal): these lines are what the user sees.
"""

from wit_world.imports import runtime

Level = runtime.Level


def debug(message: str) -> None:
    runtime.log(Level.DEBUG, message)


def info(message: str) -> None:
    runtime.log(Level.INFO, message)


def warn(message: str) -> None:
    runtime.log(Level.WARN, message)


def error(message: str) -> None:
    runtime.log(Level.ERROR, message)


def phase(name: str) -> None:
    """Mark the start of a named phase ("region ams 1/3"); the UI and the journal time each phase."""
    runtime.phase(name)


def progress(done: int, total: int) -> None:
    """Progress within the current phase."""
    runtime.progress(done, total)


def human(ms: int) -> str:
    """A duration for logs: "250ms", "2.5s", "45s", "1m30s", "1h30m"."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 10_000 and ms % 1000:
        return f"{ms / 1000:.1f}s"
    s = (ms + 500) // 1000
    parts = [(s // 3600, "h"), (s // 60 % 60, "m"), (s % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)
