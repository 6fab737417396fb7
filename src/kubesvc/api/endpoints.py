"""The Endpoints and EndpointSlices of a Service, computed as Kubernetes' controllers do.

- `reconcile_endpoints`: pkg/controller/endpoint (syncService, RepackSubsets).
- `reconcile_slices`: pkg/controller/endpointslice with the staging k8s.io/endpointslice
  reconciler: slices grouped by their set of ports, at most 100 endpoints each, existing slices
  reused (names kept) and only real changes listed, so a steady state writes nothing.
- `mirror_slices`: pkg/controller/endpointslicemirroring, for the Endpoints users write for
  Services without a selector.

All of them only compare what the controllers compare (addresses, conditions, ports, labels, a
pod's name and uid), so resourceVersions, managedFields and timestamps never cause a write.
Objects are Kubernetes JSON; the caller does the reads and writes.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubesvc.api.allocators import cluster_ip_set, cluster_ips, service_type

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
MIRROR_CONTROLLER = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ENDPOINTS_MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER = "endpoint-controller"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

MAX_ENDPOINTS_PER_SLICE = 100
MAX_MIRRORED_PER_SUBSET = 1000

_RESERVED_SLICE_LABELS = frozenset({SERVICE_NAME_LABEL, SLICE_MANAGED_BY_LABEL, HEADLESS_LABEL})

# An endpoint's identity in a slice (hashEndpoint): addresses, hostname, pod namespace and name.
EndpointKey = tuple[tuple[str, ...], str, str, str]
# A set of ports, order ignored (PortMapKey): (name, port, protocol, appProtocol) each.
PortsKey = tuple[tuple[str, int, str, str], ...]


@dataclass
class SliceChanges:
    """EndpointSlices to create (they carry generateName), update and delete."""

    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)

    def extend(self, other: SliceChanges) -> None:
        self.create += other.create
        self.update += other.update
        self.delete += other.delete


# ---------------------------------------------------------------------------------------------
# Services and pods


def selects_pods(service: Obj) -> bool:
    """The controllers only manage Services with a selector that are not ExternalName."""
    return service_type(service) != "ExternalName" and bool(service["spec"].get("selector"))


def selected_pods(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """Pods of the Service's namespace whose labels include every pair of its selector."""
    namespace = service["metadata"].get("namespace")
    selector: dict[str, str] = service["spec"].get("selector") or {}
    return [pod for pod in pods if pod["metadata"].get("namespace") == namespace and
            all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]


def _pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """ShouldPodBeInEndpoints: has an IP, is not finished, and is not going away (unless
    the caller keeps terminating pods)."""
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") or not _pod_ips(pod):
        return False
    return include_terminating or not _terminating(pod)


def _pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status", {})
    ips = [str(entry["ip"]) for entry in status.get("podIPs") or [] if entry.get("ip")]
    return ips or ([str(status["podIP"])] if status.get("podIP") else [])


def _family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _address_types(service: Obj) -> list[str]:
    """getAddressTypesForService, for a cluster whose Services are defaulted: their families."""
    families = service["spec"].get("ipFamilies") or []
    if families:
        return list(dict.fromkeys(str(f) for f in families))
    ips = [ip for ip in cluster_ips(service) if ip != "None"]
    return [_family(ips[0])] if ips else ["IPv4"]


def _sets_hostname(pod: Obj, service: Obj) -> bool:
    """ShouldSetHostname: the pod asked to be `<hostname>.<service>` (a headless subdomain)."""
    spec = pod.get("spec", {})
    return bool(spec.get("hostname")) and spec.get("subdomain") == service["metadata"]["name"] \
        and pod["metadata"].get("namespace") == service["metadata"].get("namespace")


def _find_port(pod: Obj, service_port: Obj) -> int | None:
    """FindPort: a numeric targetPort as is, a named one looked up in the pod's containers
    (and restartable init containers) for the same protocol; None when the pod lacks it."""
    target = service_port.get("targetPort")
    if target is None or target == 0:
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec", {})
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", "")}


def _slice_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"name": service_port.get("name") or "", "port": number,
                 "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _ports_key(ports: Iterable[Obj]) -> PortsKey:
    return tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0),
                         str(p.get("protocol") or "TCP"), str(p.get("appProtocol") or ""))
                        for p in ports))


def _rfc3339nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: no fraction when whole, trailing zeros trimmed."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _set_trigger_time(obj: Obj, trigger_time: datetime | None) -> None:
    meta = obj["metadata"]
    annotations = dict(meta.get("annotations") or {})
    if trigger_time is None:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    else:
        annotations[TRIGGER_TIME_ANNOTATION] = _rfc3339nano(trigger_time)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)


def _without_resource_version(ref: Obj | None) -> Obj | None:
    """Pod references compare without their resourceVersion, as the controllers compare them."""
    return None if ref is None else {k: v for k, v in ref.items() if k != "resourceVersion"}


# ---------------------------------------------------------------------------------------------
# Endpoints


def _address_order(address: Obj) -> tuple[str, bool, str]:
    """LessEndpointAddress: by IP text, an address without a pod reference first, then uid."""
    ref = address.get("targetRef")
    return str(address.get("ip", "")), ref is not None, str((ref or {}).get("uid", ""))


def _endpoints_port(port: Obj) -> Obj:
    out: Obj = {"port": int(port.get("port") or 0), "protocol": port.get("protocol") or "TCP"}
    if port.get("name"):
        out["name"] = port["name"]
    if port.get("appProtocol"):
        out["appProtocol"] = port["appProtocol"]
    return out


def repack_subsets(subsets: Iterable[Obj]) -> list[Obj]:
    """RepackSubsets: one subset per distinct set of addresses, holding every port they all
    serve; an address listed both ready and not ready on a port counts as not ready."""
    addresses: dict[tuple[str, str], Obj] = {}
    ports: dict[PortsKey, Obj] = {}
    ready_by_port: dict[PortsKey, dict[tuple[str, str], bool]] = {}
    for subset in subsets:
        # Addresses without ports are kept under the empty key (Kubernetes' sentinel port).
        entries: list[tuple[PortsKey, Obj | None]] = [
            (_ports_key([p]), _endpoints_port(p)) for p in subset.get("ports") or []]
        for key, port in entries or [((), None)]:
            if port is not None:
                ports[key] = port
            for ready, listed in ((True, "addresses"), (False, "notReadyAddresses")):
                for address in subset.get(listed) or []:
                    ident = (str(address.get("ip", "")),
                             str((address.get("targetRef") or {}).get("uid", "")))
                    addresses.setdefault(ident, address)
                    states = ready_by_port.setdefault(key, {})
                    if states.get(ident, True):
                        states[ident] = ready
    groups: dict[frozenset[tuple[tuple[str, str], bool]], list[PortsKey]] = {}
    for key, states in ready_by_port.items():
        groups.setdefault(frozenset(states.items()), []).append(key)
    repacked: list[Obj] = []
    for members, keys in groups.items():
        packed: Obj = {}
        for ready, listed in ((True, "addresses"), (False, "notReadyAddresses")):
            chosen = sorted((addresses[ident] for ident, r in members if r == ready),
                            key=_address_order)
            if chosen:
                packed[listed] = chosen
        if any(keys):
            packed["ports"] = [ports[key] for key in sorted(keys) if key]
        repacked.append(packed)
    # Kubernetes orders subsets by a hash of their content; any stable order will do.
    return sorted(repacked, key=lambda s: json.dumps(s, sort_keys=True))


def _endpoints_labels(service: Obj) -> dict[str, str]:
    labels = dict(service["metadata"].get("labels") or {})
    labels[ENDPOINTS_MANAGED_BY_LABEL] = ENDPOINTS_CONTROLLER
    if not cluster_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def desired_endpoints(service: Obj, pods: Iterable[Obj],
                      trigger_time: datetime | None = None) -> Obj | None:
    """The Endpoints the endpoint controller wants for `service`, or None when it leaves the
    Service alone (no selector: the user's Endpoints; ExternalName: none)."""
    if not selects_pods(service):
        return None
    spec = service["spec"]
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    family = _address_types(service)[0]
    raw: list[Obj] = []
    for pod in selected_pods(service, pods):
        if not _in_endpoints(pod, publish_not_ready):
            continue
        ip = next((ip for ip in _pod_ips(pod) if _family(ip) == family), None)
        if ip is None:
            continue
        address: Obj = {"ip": ip}
        if _sets_hostname(pod, service):
            address["hostname"] = pod["spec"]["hostname"]
        if pod.get("spec", {}).get("nodeName"):
            address["nodeName"] = pod["spec"]["nodeName"]
        address["targetRef"] = _target_ref(pod)
        listed = "addresses" if publish_not_ready or _pod_ready(pod) else "notReadyAddresses"
        if not spec.get("ports"):
            # Only a headless Service may have no ports; it still lists its pods.
            if not cluster_ip_set(service):
                raw.append({listed: [address]})
            continue
        for service_port in spec["ports"]:
            number = _find_port(pod, service_port)
            if number is not None:
                raw.append({listed: [address],
                            "ports": [_endpoints_port(_slice_port(service_port, number))]})
    meta = service["metadata"]
    endpoints: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""),
                                   "labels": _endpoints_labels(service)}}
    subsets = repack_subsets(raw)
    if subsets:
        endpoints["subsets"] = subsets
    _set_trigger_time(endpoints, trigger_time)
    return endpoints


def _comparable_subsets(subsets: Iterable[Obj]) -> list[Obj]:
    def address(a: Obj) -> Obj:
        return {**a, "targetRef": _without_resource_version(a.get("targetRef"))}

    return [{"addresses": [address(a) for a in subset.get("addresses") or []],
             "notReadyAddresses": [address(a) for a in subset.get("notReadyAddresses") or []],
             "ports": [_endpoints_port(p) for p in subset.get("ports") or []]}
            for subset in subsets]


def reconcile_endpoints(service: Obj, pods: Iterable[Obj], current: Obj | None,
                        trigger_time: datetime | None = None) -> Obj | None:
    """The Endpoints object to write (create when `current` is None, else update, keeping
    `current`'s metadata), or None when nothing needs writing."""
    desired = desired_endpoints(service, pods, trigger_time)
    if desired is None:
        return None
    if current is not None and \
            (current["metadata"].get("labels") or {}) == desired["metadata"]["labels"] and \
            _comparable_subsets(current.get("subsets") or []) == \
            _comparable_subsets(desired.get("subsets") or []):
        return None
    if current is None:
        return desired
    updated = copy.deepcopy(current)
    updated["metadata"]["labels"] = desired["metadata"]["labels"]
    updated.pop("subsets", None)
    if "subsets" in desired:
        updated["subsets"] = desired["subsets"]
    _set_trigger_time(updated, trigger_time)
    return updated


# ---------------------------------------------------------------------------------------------
# EndpointSlices: what every kind of slice shares


def _endpoint_key(endpoint: Obj) -> EndpointKey:
    ref = endpoint.get("targetRef") or {}
    return (tuple(sorted(endpoint.get("addresses") or [])), str(endpoint.get("hostname") or ""),
            str(ref.get("namespace", "")), str(ref.get("name", "")))


def _equal_beyond_key(a: Obj, b: Obj) -> bool:
    """EndpointsEqualBeyondHash: node, zone, conditions and pod reference (its uid)."""
    ca, cb = a.get("conditions") or {}, b.get("conditions") or {}
    return a.get("nodeName") == b.get("nodeName") and a.get("zone") == b.get("zone") and \
        all(ca.get(c) == cb.get(c) for c in ("ready", "serving", "terminating")) and \
        _without_resource_version(a.get("targetRef")) == \
        _without_resource_version(b.get("targetRef"))


def _owner_ref(kind: str, owner: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"].get("uid", ""), "controller": True,
            "blockOwnerDeletion": True}


def _slice(owner_kind: str, owner: Obj, labels: dict[str, str], ports: list[Obj],
           address_type: str) -> Obj:
    meta: Obj = {"generateName": f"{owner['metadata']['name']}-",
                 "namespace": owner["metadata"].get("namespace", ""), "labels": labels,
                 "ownerReferences": [_owner_ref(owner_kind, owner)]}
    endpoint_slice: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                           "metadata": meta, "addressType": address_type, "endpoints": []}
    if ports:
        endpoint_slice["ports"] = ports
    return endpoint_slice


def _replaces(new: Obj, old: Obj) -> Obj:
    """Write `new` over the existing slice `old`: its name, and the resourceVersion it was
    read at so a concurrent change makes the update conflict rather than be lost."""
    new["metadata"].pop("generateName", None)
    new["metadata"]["name"] = old["metadata"]["name"]
    if old["metadata"].get("resourceVersion"):
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
    return new


def _managed(slices: Iterable[Obj], controller: str, name: str, namespace: str) -> list[Obj]:
    return [s for s in slices
            if (s["metadata"].get("labels") or {}).get(SLICE_MANAGED_BY_LABEL) == controller
            and (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
            and s["metadata"].get("namespace", "") == namespace]


def _in_order(desired: dict[EndpointKey, Obj]) -> deque[Obj]:
    """The endpoints still to place, in a stable order (Kubernetes pops them at random)."""
    return deque(desired[key] for key in sorted(desired))


# ---------------------------------------------------------------------------------------------
# EndpointSlices of Services with a selector


def _slice_labels(current: Obj | None, service: Obj) -> tuple[dict[str, str], bool]:
    """setEndpointSliceLabels: the Service's labels plus the reserved ones, and whether the
    Service's own labels differ from the slice's."""
    current_labels = (current or {}).get("metadata", {}).get("labels") or {}
    mine = {k: v for k, v in current_labels.items() if k not in _RESERVED_SLICE_LABELS}
    labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items()
              if k not in _RESERVED_SLICE_LABELS}
    changed = mine != labels
    if not cluster_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[SLICE_MANAGED_BY_LABEL] = SLICE_CONTROLLER
    return labels, changed


def _service_slice(service: Obj, ports: list[Obj], address_type: str) -> Obj:
    return _slice("Service", service, _slice_labels(None, service)[0], ports, address_type)


def _owned_by(endpoint_slice: Obj, service: Obj) -> bool:
    uid = service["metadata"].get("uid", "")
    return any(ref.get("uid") == uid and ref.get("kind") == "Service" and
               ref.get("apiVersion") == "v1"
               for ref in endpoint_slice["metadata"].get("ownerReferences") or [])


def _pod_endpoint(pod: Obj, service: Obj, address_type: str) -> Obj:
    """podToEndpoint. A terminating pod is never ready (unless publishNotReadyAddresses) but
    stays serving while its readiness says so, so proxies can drain it."""
    serving = _pod_ready(pod)
    terminating = _terminating(pod)
    ready = bool(service["spec"].get("publishNotReadyAddresses")) or \
        (serving and not terminating)
    endpoint: Obj = {
        "addresses": [ip for ip in _pod_ips(pod) if _family(ip) == address_type],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if _sets_hostname(pod, service):
        endpoint["hostname"] = pod["spec"]["hostname"]
    endpoint["targetRef"] = _target_ref(pod)
    if pod.get("spec", {}).get("nodeName"):
        endpoint["nodeName"] = pod["spec"]["nodeName"]
    return endpoint


def _pod_ports(service: Obj, pod: Obj) -> list[Obj]:
    """getEndpointPorts: the Service's ports this pod serves, with their resolved numbers."""
    ports: list[Obj] = []
    for service_port in service["spec"].get("ports") or []:
        number = _find_port(pod, service_port)
        if number is not None:
            ports.append(_slice_port(service_port, number))
    return ports


def _slice_to_fill(slices: list[Obj], count: int, limit: int) -> Obj | None:
    """getSliceToFill: the unchanged slice that ends up closest to full."""
    best, best_gap = None, limit
    for candidate in slices:
        gap = limit - (count + len(candidate.get("endpoints") or []))
        if 0 <= gap < best_gap:
            best, best_gap = candidate, gap
    return best


def reconcile_slices(service: Obj, pods: Iterable[Obj], existing_slices: Iterable[Obj],
                     trigger_time: datetime | None = None,
                     max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> SliceChanges:
    """The writes that bring the Service's EndpointSlices to the state its pods call for.

    `pods` and `existing_slices` may hold more than this Service's: pods are picked by
    namespace and selector, slices by the service-name and managed-by labels. Created and
    updated slices carry the last-change-trigger-time annotation.
    """
    changes = SliceChanges()
    if not selects_pods(service):
        return changes
    meta = service["metadata"]
    mine = _managed(existing_slices, SLICE_CONTROLLER, meta["name"], meta.get("namespace", ""))
    chosen = selected_pods(service, pods)
    address_types = _address_types(service)
    changes.delete += [s for s in mine if s.get("addressType") not in address_types]
    for address_type in address_types:
        changes.extend(_reconcile_address_type(
            service, chosen, [s for s in mine if s.get("addressType") == address_type],
            address_type, max_endpoints_per_slice))
    for endpoint_slice in changes.create + changes.update:
        _set_trigger_time(endpoint_slice, trigger_time)
    return changes


def _reconcile_address_type(service: Obj, pods: list[Obj], existing: list[Obj],
                            address_type: str, limit: int) -> SliceChanges:
    changes = SliceChanges()
    existing_by_ports: dict[PortsKey, list[Obj]] = {}
    for endpoint_slice in existing:
        if _owned_by(endpoint_slice, service):
            existing_by_ports.setdefault(_ports_key(endpoint_slice.get("ports") or []),
                                         []).append(endpoint_slice)
        else:
            # A slice of an earlier Service of the same name: the garbage collector's, or ours.
            changes.delete.append(endpoint_slice)
    desired: dict[PortsKey, dict[EndpointKey, Obj]] = {}
    ports_of: dict[PortsKey, list[Obj]] = {}
    for pod in pods:
        if not _in_endpoints(pod, include_terminating=True):
            continue
        ports = _pod_ports(service, pod)
        key = _ports_key(ports)
        endpoints = desired.setdefault(key, {})
        ports_of.setdefault(key, ports)
        endpoint = _pod_endpoint(pod, service, address_type)
        if endpoint["addresses"]:
            endpoints[_endpoint_key(endpoint)] = endpoint
    for key, endpoints in desired.items():
        changes.extend(_reconcile_ports(service, existing_by_ports.get(key, []), endpoints,
                                        ports_of[key], address_type, limit))
    for key, slices in existing_by_ports.items():
        if key not in desired:
            changes.delete += slices
    if len(existing) == len(changes.delete) and not changes.create:
        # A Service with no endpoints still gets one empty slice, so "none" is observable.
        placeholder = _service_slice(service, [], address_type)
        if len(changes.delete) == 1 and _same_placeholder(changes.delete[0], placeholder):
            changes.delete = []
        else:
            changes.create.append(placeholder)
    _recycle(changes, lambda new, old: new["addressType"] == old.get("addressType") and
             _owned_by(old, service))
    return changes


def _same_placeholder(a: Obj, b: Obj) -> bool:
    """placeholderSliceCompare: namespace, labels, address type, and nothing in it."""
    return a["metadata"].get("namespace") == b["metadata"].get("namespace") and \
        (a["metadata"].get("labels") or {}) == b["metadata"]["labels"] and \
        a.get("addressType") == b["addressType"] and \
        not a.get("endpoints") and not a.get("ports")


def _recycle(changes: SliceChanges, compatible: Callable[[Obj, Obj], bool]) -> None:
    """finalize/recycleSlices: rather than delete one slice and create another, update the
    first into the second, keeping its name."""
    kept: list[Obj] = []
    for victim in changes.delete:
        match = next((i for i in range(len(changes.create) - 1, -1, -1)
                      if compatible(changes.create[i], victim)), None)
        if match is None:
            kept.append(victim)
        else:
            changes.update.append(_replaces(changes.create.pop(match), victim))
    changes.delete = kept


def _reconcile_ports(service: Obj, existing: list[Obj], desired: dict[EndpointKey, Obj],
                     ports: list[Obj], address_type: str, limit: int) -> SliceChanges:
    """reconcileByPortMapping: drop and refresh endpoints in place, fill the slices being
    written anyway, then the unchanged slice closest to full, then new slices."""
    by_name: dict[str, Obj] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    to_delete: list[str] = []
    for endpoint_slice in existing:
        name = endpoint_slice["metadata"]["name"]
        by_name[name] = endpoint_slice
        old_endpoints = endpoint_slice.get("endpoints") or []
        kept: list[Obj] = []
        refreshed = False
        for endpoint in old_endpoints:
            wanted = desired.pop(_endpoint_key(endpoint), None)
            if wanted is not None:
                kept.append(wanted)
                refreshed = refreshed or not _equal_beyond_key(wanted, endpoint)
        labels, labels_changed = _slice_labels(endpoint_slice, service)
        if refreshed or len(kept) != len(old_endpoints):
            if not kept:
                to_delete.append(name)
                continue
        elif not labels_changed:
            unchanged.append(name)
            continue
        by_name[name] = copy.deepcopy(endpoint_slice)
        by_name[name]["endpoints"] = kept
        by_name[name]["metadata"]["labels"] = labels
        to_update.append(name)
    pending = _in_order(desired)
    for endpoint_slice in sorted((by_name[n] for n in to_update),
                                 key=lambda s: -len(s["endpoints"])):
        while pending and len(endpoint_slice["endpoints"]) < limit:
            endpoint_slice["endpoints"].append(pending.popleft())
    created: list[Obj] = []
    while pending:
        target = None
        if len(pending) < limit and unchanged:
            target = _slice_to_fill([by_name[n] for n in unchanged], len(pending), limit)
        if target is None:
            target = _service_slice(service, ports, address_type)
            created.append(target)
        else:
            name = target["metadata"]["name"]
            target = by_name[name] = copy.deepcopy(target)
            target["endpoints"] = list(target.get("endpoints") or [])
            unchanged.remove(name)
            to_update.append(name)
        while pending and len(target["endpoints"]) < limit:
            target["endpoints"].append(pending.popleft())
    return SliceChanges(created, [by_name[n] for n in to_update],
                        [by_name[n] for n in to_delete])


# ---------------------------------------------------------------------------------------------
# EndpointSlices mirrored from the Endpoints of Services without a selector


def should_mirror(endpoints: Obj, service: Obj | None) -> bool:
    """Mirror only Endpoints of an existing selectorless Service, not opted out, and not a
    leader-election record."""
    meta = endpoints["metadata"]
    return service is not None and not service["spec"].get("selector") and \
        (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) != "true" and \
        LEADER_ANNOTATION not in (meta.get("annotations") or {})


def _mirrored_annotations(endpoints: Obj) -> dict[str, str]:
    return {k: v for k, v in (endpoints["metadata"].get("annotations") or {}).items()
            if k not in (TRIGGER_TIME_ANNOTATION, LAST_APPLIED_ANNOTATION)}


def _mirror_endpoint(address: Obj, ready: bool) -> tuple[Obj, str] | None:
    """addressToEndpoint; None for an address that is not an IP."""
    try:
        ip = ipaddress.ip_address(str(address.get("ip", "")))
    except ValueError:
        return None
    endpoint: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("targetRef"):
        endpoint["targetRef"] = address["targetRef"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    return endpoint, "IPv4" if ip.version == 4 else "IPv6"


def mirror_slices(endpoints: Obj | None, existing_slices: Iterable[Obj],
                  name: str = "", namespace: str = "") -> SliceChanges:
    """The writes that make the mirrored EndpointSlices match `endpoints`. With `endpoints`
    None (deleted, or `should_mirror` said no) every mirrored slice of `name` in `namespace`
    goes. Up to 1000 addresses of each subset are mirrored, one slice per port set and
    address type."""
    if endpoints is not None:
        name = endpoints["metadata"]["name"]
        namespace = endpoints["metadata"].get("namespace", "")
    mine = _managed(existing_slices, MIRROR_CONTROLLER, name, namespace)
    if endpoints is None:
        return SliceChanges(delete=mine)
    desired: dict[tuple[str, PortsKey], dict[EndpointKey, Obj]] = {}
    ports_of: dict[tuple[str, PortsKey], list[Obj]] = {}
    for subset in repack_subsets(endpoints.get("subsets") or []):
        ports = [_slice_port(p, int(p.get("port") or 0)) for p in subset.get("ports") or []]
        mirrored = 0
        for ready, listed in ((True, "addresses"), (False, "notReadyAddresses")):
            for address in subset.get(listed) or []:
                if mirrored >= MAX_MIRRORED_PER_SUBSET:
                    break
                converted = _mirror_endpoint(address, ready)
                if converted is None:
                    continue
                endpoint, address_type = converted
                key = (address_type, _ports_key(ports))
                desired.setdefault(key, {})[_endpoint_key(endpoint)] = endpoint
                ports_of[key] = ports
                mirrored += 1
    existing_by_key: dict[tuple[str, PortsKey], list[Obj]] = {}
    for endpoint_slice in mine:
        key = (str(endpoint_slice.get("addressType")),
               _ports_key(endpoint_slice.get("ports") or []))
        existing_by_key.setdefault(key, []).append(endpoint_slice)
    changes = SliceChanges()
    for key, wanted in desired.items():
        changes.extend(_mirror_ports(endpoints, existing_by_key.get(key, []), wanted,
                                     ports_of[key], key[0]))
    for key, slices in existing_by_key.items():
        if key not in desired:
            changes.delete += slices
    _recycle(changes, lambda new, old: new["addressType"] == old.get("addressType"))
    return changes


def _mirror_ports(endpoints: Obj, existing: list[Obj], desired: dict[EndpointKey, Obj],
                  ports: list[Obj], address_type: str) -> SliceChanges:
    """reconcileByPortMapping of the mirroring controller: one slice per port set, the first
    existing one rewritten when anything differs, any others deleted."""
    changes = SliceChanges(delete=existing[1:])
    labels = dict(endpoints["metadata"].get("labels") or {})
    annotations = _mirrored_annotations(endpoints)
    if existing:
        first = existing[0]
        first_labels = {k: v for k, v in (first["metadata"].get("labels") or {}).items()
                        if k not in (SLICE_MANAGED_BY_LABEL, SERVICE_NAME_LABEL)}
        old_endpoints = first.get("endpoints") or []
        same = len(old_endpoints) == len(desired) and all(
            (wanted := desired.get(_endpoint_key(e))) is not None and
            _equal_beyond_key(wanted, e) for e in old_endpoints)
        if same and first_labels == labels and \
                (first["metadata"].get("annotations") or {}) == annotations:
            return changes
    labels[SERVICE_NAME_LABEL] = endpoints["metadata"]["name"]
    labels[SLICE_MANAGED_BY_LABEL] = MIRROR_CONTROLLER
    mirrored = _slice("Endpoints", endpoints, labels, ports, address_type)
    if annotations:
        mirrored["metadata"]["annotations"] = annotations
    mirrored["endpoints"] = list(_in_order(desired))[:MAX_MIRRORED_PER_SUBSET]
    if existing:
        changes.update.append(_replaces(mirrored, existing[0]))
    else:
        changes.create.append(mirrored)
    return changes
