"""Probes and lifecycle handlers: httpGet, tcpSocket, exec (and sleep for hooks).

The prober runs in the agent, in the node's network namespace, and connects to the pod IP from
a socket opened in that namespace. Each probe of a container instance gets a ProbeWorker;
ContainerProber sequences them as the kubelet does (startup first, then liveness and readiness)
and reports changes through one callback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubesvc.kernel.netns import open_socket

USER_AGENT = "kube-probe/1.37"
PROBE_TYPES = ("startupProbe", "livenessProbe", "readinessProbe")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_MAX_OUTPUT = 10 * 1024  # the kubelet keeps this much of a probe's output


@dataclass(frozen=True)
class Probe:
    """A v1 Probe with Kubernetes' defaults filled in."""

    kind: str
    action: dict[str, Any]
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Probe:
        kind = next((k for k in _HANDLERS if isinstance(spec.get(k), dict)), None)
        if kind is None:
            raise ValueError(f"probe has no handler (one of {', '.join(_HANDLERS)})")
        return cls(
            kind=kind,
            action=spec[kind],
            initial_delay=float(spec.get("initialDelaySeconds") or 0),
            period=float(spec.get("periodSeconds") or 10),
            timeout=float(spec.get("timeoutSeconds") or 1),
            success_threshold=int(spec.get("successThreshold") or 1),
            failure_threshold=int(spec.get("failureThreshold") or 3),
        )


@dataclass
class ProbeTarget:
    """What a probe of one container runs against."""

    pod_ip: str
    # The namespace probes connect from: the node's (None: the agent's own).
    netns: str | None = None
    ports: list[dict[str, Any]] = field(default_factory=list)
    # Turns a command into an argv running it in the container (Runtime.exec_argv).
    exec_argv: Callable[[list[str]], list[str]] | None = None

    def port(self, value: Any) -> int:
        """A port given by number or by the name of one of the container's ports."""
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
        for port in self.ports:
            if port.get("name") == value:
                return int(port["containerPort"])
        raise LookupError(f"unable to find port {value!r} in the container's ports")


