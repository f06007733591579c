"""Strategy parameters: declare them in `describe()` (`spec_*`), read them in `deploy` (getters).

The host checks config values against the declared kinds before `deploy` runs and fills in defaults, so
the getters' own defaults only matter when a parameter was not declared; they keep a strategy total.
"""

from typing import List, Optional, Union

from wit_world.imports import runtime, types

DEFAULT_RETRIES = 3


def get(name: str) -> Optional[types.ParamValue]:
    """The raw value of a parameter (config or declared default); None if unknown."""
    return runtime.param(name)


def boolean(name: str, default: bool) -> bool:
    v = get(name)
    return v.value if isinstance(v, types.ParamValue_Boolean) else default


def integer(name: str, default: int) -> int:
    v = get(name)
    return v.value if isinstance(v, types.ParamValue_Integer) else default


def number(name: str, default: float) -> float:
    """A float parameter (an integer in config is accepted as a float)."""
    v = get(name)
    if isinstance(v, (types.ParamValue_Float, types.ParamValue_Integer)):
        return float(v.value)
    return default


def text(name: str, default: str) -> str:
    v = get(name)
    return v.value if isinstance(v, types.ParamValue_Text) else default


def duration_ms(name: str, default: int) -> int:
    """A duration parameter ("30s", "5m" in config) in milliseconds."""
    v = get(name)
    return v.value if isinstance(v, types.ParamValue_DurationMs) else default


def integers(name: str, default: List[int]) -> List[int]:
    v = get(name)
    return list(v.value) if isinstance(v, types.ParamValue_Integers) else list(default)


def words(name: str, default: List[str]) -> List[str]:
    """A text parameter read as a list: "ams, iad sin" -> ["ams", "iad", "sin"]."""
    raw = text(name, "")
    found = [w for w in raw.replace(",", " ").split() if w]
    return found or list(default)


def retries() -> int:
    """The `retries` parameter (see `spec_retries`), never negative."""
    return max(0, integer("retries", DEFAULT_RETRIES))


def _spec(name: str, kind: types.ParamKind, default: Optional[types.ParamValue], summary: str) -> types.ParamSpec:
    return types.ParamSpec(name=name, kind=kind, default=default, summary=summary)


def spec_boolean(name: str, default: Optional[bool], summary: str) -> types.ParamSpec:
    d = None if default is None else types.ParamValue_Boolean(default)
    return _spec(name, types.ParamKind.BOOLEAN, d, summary)


def spec_integer(name: str, default: Optional[int], summary: str) -> types.ParamSpec:
    d = None if default is None else types.ParamValue_Integer(default)
    return _spec(name, types.ParamKind.INTEGER, d, summary)


def spec_float(name: str, default: Optional[float], summary: str) -> types.ParamSpec:
    d = None if default is None else types.ParamValue_Float(default)
    return _spec(name, types.ParamKind.FLOAT, d, summary)


def spec_text(name: str, default: Optional[str], summary: str) -> types.ParamSpec:
    d = None if default is None else types.ParamValue_Text(default)
    return _spec(name, types.ParamKind.TEXT, d, summary)


def spec_duration(name: str, default_ms: Optional[int], summary: str) -> types.ParamSpec:
    d = None if default_ms is None else types.ParamValue_DurationMs(default_ms)
    return _spec(name, types.ParamKind.DURATION, d, summary)


def spec_integers(name: str, default: Optional[List[int]], summary: str) -> types.ParamSpec:
    d = None if default is None else types.ParamValue_Integers(list(default))
    return _spec(name, types.ParamKind.INTEGERS, d, summary)


def spec_retries() -> types.ParamSpec:
    """The `retries` parameter every built-in declares (and the example fly.toml sets)."""
    return spec_integer("retries", DEFAULT_RETRIES, "How often a machine operation is retried after a transient platform error.")


Number = Union[int, float]
