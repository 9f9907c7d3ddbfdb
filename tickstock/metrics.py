"""Prometheus metrics (prometheus-client), safe with several hypercorn workers.

Metric objects are definitions, like loggers: module-level and shared by every app in the process.
With several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``tickstock serve`` does) and each worker
writes its samples there; ``/metrics`` then aggregates all workers (counters and histograms
summed, the gauges of live workers summed). The folder is created when missing, and a worker
that stops removes its gauges (``init_metrics``).
"""

from __future__ import annotations

import os

from quart import Quart

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MULTIPROC_DIR:
    # prometheus-client opens its sample files there as the metrics below are defined.
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

from prometheus_client import (  # noqa: E402 - after the folder exists
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

HTTP_REQUESTS = Counter(
    "tickstock_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "tickstock_http_request_duration_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SOCKETS = Gauge(
    "tickstock_sockets_connected", "Connected Socket.IO clients", multiprocess_mode="livesum"
)
SUBSCRIPTIONS = Gauge(
    "tickstock_subscriptions",
    "Socket subscriptions by room kind",
    ["kind"],
    multiprocess_mode="livesum",
)
EVENTS_RECEIVED = Counter(
    "tickstock_ingest_messages_total", "Producer messages received by channel", ["channel"]
)
EVENTS_ACCEPTED = Counter(
    "tickstock_ingest_events_accepted_total", "Normalised events stored (new)", ["channel"]
)
EVENTS_DUPLICATE = Counter(
    "tickstock_ingest_events_duplicate_total", "Events already stored (deduplicated)", ["channel"]
)
EVENTS_REJECTED = Counter(
    "tickstock_ingest_rejected_total",
    "Rejected messages by channel and reason",
    ["channel", "reason"],
)
DELIVERIES = Counter("tickstock_deliveries_total", "Events put on socket queues")
ALERTS = Counter("tickstock_alerts_total", "Alerts stored by this node's matcher")
JOB_REPORTS = Counter(
    "tickstock_job_reports_total",
    "The producer's job reports by outcome: stored (changed the job), unchanged (duplicate, late"
    " or out of order), unknown (no such job), dropped (queue full)",
    ["outcome"],
)
INGEST_TO_EMIT = Histogram(
    "tickstock_ingest_to_emit_seconds",
    "From storing an event to queueing it for this node's sockets (at most 100 sampled a second)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SLOW_CONSUMERS = Counter(
    "tickstock_slow_consumer_disconnects_total", "Sockets dropped for a full outbound queue"
)
FANOUT_GAPS = Counter(
    "tickstock_fanout_gaps_total",
    "Live fan-out entries that arrived after a gap, which was then read from the stream",
)
MALFORMED_PACKETS = Counter(
    "tickstock_socketio_malformed_packets_total",
    "Malformed packets from Socket.IO clients, dropped, by protocol layer",
    ["layer"],
)
SOCKETS_REFUSED = Counter(
    "tickstock_sockets_refused_total",
    "Socket.IO connections refused over a cap, by cap (address, user)",
    ["limit"],
)
SOCKET_CONNECT_TIMEOUTS = Counter(
    "tickstock_socket_connect_timeouts_total",
    "engine.io sessions closed for not joining the Socket.IO namespace in time",
)
ENGINEIO_SESSIONS = Gauge(
    "tickstock_engineio_sessions",
    "Open engine.io sessions, connected to the namespace or not",
    multiprocess_mode="livesum",
)
REDIS_RECONNECTS = Counter(
    "tickstock_redis_reconnects_total", "Redis reconnects of the background readers", ["reader"]
)
DB_POOL_SIZE = Gauge(
    "tickstock_db_pool_connections",
    "Database pool connections",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_WAIT = Histogram(
    "tickstock_db_pool_wait_seconds",
    "Time waiting for a pool connection",
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2),
)


def init_metrics(app: Quart) -> None:
    """In multiprocess mode, a worker that stops takes its live gauges with it."""
    if not MULTIPROC_DIR:
        return

    @app.after_serving
    async def _forget_this_worker() -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    del _forget_this_worker


def render() -> tuple[bytes, str]:
    """The exposition text for this process, or for all workers in multiprocess mode."""
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
