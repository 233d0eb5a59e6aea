"""Runs an A/B comparison: each measurement on the baseline's notifyd and on the working tree's.

The measurements and the load generators are this tree's (bench.registry),
for both sides; only the notifyd command differs (Settings.notifyd). The
runs alternate as bench.ab.schedule orders them, and each one prints a line
as it ends, so a long run shows its progress.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from bench import ab
from bench.baseline import Tree
from bench.measurements import Report, Settings
from bench.registry import run_one


def side_settings(settings: Settings, tree: Tree) -> Settings:
    """What one side's runs use: its own notifyd, and its own environment over ``--env``."""
    return dataclasses.replace(
        settings, notifyd=tree.command, server_env={**settings.server_env, **tree.env}
    )


def _run_line(run: ab.Run, repeat: int, report: Report, elapsed_s: float) -> str:
    figure = next((f for f in report.figures if f.target), None) or (
        report.figures[0] if report.figures else None
    )
    value = "no figures" if figure is None else f"{figure.value:,.2f} {figure.unit}".rstrip()
    flags = " NOISY" if report.noisy else ""
    failed = [text for text, ok in report.checks if not ok]
    if failed:
        flags += f" FAILED: {'; '.join(failed)[:300]}"
    return f"   {run.side:<8} {run.round + 1}/{repeat}: {value} ({elapsed_s:.0f} s){flags}"


def run(
    names: list[str],
    settings: Settings,
    repeat: int,
    trees: dict[ab.Side, Tree],
    json_path: Path | None,
    machine: dict[str, str],
) -> int:
    """Prints a table per measurement and a summary; 1 if any run failed a sanity check."""
    reports: dict[str, dict[ab.Side, list[Report]]] = {
        name: {side: [] for side in ab.SIDES} for name in names
    }
    comparisons: list[ab.Comparison] = []
    noisy_runs = 0
    for run_ in ab.schedule(names, repeat):
        if run_.round == 0 and run_.side == ab.SIDES[0]:
            print(f"\n-- A/B {run_.name} ...", flush=True)
        started = time.monotonic()
        report = run_one(run_.name, side_settings(settings, trees[run_.side]))
        noisy_runs += report.noisy
        reports[run_.name][run_.side].append(report)
        print(_run_line(run_, repeat, report, time.monotonic() - started), flush=True)
        if run_.side == ab.SIDES[-1] and run_.round == repeat - 1:
            sides = reports[run_.name]
            found = ab.compare(run_.name, sides["baseline"], sides["current"])
            comparisons += found
            print(ab.table(found), flush=True)
    print(f"\nA/B summary: {trees['current'].label} against {trees['baseline'].label}")
    print("ratio = current / baseline of the medians; verdict better/worse only when")
    print("every run of one side beats every run of the other, else overlap")
    print(ab.table(comparisons, measurement=True))
    failed = [
        (name, side, text)
        for name, sides in reports.items()
        for side, runs in sides.items()
        for report in runs
        for text, ok in report.checks
        if not ok
    ]
    if noisy_runs:
        print(f"{noisy_runs} run(s) were NOISY: other processes kept the machine busy")
    if failed:
        print(f"{len(failed)} sanity check(s) FAILED:")
        for name, side, text in failed:
            print(f"  - {name} ({side}): {text}")
    if json_path is not None:
        payload: dict[str, Any] = {
            "machine": machine,
            "settings": dataclasses.asdict(settings),
            "repeat": repeat,
            "sides": {side: dataclasses.asdict(tree) for side, tree in trees.items()},
            "comparisons": [c.as_dict() for c in comparisons],
            "reports": {
                name: {side: [dataclasses.asdict(r) for r in runs] for side, runs in sides.items()}
                for name, sides in reports.items()
            },
        }
        json_path.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if failed else 0
