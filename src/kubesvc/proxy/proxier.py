"""The service proxy on a node: informers in, kernel rules out.

Like kube-proxy: event handlers only record changes in the tracker and poke the runner; the
runner calls `_sync`, which takes a snapshot and hands it to the mode's dataplane. Nothing is
programmed before both informers have synced, so a restart never writes rules from a partial
view of the cluster: until then the rules already in the kernel keep serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from kubesvc.api import resources
from kubesvc.client.informer import InformerFactory
from kubesvc.kernel import conntrack
from kubesvc.kernel import iptables as ipt
from kubesvc.kernel.conntrack import FlowFilter
from kubesvc.proxy import dataplanes, metrics
from kubesvc.proxy.conntrack import DNAT_MODES, stale_udp_entries, stale_udp_flows
from kubesvc.proxy.dataplanes import cleanup, programmed_rules
from kubesvc.proxy.runner import BoundedFrequencyRunner
from kubesvc.proxy.schedulers import DEFAULT_SCHEDULER
from kubesvc.proxy.tracker import ChangeTracker, SnapshotUpdate
from kubesvc.proxy.types import NodeConfig
from kubesvc.proxy.weights import PodWeights

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MIN_SYNC_PERIOD = 0.1  # coalesce bursts; kube-proxy defaults to 1 s, a laptop wants less
SYNC_PERIOD = 30.0  # at least this often, a sync runs even without events
FULL_SYNC_PERIOD = 3600.0  # and every hour it rewrites everything (kube-proxy's FullSyncPeriod)
RETRY_PERIOD = 5.0


def _merge(failed: SnapshotUpdate | None, update: SnapshotUpdate) -> SnapshotUpdate:
    """An update spanning a failed sync and the next, so nothing it changed is forgotten."""
    if failed is None:
        return update
    triggers = dict(failed.trigger_times)
    for key, when in update.trigger_times.items():
        triggers[key] = min(when, triggers.get(key, when))
    return SnapshotUpdate(failed.previous, update.current, failed.changed | update.changed,
                          triggers)


class ServiceProxy:
    def __init__(
        self,
        informers: InformerFactory,
        *,
        mode: str,
        node_name: str,
        node_ips: list[str],
        netns: str | None,
        pod_cidr: str,
        cluster_cidr: str,
        service_cidr: str,
        metrics_port: int | None = None,
        min_sync_period: float = MIN_SYNC_PERIOD,
        sync_period: float = SYNC_PERIOD,
        full_sync_period: float = FULL_SYNC_PERIOD,
        scheduler: str = DEFAULT_SCHEDULER,
        iptables_backend: str = ipt.DEFAULT_BACKEND,
    ) -> None:
        self.mode = mode
        self.netns = netns
        self.iptables_backend = iptables_backend
        # kube-proxy's default --detect-local-mode=ClusterCIDR: traffic from any pod counts as
        # in-cluster; the node's own pod CIDR only stands in when no cluster CIDR is known.
        self.node = NodeConfig(node_name, tuple(node_ips), cluster_cidr or pod_cidr,
                               service_cidr, pod_cidr)
        self.weights = PodWeights()
        self.dataplane = dataplanes.new_dataplane(mode, self.node, netns, scheduler=scheduler,
                                                  weights=self.weights.weight,
                                                  iptables_backend=iptables_backend)
        if mode == "ipvs":
            # IPVS has no transaction to replay: every periodic sync diffs the kernel against
            # the snapshot, as kube-proxy's IPVS proxier does each syncPeriod.
            full_sync_period = min(full_sync_period, sync_period)
        self.tracker = ChangeTracker(node_name)
        self.metrics = metrics.ProxyMetrics()
        self.health = metrics.HealthState(2 * sync_period)
        self.metrics_port = metrics_port
        self.full_sync_period = full_sync_period
        self.runner = BoundedFrequencyRunner(
            f"{mode} proxy sync", self._sync, min_interval=min_sync_period,
            max_interval=sync_period, retry_interval=RETRY_PERIOD)
        self._initialized = False
        self._need_full = True
        self._last_full = 0.0
        self._failed: SnapshotUpdate | None = None
        self._weights_changed = False

        self._services = informers.get(resources.of("v1", "Service"))
        self._slices = informers.get(resources.of("discovery.k8s.io/v1", "EndpointSlice"))
        self._services.add_handlers(
            lambda obj: self._on_change(self.tracker.service_changed(None, obj)),
            lambda old, new: self._on_change(self.tracker.service_changed(old, new)),
            lambda obj: self._on_change(self.tracker.service_changed(obj, None)),
        )
        self._slices.add_handlers(
            lambda obj: self._on_change(self.tracker.slice_changed(None, obj)),
            lambda old, new: self._on_change(self.tracker.slice_changed(old, new)),
            lambda obj: self._on_change(self.tracker.slice_changed(obj, None)),
        )
        self._pods = None
        if mode in dataplanes.SCHEDULED_MODES:
            self._pods = informers.get(resources.of("v1", "Pod"))
            self._pods.add_handlers(
                lambda obj: self._on_weights(self.weights.pod_changed(None, obj)),
                lambda old, new: self._on_weights(self.weights.pod_changed(old, new)),
                lambda obj: self._on_weights(self.weights.pod_changed(obj, None)),
            )
        self.metrics.changes = lambda: {
            "endpoint_changes_total": self.tracker.endpoint_changes_total,
            "endpoint_changes_pending": self.tracker.pending_endpoint_changes,
            "service_changes_total": self.tracker.service_changes_total,
            "service_changes_pending": self.tracker.pending_service_changes,
        }
        self.metrics.programmed = self.dataplane.counts
        self.metrics.sizes = lambda: {
            "service_ports": len(self.tracker.latest.services),
            "endpoints": sum(len(e) for e in self.tracker.latest.endpoints.values()),
        }

    def _on_change(self, needed: bool) -> None:
        if not needed:
            return
        self.metrics.last_queued_timestamp = time.time()
        self.health.queued(time.time())
        if self._initialized:
            self.runner.run()

    def _on_weights(self, changed: bool) -> None:
        # Weights are not in the snapshot: the next sync is a full one, which reads them.
        if changed:
            self._weights_changed = True
            self._on_change(True)

    async def run(self) -> None:
        """Wait for both informers to sync, then keep the kernel in line with them."""
        server: web.AppRunner | None = None
        self.health.queued(time.time())
        if self.metrics_port is not None:
            server = await metrics.serve(metrics.make_app(self.metrics, self.health),
                                         self.metrics_port)
        try:
            synced = [self._services.synced.wait(), self._slices.synced.wait()]
            if self._pods is not None:
                synced.append(self._pods.synced.wait())
            await asyncio.gather(*synced)
            self._initialized = True
            # Leftovers of a run in another mode, or in iptables mode with the other backend:
            # the kernel runs both backends' tables, so their stale rules would still DNAT.
            for other in dataplanes.MODES:
                backends = ipt.BACKENDS if other == "iptables" else (self.iptables_backend,)
                for backend in backends:
                    if (other, backend) != (self.mode, self.iptables_backend):
                        await cleanup(other, self.netns, iptables_backend=backend)
            self.runner.run()
            await self.runner.loop()
        finally:
            await self.dataplane.close()
            if server is not None:
                await server.cleanup()

    async def _sync(self) -> None:
        start = time.monotonic()
        full = (self._need_full or self._weights_changed
                or start - self._last_full >= self.full_sync_period)
        self._weights_changed = False
        if not full and not self.tracker.pending():
            return
        update = _merge(self._failed, self.tracker.snapshot())
        if not full and not update.changed:  # the changes cancelled out
            self.health.updated(time.time())
            return
        try:
            await self.dataplane.sync(update, full)
        except Exception:
            self._failed = update
            self._need_full = True
            self.metrics.sync_failures_total += 1
            raise
        self._failed = None
        self._need_full = False
        if full:
            self._last_full = start
        try:
            await self._delete_stale_flows(update, full)
        except Exception:  # the rules are in; stale UDP flows only age out slower
            log.exception("deleting stale conntrack entries failed")
        elapsed = time.monotonic() - start
        self.metrics.observe_sync(elapsed, full)
        now = time.time()
        for when in update.trigger_times.values():
            self.metrics.network_programming.observe(max(0.0, now - when))
        self.health.updated(now)
        log.debug("%s sync (%s) of %d changed service ports took %.3fs", self.mode,
                  "full" if full else "partial", len(update.changed), elapsed)

    async def _delete_stale_flows(self, update: SnapshotUpdate, full: bool) -> None:
        flows = set(stale_udp_flows(update))
        if full and self.mode in DNAT_MODES:
            # After a restart `update.previous` is empty: only the kernel still knows the flows
            # to endpoints that left while no proxy ran.
            entries = await conntrack.list_entries(self.netns, "udp")
            flows.update(stale_udp_entries(update.current, entries))
        if flows:
            await conntrack.delete_flows(self.netns, sorted(flows, key=FlowFilter.argv))


__all__ = ["ServiceProxy", "cleanup", "programmed_rules"]
