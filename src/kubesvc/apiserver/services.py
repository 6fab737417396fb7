"""What the API server itself does for Services: ClusterIP and NodePort allocation on every
write, the `default/kubernetes` Service with endpoints pointing at the API server, and the
address reserved for `kube-system/kube-dns`."""

from __future__ import annotations

import logging
from typing import Any

from kubesvc.api import errors
from kubesvc.api.allocators import (
    IPAllocator,
    PortAllocator,
    ServiceAllocators,
    indexed_ip,
)
from kubesvc.api.resources import Resource, of
from kubesvc.apiserver.registry import Pending, Registry

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SERVICES = of("v1", "Service")
ENDPOINTS = of("v1", "Endpoints")
ENDPOINT_SLICES = of("discovery.k8s.io/v1", "EndpointSlice")
DNS_INDEX = 10


class ServiceAddresses:
    """Allocation hooks for the registry, and the Services every cluster has."""

    def __init__(self, registry: Registry, service_cidr: str, node_port_range: str) -> None:
        self.registry = registry
        self.service_cidr = service_cidr
        self.allocators = ServiceAllocators(IPAllocator.for_cidr(service_cidr),
                                            PortAllocator(node_port_range))
        registry.before_write.append(self.before_write)
        registry.after_delete.append(self.after_delete)

    async def start(self) -> None:
        """Take what stored Services hold, then make sure the built-in Services exist."""
        services, _ = await self.registry.list(SERVICES, None)
        for warning in self.allocators.rebuild(services):
            log.warning("%s", warning)
        await self._ensure(self._kubernetes_service())
        await self._ensure(self._dns_service())

    async def before_write(self, res: Resource, new: Obj, old: Obj | None) -> Pending | None:
        if res.kind != "Service":
            return None
        allocated, pending = self.allocators.allocate(new, old)
        new.clear()
        new.update(allocated)
        return pending

    async def after_delete(self, res: Resource, obj: Obj) -> None:
        if res.kind == "Service":
            self.allocators.release(obj)

    async def _ensure(self, service: Obj) -> None:
        meta = service["metadata"]
        try:
            await self.registry.get(SERVICES, meta["namespace"], meta["name"])
        except errors.ApiError as err:
            if err.code != 404:
                raise
            await self.registry.create(SERVICES, meta["namespace"], service)

    def _kubernetes_service(self) -> Obj:
        return {
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": indexed_ip(self.service_cidr, 1),
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                "targetPort": 6443}]},
        }

    def _dns_service(self) -> Obj:
        return {
            "metadata": {"name": "kube-dns", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service":
                                    "true", "kubernetes.io/name": "CoreDNS"},
                         "annotations": {"prometheus.io/port": "9153",
                                         "prometheus.io/scrape": "true"}},
            "spec": {"clusterIP": indexed_ip(self.service_cidr, DNS_INDEX),
                     "selector": {"k8s-app": "kube-dns"},
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                                "targetPort": 53},
                               {"name": "metrics", "port": 9153, "protocol": "TCP",
                                "targetPort": 9153}]},
        }

    async def advertise(self, address: str, port: int) -> None:
        """Point `default/kubernetes` at the API server's address, as its endpoint
        reconciler does, so pods reach the API through 10.96.0.1:443."""
        endpoints = {
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": address}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }
        endpoint_slice = {
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by":
                                    "kube-apiserver"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
        service = await self.registry.get(SERVICES, "default", "kubernetes")
        if service["spec"]["ports"][0].get("targetPort") != port:
            service["spec"]["ports"][0]["targetPort"] = port
            await self.registry.update(SERVICES, "default", "kubernetes", service)
        for res, obj in ((ENDPOINTS, endpoints), (ENDPOINT_SLICES, endpoint_slice)):
            await self._put(res, obj)

    async def _put(self, res: Resource, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        try:
            current = await self.registry.get(res, "default", name)
        except errors.ApiError as err:
            if err.code != 404:
                raise
            await self.registry.create(res, "default", obj)
            return
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self.registry.update(res, "default", name, obj)
