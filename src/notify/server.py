"""Wires the service together and runs its lifecycle.

Three listeners in one process share one store and one hub: the client port
(NotificationClientService), the internal port (NotificationInternalService)
and the operations port (health, readiness, metrics). Shutdown drains:
readiness turns 503, the API ports stop accepting, live streams end with
UNAVAILABLE so clients reconnect elsewhere, in-flight unary calls finish,
and the process exits within NOTIFY_SHUTDOWN_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass

from elloloop.notify.v1 import notify_pb2
from elloloop.notify.v1.notify_connect import (
    NotificationClientServiceASGIApplication,
    NotificationInternalServiceASGIApplication,
)

from notify import __version__, gcpolicy, logs
from notify.api.client import ClientService
from notify.api.compression import BoundedGzip
from notify.api.cors import CORSMiddleware  # CORS (browser clients)
from notify.api.interceptors import interceptors_for
from notify.api.internal import INTERNAL_TOKEN_HEADER, InternalService
from notify.api.limits import (
    LimitsMiddleware,
    RequestLimits,
    bearer_precheck,
    internal_token_precheck,
)
from notify.api.observe import ObservedApp
from notify.api.sse import EVENTS_PATH, EventStreamApp
from notify.auth import ClientAuthenticator, InternalAuthenticator
from notify.config import Config
from notify.core.clock import Clock, SystemClock
from notify.core.model import DeviceType
from notify.core.ports import Bus
from notify.core.ratelimit import RateLimiter
from notify.delivery.factory import ExternalProviders
from notify.delivery.inapp import InAppProvider
from notify.delivery.registry import ProviderRegistry
from notify.health import HealthApp
from notify.http import patches
from notify.http.gate import ConnectionGate
from notify.http.listener import ConnectionLimits, Listener
from notify.metrics import Metrics
from notify.realtime.bus import BusClient
from notify.realtime.datachange import DataChangeRounds
from notify.realtime.factory import BusDriver, build_bus
from notify.realtime.hub import CloseReason, Hub, Session
from notify.realtime.relay import LiveRelay
from notify.service.dispatcher import Dispatcher, DispatchPolicy
from notify.service.live import LiveStreams
from notify.service.notifier import Notifier
from notify.service.scheduler import Scheduler
from notify.store import Store
from notify.store.factory import open_store
from notify.store.instrumented import InstrumentedStore
from notify.workers import WORKER_METRICS_HOST

logger = logging.getLogger("notify.server")
# Start and stop lines (version, driver, ports) are written at every log
# level: operators and tools read the bound ports from them.
lifecycle = logging.getLogger("notify.lifecycle")


@dataclass(frozen=True, slots=True)
class Ports:
    client: int
    internal: int
    metrics: int


class NotifyServer:
    """The running service. ``start`` binds; ``shutdown`` drains and closes."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock | None = None,
        bus: Bus | None = None,
    ) -> None:
        patches.apply()
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.metrics = Metrics()
        self.metrics.set_build_info(store.driver)
        self.store: Store = InstrumentedStore(store, self.metrics.store_duration)
        for state, read in store.gauges().items():
            self.metrics.store_pool.labels(state=state).set_function(read)
        # The bus: given (tests), or the one the configuration names.
        self._bus_driver: BusDriver | None = None
        if bus is None:
            self._bus_driver = build_bus(config, self.metrics)
            bus = self._bus_driver.bus
        self.bus: Bus = bus
        self.hub = Hub(
            heartbeat_interval=config.live_heartbeat_interval,
            queue_size=config.live_queue_size,
            max_per_user=config.live_max_streams_per_user,
            max_age=config.live_max_stream_age,
            on_change=self._session_changed,
            clock=self.clock,
            max_streams=config.live_max_streams,
        )
        self.rounds = DataChangeRounds(
            self.hub,
            retry_interval=config.live_retry_interval,
            max_attempts=config.live_retry_max_attempts,
            on_redeliver=self.metrics.data_change_redeliveries.inc,
            on_give_up=self.metrics.data_change_give_ups.inc,
            clock=self.clock,
        )
        # The live side of the bus: this process's sessions answer for themselves.
        self.relay = LiveRelay(self.bus, self.hub, self.rounds, self.clock)
        expected_replies = None
        if self._bus_driver is not None:
            self._bus_driver.bind(self.hub, self.store, self.clock)
            expected_replies = self._bus_driver.expected_replies
        bus_client = BusClient(self.bus, expected_replies)
        # --- delivery: external channels go out from the outbox, never inline.
        self.external = ExternalProviders(
            config, self.clock, devices=self.store, metrics=self.metrics
        )
        self.providers = ProviderRegistry([InAppProvider(bus_client), *self.external.providers])
        self.notifier = Notifier(
            self.store,
            self.providers,
            bus_client,
            self.hub,
            self.metrics,
            self.clock,
            max_replay=config.live_max_replay,
            retention_ms=int(config.retention * 1000),
            allow_insecure_webpush=config.webpush_allow_insecure,
            recipients=RateLimiter(
                config.rate_limit_recipients, self.clock, what="Notify recipients per tenant"
            ),
        )
        self.scheduler = Scheduler(self.notifier, self.clock)
        self.dispatcher = Dispatcher(
            self.store,
            self.external.providers,
            self.clock,
            self.metrics,
            DispatchPolicy.from_config(config),
        )
        self.notifier.on_outbox = self.dispatcher.poke
        self._shutting_down = False
        self._listening = False
        self.client_auth = client_auth = ClientAuthenticator(config)
        internal_auth = InternalAuthenticator(config)
        # --- hardening: limits before work (docs/security.md)
        gzip = [BoundedGzip(config.max_request_bytes, config.max_decompression_ratio)]
        limits = RequestLimits(
            max_request_bytes=config.max_request_bytes,
            max_header_bytes=config.max_header_bytes,
            max_headers=config.max_headers,
            body_timeout=config.http_body_timeout,
        )
        # --- end hardening
        client_limiter = RateLimiter(config.rate_limit_client, self.clock, what="calls per user")
        client_service = ClientService(
            self.notifier,
            self.metrics,
            self.clock,
            live_enabled=config.live_connections_enabled,
        )
        client_app = NotificationClientServiceASGIApplication(
            client_service,
            interceptors=interceptors_for(
                lambda headers: client_auth.authenticate(headers.get("authorization")),
                # Unary calls may wait for a JWKS refresh (a key rotated a moment ago).
                authenticate_async=lambda headers: client_auth.authenticate_async(
                    headers.get("authorization")
                ),
                limiter=client_limiter,
            ),
            read_max_bytes=config.max_request_bytes,
            compressions=gzip,
        )
        internal_app = NotificationInternalServiceASGIApplication(
            InternalService(self.notifier, self.clock),
            interceptors=interceptors_for(
                lambda headers: internal_auth.check(headers.get(INTERNAL_TOKEN_HEADER)),
                limiter=RateLimiter(config.rate_limit_producer, self.clock, what="producer calls"),
            ),
            read_max_bytes=config.max_request_bytes,
            compressions=gzip,
        )
        internal_precheck = None if config.dev_mode else internal_token_precheck
        client_rpcs = _procedures("NotificationClientService")
        internal_rpcs = _procedures("NotificationInternalService")
        # --- Server-Sent Events: GET /v1/events beside the Connect app, same stream code.
        events_app = EventStreamApp(
            client_app,
            LiveStreams(
                self.notifier, self.metrics, self.clock, enabled=config.live_connections_enabled
            ),
            client_auth.authenticate_async,
            client_limiter,
            frames=client_service.frames,
        )
        self._client_app = ObservedApp(
            LimitsMiddleware(events_app, limits, bearer_precheck, procedures=client_rpcs),
            self.metrics,
            [*client_rpcs, EVENTS_PATH],
            event_streams=[EVENTS_PATH],
        )
        self._internal_app = ObservedApp(
            LimitsMiddleware(internal_app, limits, internal_precheck, procedures=internal_rpcs),
            self.metrics,
            internal_rpcs,
        )
        # --- CORS (browser clients): outside ObservedApp, so preflights are not RPCs.
        client_with_cors = CORSMiddleware(self._client_app, config.allowed_origins)
        # --- end CORS
        # --- hardening: one connection gate for both API ports; the metrics
        # port stays reachable under a flood (never expose it).
        gate = ConnectionGate(
            config.max_connections,
            config.max_connections_per_ip,
            on_refused=lambda reason: self.metrics.connections_refused.labels(reason).inc(),
        )
        self.metrics.connections_open.set_function(lambda: gate.open)
        connection_limits = ConnectionLimits(
            idle_timeout=config.http_idle_timeout,
            header_timeout=config.http_header_timeout,
            max_header_bytes=config.max_header_bytes,
            write_delay=config.http_write_delay,
        )

        def on_cut(reason: str) -> None:
            self.metrics.connections_cut.labels(reason).inc()

        # A worker (NOTIFY_WORKERS > 1) shares the API ports with its siblings
        # and serves its operations port on loopback, to the supervisor only.
        shared = config.workers > 1
        metrics_host = WORKER_METRICS_HOST if shared else config.host

        self._api_listeners = [
            Listener(
                client_with_cors,
                config.host,
                config.client_port,
                name="client",
                limits=connection_limits,
                gate=gate,
                on_cut=on_cut,
                reuse_port=shared,
            ),
            Listener(
                self._internal_app,
                config.host,
                config.internal_port,
                name="internal",
                limits=connection_limits,
                gate=gate,
                on_cut=on_cut,
                reuse_port=shared,
            ),
        ]
        self._metrics_listener = Listener(
            HealthApp(self.metrics, self._readiness),
            metrics_host,
            config.metrics_port,
            name="metrics",
            limits=connection_limits,
            on_cut=on_cut,
            reuse_port=shared,
        )
        # --- end hardening

    @property
    def ports(self) -> Ports:
        client, internal = self._api_listeners
        return Ports(client.port, internal.port, self._metrics_listener.port)

    async def start(self) -> None:
        await self.client_auth.prepare()  # the JWKS, before any token arrives
        if self._bus_driver is not None:
            await self._bus_driver.start()  # listening before any session opens
        await self._metrics_listener.start()
        for listener in self._api_listeners:
            await listener.start()
        self.scheduler.start()
        self.dispatcher.start()
        self._listening = True

    async def close_bus(self) -> None:
        """For a start that failed half-way: the bus's connections and tasks go."""
        if self._bus_driver is not None:
            await self._bus_driver.close()

    async def _readiness(self) -> str | None:
        if self._shutting_down:
            return "shutting down"
        if not self._listening:
            return "starting: the API listeners are not up yet"
        await self.store.ping()
        if self._bus_driver is not None:
            return self._bus_driver.readiness()
        return None

    def _session_changed(self, session: Session, ended: CloseReason | None) -> None:
        if self._bus_driver is not None:
            self._bus_driver.session_changed(session, ended)
        gauge = self.metrics.streams_open.labels(device_type=_device_label(session.device_type))
        if ended is None:
            gauge.inc()
        else:
            gauge.dec()
            self.metrics.streams_ended.labels(reason=ended.value).inc()

    async def shutdown(self) -> None:
        """Drains within config.shutdown_timeout, then drops what is left."""
        if self._shutting_down:
            return
        self._shutting_down = True
        deadline = time.monotonic() + self.config.shutdown_timeout
        for listener in self._api_listeners:
            listener.stop_accepting()
        self.rounds.close()
        self.hub.close_all(CloseReason.SHUTDOWN)
        for listener in self._api_listeners:
            await listener.shutdown_connections()
        remaining = max(0.0, deadline - time.monotonic() - 0.5)
        try:
            async with asyncio.timeout(remaining):
                for listener in self._api_listeners:
                    await listener.wait_idle()
        except TimeoutError:
            logger.warning("shutdown timeout reached; closing connections still open")
        for listener in self._api_listeners:
            await listener.abort()
        await self.client_auth.close()
        self._metrics_listener.stop_accepting()
        await self._metrics_listener.shutdown_connections()
        await self._metrics_listener.abort()
        await self.scheduler.close()
        # Sends in flight finish (or are released for another replica) before the store goes.
        await self.dispatcher.close(grace=max(0.5, deadline - time.monotonic() - 1.0))
        await self.external.close()
        self.relay.close()
        if self._bus_driver is not None:
            await self._bus_driver.close()
        else:
            await self.bus.close()
        try:
            async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                await self.store.close()
        except TimeoutError:
            logger.warning("store did not close in time")


