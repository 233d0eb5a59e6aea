"""Turns the measurements' Reports into the text the bench prints."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from bench.measurements import Figure, Report


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    virtual = "hypervisor" in Path("/proc/cpuinfo").read_text()
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpus": str(os.cpu_count()),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu model": model + (" (virtual machine)" if virtual else ""),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": _git_describe(),
    }


def _git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def _value(figure: Figure) -> str:
    if figure.unit == "req/s":
        return f"{figure.value:,.0f} req/s"
    if figure.unit == "ms":
        return f"{figure.value:.2f} ms"
    if figure.unit == "KiB":
        return f"{figure.value:.1f} KiB"
    if figure.unit == "x":  # a ratio
        return f"{figure.value:.2f}x"
    if figure.unit == "us":
        return f"{figure.value:.1f} us"
    return f"{figure.value:,.0f} {figure.unit}".rstrip()


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    sign = ">=" if figure.at_least else "<="
    if figure.unit == "req/s":
        return f"{sign} {figure.target:,.0f} req/s"
    unit = f" {figure.unit}" if figure.unit else ""
    return f"{sign} {figure.target:g}{unit}"


def _ratio(figure: Figure) -> str:
    if figure.target is None:
        return ""
    if figure.target == 0:
        return "met" if figure.meets else "MISSED"
    ratio = figure.ratio or 0.0
    return f"{ratio:.2f}x {'met' if figure.meets else 'MISSED'}"


def _headline(report: Report) -> Figure | None:
    """The figure a run is ranked by: its first one with a target."""
    return next(
        (f for f in report.figures if f.target), report.figures[0] if report.figures else None
    )


def median_run(runs: list[Report]) -> Report:
    """The run with the median headline figure, noting the others' values and failures."""
    if len(runs) == 1:
        return runs[0]
    scored = [(_headline(run), run) for run in runs]
    complete = sorted(
        ((figure.value, run) for figure, run in scored if figure is not None), key=lambda x: x[0]
    )
    chosen = complete[len(complete) // 2][1] if complete else runs[0]
    headline = _headline(chosen)
    if headline is not None:
        values = ", ".join(_value(f) for f, _ in scored if f is not None)
        chosen.details.insert(
            0, f"{len(runs)} runs, {headline.label.strip()}: {values}; the median run is shown"
        )
    for run in runs:
        if run is not chosen:
            chosen.checks += [(f"(another run) {text}", ok) for text, ok in run.checks if not ok]
    return chosen


def section(report: Report, elapsed_s: float) -> str:
    lines = [f"== {report.name}: {report.title} ({elapsed_s:.0f} s)"]
    for figure in report.figures:
        extra = ""
        if figure.target is not None:
            extra = f"   target {_target(figure)} -> {_ratio(figure)}"
        lines.append(f"   {figure.label.strip():<50} {_value(figure):>14}{extra}")
    lines += [f"   - {detail}" for detail in report.details]
    lines += [f"   [{'ok' if ok else 'FAIL'}] {text}" for text, ok in report.checks]
    lines += [f"   {line}" for line in report.profile]
    return "\n".join(lines)


def summary(reports: list[Report]) -> str:
    rows = [("Measurement", "Measured", "Target", "Measured/target")]
    for report in reports:
        for figure in report.figures:
            label = figure.label + (" (noisy)" if report.noisy else "")
            rows.append((label, _value(figure), _target(figure), _ratio(figure)))
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    rule = "  ".join("-" * width for width in widths)
    out = [rule]
    for index, row in enumerate(rows):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            out.append(rule)
    out.append(rule)
    if any(report.noisy for report in reports):
        out.append("(noisy): other processes kept the machine busy during that measurement")
    failed = [text for report in reports for text, ok in report.checks if not ok]
    if failed:
        out.append(f"{len(failed)} sanity check(s) FAILED:")
        out += [f"  - {text}" for text in failed]
    else:
        out.append(f"all {sum(len(r.checks) for r in reports)} sanity checks passed")
    return "\n".join(out)