async def _connect(target: ProbeTarget, host: str, port: int) -> socket.socket:
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        ip = str(infos[0][4][0])
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = await open_socket(target.netns, family)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _http_get(action: dict[str, Any], target: ProbeTarget) -> tuple[bool, str]:
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = action.get("host") or target.pod_ip
    port = target.port(action.get("port", 80 if scheme == "http" else 443))
    path = action.get("path") or "/"
    path = path if path.startswith("/") else "/" + path
    url_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{url_host}:{port}{path}"
    headers = {"Host": f"{url_host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[header["name"]] = header["value"]
    headers["Connection"] = "close"
    try:
        sock = await _connect(target, host, port)
    except OSError as exc:
        return False, f'Get "{url}": dial tcp {url_host}:{port}: connect: {exc.strerror or exc}'
    context = None
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the kubelet skips verification too
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=context, server_hostname=host if context else None
    )
    try:
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write((request + "\r\n").encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
    parts = status_line.decode(errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f'Get "{url}": malformed HTTP response {status_line[:80]!r}'
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def _tcp_socket(action: dict[str, Any], target: ProbeTarget) -> tuple[bool, str]:
    host = action.get("host") or target.pod_ip
    port = target.port(action.get("port"))
    try:
        (await _connect(target, host, port)).close()
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: connect: {exc.strerror or exc}"
    return True, ""


async def _exec(action: dict[str, Any], target: ProbeTarget) -> tuple[bool, str]:
    if target.exec_argv is None:
        return False, "exec is not available for this container"
    proc = await asyncio.create_subprocess_exec(
        *target.exec_argv(list(action.get("command") or [])),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode == 0:
        return True, ""
    return False, out.decode(errors="replace")[:_MAX_OUTPUT].strip() or (
        f"command exited with code {proc.returncode}"
    )


async def run_action(
    kind: str, action: dict[str, Any], target: ProbeTarget, timeout: float
) -> tuple[bool, str]:
    """Run one probe or lifecycle handler; (success, message on failure)."""
    try:
        async with asyncio.timeout(timeout):
            if kind == "httpGet":
                return await _http_get(action, target)
            if kind == "tcpSocket":
                return await _tcp_socket(action, target)
            if kind == "exec":
                return await _exec(action, target)
            if kind == "sleep":
                await asyncio.sleep(float(action.get("seconds", 0)))
                return True, ""
            return False, f"{kind} probes are not supported by kubesvc"
    except TimeoutError:
        return False, f"{kind} timed out after {timeout:g}s"
    except (OSError, LookupError, ssl.SSLError) as exc:
        return False, str(exc)


class ProbeWorker:
    """Runs one probe periodically; reports when its result flips (per the thresholds).

    `initial` is the result before the first probe: the kubelet starts readiness at failure,
    liveness at success and startup at unknown (None, so that either outcome is reported).
    """

    def __init__(
        self,
        probe: Probe,
        target: ProbeTarget,
        initial: bool | None,
        on_change: Callable[[bool, str], None],
        stop_on_success: bool = False,
    ) -> None:
        self.probe = probe
        self.target = target
        self.result = initial
        self._on_change = on_change
        self._stop_on_success = stop_on_success
        self._task: asyncio.Task[None] | None = None

    def start(self, delay: float | None = None) -> None:
        wait = self.probe.initial_delay if delay is None else delay
        self._task = asyncio.get_running_loop().create_task(self._run(wait))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        streak = 0
        last: bool | None = None
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            ok, message = await run_action(
                self.probe.kind, self.probe.action, self.target, self.probe.timeout
            )
            streak = streak + 1 if ok == last else 1
            last = ok
            needed = self.probe.success_threshold if ok else self.probe.failure_threshold
            if streak >= needed and ok != self.result:
                self.result = ok
                self._on_change(ok, message)
            if ok and self._stop_on_success and self.result:
                return
            await asyncio.sleep(max(0.0, self.probe.period - (loop.time() - began)))


class ContainerProber:
    """The probes of one container instance, sequenced as the kubelet does.

    `on_event(event, message)` receives "started" (the startup probe passed, or at once without
    one), "ready" / "unready" (readiness; "ready" right after start without a readiness probe)
    "liveness-failed" and "startup-failed" (the agent should restart the container, as the
    kubelet does for both). Create one when a
    container instance starts and stop it when the instance ends.
    """

    def __init__(
        self,
        container: dict[str, Any],
        target: ProbeTarget,
        on_event: Callable[[str, str], None],
    ) -> None:
        self.target = target
        self._on_event = on_event
        self.probes = {
            kind: Probe.from_spec(container[kind])
            for kind in PROBE_TYPES
            if isinstance(container.get(kind), dict)
        }
        self.started = False
        self.ready = False
        self._workers: list[ProbeWorker] = []

    def start(self) -> None:
        startup = self.probes.get("startupProbe")
        if startup is None:
            self._after_startup()
            return
        worker = ProbeWorker(startup, self.target, None, self._startup_changed, True)
        self._workers.append(worker)
        worker.start()

    async def stop(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            await worker.stop()

    def _startup_changed(self, ok: bool, message: str) -> None:
        if ok:
            self._after_startup()
        else:
            self._on_event("startup-failed", message)

    def _after_startup(self) -> None:
        self.started = True
        self._on_event("started", "")
        liveness = self.probes.get("livenessProbe")
        if liveness is not None:
            worker = ProbeWorker(liveness, self.target, True, self._liveness_changed)
            self._workers.append(worker)
            worker.start()
        readiness = self.probes.get("readinessProbe")
        if readiness is None:
            self._readiness_changed(True, "")
            return
        worker = ProbeWorker(readiness, self.target, False, self._readiness_changed)
        self._workers.append(worker)
        worker.start()

    def _liveness_changed(self, ok: bool, message: str) -> None:
        if not ok:
            self._on_event("liveness-failed", message)

    def _readiness_changed(self, ok: bool, message: str) -> None:
        self.ready = ok
        self._on_event("ready" if ok else "unready", message)
