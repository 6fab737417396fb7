"""ClusterIP, NodePort and load-balancer address allocation, as Kubernetes' API server does it.

The ranges follow pkg/registry/core/service/{ipallocator,portallocator,allocator}: a bitmap of
offsets, `allocate_next` picking a random free offset in the upper ("dynamic") band first and
only then in the lower ("static") band that users are meant to choose from by hand (KEP-3070,
KEP-3668). `ServiceAllocators.allocate` is pkg/registry/core/service/storage/alloc.go: what a
Service create or update takes and frees, returned as a transaction so that a failed write can
give back what was taken and a successful one frees what the update let go.

Allocators are in-memory; at start the caller rebuilds them from the stored Services, so a
restart never hands out a value that is still in use.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubesvc.api.errors import ApiError, Cause, invalid

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = "30000-32767"

FULL = "range is full"

Obj = dict[str, Any]
V = TypeVar("V", str, int)


class AllocationError(Exception):
    """A value could not be taken; the message is Kubernetes' own wording."""


class RangeFullError(AllocationError):
    pass


class AlreadyAllocatedError(AllocationError):
    pass


class NotInRangeError(AllocationError):
    pass


def _static_band(size: int, low: int, high: int, step: int) -> int:
    """calculateRangeOffset: min(max(low, size/step), high), none at all for tiny ranges."""
    if size <= low:
        return 0
    return min(max(low, size // step), high)


class _Bitmap:
    """Taken offsets in [0, size); picks free ones the way randomScanStrategyWithOffset does."""

    def __init__(self, size: int, static: int, rng: random.Random) -> None:
        self.size = size
        self._static = static
        self._rng = rng
        self._taken: set[int] = set()

    @property
    def count(self) -> int:
        return len(self._taken)

    def take(self, offset: int) -> bool:
        if offset in self._taken:
            return False
        self._taken.add(offset)
        return True

    def take_next(self) -> int | None:
        if len(self._taken) >= self.size:
            return None
        for low, high in ((self._static, self.size), (0, self._static)):
            span = high - low
            if span <= 0:
                continue
            start = self._rng.randrange(span)
            for i in range(span):
                at = low + (start + i) % span
                if at not in self._taken:
                    self._taken.add(at)
                    return at
        return None

    def has(self, offset: int) -> bool:
        return offset in self._taken

    def release(self, offset: int) -> None:
        self._taken.discard(offset)

    def clear(self) -> None:
        self._taken.clear()


class _Range(Generic[V]):
    """What IP and port ranges share; subclasses map values to offsets and word the errors."""

    _already = ""

    def __init__(self, size: int, static: int, spec: str, rng: random.Random | None) -> None:
        self.spec = spec
        self._bits = _Bitmap(size, static, rng or random.Random())

    def _offset(self, value: V) -> int | None:
        raise NotImplementedError

    def _value(self, offset: int) -> V:
        raise NotImplementedError

    def _not_in_range(self, value: V) -> NotInRangeError:
        raise NotImplementedError

    @property
    def size(self) -> int:
        return self._bits.size

    @property
    def used(self) -> int:
        return self._bits.count

    @property
    def free(self) -> int:
        return self._bits.size - self._bits.count

    def allocate_next(self) -> V:
        offset = self._bits.take_next()
        if offset is None:
            raise RangeFullError(FULL)
        return self._value(offset)

    def allocate_specific(self, value: V) -> None:
        offset = self._offset(value)
        if offset is None:
            raise self._not_in_range(value)
        if not self._bits.take(offset):
            raise AlreadyAllocatedError(self._already)

    def release(self, value: V) -> None:
        """Give a value back; releasing a free or foreign value does nothing, as in Kubernetes."""
        offset = self._offset(value)
        if offset is not None:
            self._bits.release(offset)

    def is_allocated(self, value: V) -> bool:
        offset = self._offset(value)
        return offset is not None and self._bits.has(offset)

    def rebuild(self, in_use: Iterable[V]) -> list[V]:
        """Forget everything, then take `in_use`; returns the values outside the range."""
        self._bits.clear()
        outside: list[V] = []
        for value in in_use:
            offset = self._offset(value)
            if offset is None:
                outside.append(value)
            else:
                self._bits.take(offset)
        return outside


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class IPAllocator(_Range[str]):
    """Addresses of a service CIDR or of a load-balancer pool."""

    _already = "provided IP is already allocated"

    def __init__(self, first: IPAddress, size: int, spec: str, static: int = 0,
                 rng: random.Random | None = None) -> None:
        super().__init__(size, static, spec, rng)
        self._first = first
        self.family = "IPv4" if first.version == 4 else "IPv6"

    @classmethod
    def for_cidr(cls, cidr: str = DEFAULT_SERVICE_CIDR,
                 rng: random.Random | None = None) -> IPAllocator:
        """A service CIDR, with Kubernetes' static band at its low end."""
        network = ipaddress.ip_network(cidr, strict=False)
        first, size = _usable(network)
        return cls(first, size, str(network), _static_band(network.num_addresses, 16, 256, 16),
                   rng)

    @classmethod
    def for_pool(cls, spec: str, rng: random.Random | None = None) -> IPAllocator:
        """A load-balancer pool, `a.b.c.d-a.b.c.e` (both ends included) or a CIDR."""
        if "-" not in spec:
            network = ipaddress.ip_network(spec, strict=False)
            first, size = _usable(network)
            return cls(first, size, str(network), rng=rng)
        low_text, high_text = (part.strip() for part in spec.split("-", 1))
        low, high = ipaddress.ip_address(low_text), ipaddress.ip_address(high_text)
        if low.version != high.version or int(high) < int(low):
            raise ValueError(f"invalid address range {spec!r}")
        return cls(low, int(high) - int(low) + 1, f"{low}-{high}", rng=rng)

    def _offset(self, value: str) -> int | None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return None
        offset = int(address) - int(self._first)
        if address.version != self._first.version or not 0 <= offset < self.size:
            return None
        return offset

    def _value(self, offset: int) -> str:
        return str(self._first + offset)

    def _not_in_range(self, value: str) -> NotInRangeError:
        return NotInRangeError(f"the provided IP ({value}) is not in the valid range. "
                               f"The range of valid IPs is {self.spec}")


def _usable(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[IPAddress, int]:
    """A CIDR's assignable addresses: not the network address, nor an IPv4 broadcast."""
    if network.num_addresses <= 2:
        return network.network_address, network.num_addresses
    unusable = 2 if network.version == 4 else 1
    return network.network_address + 1, network.num_addresses - unusable


def indexed_ip(cidr: str, index: int) -> str:
    """The index-th address of a CIDR (GetIndexedIP): 1 is `kubernetes`, 10 is `kube-dns`."""
    network = ipaddress.ip_network(cidr, strict=False)
    if not 0 <= index < network.num_addresses:
        raise ValueError(f"index {index} is outside {network}")
    return str(network.network_address + index)


class PortAllocator(_Range[int]):
    """Ports of a range such as the NodePort range `30000-32767`."""

    _already = "provided port is already allocated"

    def __init__(self, spec: str = DEFAULT_NODE_PORT_RANGE,
                 rng: random.Random | None = None) -> None:
        low_text, _, high_text = spec.partition("-")
        low, high = int(low_text), int(high_text or low_text)
        if not 0 < low <= high <= 65535:
            raise ValueError(f"invalid port range {spec!r}")
        size = high - low + 1
        super().__init__(size, _static_band(size, 16, 128, 32), f"{low}-{high}", rng)
        self._low = low

    def _offset(self, value: int) -> int | None:
        offset = value - self._low
        return offset if 0 <= offset < self.size else None

    def _value(self, offset: int) -> int:
        return self._low + offset

    def _not_in_range(self, value: int) -> NotInRangeError:
        return NotInRangeError("provided port is not in the valid range. "
                               f"The range of valid ports is {self.spec}")


# ---------------------------------------------------------------------------------------------
# Services: what a create, update or delete takes and frees.


def service_type(service: Obj) -> str:
    return str(service.get("spec", {}).get("type") or "ClusterIP")


def cluster_ips(service: Obj) -> list[str]:
    """spec.clusterIPs, falling back to spec.clusterIP as the v1 conversion does."""
    spec = service.get("spec", {})
    ips = [str(ip) for ip in spec.get("clusterIPs") or []]
    if not ips and spec.get("clusterIP"):
        ips = [str(spec["clusterIP"])]
    return ips


def cluster_ip_set(service: Obj) -> bool:
    """IsServiceIPSet: the Service has a virtual IP (not headless, not ExternalName)."""
    ip = service.get("spec", {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _headless(service: Obj) -> bool:
    ips = cluster_ips(service)
    return bool(ips) and ips[0] == "None"


def _needs_cluster_ip(service: Obj) -> bool:
    return service_type(service) != "ExternalName"


def _needs_node_ports(service: Obj) -> bool:
    return service_type(service) in ("NodePort", "LoadBalancer")


def _should_allocate_node_ports(service: Obj) -> bool:
    spec = service.get("spec", {})
    if service_type(service) == "LoadBalancer":
        return spec.get("allocateLoadBalancerNodePorts") is not False
    return service_type(service) == "NodePort"


def _needs_health_check_port(service: Obj) -> bool:
    """NeedsHealthCheck: a LoadBalancer that keeps traffic on the node it arrived at."""
    spec = service.get("spec", {})
    return service_type(service) == "LoadBalancer" and \
        spec.get("externalTrafficPolicy") == "Local"


def _node_ports(service: Obj) -> list[int]:
    return [int(p["nodePort"]) for p in service.get("spec", {}).get("ports") or []
            if p.get("nodePort")]


def _render(value: Any) -> str:
    """How field.Error prints a bad value: strings quoted, numbers bare, lists as JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Allocation:
    """What one create or update took (given back by `rollback`) and freed (by `commit`)."""

    def __init__(self, allocators: ServiceAllocators) -> None:
        self._allocators = allocators
        self.taken_ips: list[str] = []
        self.taken_ports: list[int] = []
        self.freed_ips: list[str] = []
        self.freed_ports: list[int] = []

    def commit(self) -> None:
        """The write succeeded: free what the update no longer uses."""
        for ip in self.freed_ips:
            self._allocators.cluster_ips.release(ip)
        for port in self.freed_ports:
            self._allocators.node_ports.release(port)
        self.freed_ips, self.freed_ports = [], []

    def rollback(self) -> None:
        """The write failed: give back what was taken; what was to be freed stays taken."""
        for ip in self.taken_ips:
            self._allocators.cluster_ips.release(ip)
        for port in self.taken_ports:
            self._allocators.node_ports.release(port)
        self.taken_ips, self.taken_ports = [], []


@dataclass
class ServiceAllocators:
    """The API server's ClusterIP and NodePort ranges."""

    cluster_ips: IPAllocator = field(default_factory=IPAllocator.for_cidr)
    node_ports: PortAllocator = field(default_factory=PortAllocator)

    def rebuild(self, services: Iterable[Obj]) -> list[str]:
        """Take every value the stored Services hold; returns warnings worded as the repair
        controllers word them, for values outside the ranges or held by two Services."""
        ip_owner: dict[str, str] = {}
        port_owner: dict[int, str] = {}
        warnings: list[str] = []
        for svc in services:
            meta = svc.get("metadata", {})
            owner = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            ips = [ip for ip in cluster_ips(svc) if ip != "None"] \
                if _needs_cluster_ip(svc) else []
            ports = set(_node_ports(svc))
            hc = svc.get("spec", {}).get("healthCheckNodePort")
            if hc and _needs_health_check_port(svc):
                ports.add(int(hc))
            for ip in ips:
                if ip_owner.setdefault(ip, owner) != owner:
                    warnings.append(f"Cluster IP [{self.cluster_ips.family}]:{ip} was assigned "
                                    "to multiple services; please recreate service")
            for port in sorted(ports):
                if port_owner.setdefault(port, owner) != owner:
                    warnings.append(f"Port {port} was assigned to multiple services; "
                                    "please recreate service")
        for ip in self.cluster_ips.rebuild(ip_owner):
            warnings.append(f"Cluster IP [{self.cluster_ips.family}]:{ip} is not within the "
                            f"configured Service CIDR {self.cluster_ips.spec}; "
                            "please recreate service")
        for port in self.node_ports.rebuild(port_owner):
            warnings.append(f"Port {port} is not within the port range "
                            f"{self.node_ports.spec}; please recreate service")
        return warnings

    def allocate(self, new: Obj, old: Obj | None = None) -> tuple[Obj, Allocation]:
        """Assign, keep and free the ClusterIP, NodePorts and healthCheckNodePort of a Service
        being created (`old` None) or updated. Returns a copy of `new` with the values filled
        in, and the transaction to commit after the write or roll back if it fails.
        Raises ApiError 422 Invalid, worded as Kubernetes words it."""
        svc = copy.deepcopy(new)
        svc.setdefault("spec", {})
        _sync_cluster_ips(svc)
        txn = Allocation(self)
        try:
            if old is not None:
                _drop_type_dependent_fields(svc, old)
                _patch_allocated_values(svc, old)
            self._init_ip_families(svc, old)
            self._assign_cluster_ip(svc, old, txn)
            self._assign_node_ports(svc, old, txn)
            self._assign_health_check_port(svc, old, txn)
        except BaseException:
            txn.rollback()
            raise
        return svc, txn

    def release(self, service: Obj) -> None:
        """Free everything a deleted Service held (releaseAllocatedResources)."""
        if _needs_cluster_ip(service):
            for ip in cluster_ips(service):
                self.cluster_ips.release(ip)
        for port in _node_ports(service):
            self.node_ports.release(port)
        hc = service.get("spec", {}).get("healthCheckNodePort")
        if hc and _needs_health_check_port(service):
            self.node_ports.release(int(hc))

    def _init_ip_families(self, svc: Obj, old: Obj | None) -> None:
        """initIPFamilyFields on a single-stack cluster: default the policy and families, and
        refuse what this cluster cannot give."""
        if not _needs_cluster_ip(svc):
            return
        spec = svc["spec"]
        selectorless_headless = _headless(svc) and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            old_policy = (old or {}).get("spec", {}).get("ipFamilyPolicy")
            spec["ipFamilyPolicy"] = old_policy or (
                "RequireDualStack" if selectorless_headless else "SingleStack")
        families = list(spec.get("ipFamilies") or [])
        ips = cluster_ips(svc)
        for i, ip in enumerate(ips):
            if ip == "None":
                break
            family = _family_of(ip)
            if i >= len(families) and family is not None:
                if family != self.cluster_ips.family:
                    raise _invalid(svc, f"spec.clusterIPs[{i}]", ips,
                                   f"{family} is not configured on this cluster")
                families.append(family)
        if selectorless_headless:
            # Headless Services without selectors may list any family: they get no IP.
            families = families or [self.cluster_ips.family]
            if len(families) < 2 and spec["ipFamilyPolicy"] != "SingleStack":
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
            spec["ipFamilies"] = families
            return
        if spec["ipFamilyPolicy"] == "RequireDualStack":
            raise _invalid(svc, "spec.ipFamilyPolicy", spec["ipFamilyPolicy"],
                           "this cluster is not configured for dual-stack services")
        for i, family in enumerate(families):
            if family != self.cluster_ips.family:
                raise _invalid(svc, f"spec.ipFamilies[{i}]", family,
                               "not configured on this cluster")
        if len(ips) > 1:
            raise _invalid(svc, "spec.clusterIPs", ips,
                           "may specify no more than one IP for each IP family")
        spec["ipFamilies"] = families or [self.cluster_ips.family]

    def _assign_cluster_ip(self, svc: Obj, old: Obj | None, txn: Allocation) -> None:
        old_ips = cluster_ips(old) if old is not None and _needs_cluster_ip(old) else []
        if not _needs_cluster_ip(svc):
            txn.freed_ips += [ip for ip in old_ips if ip != "None"]
            return
        ips = cluster_ips(svc)
        if old is not None and _needs_cluster_ip(old):
            # ClusterIPs are immutable (ValidateServiceUpdate); nothing to take or free.
            if ips[:1] != old_ips[:1]:
                raise _invalid(svc, "spec.clusterIPs[0]", ips, "may not change once set")
            return
        if ips and ips[0] == "None":
            return
        if ips:
            ip = ips[0]
            if _family_of(ip) is None:
                raise _invalid(svc, "spec.clusterIPs[0]", ip,
                               "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
            try:
                self.cluster_ips.allocate_specific(ip)
            except AllocationError as err:
                raise _invalid(svc, "spec.clusterIPs", ips,
                               f"failed to allocate IP {ip}: {err}") from err
        else:
            try:
                ip = self.cluster_ips.allocate_next()
            except AllocationError as err:
                # Kubernetes answers 500 here; the range being full is not a server fault.
                raise _invalid(svc, "spec.clusterIPs", ips,
                               f"failed to allocate a serviceIP: {err}") from err
        txn.taken_ips.append(ip)
        svc["spec"]["clusterIP"] = ip
        svc["spec"]["clusterIPs"] = [ip]

    def _assign_node_ports(self, svc: Obj, old: Obj | None, txn: Allocation) -> None:
        """initNodePorts/updateNodePorts: honour requested ports, share one NodePort between
        the protocols of one port number, allocate the rest, free what is no longer used."""
        old_ports = set(_node_ports(old)) if old is not None and _needs_node_ports(old) \
            else set()
        if _needs_node_ports(svc):
            ports = svc["spec"].get("ports") or []
            allocate = _should_allocate_node_ports(svc)
            by_number: dict[int, int] = {}
            claimed: set[int] = set()
            seen: set[tuple[str, int]] = set()
            for i, port in enumerate(ports):
                path = f"spec.ports[{i}].nodePort"
                if not port.get("nodePort") and not allocate:
                    continue
                number = int(port.get("port") or 0)
                node_port = int(port.get("nodePort") or 0) or by_number.get(number) or \
                    _requested_node_port(number, ports)
                if not node_port:
                    node_port = self._take_port(svc, path, None, txn)
                elif node_port not in old_ports and node_port not in claimed:
                    self._take_port(svc, path, node_port, txn)
                key = (str(port.get("protocol") or "TCP"), node_port)
                if key in seen:
                    raise invalid("Service", "", _name(svc), [Cause(
                        path, f"Duplicate value: {node_port}", "FieldValueDuplicate")])
                seen.add(key)
                claimed.add(node_port)
                by_number.setdefault(number, node_port)
                port["nodePort"] = node_port
        new_ports = set(_node_ports(svc)) if _needs_node_ports(svc) else set()
        txn.freed_ports += sorted(old_ports - new_ports)

    def _assign_health_check_port(self, svc: Obj, old: Obj | None, txn: Allocation) -> None:
        old_port = int((old or {}).get("spec", {}).get("healthCheckNodePort") or 0)
        needed = old is not None and _needs_health_check_port(old)
        needs = _needs_health_check_port(svc)
        spec = svc["spec"]
        if needs and not needed:
            requested = int(spec.get("healthCheckNodePort") or 0)
            if requested:
                try:
                    self.node_ports.allocate_specific(requested)
                except AllocationError as err:
                    raise _invalid(svc, "spec.healthCheckNodePort", requested,
                                   "failed to allocate requested HealthCheck NodePort "
                                   f"{requested}: {err}") from err
                txn.taken_ports.append(requested)
            else:
                try:
                    spec["healthCheckNodePort"] = self.node_ports.allocate_next()
                except AllocationError as err:
                    raise _invalid(svc, "spec.healthCheckNodePort", 0,
                                   f"failed to allocate a HealthCheck NodePort 0: {err}") from err
                txn.taken_ports.append(spec["healthCheckNodePort"])
        elif needed and not needs and old_port:
            txn.freed_ports.append(old_port)

    def _take_port(self, svc: Obj, path: str, port: int | None, txn: Allocation) -> int:
        try:
            if port is None:
                taken = self.node_ports.allocate_next()
            else:
                self.node_ports.allocate_specific(port)
                taken = port
        except RangeFullError as err:
            raise _invalid(svc, path, 0, f"failed to allocate a nodePort: {err}") from err
        except AllocationError as err:
            raise _invalid(svc, path, port, str(err)) from err
        txn.taken_ports.append(taken)
        return taken


def _name(svc: Obj) -> str:
    return str(svc.get("metadata", {}).get("name", ""))


def _invalid(svc: Obj, path: str, value: Any, detail: str) -> ApiError:
    return invalid("Service", "", _name(svc),
                   [Cause(path, f"Invalid value: {_render(value)}: {detail}")])


def _family_of(ip: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
    except ValueError:
        return None


def _requested_node_port(number: int, ports: list[Obj]) -> int:
    """findRequestedNodePort: a NodePort asked for by any port with the same number."""
    return next((int(p["nodePort"]) for p in ports
                 if int(p.get("port") or 0) == number and p.get("nodePort")), 0)


def _sync_cluster_ips(svc: Obj) -> None:
    """The v1 conversion keeps clusterIP and clusterIPs[0] in step."""
    spec = svc["spec"]
    ips = cluster_ips(svc)
    if ips:
        spec["clusterIPs"] = ips
        spec["clusterIP"] = spec.get("clusterIP") or ips[0]


def _drop_type_dependent_fields(svc: Obj, old: Obj) -> None:
    """dropTypeDependentFields: on a type change, clear the allocated values the new type does
    not use, unless the user changed them too (then validation has its say)."""
    spec, old_spec = svc["spec"], old.get("spec", {})
    if _needs_cluster_ip(old) and not _needs_cluster_ip(svc):
        if cluster_ips(svc) == cluster_ips(old):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for name in ("ipFamilies", "ipFamilyPolicy"):
            if spec.get(name) == old_spec.get(name):
                spec.pop(name, None)
    if _needs_node_ports(old) and not _needs_node_ports(svc) and \
            _node_ports(svc) == _node_ports(old):
        for port in spec.get("ports") or []:
            port.pop("nodePort", None)
    if _needs_health_check_port(old) and not _needs_health_check_port(svc) and \
            spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)


def _patch_allocated_values(svc: Obj, old: Obj) -> None:
    """patchAllocatedValues: a client resubmitting its manifest without the values we chose
    for it (a PUT of the original YAML) keeps them."""
    spec, old_spec = svc["spec"], old.get("spec", {})
    if _needs_cluster_ip(old) and _needs_cluster_ip(svc) and not cluster_ips(svc) and \
            cluster_ips(old):
        spec["clusterIP"] = old_spec.get("clusterIP") or cluster_ips(old)[0]
        spec["clusterIPs"] = cluster_ips(old)
    if _needs_node_ports(old) and _needs_node_ports(svc):
        used = set(_node_ports(old)) & set(_node_ports(svc))
        by_name = {str(p.get("name") or ""): int(p.get("nodePort") or 0)
                   for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            previous = by_name.get(str(port.get("name") or ""), 0)
            if not port.get("nodePort") and previous and previous not in used:
                port["nodePort"] = previous
    if _needs_health_check_port(old) and _needs_health_check_port(svc) and \
            not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
