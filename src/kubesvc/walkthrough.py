"""The seed's terminal session, replayed against a running cluster with the real kubectl.

Each step prints its command and what it printed, as the seed shows them, and keeps the
output so the e2e test can check every step of the very same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "seed"
INGRESS_HOST = "yczhang.k8s"
WAIT = "120s"


@dataclass
class Step:
    command: str
    output: str


@dataclass
class Walkthrough:
    kubeconfig: Path
    examples: Path = EXAMPLES
    echo: Callable[[str], None] = print
    steps: list[Step] = field(default_factory=list)
    cache_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubesvc-")))

    def _record(self, command: str, output: str) -> str:
        self.echo(f"$ {command}")
        if output:
            self.echo(output.rstrip("\n"))
        self.echo("")
        self.steps.append(Step(command, output))
        return output

    def _kubesvc(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kubesvc", *args]

    def kubectl(self, *args: str, show: str | None = None) -> str:
        """Run the bundled kubectl; `show` is the command as the seed's user typed it."""
        binary = str(Path(sys.executable).parent / "kubectl")
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        result = subprocess.run([binary, f"--cache-dir={self.cache_dir}", *args], env=env,
                                capture_output=True, text=True, timeout=180)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise StepFailed(f"kubectl {' '.join(args)}", output)
        return self._record(show or "kubectl " + " ".join(args), output)

    def fetch(self, url: str, host: str | None = None, show: str = "") -> str:
        request = urllib.request.Request(url, headers={"Host": host} if host else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = resp.read().decode()
        except OSError as exc:
            raise StepFailed(show, str(exc)) from None
        return self._record(show, body)

    def _json(self, *args: str) -> dict[str, Any]:
        binary = str(Path(sys.executable).parent / "kubectl")
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        out = subprocess.run([binary, f"--cache-dir={self.cache_dir}", *args, "-o", "json"],
                             env=env, capture_output=True, text=True, timeout=60, check=True)
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def run(self, state_dir: Path) -> None:
        ex = self.examples
        self.kubectl("apply", "-f", str(ex / "server.yaml"), "-f", str(ex / "service.yaml"),
                     "-f", str(ex / "client.yaml"),
                     show="kubectl apply -f server.yaml -f service.yaml -f client.yaml")
        self.kubectl("rollout", "status", "deployment/nginx", f"--timeout={WAIT}")
        self.kubectl("wait", "--for=condition=Ready", "pod/client", f"--timeout={WAIT}")
        self.kubectl("get", "service")
        self.kubectl("describe", "service", "nginx")
        cluster_ip = str(self._json("get", "service", "nginx")["spec"]["clusterIP"])
        self.kubectl("exec", "client", "--", "wget", "-q", "-O", "-", cluster_ip,
                     show=f"kubectl exec client -- wget -q -O - {cluster_ip}")
        self.kubectl("exec", "client", "--", "wget", "-q", "-O", "-", "nginx")
        self.kubectl("exec", "client", "--", "env")
        self.kubectl("exec", "client", "--", "sh", "-c", "wget -q -O - $NGINX_SERVICE_HOST",
                     show="kubectl exec client -- sh -c 'wget -q -O - $NGINX_SERVICE_HOST'")
        service = yaml.safe_load((ex / "service.yaml").read_text())
        service["spec"]["type"] = "LoadBalancer"
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(service, f)
        self.kubectl("apply", "-f", f.name, show="kubectl apply -f service.yaml  "
                     "# with type: LoadBalancer")
        os.unlink(f.name)
        self.kubectl("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
                     "service/nginx", f"--timeout={WAIT}")
        self.kubectl("get", "service")
        node_ip = self._node_ip()
        node_port = self._json("get", "service", "nginx")["spec"]["ports"][0]["nodePort"]
        self.fetch(f"http://{node_ip}:{node_port}/",
                   show=f"wget -O - {node_ip}:{node_port}    # from the host")
        enable = subprocess.run(self._kubesvc("addons", "enable", "ingress", "--state-dir",
                                              str(state_dir)),
                                capture_output=True, text=True, timeout=180)
        if enable.returncode != 0:
            raise StepFailed("kubesvc addons enable ingress", enable.stdout + enable.stderr)
        self._record("kubesvc addons enable ingress", enable.stdout + enable.stderr)
        self.kubectl("apply", "-f", str(ex / "ingress.yaml"), show="kubectl apply -f ingress.yaml")
        self.kubectl("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
                     "ingress/ingress", f"--timeout={WAIT}")
        self.kubectl("get", "ingress")
        self._wait_ingress(node_ip)
        self.fetch(f"http://{node_ip}/", host=INGRESS_HOST,
                   show=f"curl http://{INGRESS_HOST}/    # {INGRESS_HOST} resolving to {node_ip}")
        self.kubectl("get", "pods", "-n", "kube-system")

    def _node_ip(self) -> str:
        nodes = self._json("get", "nodes")["items"]
        addresses = nodes[0]["status"]["addresses"]
        return str(next(a["address"] for a in addresses if a["type"] == "InternalIP"))

    def _wait_ingress(self, node_ip: str) -> None:
        """The controller's first reload can trail its status write by a moment."""
        request = urllib.request.Request(f"http://{node_ip}/", headers={"Host": INGRESS_HOST})
        for _ in range(300):
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)


class StepFailed(Exception):
    def __init__(self, command: str, output: str) -> None:
        super().__init__(f"{command} failed:\n{output}")
        self.command = command
        self.output = output
