"""One ``/metrics`` for N worker processes: the supervisor merges theirs.

Each worker keeps its own registry (callback gauges and all) and serves it on
a private loopback port; the supervisor scrapes every worker and adds the
samples up, label set by label set. Why not prometheus-client's multiprocess
mode: it cannot carry the gauges read through ``set_function`` (the pool, the
connection gate), and it would put a file lock and an mmap write on the hot
path of every counter.

How each kind merges:

- counters and histograms add up; a ``_created`` stamp is the earliest one;
- gauges that count something per process (streams, connections, pool
  connections) add up; the few that describe the whole service are in
  GAUGE_MERGE (build info, the shared outbox's depth: every worker reads the
  same table, so adding would double count; the bus: connected only when every
  worker is);
- a worker that exits leaves its last scraped counters and histograms behind
  (``retire``), so totals never go backwards when a worker is restarted and no
  series disappears; what it counted after its last scrape is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Labels = tuple[tuple[str, str], ...]
SampleKey = tuple[str, Labels]

# Gauges that are one value for the whole service, not a per-process count.
GAUGE_MERGE: dict[str, Callable[[Iterable[float]], float]] = {
    "notify_build_info": max,
    "notify_bus_connected": min,
    "notify_outbox_entries": max,
    "notify_outbox_oldest_due_age_seconds": max,
}
_ADDED_UP = frozenset({"counter", "histogram", "summary"})


@dataclass(slots=True)
class _Family:
    name: str
    documentation: str
    type: str
    values: dict[SampleKey, list[float]] = field(default_factory=dict)


def parse(text: str) -> list[Metric]:
    """A worker's exposition, as metric families."""
    return list(text_string_to_metric_families(text))


class MetricsMerger:
    """Adds the workers' families together; remembers what exited workers counted."""

    def __init__(self) -> None:
        self._last: dict[int, list[Metric]] = {}  # by worker pid: its latest scrape
        self._retired: dict[str, _Family] = {}  # counters/histograms of exited workers

    def observed(self, pid: int, families: list[Metric]) -> None:
        self._last[pid] = families

    def last(self, pid: int) -> list[Metric] | None:
        return self._last.get(pid)

    def retire(self, pid: int) -> None:
        """The worker ``pid`` exited: keep its last counts, forget its gauges."""
        for family in self._last.pop(pid, []):
            if family.type not in _ADDED_UP:
                continue
            kept = self._retired.setdefault(
                family.name, _Family(family.name, family.documentation, family.type)
            )
            for sample in family.samples:
                _add(kept, sample)

    def merged(self, scrapes: Iterable[list[Metric]], extra: Iterable[Metric] = ()) -> list[Metric]:
        """Every family of every scrape (and the retired counts), merged by label set."""
        families: dict[str, _Family] = {}
        for name, retired in self._retired.items():
            families[name] = _Family(
                name,
                retired.documentation,
                retired.type,
                {key: list(values) for key, values in retired.values.items()},
            )
        for scrape in [*scrapes, list(extra)]:
            for metric in scrape:
                family = families.setdefault(
                    metric.name, _Family(metric.name, metric.documentation, metric.type)
                )
                for sample in metric.samples:
                    _add(family, sample)
        return [_combine(family) for family in families.values()]


def exposition(families: list[Metric]) -> bytes:
    """The Prometheus text format of already-collected families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _add(family: _Family, sample: Sample) -> None:
    key = (sample.name, tuple(sorted(sample.labels.items())))
    family.values.setdefault(key, []).append(sample.value)


def _combine(family: _Family) -> Metric:
    metric = Metric(family.name, family.documentation, family.type)
    for (name, labels), values in family.values.items():
        metric.add_sample(name, dict(labels), _reduce(family, name, values))
    return metric


def _reduce(family: _Family, sample_name: str, values: list[float]) -> float:
    if sample_name.endswith("_created"):
        return min(values)
    if family.type in _ADDED_UP:
        return sum(values)
    return float(GAUGE_MERGE.get(family.name, sum)(values))
