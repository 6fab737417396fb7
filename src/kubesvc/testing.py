"""Test and benchmark helpers: a real `kubesvc up` in a subprocess, driven by the real kubectl."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesvc.config.cluster import ClusterConfig

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# Every cluster this process started, so a test session can check none left anything behind.
STARTED: list[Cluster] = []


def configmap(name: str, **data: str) -> dict[str, Any]:
    """A small manifest for tests that need any object at all."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@dataclass
class Cluster:
    """One cluster with its own state directory, port and kubectl cache."""

    state_dir: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    # Cluster, node and namespace name: unique, so clusters of parallel tests never meet.
    name: str = field(default_factory=lambda: f"t{secrets.token_hex(3)}")
    # How long `kubesvc up` may take to be ready: more under emulation (tests/vm).
    start_timeout: float = START_TIMEOUT
    process: subprocess.Popen[bytes] | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "kubesvc.log"

    @property
    def config(self) -> ClusterConfig:
        return ClusterConfig.load(self.state_dir)

    def start(self) -> None:
        if self not in STARTED:
            STARTED.append(self)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
        args = [sys.executable, "-m", "kubesvc", "up", "--state-dir", str(self.state_dir),
                "--api-port", str(self.port), "--name", self.name, "--isolated",
                # Tests never send queries to the machine's resolvers.
                "--dns-upstream", "none",
                "--no-kubeconfig", "-v", *self.extra_args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while not self.kubeconfig.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"kubesvc up exited with {self.process.returncode}:\n"
                                   + self.log_path.read_text()[-4000:])
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kubesvc up did not become ready:\n"
                                   + self.log_path.read_text()[-4000:])
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def apply(self, *manifests: dict[str, Any]) -> str:
        """`kubectl apply -f -` of manifests given as dicts; returns what kubectl printed."""
        text = "".join("---\n" + json.dumps(m) + "\n" for m in manifests)
        return self.kubectl("apply", "-f", "-", input=text).stdout

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, HOME=str(self.state_dir / "home"),
                   KUBECONFIG=str(self.kubeconfig))
        binary = Path(sys.executable).parent / "kubectl"
        result = subprocess.run([str(binary), *args], input=input, capture_output=True,
                                text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}")
        return result
