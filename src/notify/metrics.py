"""Prometheus metrics, one registry per server instance.

Keeping a registry per instance (not prometheus-client's global one) lets
several servers share a process, as the tests do, without mixing counts.
No label ever carries a tenant or user id: every label set is bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from notify import __version__

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rpc_requests = Counter(
            "notify_rpc_requests",
            "RPCs handled, by procedure, protocol and resulting code.",
            ["procedure", "protocol", "code"],
            registry=r,
        )
        self.rpc_duration = Histogram(
            "notify_rpc_duration_seconds",
            "Time from request start to the end of the response (streams: their whole life).",
            ["procedure", "protocol", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.notifications_stored = Counter(
            "notify_notifications_stored",
            "Notification rows newly stored, by channel and resulting status.",
            ["channel", "status"],
            registry=r,
        )
        self.streams_open = Gauge(
            "notify_streams_open",
            "Live StreamEvents sessions open now, by device type.",
            ["device_type"],
            registry=r,
        )
        self.stream_events_sent = Counter(
            "notify_stream_events_sent",
            "Events written to live streams, by kind.",
            ["kind"],
            registry=r,
        )
        self.streams_ended = Counter(
            "notify_streams_ended",
            "Live streams ended, by reason.",
            ["reason"],
            registry=r,
        )
        self.data_change_redeliveries = Counter(
            "notify_data_change_redeliveries",
            "Data-change events sent again to sessions that had not acked them.",
            registry=r,
        )
        self.data_change_give_ups = Counter(
            "notify_data_change_give_ups",
            "Sessions a data-change round stopped retrying without an ack.",
            registry=r,
        )
        self.delivery_latency = Histogram(
            "notify_delivery_latency_seconds",
            "Time from Notify storing a row to its frame being handed to the stream.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_duration = Histogram(
            "notify_store_operation_duration_seconds",
            "Time spent in each store operation, by operation and driver.",
            ["operation", "driver"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_pool = Gauge(
            "notify_store_pool_connections",
            "Database pool connections: in_use now, and size (open, in use or idle).",
            ["state"],
            registry=r,
        )
        self.build_info = Gauge(
            "notify_build_info",
            "Always 1; the labels say which build and store driver run.",
            ["version", "driver"],
            registry=r,
        )
        self.bus_connected = Gauge(
            "notify_bus_connected",
            "1 while this replica listens on the bus (always 1 for the in-process bus).",
            registry=r,
        )
        self.bus_reconnects = Counter(
            "notify_bus_reconnects",
            "Times the bus connection was re-established after a drop.",
            registry=r,
        )
        self.bus_catch_ups = Counter(
            "notify_bus_catch_ups",
            "Catch-ups of this replica's live sessions from the store after a bus drop.",
            registry=r,
        )
        self.bus_caught_up_rows = Counter(
            "notify_bus_caught_up_rows",
            "Notifications pushed to live sessions by catch-ups (missed while the bus was down).",
            registry=r,
        )
        # --- hardening: connection limits (docs/security.md)
        self.connections_open = Gauge(
            "notify_connections_open",
            "TCP connections open now on the API ports (the NOTIFY_MAX_CONNECTIONS gate).",
            registry=r,
        )
        self.connections_refused = Counter(
            "notify_connections_refused",
            "Connections refused at accept, by the cap that refused them.",
            ["reason"],
            registry=r,
        )
        self.connections_cut = Counter(
            "notify_connections_cut",
            "Connections closed for a limit: sniff or header timeout, headers too large.",
            ["reason"],
            registry=r,
        )
        # --- end hardening
        self.delivery_sends = Counter(
            "notify_delivery_sends",
            "External sends recorded, by provider and outcome (delivered, failed, retried).",
            ["provider", "outcome"],
            registry=r,
        )
        self.delivery_attempts = Histogram(
            "notify_delivery_attempts",
            "Sends it took an external row to end DELIVERED or FAILED, by provider.",
            ["provider"],
            buckets=(1, 2, 3, 4, 5, 6, 8, 12, 16),
            registry=r,
        )
        self.delivery_send_duration = Histogram(
            "notify_delivery_send_duration_seconds",
            "Time one external send took (SMTP transaction, webhook POST), by provider.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.push_device_results = Counter(
            "notify_push_device_results",
            "Pushes to one device (a push row fans out to all of a user's), by sender and"
            " outcome (accepted, gone, transient, permanent).",
            ["sender", "outcome"],
            registry=r,
        )
        self.outbox_entries = Gauge(
            "notify_outbox_entries",
            "External sends queued (due, leased or waiting for a retry), by channel.",
            ["channel"],
            registry=r,
        )
        self.outbox_oldest_due_age = Gauge(
            "notify_outbox_oldest_due_age_seconds",
            "How long the longest-waiting due entry has been due, by channel (0: none due).",
            ["channel"],
            registry=r,
        )
        self._version = __version__

    def set_build_info(self, driver: str) -> None:
        self.build_info.labels(version=self._version, driver=driver).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
