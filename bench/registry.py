"""Every measurement by name, the set ``make bench`` runs, and how one is run."""

from __future__ import annotations

from collections.abc import Callable

from bench import delivery, inbox, live, measurements, postgres, workers
from bench.measurements import Report, Settings

MEASUREMENTS: dict[str, Callable[[Settings], Report]] = {
    "notify_http": measurements.notify_http,
    "grpc_notify": measurements.grpc_notify,
    "get_notifications": measurements.get_notifications,
    "streams": measurements.streams_grpc,
    "streams_connect": measurements.streams_connect,
    "streams_5k": live.streams_5k,
    "fanout_same_user": live.fanout_same_user,
    "resume": live.resume_memory,
    "pg_notify": postgres.pg_notify,
    "pg_fanout": postgres.pg_fanout,
    "pg_get_notifications": postgres.pg_get_notifications,
    "pg_resume": live.pg_resume,
    "inbox_rich": inbox.inbox_rich,
    "pg_inbox_rich": inbox.pg_inbox_rich,
    "inbox_rich_proto": inbox.inbox_rich_proto,
    "pg_inbox_rich_proto": inbox.pg_inbox_rich_proto,
    "mark_all": inbox.mark_all,
    "pg_mark_all": inbox.pg_mark_all,
    "email": delivery.email,
    "pg_email": delivery.pg_email,
    "webhook": delivery.webhook,
    "pg_webhook": delivery.pg_webhook,
    "email_cost": delivery.email_cost,
    "pg_email_cost": delivery.pg_email_cost,
    "pg_notify_workers": workers.pg_notify_workers,
    "pg_cross_replica": workers.pg_cross_replica,
    "pg_fanout_replicas": workers.pg_fanout_replicas,
}

DEFAULT = tuple(MEASUREMENTS)

# The ones that need wrk on the PATH (installed with apt-get if missing).
WRK_MEASUREMENTS = frozenset(
    {
        "notify_http",
        "get_notifications",
        "pg_notify",
        "pg_get_notifications",
        "inbox_rich",
        "pg_inbox_rich",
        "pg_notify_workers",
        "inbox_rich_proto",
        "pg_inbox_rich_proto",
    }
)


def run_one(name: str, settings: Settings) -> Report:
    """Runs one measurement; a failure becomes a report that says so."""
    try:
        return MEASUREMENTS[name](settings)
    except Exception as exc:  # one broken measurement must not hide the others
        failed = Report(name, "did not complete")
        failed.check(f"{type(exc).__name__}: {exc}", False)
        return failed
