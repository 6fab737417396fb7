"""Service discovery by environment, and `$(VAR)` expansion, as the kubelet does them.

`service_env` is kubelet_pods.go getServiceEnvVarMap feeding pkg/kubelet/envvars FromServices:
the Docker-links style variables every container is started with (`NGINX_SERVICE_HOST`,
`NGINX_PORT_80_TCP_ADDR`, ...). `expand` is third_party/forked/golang/expansion, which the
kubelet applies to env values, command and args.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubesvc.api.allocators import cluster_ip_set

# The kubelet always gives pods these Services of this namespace, even with
# enableServiceLinks false: they are how a pod finds the API server.
MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})


def service_env(pod_namespace: str, enable_service_links: bool,
                services: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """The service link variables of a pod in `pod_namespace`, given every Service.

    Same-namespace Services need enableServiceLinks; a same-namespace Service wins over the
    master Service of the same name. Kubernetes walks a Go map here, so its order is random;
    ours is by Service name, each Service's variables in the order FromServices makes them.
    """
    chosen: dict[str, dict[str, Any]] = {}
    for service in services:
        if not cluster_ip_set(service) or not service.get("spec", {}).get("ports"):
            continue
        name = service["metadata"]["name"]
        namespace = service["metadata"].get("namespace", "")
        if namespace == MASTER_SERVICE_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif namespace == pod_namespace and enable_service_links:
            chosen[name] = service
    env: list[tuple[str, str]] = []
    for name in sorted(chosen):
        env.extend(_from_service(chosen[name]))
    return env


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _from_service(service: dict[str, Any]) -> list[tuple[str, str]]:
    prefix = _env_name(service["metadata"]["name"])
    spec = service["spec"]
    ip = str(spec["clusterIP"])
    ports = spec["ports"]
    env = [(f"{prefix}_SERVICE_HOST", ip), (f"{prefix}_SERVICE_PORT", str(ports[0]["port"]))]
    # Only the first port may be unnamed (validation), so every other one gets a name here.
    env += [(f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}", str(p["port"]))
            for p in ports if p.get("name")]
    for i, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{ip}:{port['port']}"
        if i == 0:
            # Docker special-cases the first port.
            env.append((f"{prefix}_PORT", url))
        port_prefix = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        env += [(port_prefix, url), (f"{port_prefix}_PROTO", protocol.lower()),
                (f"{port_prefix}_PORT", str(port["port"])), (f"{port_prefix}_ADDR", ip)]
    return env
