"""The arithmetic of an A/B run: the run order, the medians, the ratios, the table.

``python -m bench --baseline REV`` runs every measurement on two notifyds,
the baseline's and the working tree's, alternately (A B A B ...), so that
whatever else the machine is doing lands on both about equally. This module
holds no processes: it decides the order and turns the two lists of Reports
into one comparison per figure, so it can be tested on its own.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bench.measurements import Figure, Report

Side = Literal["baseline", "current"]
SIDES: tuple[Side, Side] = ("baseline", "current")
# Units where more is better when a figure has no target to say so.
_MORE_IS_BETTER = frozenset({"req/s", "rows/s"})


@dataclass(frozen=True, slots=True)
class Run:
    """One measurement on one side: the ``round``-th of ``name`` on ``side``."""

    name: str
    round: int
    side: Side


def schedule(names: Sequence[str], repeat: int) -> list[Run]:
    """Each measurement in turn, its runs interleaved: baseline, current, baseline, ...

    A measurement's runs stay together (not all of one side first), so a
    neighbour that is busy for a minute slows both sides, not one.
    """
    rounds = max(1, repeat)
    return [Run(name, index, side) for name in names for index in range(rounds) for side in SIDES]


def higher_is_better(figure: Figure) -> bool:
    """A target says which way is better; without one, throughput is, anything else is not."""
    if figure.target is not None:
        return figure.at_least
    return figure.unit in _MORE_IS_BETTER


def _figures(report: Report) -> dict[str, Figure]:
    """A report's figures by label (a repeated label gets " #2", " #3" ...)."""
    found: dict[str, Figure] = {}
    for figure in report.figures:
        label = figure.label.strip()
        key, count = label, 1
        while key in found:
            count += 1
            key = f"{label} #{count}"
        found[key] = figure
    return found


@dataclass(frozen=True, slots=True)
class Comparison:
    """One figure of one measurement, on both sides."""

    measurement: str
    label: str
    unit: str
    higher_is_better: bool
    baseline: tuple[float, ...]
    current: tuple[float, ...]

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def current_median(self) -> float | None:
        return statistics.median(self.current) if self.current else None

    @property
    def ratio(self) -> float | None:
        """current / baseline of the medians (None when either is missing or the baseline is 0)."""
        base, cur = self.baseline_median, self.current_median
        if base is None or cur is None or base == 0:
            return None
        return cur / base

    @property
    def verdict(self) -> str:
        """``better``/``worse`` only when every current run beats (or loses to) every baseline run.

        Anything else is ``overlap``: the runs do not separate the two sides,
        so the change did not move this figure by more than the noise.
        """
        if not self.baseline or not self.current:
            return "incomplete"
        if min(self.current) > max(self.baseline):
            return "better" if self.higher_is_better else "worse"
        if max(self.current) < min(self.baseline):
            return "worse" if self.higher_is_better else "better"
        return "overlap"

    def as_dict(self) -> dict[str, Any]:
        return {
            "measurement": self.measurement,
            "figure": self.label,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "baseline_runs": list(self.baseline),
            "current_runs": list(self.current),
            "baseline_median": self.baseline_median,
            "current_median": self.current_median,
            "ratio": self.ratio,
            "verdict": self.verdict,
        }


def compare(name: str, baseline: Sequence[Report], current: Sequence[Report]) -> list[Comparison]:
    """One Comparison per figure of ``name``, in the order the reports list them.

    A run that did not complete has no figures and adds no value; a figure
    that only one side reports still gets a row (its verdict: incomplete).
    """
    sides = {"baseline": [_figures(r) for r in baseline], "current": [_figures(r) for r in current]}
    labels: dict[str, Figure] = {}
    for figures in sides["baseline"] + sides["current"]:
        for label, figure in figures.items():
            labels.setdefault(label, figure)
    return [
        Comparison(
            measurement=name,
            label=label,
            unit=first.unit,
            higher_is_better=higher_is_better(first),
            baseline=tuple(f[label].value for f in sides["baseline"] if label in f),
            current=tuple(f[label].value for f in sides["current"] if label in f),
        )
        for label, first in labels.items()
    ]


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "KiB"):
        return f"{value:.2f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _runs(values: Sequence[float], unit: str) -> str:
    return " ".join(_number(value, unit) for value in values) or "-"


def table(comparisons: Sequence[Comparison], *, measurement: bool = False) -> str:
    """The A/B table: one row per figure, medians, ratio, which way is better, the runs.

    ``measurement``: prefix each figure with its measurement's name (for a
    summary of several, where labels such as "latency p50" repeat).
    """
    head = ("Figure", "Unit", "Baseline", "Current", "Ratio", "Better", "Verdict", "Runs (B | C)")
    rows = [head]
    for c in comparisons:
        rows.append(
            (
                f"{c.measurement}: {c.label}" if measurement else c.label,
                c.unit or "count",
                _number(c.baseline_median, c.unit),
                _number(c.current_median, c.unit),
                "-" if c.ratio is None else f"{c.ratio:.3f}",
                "higher" if c.higher_is_better else "lower",
                c.verdict,
                f"{_runs(c.baseline, c.unit)} | {_runs(c.current, c.unit)}",
            )
        )
    widths = [max(len(row[col]) for row in rows) for col in range(len(head))]
    rule = "  ".join("-" * width for width in widths)
    lines = [rule]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines)
