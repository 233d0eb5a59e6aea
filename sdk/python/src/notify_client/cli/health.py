"""``notifyctl health``: /readyz, and a few /metrics families summed up.

The operations port (:9090) is plain HTTP, fetched with connect-python's
own HTTP client (pyqwest) so the CLI adds no second one; the exposition is
parsed with prometheus-client's parser rather than by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pyqwest import SyncClient


@dataclass(frozen=True)
class Health:
    ready: bool
    status: str
    reason: str
    metrics: dict[str, Any]


def check(base_url: str, timeout: float) -> Health:
    """Raises OSError-like pyqwest errors when the port cannot be reached."""
    client = SyncClient()
    ready = client.get(base_url.rstrip("/") + "/readyz", timeout=timeout)
    try:
        body = json.loads(ready.content)
    except ValueError:
        body = {}
    metrics = client.get(base_url.rstrip("/") + "/metrics", timeout=timeout)
    summary = summarize(metrics.content.decode()) if metrics.status == 200 else {}
    return Health(
        ready=ready.status == 200,
        status=str(body.get("status", f"HTTP {ready.status}")),
        reason=str(body.get("reason", "")),
        metrics=summary,
    )


def summarize(exposition: str) -> dict[str, Any]:
    """The figures an operator looks at first, from the Prometheus text format."""
    summary: dict[str, Any] = {
        "version": "",
        "driver": "",
        "streamsOpen": 0,
        "rpcRequests": 0,
        "rpcErrors": 0,
        "notificationsStored": 0,
        "deliveries": 0,
        "deliveryLatencyMeanSeconds": None,
    }
    latency_sum = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "notify_build_info":
                summary["version"] = labels.get("version", "")
                summary["driver"] = labels.get("driver", "")
            elif name == "notify_streams_open":
                summary["streamsOpen"] += int(value)
            elif name == "notify_rpc_requests_total":
                summary["rpcRequests"] += int(value)
                if labels.get("code") != "ok":
                    summary["rpcErrors"] += int(value)
            elif name == "notify_notifications_stored_total":
                summary["notificationsStored"] += int(value)
            elif name == "notify_delivery_latency_seconds_count":
                summary["deliveries"] += int(value)
            elif name == "notify_delivery_latency_seconds_sum":
                latency_sum += value
    if summary["deliveries"]:
        summary["deliveryLatencyMeanSeconds"] = latency_sum / summary["deliveries"]
    return summary
