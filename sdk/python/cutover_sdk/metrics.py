"""Metrics (contract 0.2): Prometheus-compatible queries the host performs, and its statistical judge.

    from cutover_sdk import metrics
    now = runtime.now()
    canary = metrics.values(metrics.query_range(f'error_ratio{{version="{v}"}}', now - 300_000, now, 15_000))
    j = metrics.judge(canary, baseline)            # Kayenta's defaults: confidence 0.98, harm increase
    if j.verdict == metrics.Verdict.FAIL: ...

The host answers from `[cutover.metrics] url` (on the simulator, the scenario's `[[metrics]]`); a
query that fails raises `Err(types.Error_*)` like every host call: `unsupported` when no server is
configured, `invalid` for a query the server refuses, `timeout`, `platform`, `denied` when the sandbox
policy does not grant `metrics.*`.

The interface exists only in `cutover:strategy@0.2.0`. A strategy built against 0.1 (`-d wit` rather
than `-d wit/v0.2`) has no `metrics` import: `available()` is False there, and every function below
raises `Err(types.Error_Unsupported(...))` saying how to rebuild, rather than an `ImportError` at load.
"""

from typing import List, Optional, Sequence

from componentize_py_types import Err
from wit_world.imports import types

try:  # present only when componentize-py built the 0.2 world
    from wit_world.imports import metrics as _wit
except ImportError:  # a 0.1 build
    _wit = None

if _wit is not None:
    Point = _wit.Point
    Series = _wit.Series
    Harm = _wit.Harm
    Verdict = _wit.Verdict
    Judgment = _wit.Judgment
    JudgeOptions = _wit.JudgeOptions

# Kayenta's defaults, as the contract documents them.
DEFAULT_CONFIDENCE = 0.98
DEFAULT_TOLERANCE = 0.25

_NOT_0_2 = (
    "metrics needs contract cutover:strategy@0.2.0, and this strategy was built against 0.1.0: "
    "build it with `componentize-py -d wit/v0.2 -w strategy ...` (wit/v0.2 is in every project "
    "`cutover new` makes)"
)


def available() -> bool:
    """Whether this build has the metrics interface (built against contract 0.2)."""
    return _wit is not None


def _need() -> None:
    if _wit is None:
        raise Err(types.Error_Unsupported(_NOT_0_2))


def query(promql: str, time_ms: Optional[int] = None) -> "List[Series]":
    """The value of `promql` at `time_ms` (ms since the epoch; None: now on the host's clock)."""
    _need()
    return _wit.query(promql, time_ms)


def query_range(promql: str, start_ms: int, end_ms: int, step_ms: int) -> "List[Series]":
    """The values of `promql` from `start_ms` to `end_ms` every `step_ms` (all in ms)."""
    _need()
    return _wit.query_range(promql, max(0, start_ms), max(0, end_ms), max(1, step_ms))


def values(series: "Sequence[Series]") -> List[float]:
    """Every point's value of every series, in order: what `judge` takes."""
    return [p.value for s in series for p in s.points]


def labels(series: "Series") -> dict:
    """A series' labels as a dict."""
    return dict(series.labels)


def judge(
    canary: Sequence[float],
    baseline: Sequence[float],
    confidence: float = DEFAULT_CONFIDENCE,
    harm: str = "increase",
    tolerance: float = DEFAULT_TOLERANCE,
    min_effect: float = 0.0,
) -> "Judgment":
    """Canary against baseline with the host's Mann–Whitney U judge; `harm` is "increase" (higher is
    worse: errors, latency), "decrease" or "either". The host checks the values and options and raises
    `Err(types.Error_Invalid(...))` naming what is wrong."""
    _need()
    harms = {"increase": _wit.Harm.INCREASE, "decrease": _wit.Harm.DECREASE, "either": _wit.Harm.EITHER}
    if harm not in harms:
        raise Err(types.Error_Invalid(f"judge: harm must be one of increase, decrease, either, not {harm!r}"))
    options = _wit.JudgeOptions(
        confidence=float(confidence), harm=harms[harm], tolerance=float(tolerance), min_effect=float(min_effect)
    )
    return _wit.judge([float(v) for v in canary], [float(v) for v in baseline], options)


def verdict_name(j: "Judgment") -> str:
    """"pass", "marginal" or "fail"."""
    return j.verdict.name.lower()
