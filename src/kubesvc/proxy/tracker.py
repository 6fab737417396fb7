"""Folding Service and EndpointSlice events into immutable snapshots (kube-proxy's
ServiceChangeTracker and EndpointsChangeTracker in one).

Handlers record each event cheaply; `snapshot()` then turns everything recorded since the last
snapshot into a new one and reports which service ports really changed, so a mode can rewrite
only those. A change that is undone before the next snapshot (or that only touched fields the
proxy ignores) is not reported at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from kubesvc.api.endpoints import SERVICE_NAME_LABEL, TRIGGER_TIME_ANNOTATION
from kubesvc.proxy.types import (
    Endpoint,
    ProxySnapshot,
    ServicePort,
    ServicePortName,
    service_ports,
    slice_endpoints,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SlicePorts = dict[ServicePortName, tuple[Endpoint, ...]]


@dataclass(frozen=True)
class SnapshotUpdate:
    previous: ProxySnapshot
    current: ProxySnapshot
    changed: frozenset[ServicePortName]
    # Per Service ("ns/name"), the earliest last-change-trigger-time of the endpoint changes
    # folded into this update, as epoch seconds: the start of network-programming latency.
    trigger_times: Mapping[str, float]


def _service_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', 'default')}/{meta['name']}"


def _slice_service_key(obj: Obj) -> str | None:
    meta = obj["metadata"]
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace', 'default')}/{service}" if service else None


def _trigger_time(obj: Obj) -> float | None:
    value = (obj["metadata"].get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        log.debug("ignoring malformed %s %r", TRIGGER_TIME_ANNOTATION, value)
        return None


class ChangeTracker:
    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self._ports: dict[str, dict[ServicePortName, ServicePort]] = {}
        self._slices: dict[str, dict[str, SlicePorts]] = {}  # service -> slice name -> ports
        self._dirty_services: set[str] = set()
        self._dirty_endpoints: set[str] = set()
        self._trigger_times: dict[str, float] = {}
        self._snapshot = ProxySnapshot()
        # The dicts behind the snapshot's read-only views: dict.copy() keeps their stored
        # hashes, copying through the views would hash every key again (10,000s of them).
        self._services: dict[ServicePortName, ServicePort] = {}
        self._endpoints: dict[ServicePortName, tuple[Endpoint, ...]] = {}
        # The service port names each Service has in the current snapshot.
        self._names: dict[str, set[ServicePortName]] = {}
        self.service_changes_total = 0
        self.endpoint_changes_total = 0

    @property
    def latest(self) -> ProxySnapshot:
        """The last snapshot taken."""
        return self._snapshot

    @property
    def pending_service_changes(self) -> int:
        return len(self._dirty_services)

    @property
    def pending_endpoint_changes(self) -> int:
        return len(self._dirty_endpoints)

    def pending(self) -> bool:
        return bool(self._dirty_services or self._dirty_endpoints)

    def service_changed(self, old: Obj | None, new: Obj | None) -> bool:
        """Record an add (old None), update or delete (new None); True if a sync is needed."""
        obj = new if new is not None else old
        assert obj is not None
        key = _service_key(obj)
        ports = service_ports(new) if new is not None else {}
        if ports == self._ports.get(key, {}):
            return False
        if ports:
            self._ports[key] = ports
        else:
            self._ports.pop(key, None)
        self._dirty_services.add(key)
        self.service_changes_total += 1
        return True

    def slice_changed(self, old: Obj | None, new: Obj | None) -> bool:
        """Record an EndpointSlice add, update or delete; True if a sync is needed."""
        needed = False
        old_key = _slice_service_key(old) if old is not None else None
        new_key = _slice_service_key(new) if new is not None else None
        if old is not None and old_key is not None and old_key != new_key:
            needed = self._set_slice(old_key, old["metadata"]["name"], {}) or needed
        if new is not None and new_key is not None and self._set_slice(
                new_key, new["metadata"]["name"], slice_endpoints(new, self.node_name)):
            needed = True
            when = _trigger_time(new)
            if when is not None:
                self._trigger_times[new_key] = min(when, self._trigger_times.get(new_key, when))
        return needed

    def _set_slice(self, key: str, name: str, ports: SlicePorts) -> bool:
        slices = self._slices.setdefault(key, {})
        if slices.get(name, {}) == ports:
            if not slices:
                del self._slices[key]
            return False
        if ports:
            slices[name] = ports
        else:
            slices.pop(name, None)
            if not slices:
                del self._slices[key]
        self._dirty_endpoints.add(key)
        self.endpoint_changes_total += 1
        return True

    def _merged_endpoints(self, key: str) -> SlicePorts:
        """Endpoints of all slices of a Service; an address listed twice (a slice being
        replaced by another) counts once, from the first slice by name."""
        merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
        for _, ports in sorted(self._slices.get(key, {}).items()):
            for name, endpoints in ports.items():
                seen = merged.setdefault(name, {})
                for ep in endpoints:
                    seen.setdefault((ep.ip, ep.port), ep)
        return {name: tuple(sorted(eps.values())) for name, eps in merged.items() if eps}

    def snapshot(self) -> SnapshotUpdate:
        """A new snapshot with everything recorded so far, and what changed since the last."""
        previous = self._snapshot
        services = self._services.copy()
        endpoints = self._endpoints.copy()
        changed: set[ServicePortName] = set()
        dirty = self._dirty_services | self._dirty_endpoints
        for key in dirty:
            ports = self._ports.get(key, {})
            eps = self._merged_endpoints(key)
            old_names = self._names.pop(key, set())
            for name in old_names:
                services.pop(name, None)
                endpoints.pop(name, None)
            services.update(ports)
            endpoints.update(eps)
            names = set(ports) | set(eps)
            if names:
                self._names[key] = names
            for name in old_names | names:
                if (previous.services.get(name) != ports.get(name)
                        or previous.endpoints_of(name) != eps.get(name, ())):
                    changed.add(name)
        changed_services = {name.service for name in changed}
        trigger_times = {k: t for k, t in self._trigger_times.items() if k in changed_services}
        self._dirty_services.clear()
        self._dirty_endpoints.clear()
        self._trigger_times.clear()
        self._services, self._endpoints = services, endpoints
        self._snapshot = ProxySnapshot(MappingProxyType(services), MappingProxyType(endpoints))
        return SnapshotUpdate(previous, self._snapshot, frozenset(changed),
                              MappingProxyType(trigger_times))
