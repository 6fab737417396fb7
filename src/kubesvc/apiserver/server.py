"""Running the API server: TLS with client certificates, bootstrap objects, the listener."""

from __future__ import annotations

import hmac
import ssl
from typing import Any

from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.resources import by_kind
from kubesvc.apiserver.app import ApiServer, StreamHandler
from kubesvc.apiserver.registry import Registry
from kubesvc.apiserver.services import ServiceAddresses
from kubesvc.config.cluster import ClusterConfig
from kubesvc.storage import Store

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _ssl_context(config: ClusterConfig) -> ssl.SSLContext:
    pki = config.pki
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    # Optional, so a request without a certificate reaches us and is answered 401, not a
    # TLS failure; a certificate that is presented must chain to our CA.
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def authenticator(config: ClusterConfig) -> Any:
    token = config.pki.token()

    def authenticate(request: web.Request) -> bool:
        if request.transport is not None and request.transport.get_extra_info("peercert"):
            return True
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token)

    return authenticate


async def bootstrap(registry: Registry) -> None:
    """The namespaces every cluster has."""
    ns_res = by_kind("v1", "Namespace")
    assert ns_res is not None
    for name in SYSTEM_NAMESPACES:
        try:
            await registry.create(ns_res, None, {"metadata": {"name": name}})
        except errors.ApiError as err:
            if err.code != 409:
                raise


class ApiServerProcess:
    """The API server as one component of `kubesvc up`."""

    def __init__(self, config: ClusterConfig, store: Store,
                 stream: StreamHandler | None = None) -> None:
        self.config = config
        self.registry = Registry(store)
        self.services = ServiceAddresses(self.registry, config.service_cidr,
                                         config.node_port_range)
        self.api = ApiServer(self.registry, authenticate=authenticator(config), stream=stream)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        await bootstrap(self.registry)
        await self.services.start()
        self._runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        await self.listen(self.config.api_address)

    async def listen(self, address: str) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, address, self.config.api_port,
                           ssl_context=_ssl_context(self.config), reuse_address=True)
        await site.start()

    async def advertise(self, address: str) -> None:
        """Also listen on an address pods can reach, and make it the `kubernetes` endpoint."""
        if address != self.config.api_address:
            await self.listen(address)
        await self.services.advertise(address, self.config.api_port)

    async def stop(self) -> None:
        self.registry.store.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
