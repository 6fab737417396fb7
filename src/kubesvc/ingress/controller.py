"""The controller loop: informers in; nginx configuration, Events and Ingress status out.

Like ingress-nginx it recomputes the whole configuration on any change (changes that arrive
together are applied in one sync) and reloads nginx only when the rendered text differs.
Problems in an Ingress become Warning Events once, not on every sync. If nginx still rejects
a configuration, the Ingress without which it passes is set aside (with an Event) until it
changes, so one bad Ingress never takes the others' routes down.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client import events
from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client
from kubesvc.ingress.model import ClusterState, Configuration, Problem, build, ingress_key
from kubesvc.ingress.nginx import Nginx, NginxError
from kubesvc.ingress.render import DEFAULT_KEY_PAIR, Settings, key_pair_path, render
from kubesvc.ingress.tls import default_key_pair

log = logging.getLogger(__name__)

Obj = dict[str, Any]
INGRESSES = of("networking.k8s.io/v1", "Ingress")
CLASSES = of("networking.k8s.io/v1", "IngressClass")
SERVICES = of("v1", "Service")
SLICES = of("discovery.k8s.io/v1", "EndpointSlice")
SECRETS = of("v1", "Secret")
PODS = of("v1", "Pod")
NODES = of("v1", "Node")
COMPONENT = "nginx-ingress-controller"
# Changes that arrive within this many seconds of each other are applied in one sync.
SYNC_DELAY = 0.1
RETRY_DELAY = 1.0


@dataclass(frozen=True)
class Options:
    ingress_class: str
    controller_class: str
    settings: Settings
    # The address written to the Ingresses' status; "" is the node's, found through the pod.
    publish_address: str
    pod_name: str
    pod_namespace: str


def _as_ingress(ingress: Obj) -> Obj:
    """An Ingress as Events name it (objects from a list carry no kind)."""
    return {"apiVersion": INGRESSES.api_version, "kind": "Ingress", **ingress}


class IngressController:
    def __init__(self, client: Client, options: Options, nginx: Nginx) -> None:
        self.client = client
        self.options = options
        self.nginx = nginx
        self._dirty = asyncio.Event()
        self.factory = InformerFactory(client)
        self.ingresses = self.factory.get(INGRESSES)
        self.classes = self.factory.get(CLASSES)
        self.services = self.factory.get(SERVICES)
        self.slices = self.factory.get(SLICES)
        self.secrets = self.factory.get(SECRETS)
        self._informers = (self.ingresses, self.classes, self.services, self.slices,
                           self.secrets)
        for informer in self._informers:
            informer.add_handlers(lambda _o: self._dirty.set(),
                                  lambda _o, _n: self._dirty.set(),
                                  lambda _o: self._dirty.set())
        self._address = options.publish_address
        self._rendered = ""
        self._reported: set[tuple[str, str, str]] = set()
        self._announced: dict[str, int] = {}  # uid -> the generation a Sync Event was for
        self._rejected: dict[str, str] = {}  # uid -> resourceVersion nginx rejected
        self._served: list[Obj] = []

    async def run(self) -> None:
        """Sync until cancelled; raises if nginx exits on its own."""
        self.factory.start()
        for informer in self._informers:
            await informer.synced.wait()
        if not self._address:
            self._address = await self._node_address()
        self._write_file(key_pair_path(self.options.settings, DEFAULT_KEY_PAIR),
                         default_key_pair().pem)
        await self._sync()
        log.info("serving Ingresses of class %r on %s", self.options.ingress_class,
                 self._address)
        exited = asyncio.ensure_future(self.nginx.wait())
        try:
            while True:
                dirty = asyncio.ensure_future(self._dirty.wait())
                await asyncio.wait({dirty, exited}, return_when=asyncio.FIRST_COMPLETED)
                if exited.done():
                    dirty.cancel()
                    raise NginxError(f"nginx exited with status {exited.result()}")
                await asyncio.sleep(SYNC_DELAY)
                self._dirty.clear()
                try:
                    await self._sync()
                except (ApiError, OSError, NginxError) as exc:
                    log.warning("sync failed (%s); retrying", exc)
                    asyncio.get_running_loop().call_later(RETRY_DELAY, self._dirty.set)
        finally:
            exited.cancel()

    async def shutdown(self) -> None:
        """Stop watching and take the address off the Ingresses served (ingress-nginx's
        update-status-on-shutdown), best effort."""
        await self.factory.stop()
        for ingress in self._served:
            meta = ingress["metadata"]
            try:
                await self.client.patch(INGRESSES, meta["name"],
                                        {"status": {"loadBalancer": {"ingress": None}}},
                                        meta.get("namespace"), subresource="status")
            except (ApiError, OSError) as exc:
                log.debug("status of %s not cleared: %s", ingress_key(ingress), exc)

    async def _node_address(self) -> str:
        """The address of the node this pod runs on (ExternalIP, else InternalIP)."""
        pod = await self.client.get(PODS, self.options.pod_name, self.options.pod_namespace)
        node = await self.client.get(NODES, pod["spec"]["nodeName"])
        addresses = {a["type"]: a["address"]
                     for a in (node.get("status") or {}).get("addresses") or []}
        return str(addresses.get("ExternalIP") or addresses["InternalIP"])

    def _state(self) -> ClusterState:
        ingresses = [i for i in self.ingresses.list()
                     if self._rejected.get(i["metadata"].get("uid", ""))
                     != i["metadata"].get("resourceVersion")]
        return ClusterState(ingresses, self.classes.list(), self.services.cache,
                            self.slices.list(), self.secrets.cache)

    async def _sync(self) -> None:
        config = await self._apply(self._state())
        self._served = config.ingresses
        await self._report(config.problems)
        await self._announce(config.ingresses)
        await self._update_status(config.ingresses)

    async def _apply(self, state: ClusterState) -> Configuration:
        """Build, render and (if it changed) load the configuration for `state`."""
        opts = self.options
        config = build(state, opts.ingress_class, opts.controller_class)
        text = render(config, opts.settings)
        if text == self._rendered:
            return config
        for name, pair in config.key_pairs.items():
            self._write_file(key_pair_path(opts.settings, name), pair.pem)
        try:
            await self.nginx.apply(text)
        except NginxError as err:
            culprit = await self._culprit(state, config)
            if culprit is None:
                raise
            meta = culprit["metadata"]
            self._rejected[meta.get("uid", "")] = meta.get("resourceVersion", "")
            await events.record(self.client, _as_ingress(culprit), "Warning", "Rejected",
                                f"nginx rejected the configuration for this Ingress, which is "
                                f"not served until it changes: {err}", COMPONENT)
            return await self._apply(replace(state, ingresses=[
                i for i in state.ingresses if i is not culprit]))
        log.info("nginx configuration loaded (%d servers, %d upstreams)",
                 len(config.servers), len(config.upstreams))
        self._rendered = text
        ssl = key_pair_path(opts.settings, DEFAULT_KEY_PAIR).parent
        for stale in ssl.glob("*.pem"):
            if stale.stem not in config.key_pairs and stale.stem != DEFAULT_KEY_PAIR:
                stale.unlink()
        return config

    async def _culprit(self, state: ClusterState, config: Configuration) -> Obj | None:
        """The Ingress (newest first) without which nginx accepts the configuration."""
        opts = self.options
        for ingress in reversed(config.ingresses):
            rest = replace(state, ingresses=[i for i in state.ingresses if i is not ingress])
            try:
                await self.nginx.test(render(build(rest, opts.ingress_class,
                                                   opts.controller_class), opts.settings))
            except NginxError:
                continue
            return ingress
        return None

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        """Write a key pair readable by nginx's master (root) only, replacing it atomically."""
        if path.exists() and path.read_bytes() == data:
            return
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        temporary.replace(path)

    async def _report(self, problems: list[Problem]) -> None:
        """A Warning Event for each problem not reported while it lasted."""
        current = {(p.uid, p.reason, p.message) for p in problems}
        for p in problems:
            if (p.uid, p.reason, p.message) not in self._reported:
                log.warning("ingress %s: %s", ingress_key(p.ingress), p.message)
                await events.record(self.client, _as_ingress(p.ingress), "Warning", p.reason,
                                    p.message, COMPONENT)
        self._reported = current

    async def _announce(self, served: list[Obj]) -> None:
        """ingress-nginx's `Sync: Scheduled for sync` Event, once per generation."""
        announced: dict[str, int] = {}
        for ingress in served:
            meta = ingress["metadata"]
            uid, generation = meta.get("uid", ""), int(meta.get("generation") or 0)
            if self._announced.get(uid) != generation:
                await events.record(self.client, _as_ingress(ingress), "Normal", "Sync",
                                    "Scheduled for sync", COMPONENT)
            announced[uid] = generation
        self._announced = announced

    async def _update_status(self, served: list[Obj]) -> None:
        try:
            ipaddress.ip_address(self._address)
            want = [{"ip": self._address}]
        except ValueError:
            want = [{"hostname": self._address}]
        for ingress in served:
            current = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            if current == want:
                continue
            meta = ingress["metadata"]
            try:
                await self.client.patch(INGRESSES, meta["name"],
                                        {"status": {"loadBalancer": {"ingress": want}}},
                                        meta.get("namespace"), subresource="status")
            except ApiError as err:
                if err.code != 404:  # a deleted Ingress needs no status
                    raise