async def _flush_logs_periodically() -> None:
    while True:
        await asyncio.sleep(logs.FLUSH_INTERVAL)
        logs.flush()


def _procedures(service_name: str) -> list[str]:
    """The HTTP paths of a service's RPCs, from the contract's descriptor."""
    service = notify_pb2.DESCRIPTOR.services_by_name[service_name]
    return [f"/{service.full_name}/{method.name}" for method in service.methods]


def _device_label(device_type: DeviceType) -> str:
    return device_type.name.lower()


async def serve(config: Config) -> None:
    """Runs until SIGTERM or SIGINT, then drains and returns."""
    patches.apply()  # before anything is opened: a version mismatch stops start-up at once
    store = await open_store(config)
    server = NotifyServer(config, store)
    try:
        await server.start()
    except BaseException:
        await server.close_bus()
        await store.close()
        raise
    ports = server.ports
    gcpolicy.settle()  # what start-up built is never garbage: no collection walks it again
    if config.dev_mode:
        logger.warning(
            "DEV MODE IS ON: dev tokens are accepted and the internal token is not checked; "
            "never run this in production (listening on %s; NOTIFY_BIND_HOST changes it)",
            config.host,
        )
    lifecycle.info(
        "notify started",
        extra={
            "version": __version__,
            "client_port": ports.client,
            "internal_port": ports.internal,
            "metrics_port": ports.metrics,
            "host": config.host,
            "driver": store.driver,
            "dev_mode": config.dev_mode,
            "replica": server.bus.replica_id,
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    flusher = loop.create_task(_flush_logs_periodically())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        lifecycle.info("notify shutting down")
        await server.shutdown()
        flusher.cancel()
        lifecycle.info("notify stopped")
        logs.flush()
