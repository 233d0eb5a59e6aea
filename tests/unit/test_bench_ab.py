"""The A/B bench's arithmetic: run order, medians, ratios, verdicts, the table (no processes)."""

from __future__ import annotations

import json

import pytest

from bench import ab
from bench.measurements import Figure, Report


def report(name: str, *figures: Figure) -> Report:
    return Report(name, "test", figures=list(figures))


def rps(value: float) -> Figure:
    return Figure("Notify, gRPC", value, "req/s", 5000)


def p99(value: float) -> Figure:
    return Figure("  latency p99", value, "ms")


def test_schedule_interleaves_the_sides_and_keeps_a_measurements_runs_together() -> None:
    order = [(run.name, run.round, run.side) for run in ab.schedule(["a", "b"], 2)]
    assert order == [
        ("a", 0, "baseline"),
        ("a", 0, "current"),
        ("a", 1, "baseline"),
        ("a", 1, "current"),
        ("b", 0, "baseline"),
        ("b", 0, "current"),
        ("b", 1, "baseline"),
        ("b", 1, "current"),
    ]


def test_schedule_runs_each_side_at_least_once() -> None:
    assert [run.side for run in ab.schedule(["a"], 0)] == ["baseline", "current"]


def test_medians_and_ratio_are_current_over_baseline() -> None:
    baseline = [report("g", rps(v), p99(p)) for v, p in [(100, 9.0), (300, 7.0), (200, 8.0)]]
    current = [report("g", rps(v), p99(p)) for v, p in [(250, 4.0), (350, 2.0), (400, 3.0)]]
    throughput, latency = ab.compare("g", baseline, current)
    assert throughput.label == "Notify, gRPC"
    assert (throughput.baseline, throughput.current) == ((100, 300, 200), (250, 350, 400))
    assert (throughput.baseline_median, throughput.current_median) == (200, 350)
    assert throughput.ratio == pytest.approx(1.75)
    assert throughput.higher_is_better
    assert throughput.verdict == "overlap"  # 250 is below the baseline's best, 300
    assert latency.label == "latency p99"
    assert latency.ratio == pytest.approx(3.0 / 8.0)
    assert not latency.higher_is_better
    assert latency.verdict == "better"  # every current p99 is below every baseline p99


def test_verdict_needs_the_runs_to_separate() -> None:
    def one(base: list[float], cur: list[float]) -> str:
        return ab.compare(
            "g", [report("g", rps(v)) for v in base], [report("g", rps(v)) for v in cur]
        )[0].verdict

    assert one([100, 110], [120, 130]) == "better"
    assert one([120, 130], [100, 110]) == "worse"
    assert one([100, 120], [110, 130]) == "overlap"
    assert one([100], [100]) == "overlap"


def test_direction_comes_from_the_target_then_from_the_unit() -> None:
    assert ab.higher_is_better(Figure("x", 1, "ms", 5.0, at_least=False)) is False
    assert ab.higher_is_better(Figure("x", 1, "req/s", 5000)) is True
    assert ab.higher_is_better(Figure("x", 1, "rows/s")) is True
    assert ab.higher_is_better(Figure("x", 1, "req/s")) is True
    assert ab.higher_is_better(Figure("x", 1, "ms")) is False
    assert ab.higher_is_better(Figure("x", 1, "KiB")) is False
    assert ab.higher_is_better(Figure("errors", 0, "", 0, at_least=False)) is False


def test_a_failed_run_adds_no_value_and_a_one_sided_figure_is_incomplete() -> None:
    failed = Report("g", "did not complete")
    failed.check("ServerError: notifyd did not start", False)
    extra = Figure("only now", 5, "ms")
    found = ab.compare("g", [report("g", rps(100)), failed], [report("g", rps(90), extra)])
    throughput, only_now = found
    assert throughput.baseline == (100,)
    assert throughput.ratio == pytest.approx(0.9)
    assert throughput.verdict == "worse"
    assert only_now.baseline == ()
    assert only_now.baseline_median is None
    assert only_now.ratio is None
    assert only_now.verdict == "incomplete"


def test_a_zero_baseline_has_no_ratio() -> None:
    zero = Figure("  non-2xx responses", 0, "", 0, at_least=False)
    (errors,) = ab.compare("g", [report("g", zero)], [report("g", zero)])
    assert errors.ratio is None
    assert errors.verdict == "overlap"


def test_repeated_labels_are_kept_apart() -> None:
    first, second = Figure("p50", 1.0, "ms"), Figure("p50", 2.0, "ms")
    found = ab.compare("g", [report("g", first, second)], [report("g", first, second)])
    assert [(c.label, c.baseline) for c in found] == [("p50", (1.0,)), ("p50 #2", (2.0,))]


def test_table_shows_medians_ratio_direction_verdict_and_runs() -> None:
    found = ab.compare(
        "grpc_notify",
        [report("g", rps(v), p99(p)) for v, p in [(1000, 9.5), (1200, 8.25)]],
        [report("g", rps(v), p99(p)) for v, p in [(1500, 4.0), (1700, 5.0)]],
    )
    line = next(row for row in ab.table(found).splitlines() if row.startswith("Notify, gRPC"))
    assert line.split() == [
        "Notify,", "gRPC", "req/s", "1,100", "1,600", "1.455", "higher", "better",
        "1,000", "1,200", "|", "1,500", "1,700",
    ]  # fmt: skip
    line = next(row for row in ab.table(found).splitlines() if row.startswith("latency p99"))
    assert line.split() == [
        "latency", "p99", "ms", "8.88", "4.50", "0.507", "lower", "better",
        "9.50", "8.25", "|", "4.00", "5.00",
    ]  # fmt: skip
    summary = ab.table(found, measurement=True)
    assert "grpc_notify: latency p99" in summary


def test_comparison_serialises_to_json() -> None:
    (throughput,) = ab.compare("g", [report("g", rps(100))], [report("g", rps(150))])
    assert json.loads(json.dumps(throughput.as_dict())) == {
        "measurement": "g",
        "figure": "Notify, gRPC",
        "unit": "req/s",
        "higher_is_better": True,
        "baseline_runs": [100],
        "current_runs": [150],
        "baseline_median": 100,
        "current_median": 150,
        "ratio": 1.5,
        "verdict": "better",
    }


def test_baseline_runs_default_to_three_per_side_and_do_not_profile() -> None:
    from bench.__main__ import _parse

    assert _parse([]).repeat == 1
    assert _parse(["--baseline", "HEAD"]).repeat == 3
    assert _parse(["--baseline", "HEAD", "--repeat", "5"]).repeat == 5
    with pytest.raises(SystemExit):
        _parse(["--baseline", "HEAD", "--profile"])
    with pytest.raises(SystemExit):
        _parse(["--baseline", "HEAD", "--repeat", "0"])


def test_current_env_is_for_ab_runs_only_and_takes_name_value() -> None:
    from bench.__main__ import _parse

    args = _parse(["--baseline", "HEAD", "--current-env", "NOTIFY_RATE_LIMIT_CLIENT=1/s"])
    assert args.current_env == ["NOTIFY_RATE_LIMIT_CLIENT=1/s"]
    with pytest.raises(SystemExit):
        _parse(["--current-env", "NOTIFY_RATE_LIMIT_CLIENT=1/s"])
    with pytest.raises(SystemExit):
        _parse(["--baseline", "HEAD", "--current-env", "NOTIFY_RATE_LIMIT_CLIENT"])
