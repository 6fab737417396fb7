"""`kubesvc up`: every component of a one-host cluster in one process, like k3s.

Start-up is gated by readiness: certificates, state, the API server listening, then the
components that are its clients; the kubeconfig is written once the cluster answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from kubesvc.api.allocators import IPAllocator
from kubesvc.apiserver.server import ApiServerProcess
from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client
from kubesvc.config import kubeconfig
from kubesvc.config.cluster import ClusterConfig
from kubesvc.controllers.base import Controller
from kubesvc.controllers.deployment import DeploymentController
from kubesvc.controllers.endpoints import EndpointsController
from kubesvc.controllers.gc import GarbageCollector
from kubesvc.controllers.loadbalancer import LoadBalancerController
from kubesvc.controllers.namespace import NamespaceController
from kubesvc.controllers.nodeipam import NodeIpamController
from kubesvc.controllers.replicaset import ReplicaSetController
from kubesvc.controllers.scheduler import Scheduler
from kubesvc.storage.sqlite import SQLiteStore

log = logging.getLogger(__name__)

Step = Callable[[str], None]


class AlreadyRunning(Exception):
    pass


def running_pid(config: ClusterConfig) -> int | None:
    """The pid of the `kubesvc up` that owns this state directory, if it is alive."""
    try:
        pid = int(config.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def server_hosts(config: ClusterConfig) -> list[str]:
    first_service_ip = "10.96.0.1"
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             f"kubernetes.default.svc.{config.cluster_domain}"]
    return sorted({"127.0.0.1", config.api_address, first_service_ip, *names})


def cluster_kubeconfig(config: ClusterConfig) -> Path:
    """A kubeconfig with only this cluster, for `kubesvc kubectl` and for scripts."""
    return config.state_dir / "kubeconfig"


def lb_pool(config: ClusterConfig) -> IPAllocator | None:
    """The LoadBalancer address pool: none, an explicit range or CIDR, or (auto) a range on
    the node's network when kubesvc made that network itself."""
    if config.lb_pool in ("none", "auto"):
        return None
    return IPAllocator.for_pool(config.lb_pool)


async def run(config: ClusterConfig, step: Step, ready: Callable[[], None],
              user_kubeconfig: Path | None) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    if (pid := running_pid(config)) is not None and pid != os.getpid():
        raise AlreadyRunning(f"kubesvc is already running for {config.state_dir} (pid {pid})")
    config.pid_file.write_text(f"{os.getpid()}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        step("certificates")
        config.pki.ensure(server_hosts(config))
        config.save()
        step("state")
        store = SQLiteStore(config.database)
        step("API server")
        api = ApiServerProcess(config, store)
        await api.start()
        client = Client.for_cluster(config)
        informers = InformerFactory(client)
        step("controllers")
        controllers: list[Controller] = [
            NamespaceController(informers), GarbageCollector(informers),
            ReplicaSetController(informers), DeploymentController(informers),
            Scheduler(informers), NodeIpamController(informers, config.cluster_cidr),
            EndpointsController(informers),
            LoadBalancerController(informers, lb_pool(config))]
        informers.start()
        tasks = [asyncio.create_task(c.run()) for c in controllers]
        await asyncio.gather(*(i.synced.wait() for c in controllers for i in c.informers))
        api.api.ready.set()
        step("kubeconfig")
        kubeconfig.merge(cluster_kubeconfig(config), config.name, config.server_url, config.pki)
        if user_kubeconfig is not None:
            kubeconfig.merge(user_kubeconfig, config.name, config.server_url, config.pki)
        ready()
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await informers.stop()
        await client.close()
        await api.stop()
        await store.close()
    finally:
        with contextlib.suppress(OSError):
            if running_pid(config) == os.getpid():
                config.pid_file.unlink()
