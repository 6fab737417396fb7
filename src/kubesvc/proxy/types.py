"""What every proxy mode works from: service ports, their endpoints, and immutable snapshots.

The shapes follow kube-proxy's pkg/proxy (ServicePortName, BaseServicePortInfo,
BaseEndpointInfo), reduced to IPv4 and to the fields the modes program. They are built from
Kubernetes JSON (v1 Service, discovery.k8s.io/v1 EndpointSlice) by the change tracker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kubesvc.api.allocators import cluster_ips, service_type
from kubesvc.api.endpoints import SERVICE_NAME_LABEL
from kubesvc.proxy.schedulers import SCHEDULER_ANNOTATION

Obj = dict[str, Any]

CLIENT_IP_AFFINITY = "ClientIP"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; Kubernetes' default for sessionAffinityConfig


@dataclass(frozen=True, slots=True, order=True)
class ServicePortName:
    """One port of one Service: the unit every mode programs (a chain per service port)."""

    namespace: str
    name: str
    port: str  # the port's name, "" when the Service has a single unnamed port
    protocol: str  # TCP, UDP or SCTP

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.service + (f":{self.port}" if self.port else "")


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: ServicePortName
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0  # seconds of ClientIP session affinity; 0 means none
    external_policy_local: bool = False
    internal_policy_local: bool = False
    scheduler: str = ""  # the Service's kubesvc.io/scheduler (IPVS, userspace); "" = default

    @property
    def protocol(self) -> str:
        return self.name.protocol

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # Even with externalTrafficPolicy Local, external traffic from pods and from the node
        # is short-circuited to all endpoints, so cluster endpoints are needed then too.
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (
            self.external_policy_local and self.externally_accessible
        )


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    local: bool = False  # runs on this proxy's node

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ProxySnapshot:
    """Everything the proxy should program, at one moment. Never mutated: a new snapshot
    shares the unchanged values of the previous one."""

    services: Mapping[ServicePortName, ServicePort] = field(default_factory=_empty)
    endpoints: Mapping[ServicePortName, tuple[Endpoint, ...]] = field(default_factory=_empty)

    def endpoints_of(self, name: ServicePortName) -> tuple[Endpoint, ...]:
        return self.endpoints.get(name, ())


@dataclass(frozen=True)
class NodeConfig:
    """The node-specific settings rules are rendered with."""

    node_name: str
    node_ips: tuple[str, ...]
    cluster_cidr: str  # traffic from outside it to a ClusterIP is masqueraded
    service_cidr: str
    pod_cidr: str = ""  # this node's pods ("" if unknown)


def service_ports(svc: Obj) -> dict[ServicePortName, ServicePort]:
    """The IPv4 service ports of a v1 Service; none for ExternalName and headless Services."""
    spec = svc.get("spec") or {}
    ips = [ip for ip in cluster_ips(svc) if ip != "None" and ":" not in ip]
    if service_type(svc) == "ExternalName" or not ips:
        return {}
    meta = svc["metadata"]
    affinity = 0
    if spec.get("sessionAffinity") == CLIENT_IP_AFFINITY:
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    externally_visible = service_type(svc) in ("NodePort", "LoadBalancer")
    lb_ips = tuple(
        str(ing["ip"])
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ing.get("ip") and ":" not in ing["ip"]
    ) if service_type(svc) == "LoadBalancer" else ()
    external_ips = tuple(str(ip) for ip in spec.get("externalIPs") or [] if ":" not in ip)
    result = {}
    for port in spec.get("ports") or []:
        name = ServicePortName(
            meta.get("namespace", "default"),
            meta["name"],
            str(port.get("name") or ""),
            str(port.get("protocol") or "TCP"),
        )
        node_port = int(port.get("nodePort") or 0) if externally_visible else 0
        result[name] = ServicePort(
            name=name,
            cluster_ip=ips[0],
            port=int(port["port"]),
            node_port=node_port,
            external_ips=external_ips,
            load_balancer_ips=lb_ips,
            affinity_timeout=affinity,
            # externalTrafficPolicy only means something for externally reachable Services.
            external_policy_local=spec.get("externalTrafficPolicy") == "Local"
            and bool(node_port or external_ips or lb_ips),
            internal_policy_local=spec.get("internalTrafficPolicy") == "Local",
            scheduler=str((meta.get("annotations") or {}).get(SCHEDULER_ANNOTATION) or ""),
        )
    return result


def slice_endpoints(
    slice_obj: Obj, node_name: str
) -> dict[ServicePortName, tuple[Endpoint, ...]]:
    """The endpoints an EndpointSlice contributes to each port of its Service."""
    meta = slice_obj["metadata"]
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service or slice_obj.get("addressType", "IPv4") != "IPv4":
        return {}
    endpoints = []
    for ep in slice_obj.get("endpoints") or []:
        addresses = ep.get("addresses") or []
        if not addresses:
            continue
        cond = ep.get("conditions") or {}
        # Unset conditions mean ready and serving, not terminating (EndpointConditions docs).
        ready = cond.get("ready") is not False
        endpoints.append(
            (
                str(addresses[0]),
                ready,
                cond.get("serving", ready) is not False,
                cond.get("terminating") is True,
                ep.get("nodeName") == node_name,
            )
        )
    result = {}
    for port in slice_obj.get("ports") or []:
        if port.get("port") is None:
            continue
        name = ServicePortName(
            meta.get("namespace", "default"),
            service,
            str(port.get("name") or ""),
            str(port.get("protocol") or "TCP"),
        )
        number = int(port["port"])
        result[name] = tuple(
            Endpoint(ip, number, ready, serving, terminating, local)
            for ip, ready, serving, terminating, local in endpoints
        )
    return result
