"""The runtime: what the node agent calls to run pods, read their state, logs and exec into them.

Each pod is a directory under `<state-dir>/pods/<uid>/` (see podfiles), a sandbox (see
sandbox) and a detached shim process supervising its containers (see shim). All of it lives on
disk and in the kernel, so a new Runtime over the same state directory (after the agent
restarted) finds the same pods running, with the same IPs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kubesvc.kernel.container import HOST_PATH
from kubesvc.kernel.container import exec_argv as container_exec_argv
from kubesvc.kernel.netns import netns_exists
from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.node.images import (
    CatalogError,
    ImageCatalog,
    ImageEntry,
    ImageError,
    container_command,
)
from kubesvc.node.ipam import IPAM
from kubesvc.node.logs import read_log
from kubesvc.node.podfiles import (
    ContainerConfig,
    ContainerStatus,
    PodDir,
    ShimConfig,
    ShimStatus,
    read_json,
    write_json,
)
from kubesvc.node.probes import ProbeTarget
from kubesvc.node.sandbox import (
    Sandbox,
    container_mounts,
    create_sandbox,
    destroy_sandbox,
    map_program,
    sandbox_ready,
)
from kubesvc.node.shim import socket_path

_SHIM_MODULE = "kubesvc.node.shim"


class ContainerNotFound(LookupError):
    """No such pod or container, or not in a state the request needs (the message says)."""


@dataclass
class PodState:
    uid: str
    ip: str
    host_network: bool
    # The pod's namespaces exist and its shim is alive; if not, run_pod() will recreate it.
    sandbox_ready: bool
    restart_policy: str = "Always"
    # The shim is stopping or has stopped the pod.
    terminating: bool = False
    init_containers: list[ContainerStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)

    def container(self, name: str) -> ContainerStatus | None:
        return next((c for c in self.init_containers + self.containers if c.name == name), None)

    def phase(self) -> str:
        """The pod phase from its container states, as the kubelet's getPhase computes it."""
        pending_init = failed_init = 0
        for c in self.init_containers:
            ended = c.terminated or c.last_state.get("terminated")
            if c.terminated is not None and c.terminated.get("exitCode") == 0:
                continue
            pending_init += 1
            if ended is not None and ended.get("exitCode") != 0:
                failed_init += 1
        if failed_init and self.restart_policy == "Never":
            return "Failed"
        running = waiting = stopped = succeeded = 0
        for c in self.containers:
            if c.running:
                running += 1
            elif c.terminated is not None:
                stopped += 1
                succeeded += c.terminated.get("exitCode") == 0
            elif "terminated" in c.last_state:
                stopped += 1
            else:
                waiting += 1
        if pending_init or waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if self.restart_policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            return "Failed" if self.restart_policy == "Never" else "Running"
        return "Pending"


