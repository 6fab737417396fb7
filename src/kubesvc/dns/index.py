"""The record index: names -> records, kept current by informer events, read per query.

Each Service (with its EndpointSlices), Pod and Namespace is a unit whose records are recomputed
when one of its objects changes; only names whose records changed are touched. A query is one
dict lookup by wire name. Replies are rendered when first asked for and kept until the name
changes, so the cost of rendering is paid per change, not per query.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Hashable

from kubesvc.api.resources import of
from kubesvc.client.informer import Informer, InformerFactory, Obj
from kubesvc.dns import records
from kubesvc.dns.records import Records
from kubesvc.dns.render import Rec, render, soa_rdata
from kubesvc.dns.wire import (
    AAAA,
    ANY,
    CNAME,
    IN,
    NOERROR,
    PTR,
    SOA,
    SRV,
    A,
    Reply,
    is_under,
    negative,
    wire_name,
)

log = logging.getLogger(__name__)

REVERSE_APEXES = ("in-addr.arpa", "ip6.arpa")


class Apex:
    """A zone we answer for: its name, and the SOA that negative answers carry."""

    def __init__(self, name: str, ttl: int, serial: int) -> None:
        self.name = name
        self.wire = wire_name(name)
        self.soa = Rec(SOA, name)
        rdata = soa_rdata(name, serial, ttl)
        # The SOA record less its owner: type, class, TTL, length and (uncompressed) data.
        self.soa_tail = struct.pack(">HHIH", SOA, IN, ttl, len(rdata)) + rdata

    def negative(self, name_len: int, rcode: int) -> Reply:
        return negative(name_len, len(self.wire), self.soa_tail, rcode)


class Entry:
    """One existing name: its records by type and its replies, rendered on first use."""

    __slots__ = ("_index", "apex", "cname", "name", "nodata", "records", "replies", "wire")

    def __init__(self, index: ZoneIndex, name: str, recs: frozenset[Rec], apex: Apex) -> None:
        self._index = index
        self.name = name
        self.wire = wire_name(name)
        self.apex = apex
        by_type: defaultdict[int, set[Rec]] = defaultdict(set)
        for rec in recs:
            by_type[rec.rdtype].add(rec)
        if PTR in by_type:  # only the best source of reverse names (see records.TIER_*)
            best = min(rec.tier for rec in by_type[PTR])
            by_type[PTR] = {rec for rec in by_type[PTR] if rec.tier == best}
        self.records = {rdtype: tuple(sorted(recs)) for rdtype, recs in by_type.items()}
        cname = self.records.get(CNAME)
        # An ExternalName: answered per query, as the target may be resolved upstream.
        self.cname = cname[0].value if cname else None
        self.replies: dict[int, Reply] = {}
        self.nodata = apex.negative(len(self.wire), NOERROR)

    def reply(self, qtype: int) -> Reply:
        """The reply for `qtype`: rendered once for types the name holds, else NODATA."""
        if qtype == ANY:
            answer = [rec for _, recs in sorted(self.records.items()) for rec in recs]
        else:
            answer = list(self.records.get(qtype, ()))
        if not answer:
            return self.nodata
        # SRV targets' addresses go in the additional section, as the spec allows.
        targets = sorted({rec.value for rec in answer if rec.rdtype == SRV})
        additional = [(wire_name(target), rec) for target in targets
                      for rec in self._index.addresses(target)]
        reply = render(self.wire, answer, additional, ttl=self._index.ttl,
                       serial=self._index.serial)
        self.replies[qtype] = reply
        return reply


class ZoneIndex:
    def __init__(self, zone: str = "cluster.local", ttl: int = 30) -> None:
        self.zone = zone.strip(".").lower()
        self.zone_wire = wire_name(self.zone)
        self.ttl = ttl
        # Negative answers carry the SOA; its serial only has to be stable while we run (no
        # zone transfers are served), so it is the start time, as a zone file's would be.
        self.serial = int(time.time()) & 0xFFFFFFFF
        self.apex = Apex(self.zone, ttl, self.serial)
        self._reverse = [Apex(name, ttl, self.serial) for name in REVERSE_APEXES]
        self.entries: dict[bytes, Entry] = {}
        # Bumped by every change to what any query would be answered: readers caching whole
        # replies drop them when it moves.
        self.generation = 0
        self._synced = False
        self._units: dict[Hashable, Records] = {}
        self._names: dict[str, dict[Hashable, frozenset[Rec]]] = {}
        # Empty non-terminals (names with names below them) answer NODATA, not NXDOMAIN.
        self._ents: dict[bytes, int] = {}
        self._services: dict[str, Obj] = {}
        self._slices: defaultdict[str, dict[str, Obj]] = defaultdict(dict)
        self._slice_service: dict[str, str] = {}
        self._pod_at: dict[str, str] = {}  # pod IP -> the pod's key
        self._pod_ips: dict[str, list[str]] = {}
        self._set_unit(("zone",), records.zone_records(self.zone))

    @property
    def synced(self) -> bool:
        """Whether the informers have listed: before, a missing name may just be unseen."""
        return self._synced

    @synced.setter
    def synced(self, value: bool) -> None:
        self._synced = value
        self.generation += 1

    # --- queries -------------------------------------------------------------------------

    def in_zone(self, qlow: bytes) -> bool:
        return is_under(qlow, self.zone_wire)

    def exists(self, qlow: bytes) -> bool:
        return qlow in self.entries or qlow in self._ents

    def addresses(self, name: str) -> list[Rec]:
        entry = self.entries.get(wire_name(name))
        if entry is None:
            return []
        return [*entry.records.get(A, ()), *entry.records.get(AAAA, ())]

    # --- informer events -------------------------------------------------------------------

    def watch(self, factory: InformerFactory) -> list[Informer]:
        """Follow Services, EndpointSlices, Pods and Namespaces; returns the informers."""
        kinds = [
            (of("v1", "Service"), self.set_service, self.delete_service),
            (of("discovery.k8s.io/v1", "EndpointSlice"), self.set_slice, self.delete_slice),
            (of("v1", "Pod"), self.set_pod, self.delete_pod),
            (of("v1", "Namespace"), self.set_namespace, self.delete_namespace),
        ]
        informers = []
        for res, on_set, on_delete in kinds:
            informer = factory.get(res)
            informer.add_handlers(on_set, _updater(on_set), on_delete)
            for obj in list(informer.cache.values()):  # a factory that is already running
                on_set(obj)
            informers.append(informer)
        return informers

    def set_service(self, svc: Obj) -> None:
        key = _key(svc)
        self._services[key] = svc
        self._refresh_service(key)

    def delete_service(self, svc: Obj) -> None:
        key = _key(svc)
        self._services.pop(key, None)
        self._refresh_service(key)

    def set_slice(self, eps: Obj) -> None:
        key = _key(eps)
        name = ((eps["metadata"].get("labels") or {}).get(records.SERVICE_NAME_LABEL))
        old = self._slice_service.pop(key, None)
        if old is not None:
            self._slices[old].pop(key, None)
        if name:
            service = f"{eps['metadata']['namespace']}/{name}"
            self._slice_service[key] = service
            self._slices[service][key] = eps
            self._refresh_service(service)
        if old is not None and old != self._slice_service.get(key):
            self._refresh_service(old)

    def delete_slice(self, eps: Obj) -> None:
        old = self._slice_service.pop(_key(eps), None)
        if old is not None:
            self._slices[old].pop(_key(eps), None)
            self._refresh_service(old)

    def set_pod(self, pod: Obj) -> None:
        key = _key(pod)
        self._set_unit(("pod", key), records.pod_records(pod, self.zone))
        self._forget_pod(key)
        if records.pod_has_own_ips(pod):
            self._pod_ips[key] = records.pod_ips(pod)
            for ip in self._pod_ips[key]:
                self._pod_at[ip] = key

    def delete_pod(self, pod: Obj) -> None:
        self._set_unit(("pod", _key(pod)), {})
        self._forget_pod(_key(pod))

    def namespace_of(self, ip: str) -> str | None:
        """The namespace of the pod with address `ip`, to search on its behalf."""
        key = self._pod_at.get(ip)
        return key.partition("/")[0] if key else None

    def _forget_pod(self, key: str) -> None:
        for ip in self._pod_ips.pop(key, ()):
            if self._pod_at.get(ip) == key:
                del self._pod_at[ip]

    def set_namespace(self, ns: Obj) -> None:
        self._set_unit(("ns", _key(ns)), records.namespace_records(ns, self.zone))

    def delete_namespace(self, ns: Obj) -> None:
        self._set_unit(("ns", _key(ns)), {})

    def _refresh_service(self, key: str) -> None:
        svc = self._services.get(key)
        slices = self._slices.get(key) or {}
        if not slices:
            self._slices.pop(key, None)
        recs = records.service_records(svc, slices.values(), self.zone) if svc else {}
        self._set_unit(("svc", key), recs)

    # --- bookkeeping -----------------------------------------------------------------------

    def _set_unit(self, unit: Hashable, new: Records) -> None:
        old = self._units.pop(unit, {})
        if new:
            self._units[unit] = new
        changed = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
        if not changed:
            return
        self.generation += 1
        # SRV replies carry their targets' addresses, which live in the same unit.
        changed |= {name for name, recs in new.items() if any(r.rdtype == SRV for r in recs)}
        for name in changed:
            try:
                self._set_name(unit, name, new.get(name))
            except ValueError as err:  # a name DNS cannot carry (too long): skip it
                log.debug("dns: %s", err)

    def _set_name(self, unit: Hashable, name: str, recs: frozenset[Rec] | None) -> None:
        wire = wire_name(name)
        units = self._names.setdefault(name, {})
        existed = bool(units)
        if recs is None:
            units.pop(unit, None)
        else:
            units[unit] = recs
        if not units:
            del self._names[name]
            self.entries.pop(wire, None)
        else:
            merged = frozenset().union(*units.values())
            self.entries[wire] = Entry(self, name, merged, self._apex_of(wire))
        if existed != bool(units) and self.in_zone(wire):
            self._count_ancestors(wire, 1 if units else -1)

    def _count_ancestors(self, wire: bytes, delta: int) -> None:
        while wire != self.zone_wire:
            wire = wire[wire[0] + 1:]
            count = self._ents.get(wire, 0) + delta
            if count:
                self._ents[wire] = count
            else:
                del self._ents[wire]

    def _apex_of(self, wire: bytes) -> Apex:
        for apex in self._reverse:
            if is_under(wire, apex.wire):
                return apex
        return self.apex


def _updater(on_set: Callable[[Obj], None]) -> Callable[[Obj, Obj], None]:
    return lambda _old, new: on_set(new)


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"
