"""The built-in load-balancer controller: every LoadBalancer Service gets an address from a
pool on the node network (spec.loadBalancerIP honoured), written to
status.loadBalancer.ingress. Without a pool the Service stays `<pending>`, as on minikube."""

from __future__ import annotations

import logging

from kubesvc.api.allocators import AllocationError, IPAllocator
from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client import events
from kubesvc.client.informer import InformerFactory
from kubesvc.controllers.base import Controller, Obj

log = logging.getLogger(__name__)

SERVICES = of("v1", "Service")


def _ingress_ips(service: Obj) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if i.get("ip")]


def _wants_address(service: Obj) -> bool:
    """Ours to serve: type LoadBalancer and no other implementation named by class."""
    spec = service["spec"]
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class LoadBalancerController(Controller):
    name = "service-lb-controller"

    def __init__(self, informers: InformerFactory, pool: IPAllocator | None) -> None:
        super().__init__(informers)
        self.pool = pool
        self.services = self.informer(SERVICES)
        self.services.add_handlers(self.enqueue_obj, lambda _o, n: self.enqueue_obj(n),
                                   self._deleted)
        self._owner: dict[str, str] = {}  # ip -> service key

    async def run(self, workers: int = 1) -> None:
        await self.services.synced.wait()
        if self.pool is not None:
            for service in self.services.list():
                if _wants_address(service):
                    for ip in _ingress_ips(service):
                        self._take(ip, f"{service['metadata']['namespace']}/"
                                       f"{service['metadata']['name']}")
        await super().run(workers)

    def _take(self, ip: str, key: str) -> bool:
        assert self.pool is not None
        if self._owner.get(ip) == key:
            return True
        try:
            self.pool.allocate_specific(ip)
        except AllocationError:
            return False
        self._owner[ip] = key
        return True

    def _release(self, key: str) -> None:
        for ip, owner in list(self._owner.items()):
            if owner == key:
                del self._owner[ip]
                if self.pool is not None:
                    self.pool.release(ip)

    def _deleted(self, service: Obj) -> None:
        self._release(f"{service['metadata']['namespace']}/{service['metadata']['name']}")

    async def reconcile(self, key: str) -> None:
        service = self.services.cache.get(key)
        if service is None or self.pool is None:
            return
        current = _ingress_ips(service)
        if not _wants_address(service):
            self._release(key)
            if current and service["spec"].get("type") != "LoadBalancer":
                await self._set_ingress(service, [])
            return
        wanted = service["spec"].get("loadBalancerIP")
        if current and (not wanted or wanted in current) and all(
                self._take(ip, key) for ip in current):
            return
        self._release(key)
        try:
            if wanted:
                self.pool.allocate_specific(wanted)
                ip = wanted
            else:
                ip = self.pool.allocate_next()
        except AllocationError as exc:
            await events.record(self.client, service, "Warning", "AllocationFailed",
                                f"Failed to allocate an address: {exc}", self.name)
            return
        self._owner[ip] = key
        await self._set_ingress(service, [ip])
        await events.record(self.client, service, "Normal", "IPAllocated",
                            f"Assigned IP [{ip}]", self.name)

    async def _set_ingress(self, service: Obj, ips: list[str]) -> None:
        status = dict(service.get("status") or {})
        status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]} \
            if ips else {}
        try:
            await self.client.update(SERVICES, {**service, "status": status},
                                     subresource="status")
        except ApiError as err:
            if err.code == 409:
                self.enqueue(f"{service['metadata']['namespace']}/"
                             f"{service['metadata']['name']}")
            elif err.code != 404:
                raise