class Runtime:
    def __init__(
        self,
        state_dir: Path,
        node: NodeNetwork,
        cluster_domain: str = "cluster.local",
        dns_ip: str = "10.96.0.10",
    ) -> None:
        self.state_dir = state_dir
        self.node = node
        self.cluster_domain = cluster_domain
        self.dns_ip = dns_ip
        self.pods_dir = state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.ipam = IPAM(state_dir, str(node.pod_cidr), node.gateway)
        self._locks: dict[str, asyncio.Lock] = {}

    def _dir(self, uid: str) -> PodDir:
        return PodDir(self.pods_dir / uid)

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    # --- running and stopping pods ---------------------------------------------------------

    async def run_pod(self, pod: dict[str, Any], env: dict[str, list[tuple[str, str]]]) -> None:
        """Start the pod unless it runs already; recreates a sandbox that lost its shim.

        `env` holds each container's environment as resolved by the agent (service links,
        envFrom, env with valueFrom resolved), in Kubernetes order; see images.container_command.
        An image kubesvc cannot run leaves that container waiting (ErrImagePull).
        """
        uid = pod["metadata"]["uid"]
        async with self._lock(uid):
            pod_dir = self._dir(uid)
            pid = self._shim_pid(pod_dir)
            if pid is not None:
                sandbox = Sandbox.load(pod_dir)
                if sandbox is not None and await sandbox_ready(sandbox, self.node):
                    return
                await self._kill_shim(pod_dir, pid, patience=0)  # its network is gone: start over
            spec = pod.get("spec") or {}
            containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
            resolved = self._resolve_images(containers)
            entries = [r for r in resolved.values() if isinstance(r, ImageEntry)]
            sandbox = await create_sandbox(
                pod, pod_dir, self.node, self.ipam, entries, self.cluster_domain, self.dns_ip
            )
            hostname = sandbox.hostname or socket.gethostname()

            def config(container: dict[str, Any]) -> ContainerConfig:
                return self._container_config(
                    container, resolved[container["name"]], env.get(container["name"], []),
                    pod_dir, hostname,
                )  # fmt: skip

            shim_config = ShimConfig(
                uid=uid,
                name=sandbox.name,
                namespace=sandbox.namespace,
                pod_ip=sandbox.ip,
                netns=sandbox.netns,
                hostname=sandbox.hostname,
                restart_policy=spec.get("restartPolicy") or "Always",
                grace_seconds=int(spec.get("terminationGracePeriodSeconds", 30)),
                mounts=container_mounts(pod_dir),
                init_containers=[config(c) for c in spec.get("initContainers") or []],
                containers=[config(c) for c in spec.get("containers") or []],
            )
            write_json(pod_dir.config, shim_config.to_dict())
            await self._start_shim(pod_dir)

    def _resolve_images(
        self, containers: list[dict[str, Any]]
    ) -> dict[str, ImageEntry | ImageError]:
        try:
            catalog = ImageCatalog.load(self.state_dir)
        except CatalogError as exc:
            return {
                c["name"]: ImageError(c.get("image", ""), "ErrImagePull", str(exc))
                for c in containers
            }
        resolved: dict[str, ImageEntry | ImageError] = {}
        for c in containers:
            try:
                resolved[c["name"]] = catalog.resolve(c.get("image") or "")
            except ImageError as exc:
                resolved[c["name"]] = exc
        return resolved

    def _container_config(
        self,
        container: dict[str, Any],
        image: ImageEntry | ImageError,
        env: list[tuple[str, str]],
        pod_dir: PodDir,
        hostname: str,
    ) -> ContainerConfig:
        cfg = ContainerConfig(
            name=container["name"],
            image=container.get("image", ""),
            lifecycle=container.get("lifecycle") or {},
            ports=container.get("ports") or [],
        )
        if isinstance(image, ImageError):
            cfg.image_error = (image.reason, image.message)
            return cfg
        base_env = [
            ("PATH", f"{pod_dir.bin}:{HOST_PATH}"),
            ("HOSTNAME", hostname),
            ("HOME", "/root"),
        ]
        command = container_command(container, image, env, base_env)
        argv = command.argv
        if argv:
            argv = [map_program(argv[0], pod_dir.bin), *argv[1:]]
        cfg.image_id = image.image_id
        cfg.argv, cfg.env, cfg.cwd = argv, command.env, command.cwd
        return cfg

    async def _start_shim(self, pod_dir: PodDir) -> None:
        with pod_dir.shim_log.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", _SHIM_MODULE, "--daemon", str(pod_dir.path),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
            )  # fmt: skip
            code = await proc.wait()
        if code != 0:
            tail = pod_dir.shim_log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the shim of pod {pod_dir.path.name} failed to start:\n{tail}")

    async def stop_pod(self, uid: str, grace_seconds: int) -> None:
        """Stop the pod's containers (preStop, SIGTERM, SIGKILL after the grace period) and
        release its sandbox: namespace, veth, IP and files. Safe to repeat."""
        async with self._lock(uid):
            pod_dir = self._dir(uid)
            pid = self._shim_pid(pod_dir)
            if pid is not None:
                # An unresponsive shim is killed by _kill_shim.
                with contextlib.suppress(OSError, RuntimeError, ValueError, LookupError):
                    await self._request(pod_dir, {"op": "stop", "grace": grace_seconds})
                await self._kill_shim(pod_dir, pid)
            await destroy_sandbox(pod_dir, self.node, self.ipam, uid)
        self._locks.pop(uid, None)

    async def stop_all_pods(self, grace_seconds: int) -> None:
        """Stop every pod of this node, e.g. before tearing the node network down."""
        await asyncio.gather(*(self.stop_pod(uid, grace_seconds) for uid in self.known_pods()))

    async def _kill_shim(self, pod_dir: PodDir, pid: int, patience: float = 5) -> None:
        """Wait for the shim to exit, SIGKILLing it after `patience` (its containers die with
        it, through their parent-death signals)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while self._shim_pid(pod_dir) == pid:
            if loop.time() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.05)

    async def restart_container(
        self, uid: str, container: str, grace_seconds: int | None = None
    ) -> None:
        """Kill the container (preStop, SIGTERM, SIGKILL) for its restart policy to restart it,
        as the kubelet does after a failed liveness or startup probe."""
        pod_dir = self._dir(uid)
        if self._shim_pid(pod_dir) is None:
            raise ContainerNotFound(f"pod {uid} is not running")
        await self._request(
            pod_dir, {"op": "restart", "container": container, "grace": grace_seconds}
        )

    async def _request(self, pod_dir: PodDir, request: dict[str, Any]) -> dict[str, Any]:
        with socket_path(pod_dir.socket) as address:
            reader, writer = await asyncio.open_unix_connection(address)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise RuntimeError(f"the shim of pod {pod_dir.path.name} closed the connection")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise ContainerNotFound(reply.get("error", "request failed"))
        return reply

    # --- state -------------------------------------------------------------------------------

    def known_pods(self) -> list[str]:
        """Uids of the pods with a sandbox on disk, running or not (to re-adopt or clean up)."""
        return sorted(d.name for d in self.pods_dir.iterdir() if PodDir(d).sandbox.exists())

    def _shim_pid(self, pod_dir: PodDir) -> int | None:
        """The pod's live shim process, checked by its command line (PIDs get reused)."""
        try:
            pid = int(pod_dir.pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if _SHIM_MODULE.encode() in cmdline and str(pod_dir.path).encode() in cmdline:
            return pid
        return None

    def pod_state(self, uid: str) -> PodState | None:
        pod_dir = self._dir(uid)
        sandbox = Sandbox.load(pod_dir)
        if sandbox is None:
            return None
        alive = self._shim_pid(pod_dir) is not None
        network = sandbox.netns is None or netns_exists(sandbox.netns)
        state = PodState(uid, sandbox.ip, sandbox.host_network, alive and network)
        try:
            config = ShimConfig.from_dict(read_json(pod_dir.config))
            status = ShimStatus.from_dict(read_json(pod_dir.status))
        except (FileNotFoundError, ValueError):
            return state
        state.restart_policy = config.restart_policy
        state.terminating = status.phase != "running"
        state.init_containers = status.init_containers
        state.containers = status.containers
        return state

    def pod_ip(self, uid: str) -> str:
        sandbox = Sandbox.load(self._dir(uid))
        if sandbox is None:
            raise ContainerNotFound(f"pod {uid} has no sandbox on this node")
        return sandbox.ip

    # --- exec, probes, logs ------------------------------------------------------------------

    def _running(self, uid: str, container: str) -> tuple[ContainerConfig, ContainerStatus, PodDir]:
        pod_dir = self._dir(uid)
        try:
            config = ShimConfig.from_dict(read_json(pod_dir.config))
            status = ShimStatus.from_dict(read_json(pod_dir.status))
        except FileNotFoundError:
            raise ContainerNotFound(f"pod {uid} is not running on this node") from None
        cfg, cstatus = config.container(container), status.container(container)
        if cfg is None or cstatus is None:
            raise ContainerNotFound(f'container "{container}" not found in pod {config.name}')
        return cfg, cstatus, pod_dir

    def exec_argv(self, uid: str, container: str, argv: list[str], tty: bool = False) -> list[str]:
        """An argv (nsenter ...) running `argv` in the container's namespaces with its
        environment and working directory; `/bin/sh` and friends are the pod's busybox."""
        cfg, status, pod_dir = self._running(uid, container)
        if status.pid is None or not status.running:
            raise ContainerNotFound(f'container "{container}" is not running')
        env = list(cfg.env)
        if tty and not any(name == "TERM" for name, _ in env):
            env.append(("TERM", "xterm"))  # as container runtimes do for a terminal
        if argv:
            argv = [map_program(argv[0], pod_dir.bin), *argv[1:]]
        return container_exec_argv(status.pid, argv, env, cfg.cwd)

    def probe_target(self, uid: str, container: str) -> ProbeTarget:
        """Where the agent's probes of `container` connect (from the node's namespace)."""
        cfg, _, _ = self._running(uid, container)
        return ProbeTarget(
            pod_ip=self.pod_ip(uid),
            netns=self.node.netns,
            ports=cfg.ports,
            exec_argv=lambda argv: self.exec_argv(uid, container, argv),
        )

    def log_reader(
        self,
        uid: str,
        container: str,
        *,
        previous: bool = False,
        follow: bool = False,
        timestamps: bool = False,
        tail_lines: int | None = None,
        since: datetime | None = None,
        limit_bytes: int | None = None,
    ) -> AsyncIterator[str]:
        """The container's log lines as `kubectl logs` asks for them (ContainerNotFound, with
        the kubelet's wording, when there is no such log)."""
        _, status, pod_dir = self._running(uid, container)
        instance = status.restart_count - 1 if previous else status.restart_count
        path = pod_dir.log_path(container, instance)
        if previous and (instance < 0 or not path.exists()):
            raise ContainerNotFound(f'previous terminated container "{container}" not found')
        if not path.exists():
            reason = status.state.get("waiting", {}).get("reason", "ContainerCreating")
            raise ContainerNotFound(f'container "{container}" is waiting to start: {reason}')
        instance_id = status.container_id

        def still_running() -> bool:
            state = self.pod_state(uid)
            now = state.container(container) if state is not None else None
            return now is not None and now.container_id == instance_id and now.running

        return read_log(
            path,
            timestamps=timestamps,
            tail_lines=tail_lines,
            since=since,
            limit_bytes=limit_bytes,
            follow=follow and not previous,
            still_running=still_running,
        )
