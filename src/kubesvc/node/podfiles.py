"""A pod's directory: the contract between the runtime (in the agent) and the pod's shim.

The runtime writes what to run (`pod.json`, a ShimConfig); the shim writes what happened
(`status.json`, a ShimStatus) and container logs. Both are replaced atomically, so a reader
never sees half a file, and both outlive the agent process.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class PodDir:
    """Paths inside `<state-dir>/pods/<uid>/`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config = path / "pod.json"
        self.sandbox = path / "sandbox.json"
        self.status = path / "status.json"
        self.socket = path / "shim.sock"
        self.pidfile = path / "shim.pid"
        self.shim_log = path / "shim.log"
        self.etc = path / "etc"
        self.bin = path / "bin"
        self.nginx = path / "nginx"
        self.logs = path / "logs"

    def log_path(self, container: str, restart_count: int) -> Path:
        """The log of one container instance, named like the kubelet's `<restartCount>.log`."""
        return self.logs / container / f"{restart_count}.log"


@dataclass
class ContainerConfig:
    name: str
    image: str
    image_id: str = ""
    argv: list[str] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    cwd: str = "/"
    # Set when the image cannot be run: (waiting reason, message).
    image_error: tuple[str, str] | None = None
    lifecycle: dict[str, Any] = field(default_factory=dict)
    ports: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ContainerConfig:
        raw = dict(raw)
        raw["env"] = [(k, v) for k, v in raw.get("env", [])]
        if raw.get("image_error") is not None:
            reason, message = raw["image_error"]
            raw["image_error"] = (reason, message)
        return cls(**raw)


@dataclass
class ShimConfig:
    uid: str
    name: str
    namespace: str
    pod_ip: str
    # The network namespace the pod's processes join (the node's for hostNetwork pods).
    netns: str | None
    # The pod's hostname in its own UTS namespace; None keeps the node's (hostNetwork).
    hostname: str | None
    restart_policy: str = "Always"
    grace_seconds: int = 30
    # (file in the pod directory, path it is bind-mounted over in every container)
    mounts: list[tuple[str, str]] = field(default_factory=list)
    init_containers: list[ContainerConfig] = field(default_factory=list)
    containers: list[ContainerConfig] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ShimConfig:
        raw = dict(raw)
        raw["mounts"] = [(a, b) for a, b in raw.get("mounts", [])]
        for key in ("init_containers", "containers"):
            raw[key] = [ContainerConfig.from_dict(c) for c in raw.get(key, [])]
        return cls(**raw)

    def container(self, name: str) -> ContainerConfig | None:
        return next((c for c in self.init_containers + self.containers if c.name == name), None)


@dataclass
class ContainerStatus:
    """One container as the shim sees it; `state`/`last_state` are Kubernetes ContainerStates."""

    name: str
    image: str
    image_id: str = ""
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}}
    )
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    container_id: str = ""
    # Host PID of the container's PID 1 while it runs (exec and probes enter its namespaces).
    pid: int | None = None

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> dict[str, Any] | None:
        value = self.state.get("terminated")
        return value if isinstance(value, dict) else None

    def to_k8s(self, ready: bool = False, started: bool | None = None) -> dict[str, Any]:
        """A v1 ContainerStatus; readiness and `started` come from the agent's probes."""
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "state": self.state,
            "lastState": self.last_state,
            "ready": ready,
            "restartCount": self.restart_count,
            "started": self.running if started is None else started and self.running,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ContainerStatus:
        return cls(**raw)


@dataclass
class ShimStatus:
    shim_pid: int
    # running | stopping | stopped
    phase: str = "running"
    init_containers: list[ContainerStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ShimStatus:
        raw = dict(raw)
        for key in ("init_containers", "containers"):
            raw[key] = [ContainerStatus.from_dict(c) for c in raw.get(key, [])]
        return cls(**raw)

    def container(self, name: str) -> ContainerStatus | None:
        return next((c for c in self.init_containers + self.containers if c.name == name), None)
