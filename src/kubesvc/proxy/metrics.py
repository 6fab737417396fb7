"""The proxy's /metrics (Prometheus text format) and /healthz.

Metric names are kube-proxy's (pkg/proxy/metrics) where kube-proxy has one, so existing
dashboards work; kubesvc's own additions are prefixed `kubesvc_proxy_`.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    return [start * factor**i for i in range(count)]


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


@dataclass
class Histogram:
    name: str
    help: str
    buckets: list[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        # Buckets are cumulative in the exposition; store per-bucket and sum when rendering.
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            lines.append(f'{self.name}_bucket{{le="{_fmt(bound)}"}} {running}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{self.name}_sum {_fmt(self.total)}")
        lines.append(f"{self.name}_count {self.count}")
        return lines


def _scalar(kind: str, name: str, help: str, value: float) -> list[str]:
    return [f"# HELP {name} {help}", f"# TYPE {name} {kind}", f"{name} {_fmt(value)}"]


def _labelled(kind: str, name: str, help: str, label: str,
              values: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
    lines += [f'{name}{{{label}="{key}"}} {_fmt(value)}' for key, value in sorted(values)]
    return lines


class ProxyMetrics:
    def __init__(self) -> None:
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds",
            exponential_buckets(0.001, 2, 15))
        self.full_sync_duration = Histogram(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs", exponential_buckets(0.001, 2, 15))
        self.partial_sync_duration = Histogram(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs",
            exponential_buckets(0.001, 2, 15))
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            [0.25, 0.5, *range(1, 60), *range(60, 120, 5), *range(120, 301, 30)])
        self.last_sync_timestamp = 0.0
        self.last_queued_timestamp = 0.0
        self.sync_failures_total = 0
        # Read when scraped, from the components that own the numbers.
        self.changes: Callable[[], dict[str, int]] = dict
        self.programmed: Callable[[], dict[str, int]] = dict
        self.sizes: Callable[[], dict[str, int]] = dict

    def observe_sync(self, seconds: float, full: bool) -> None:
        self.sync_duration.observe(seconds)
        (self.full_sync_duration if full else self.partial_sync_duration).observe(seconds)
        self.last_sync_timestamp = time.time()

    def render(self) -> str:
        changes = self.changes()
        lines = [
            *self.sync_duration.render(),
            *self.full_sync_duration.render(),
            *self.partial_sync_duration.render(),
            *self.network_programming.render(),
            *_scalar("gauge", "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                     "The last time proxy rules were successfully synced",
                     self.last_sync_timestamp),
            *_scalar("gauge", "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                     "The last time a sync of proxy rules was queued",
                     self.last_queued_timestamp),
            *_scalar("counter", "kubeproxy_sync_proxy_rules_endpoint_changes_total",
                     "Cumulative proxy rules Endpoint changes",
                     changes.get("endpoint_changes_total", 0)),
            *_scalar("gauge", "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
                     "Pending proxy rules Endpoint changes",
                     changes.get("endpoint_changes_pending", 0)),
            *_scalar("counter", "kubeproxy_sync_proxy_rules_service_changes_total",
                     "Cumulative proxy rules Service changes",
                     changes.get("service_changes_total", 0)),
            *_scalar("gauge", "kubeproxy_sync_proxy_rules_service_changes_pending",
                     "Pending proxy rules Service changes",
                     changes.get("service_changes_pending", 0)),
            *_scalar("counter", "kubesvc_proxy_sync_failures_total",
                     "Syncs of proxy rules that failed (each is retried as a full sync)",
                     self.sync_failures_total),
            *_labelled("gauge", "kubesvc_proxy_programmed",
                       "Objects programmed in the kernel by kind (rules, chains, map elements)",
                       "kind", self.programmed().items()),
            *_labelled("gauge", "kubesvc_proxy_synced",
                       "Service ports and endpoints in the last synced snapshot",
                       "kind", self.sizes().items()),
        ]
        return "\n".join(lines) + "\n"


class HealthState:
    """kube-proxy's healthz rule: unhealthy once a queued sync has waited longer than
    `timeout` without a successful sync since."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last_updated: float | None = None
        self.oldest_pending: float | None = None

    def queued(self, now: float) -> None:
        if self.oldest_pending is None:
            self.oldest_pending = now

    def updated(self, now: float) -> None:
        self.last_updated = now
        self.oldest_pending = None

    def healthy(self, now: float) -> bool:
        return self.oldest_pending is None or now - self.oldest_pending < self.timeout


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def make_app(metrics: ProxyMetrics, health: HealthState) -> web.Application:
    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render().encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def healthz_handler(_: web.Request) -> web.Response:
        now = time.time()
        body = {"lastUpdated": _iso(health.last_updated), "currentTime": _iso(now)}
        return web.Response(text=json.dumps(body), content_type="application/json",
                            status=200 if health.healthy(now) else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz_handler)
    return app


async def serve(app: web.Application, port: int, host: str = "127.0.0.1") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
