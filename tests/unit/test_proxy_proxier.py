"""The ServiceProxy without a kernel: informers, dataplane and conntrack are fakes, the sync
logic is real. Also the metrics it exposes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from test_proxy_tracker import endpoint_slice, service

from kubesvc.api.resources import Resource
from kubesvc.kernel.cmd import CommandError
from kubesvc.kernel.conntrack import Entry, FlowFilter
from kubesvc.proxy import proxier
from kubesvc.proxy.metrics import HealthState, ProxyMetrics, make_app
from kubesvc.proxy.tracker import SnapshotUpdate
from kubesvc.proxy.types import ServicePortName

Obj = dict[str, Any]


class FakeInformer:
    def __init__(self) -> None:
        self.synced = asyncio.Event()
        self.handlers: list[tuple[Callable[..., None], ...]] = []

    def add_handlers(self, *handlers: Callable[..., None]) -> None:
        self.handlers.append(handlers)

    def add(self, obj: Obj) -> None:
        for on_add, _, _ in self.handlers:
            on_add(obj)

    def update(self, old: Obj, new: Obj) -> None:
        for _, on_update, _ in self.handlers:
            on_update(old, new)


class FakeFactory:
    def __init__(self) -> None:
        self.informers: dict[str, FakeInformer] = {}

    def get(self, res: Resource) -> FakeInformer:
        return self.informers.setdefault(res.kind, FakeInformer())


class FakeDataplane:
    mode = "nftables"

    def __init__(self) -> None:
        self.syncs: list[tuple[bool, frozenset[ServicePortName]]] = []
        self.failures = 0
        self.synced = asyncio.Event()

    async def sync(self, update: SnapshotUpdate, full: bool) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("nft: no")
        self.syncs.append((full, update.changed))
        self.synced.set()

    def counts(self) -> dict[str, int]:
        return {"rules": 7}


class Fixture:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, mode: str = "nftables",
                 **options: Any) -> None:
        self.factory = FakeFactory()
        self.proxy = proxier.ServiceProxy(
            self.factory, mode=mode, node_name="node-a",  # type: ignore[arg-type]
            node_ips=["192.168.0.2"], netns=None, pod_cidr="10.180.0.0/24",
            cluster_cidr="10.0.0.0/8", service_cidr="172.30.0.0/16", min_sync_period=0.01,
            **options)
        self.dataplane = FakeDataplane()
        self.proxy.dataplane = self.dataplane
        self.proxy.runner.retry_interval = 0.01
        self.flows: list[FlowFilter] = []
        self.entries: list[Entry] = []  # what the conntrack table holds
        self.listings = 0
        self.listing_fails = False
        self.cleaned: list[tuple[str, str]] = []

        async def list_entries(netns: str | None, protocol: str) -> list[Entry]:
            self.listings += 1
            if self.listing_fails:
                raise CommandError(["conntrack", "-L"], 1, "no conntrack here")
            return [e for e in self.entries if e.protocol == protocol]

        async def delete_flows(netns: str | None, flows: list[FlowFilter]) -> None:
            self.flows += flows

        async def cleanup(mode: str, netns: str | None, *, iptables_backend: str) -> None:
            self.cleaned.append((mode, iptables_backend))

        monkeypatch.setattr(proxier.conntrack, "list_entries", list_entries)
        monkeypatch.setattr(proxier.conntrack, "delete_flows", delete_flows)
        monkeypatch.setattr(proxier, "cleanup", cleanup)

    @property
    def services(self) -> FakeInformer:
        return self.factory.informers["Service"]

    @property
    def slices(self) -> FakeInformer:
        return self.factory.informers["EndpointSlice"]

    async def next_sync(self) -> tuple[bool, frozenset[ServicePortName]]:
        self.dataplane.synced.clear()
        await asyncio.wait_for(self.dataplane.synced.wait(), 5)
        return self.dataplane.syncs[-1]


@pytest_asyncio.fixture
async def fx(request: pytest.FixtureRequest,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fixture]:
    fixture = Fixture(monkeypatch, **getattr(request, "param", {}))
    task = asyncio.create_task(fixture.proxy.run())
    try:
        yield fixture
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


SVC1 = ServicePortName("ns1", "svc1", "p80", "TCP")
DNS = ServicePortName("ns1", "dns", "dns", "UDP")


async def test_nothing_is_programmed_before_both_informers_synced(fx: Fixture) -> None:
    fx.services.add(service("svc1", "172.30.0.41"))
    fx.services.synced.set()
    await asyncio.sleep(0.05)
    assert fx.dataplane.syncs == []
    fx.slices.add(endpoint_slice("svc1", "10.180.0.1"))
    fx.slices.synced.set()
    assert await fx.next_sync() == (True, frozenset({SVC1}))
    # The other modes' leftovers, iptables mode's in both backends.
    assert [mode for mode, _ in fx.cleaned] == ["iptables", "iptables", "ipvs", "userspace"]
    assert {backend for mode, backend in fx.cleaned if mode == "iptables"} == {
        "iptables-legacy", "iptables-nft"}


@pytest.mark.parametrize("fx", [{"mode": "iptables", "iptables_backend": "iptables-nft"}],
                         indirect=True)
async def test_iptables_mode_cleans_the_other_backend(fx: Fixture) -> None:
    fx.services.synced.set()
    fx.slices.synced.set()
    await fx.next_sync()
    assert [mode for mode, _ in fx.cleaned] == ["nftables", "iptables", "ipvs", "userspace"]
    assert ("iptables", "iptables-legacy") in fx.cleaned


async def test_changes_sync_partially_and_failures_resync_fully(fx: Fixture) -> None:
    fx.services.synced.set()
    fx.slices.synced.set()
    await fx.next_sync()
    fx.services.add(service("svc1", "172.30.0.41"))
    assert await fx.next_sync() == (False, frozenset({SVC1}))
    fx.dataplane.failures = 1
    fx.slices.add(endpoint_slice("svc1", "10.180.0.1"))
    # The failed sync's changes are not lost: the retry is full and still lists them.
    assert await fx.next_sync() == (True, frozenset({SVC1}))
    assert fx.proxy.metrics.sync_failures_total == 1
    assert fx.proxy.health.healthy(time.time())


async def test_stale_udp_flows_are_deleted_after_a_sync(fx: Fixture) -> None:
    fx.services.synced.set()
    fx.slices.synced.set()
    await fx.next_sync()
    dns = service("dns", "172.30.0.10", port=53, protocol="UDP", port_name="dns")
    fx.services.add(dns)
    fx.slices.add(endpoint_slice("dns", "10.180.0.5", port=5353, protocol="UDP",
                                 port_name="dns"))
    await fx.next_sync()
    assert fx.flows == [FlowFilter("udp", orig_dst="172.30.0.10", reply_src="172.30.0.10")]
    fx.slices.add(endpoint_slice("dns", "10.180.0.6", port=5353, protocol="UDP",
                                 port_name="dns"))
    await fx.next_sync()
    assert fx.flows[1:] == [FlowFilter("udp", orig_dst="172.30.0.10", dst_nat="10.180.0.5")]


async def test_full_syncs_reconcile_the_conntrack_table(fx: Fixture) -> None:
    # An endpoint that left while no proxy ran: the first sync has no snapshot to compare with.
    fx.entries = [Entry("udp", "172.30.0.10", 53, "10.180.0.5", 5353),
                  Entry("udp", "172.30.0.10", 53, "10.180.0.6", 5353)]
    fx.services.add(service("dns", "172.30.0.10", port=53, protocol="UDP", port_name="dns"))
    fx.slices.add(endpoint_slice("dns", "10.180.0.6", port=5353, protocol="UDP",
                                 port_name="dns"))
    fx.services.synced.set()
    fx.slices.synced.set()
    assert await fx.next_sync() == (True, frozenset({DNS}))
    assert fx.flows == [
        FlowFilter("udp", orig_dst="172.30.0.10", orig_port_dst=53, dst_nat="10.180.0.5"),
        FlowFilter("udp", orig_dst="172.30.0.10", reply_src="172.30.0.10")]
    # Partial syncs go by the change alone.
    fx.slices.add(endpoint_slice("dns", "10.180.0.7", port=5353, protocol="UDP",
                                 port_name="dns"))
    assert await fx.next_sync() == (False, frozenset({DNS}))
    assert fx.listings == 1
    assert fx.flows[2:] == [FlowFilter("udp", orig_dst="172.30.0.10", dst_nat="10.180.0.6")]
    # A table that cannot be read fails no sync: the rules are in.
    fx.listing_fails = True
    fx.proxy.full_sync_period = 0.0
    fx.services.add(service("svc1", "172.30.0.41"))
    assert await fx.next_sync() == (True, frozenset({SVC1}))
    assert fx.listings == 2
    assert fx.proxy.metrics.sync_failures_total == 0


def test_health_follows_queued_and_done_syncs() -> None:
    health = HealthState(timeout=60)
    assert health.healthy(0)
    health.queued(10)
    health.queued(20)
    assert health.healthy(69) and not health.healthy(70)  # counts from the oldest request
    health.updated(71)
    assert health.healthy(1000)


async def test_metrics_endpoint() -> None:
    metrics = ProxyMetrics()
    metrics.observe_sync(0.003, full=True)
    metrics.network_programming.observe(0.7)
    metrics.programmed = lambda: {"rules": 12, "chains": 3}
    health = HealthState(timeout=60)
    health.queued(time.time() - 120)
    async with TestClient(TestServer(make_app(metrics, health))) as client:
        resp = await client.get("/metrics")
        text = await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        healthz = await client.get("/healthz")
        assert healthz.status == 503
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.002"} 0' in text
    assert 'kubeproxy_network_programming_duration_seconds_bucket{le="1"} 1' in text
    assert "kubeproxy_sync_full_proxy_rules_duration_seconds_count 1" in text
    assert "kubeproxy_sync_partial_proxy_rules_duration_seconds_count 0" in text
    assert 'kubesvc_proxy_programmed{kind="rules"} 12' in text
