"""The Endpoints and EndpointSlice controllers: a Service's selector and its pods' readiness
become Endpoints and EndpointSlices; Endpoints of a Service without a selector are mirrored
into slices. The desired state is computed by kubesvc.api.endpoints; this applies it."""

from __future__ import annotations

from datetime import UTC, datetime

from kubesvc.api import endpoints as ep
from kubesvc.api.errors import ApiError
from kubesvc.api.resources import Resource, of
from kubesvc.client.informer import InformerFactory, key_of
from kubesvc.controllers.base import Controller, Obj, split_key

SERVICES = of("v1", "Service")
PODS = of("v1", "Pod")
ENDPOINTS = of("v1", "Endpoints")
SLICES = of("discovery.k8s.io/v1", "EndpointSlice")


class EndpointsController(Controller):
    name = "endpoint-controller"

    def __init__(self, informers: InformerFactory) -> None:
        super().__init__(informers)
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.endpoints = self.informer(ENDPOINTS)
        self.slices = self.informer(SLICES)
        self._triggered: dict[str, datetime] = {}
        self.services.add_handlers(self._service, lambda _o, n: self._service(n),
                                   self._service)
        self.pods.add_handlers(self._pod, self._pod_updated, self._pod)
        # Our own writes come back through these; reconciling again is a cheap no-op, and it
        # repairs objects someone else changed or deleted.
        self.endpoints.add_handlers(self.enqueue_obj, lambda _o, n: self.enqueue_obj(n),
                                    self.enqueue_obj)
        self.slices.add_handlers(self._slice, lambda _o, n: self._slice(n), self._slice)

    def _trigger(self, key: str) -> None:
        self._triggered[key] = datetime.now(UTC)
        self.enqueue(key)

    def _service(self, service: Obj) -> None:
        self._trigger(key_of(service))

    def _services_of(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace")
        return [key_of(s) for s in self.services.list(ns)
                if ep.selected_pods(s, [pod])]

    def _pod(self, pod: Obj) -> None:
        for key in self._services_of(pod):
            self._trigger(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in set(self._services_of(old)) | set(self._services_of(new)):
            self._trigger(key)

    def _slice(self, endpoint_slice: Obj) -> None:
        name = (endpoint_slice["metadata"].get("labels") or {}).get(ep.SERVICE_NAME_LABEL)
        if name:
            self.enqueue(f"{endpoint_slice['metadata']['namespace']}/{name}")

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.cache.get(key)
        trigger = self._triggered.pop(key, None)
        slices = self.slices.list(namespace)
        if service is None:
            # Owner references take the generated objects away; mirrored slices go here.
            await self._apply_slices(ep.mirror_slices(None, slices, name, namespace or ""))
            return
        if ep.selects_pods(service):
            pods = self.pods.list(namespace)
            wanted = ep.reconcile_endpoints(service, pods, self.endpoints.cache.get(key),
                                            trigger)
            if wanted is not None:
                await self._write(ENDPOINTS, wanted)
            await self._apply_slices(ep.reconcile_slices(service, pods, slices, trigger))
            return
        current = self.endpoints.cache.get(key)
        if current is not None and not ep.should_mirror(current, service):
            current = None
        await self._apply_slices(ep.mirror_slices(current, slices, name, namespace or ""))

    async def _apply_slices(self, changes: ep.SliceChanges) -> None:
        for obj in changes.create + changes.update:
            await self._write(SLICES, obj)
        for obj in changes.delete:
            meta = obj["metadata"]
            try:
                await self.client.delete(SLICES, meta["name"], meta["namespace"])
            except ApiError as err:
                if err.code != 404:
                    raise

    async def _write(self, res: Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            await self.client.update(res, obj)
        else:
            try:
                await self.client.create(res, obj, meta.get("namespace"))
            except ApiError as err:
                if err.code != 409:
                    raise
                # Created meanwhile (e.g. by a user before the Service); update it next round.
                self.enqueue(f"{meta['namespace']}/{meta.get('name', '')}")
