"""Prometheus metrics, and the /metrics, /health and /ready endpoints.

Counting is a dict increment on the hot path; names, labels and the text format are only
produced when scraped.
"""

from __future__ import annotations

import socket
from bisect import bisect_left
from collections.abc import Callable

from aiohttp import web

from kubesvc.dns.wire import AAAA, ANY, CNAME, NS, PTR, SOA, SRV, TXT, A

# Request latency buckets in seconds (CoreDNS's start at 0.25 ms too).
BOUNDS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
          2.5, 5.0)
# Query types counted by name; anything else is "other", so label sets stay small.
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", TXT: "TXT",
              AAAA: "AAAA", SRV: "SRV", ANY: "ANY", 65: "HTTPS", 0: "other"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 16: "BADVERS"}


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int, int], int] = {}
        self.buckets = [0] * (len(BOUNDS) + 1)
        self.latency_sum = 0.0
        self.cache_hits = 0
        self.cache_misses = 0
        self.upstream_failures = 0
        self.panics = 0  # queries that raised: each is a bug, answered with silence

    def observe(self, proto: str, qtype: int, rcode: int, seconds: float) -> None:
        key = (proto, qtype if qtype in TYPE_NAMES else 0, rcode)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.buckets[bisect_left(BOUNDS, seconds)] += 1
        self.latency_sum += seconds

    def render(self, cache_entries: int) -> str:
        lines = [
            "# HELP kubesvc_dns_requests_total DNS requests answered, by protocol, type and rcode.",
            "# TYPE kubesvc_dns_requests_total counter",
        ]
        for (proto, qtype, rcode), count in sorted(self.requests.items()):
            rcode_name = RCODE_NAMES.get(rcode, str(rcode))
            lines.append(f'kubesvc_dns_requests_total{{proto="{proto}",type="{TYPE_NAMES[qtype]}",'
                         f'rcode="{rcode_name}"}} {count}')
        lines += [
            "# HELP kubesvc_dns_request_duration_seconds Time to answer a request.",
            "# TYPE kubesvc_dns_request_duration_seconds histogram",
        ]
        total = 0
        for bound, count in zip((*BOUNDS, "+Inf"), self.buckets, strict=True):
            total += count
            lines.append(f'kubesvc_dns_request_duration_seconds_bucket{{le="{bound}"}} {total}')
        lines += [
            f"kubesvc_dns_request_duration_seconds_sum {self.latency_sum}",
            f"kubesvc_dns_request_duration_seconds_count {total}",
        ]
        for name, kind, help_text, value in (
            ("cache_hits_total", "counter", "Forwarded questions answered from the cache.",
             self.cache_hits),
            ("cache_misses_total", "counter", "Forwarded questions not in the cache.",
             self.cache_misses),
            ("cache_entries", "gauge", "Answers held in the forwarding cache.", cache_entries),
            ("upstream_failures_total", "counter",
             "Exchanges with an upstream resolver that failed or timed out.",
             self.upstream_failures),
            ("panics_total", "counter", "Queries whose answering raised an error.", self.panics),
        ):
            lines += [f"# HELP kubesvc_dns_{name} {help_text}", f"# TYPE kubesvc_dns_{name} {kind}",
                      f"kubesvc_dns_{name} {value}"]
        return "\n".join(lines) + "\n"


async def serve_http(sock: socket.socket, render: Callable[[], str],
                     ready: Callable[[], bool]) -> web.AppRunner:
    """/metrics; /health (the event loop answers); /ready (the informers have synced)."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def readiness(_: web.Request) -> web.Response:
        return web.Response(text="OK") if ready() else web.Response(status=503, text="not synced")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner
