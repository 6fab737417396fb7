"""The records Kubernetes objects put in DNS (the DNS-based service discovery spec, laid out
as CoreDNS's kubernetes plugin does).

Pure functions from objects to `Records`: owner name -> the records it holds. A name mapped to
no records still exists (a namespace), so queries for it get NODATA rather than NXDOMAIN.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from kubesvc.dns.render import Rec
from kubesvc.dns.wire import AAAA, CNAME, NS, PTR, SOA, SRV, TXT, A, wire_name

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SCHEMA_VERSION = "1.1.0"  # of the spec; served as TXT dns-version.<zone>
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# PTR sources in precedence order (CoreDNS: a ClusterIP, else endpoints, and kubesvc adds pods
# that no Service selects): only the best tier present at a reverse name is served.
TIER_CLUSTER_IP, TIER_ENDPOINT, TIER_POD = 0, 1, 2
Records = dict[str, frozenset[Rec]]


def service_records(svc: Obj, slices: Iterable[Obj], zone: str) -> Records:
    meta, spec = svc["metadata"], svc.get("spec") or {}
    base = f"{meta['name']}.{meta['namespace']}.svc.{zone}".lower()
    out: defaultdict[str, set[Rec]] = defaultdict(set)
    if spec.get("type") == "ExternalName":
        target = str(spec.get("externalName") or "").rstrip(".").lower()
        try:
            wire_name(target)
        except ValueError:  # not a name DNS can carry
            target = ""
        return {base: frozenset({Rec(CNAME, target)})} if target else {}
    endpoints = list(_ready_endpoints(slices))
    headless = spec.get("clusterIP") == "None"
    if headless:
        # Spec 2.4: the Service's own name exists only while it has ready endpoints.
        srv_sets: defaultdict[str, set[tuple[int, str]]] = defaultdict(set)
        for host, ip, ports in endpoints:
            out[base].add(_address(ip))
            for port_name, proto, port in ports:
                srv_sets[f"_{port_name}._{proto}.{base}"].add((port, f"{host}.{base}"))
        for srv_name, targets in srv_sets.items():
            weight = 100 // len(targets)  # CoreDNS: equal shares of 100 within one priority
            out[srv_name] = {Rec(SRV, target, port, weight) for port, target in targets}
    else:
        cluster_ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
                       if ip and ip != "None"]
        if not cluster_ips:
            return {}
        for ip in cluster_ips:
            out[base].add(_address(ip))
            out[reverse_name(ip)].add(Rec(PTR, base, tier=TIER_CLUSTER_IP))
        for port in spec.get("ports") or []:
            if port.get("name") and port.get("port"):
                proto = str(port.get("protocol") or "TCP").lower()
                out[f"_{port['name']}._{proto}.{base}".lower()].add(
                    Rec(SRV, base, int(port["port"]), 100))
        if (meta["namespace"], meta["name"]) == ("kube-system", "kube-dns"):
            out[f"ns.dns.{zone}"] = {_address(ip) for ip in cluster_ips}  # the NS's address
    # Endpoint names exist for ClusterIP Services too, as CoreDNS serves them.
    for host, ip, _ in endpoints:
        out[f"{host}.{base}"].add(_address(ip))
        out[reverse_name(ip)].add(Rec(PTR, f"{host}.{base}", tier=TIER_ENDPOINT))
    return _freeze(out)


def _ready_endpoints(slices: Iterable[Obj]
                     ) -> Iterable[tuple[str, str, list[tuple[str, str, int]]]]:
    """(hostname, ip, named ports) per ready address; without a hostname, the dashed IP."""
    for eps in slices:
        if eps.get("addressType") not in ("IPv4", "IPv6"):
            continue  # FQDN slices name no addresses
        ports = [(str(p["name"]).lower(), str(p.get("protocol") or "TCP").lower(), int(p["port"]))
                 for p in eps.get("ports") or [] if p.get("name") and p.get("port")]
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:  # unset means ready
                continue
            for raw in endpoint.get("addresses") or []:
                ip = _canonical_ip(raw)
                if ip is not None:
                    host = str(endpoint.get("hostname") or _dashed(ip, endpoint_name=True))
                    yield host.lower(), ip, ports


def pod_records(pod: Obj, zone: str) -> Records:
    """`<a-b-c-d>.<ns>.pod.<zone>` for each pod IP (CoreDNS's `pods verified`), and a PTR back
    to it for pods in their own network namespace."""
    out: defaultdict[str, set[Rec]] = defaultdict(set)
    for ip in pod_ips(pod):
        name = f"{_dashed(ip)}.{pod['metadata']['namespace']}.pod.{zone}".lower()
        out[name].add(_address(ip))
        if pod_has_own_ips(pod):
            out[reverse_name(ip)].add(Rec(PTR, name, tier=TIER_POD))
    return _freeze(out)


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return []  # its IPs are released and may already belong to another pod
    raw_ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
    return [ip for ip in map(_canonical_ip, raw_ips) if ip is not None]


def pod_has_own_ips(pod: Obj) -> bool:
    """False for hostNetwork pods, which share the node's addresses."""
    return not (pod.get("spec") or {}).get("hostNetwork")


def namespace_records(namespace: Obj, zone: str) -> Records:
    name = namespace["metadata"]["name"].lower()
    return {f"{name}.svc.{zone}": frozenset(), f"{name}.pod.{zone}": frozenset()}


def zone_records(zone: str) -> Records:
    """The apex (SOA, NS), the spec's schema version, and the `svc` and `pod` subtrees."""
    return {
        zone: frozenset({Rec(SOA, zone), Rec(NS, f"ns.dns.{zone}")}),
        f"dns-version.{zone}": frozenset({Rec(TXT, SCHEMA_VERSION)}),
        f"svc.{zone}": frozenset(),
        f"pod.{zone}": frozenset(),
    }


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def _address(ip: str) -> Rec:
    return Rec(AAAA if ":" in ip else A, ip)


def _canonical_ip(raw: object) -> str | None:
    try:
        return str(ipaddress.ip_address(str(raw)))
    except ValueError:
        if raw:
            log.debug("not an IP address: %r", raw)
        return None


def _dashed(ip: str, *, endpoint_name: bool = False) -> str:
    """`10-1-2-3` / `fd00--1`. CoreDNS ends an endpoint's name in `0` rather than `-`, as a
    host name may not end in a hyphen; a pod name is always the plain replacement."""
    dashed = ip.replace(".", "-").replace(":", "-")
    return dashed + "0" if endpoint_name and dashed.endswith("-") else dashed


def _freeze(out: dict[str, set[Rec]]) -> Records:
    return {name: frozenset(recs) for name, recs in out.items()}
