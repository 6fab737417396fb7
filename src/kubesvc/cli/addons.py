"""What `kubesvc addons`, `kubesvc ip` and `kubesvc service` do, as minikube's commands do.

An addon is a set of ordinary objects applied through the API (server-side apply, as
`kubectl apply --server-side` would), so it stays enabled across restarts because its objects
live in the API's storage, and `disable` deletes them. `ingress` is ingress-nginx as minikube
deploys it: Namespace `ingress-nginx`, the default IngressClass `nginx`, a NodePort Service
and a Deployment `ingress-nginx-controller` whose pod runs kubesvc's controller
(kubesvc.ingress) on the node's network, so it listens on the node's ports 80 and 443.

The controller reaches the API server the way the node's pods can: at the address the
`kubernetes` Endpoints advertise (the host end of the node's link), under the name
`kubernetes.default.svc` (pinned there with hostAliases, and one the serving certificate
carries), with the cluster's bearer token and CA kept in a Secret beside it. It does not go
through the `kubernetes` ClusterIP, so it works without a service proxy.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client.rest import Client, path_of
from kubesvc.config.cluster import ClusterConfig

Obj = dict[str, Any]

NAMESPACES = of("v1", "Namespace")
ENDPOINTS = of("v1", "Endpoints")
NODES = of("v1", "Node")
SERVICES = of("v1", "Service")
DEPLOYMENTS = of("apps/v1", "Deployment")
INGRESS_CLASSES = of("networking.k8s.io/v1", "IngressClass")

FIELD_MANAGER = "kubesvc-addons"
INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_CONTROLLER = "ingress-nginx-controller"
INGRESS_CLASS = "nginx"
INGRESS_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.12.0"
INGRESS_CREDENTIALS = "ingress-nginx-api-credentials"
# The API server's name inside the cluster, which its serving certificate carries.
API_SERVER_NAME = "kubernetes.default.svc"
HEALTHZ_PORT = 10254
POLL = 0.5
# ingress-nginx's labels; the controller's pods are selected by these and the component.
LABELS = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx"}


class AddonError(Exception):
    """An addon that cannot be enabled or disabled; the message says why."""


@dataclass(frozen=True)
class Addon:
    name: str
    maintainer: str


ADDONS = (Addon("ingress", "Kubernetes"),)


def ingress_objects(*, api_address: str, api_port: int, token: str, ca_pem: str,
                    http_port: int = 80, https_port: int = 443,
                    python: str = sys.executable) -> list[Obj]:
    """The ingress addon's objects, in the order they are applied."""
    labels = {**LABELS, "app.kubernetes.io/component": "controller"}
    meta = {"namespace": INGRESS_NAMESPACE, "labels": {**labels,
                                                       "app.kubernetes.io/part-of": "ingress-nginx",
                                                       "app.kubernetes.io/version": "1.12.0"}}
    secret_env = [("KUBESVC_API_TOKEN", "token"), ("KUBESVC_API_CA", "ca.crt")]
    field_env = [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")]
    probe = {"httpGet": {"path": "/healthz", "port": HEALTHZ_PORT, "scheme": "HTTP"},
             "timeoutSeconds": 1}
    controller = {
        "name": "controller",
        "image": INGRESS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # The catalog runs this image with the host's python3; name the interpreter that runs
        # kubesvc, which a virtualenv may hold.
        "command": [python, "-m", "kubesvc.ingress"],
        "args": [f"--apiserver-host=https://{API_SERVER_NAME}:{api_port}",
                 f"--ingress-class={INGRESS_CLASS}", "--controller-class=k8s.io/ingress-nginx",
                 f"--http-port={http_port}", f"--https-port={https_port}",
                 f"--healthz-port={HEALTHZ_PORT}"],
        "env": [*({"name": n, "valueFrom": {"fieldRef": {"fieldPath": p}}} for n, p in field_env),
                *({"name": n, "valueFrom": {"secretKeyRef": {"name": INGRESS_CREDENTIALS,
                                                             "key": k}}} for n, k in secret_env)],
        "ports": [{"name": "http", "containerPort": http_port, "hostPort": http_port,
                   "protocol": "TCP"},
                  {"name": "https", "containerPort": https_port, "hostPort": https_port,
                   "protocol": "TCP"}],
        "readinessProbe": {**probe, "periodSeconds": 2, "failureThreshold": 3},
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "periodSeconds": 10,
                          "failureThreshold": 5},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": INGRESS_NAMESPACE, "labels": LABELS}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": INGRESS_CLASS, "labels": labels,
                      "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
         "spec": {"controller": "k8s.io/ingress-nginx"}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {**meta, "name": INGRESS_CREDENTIALS},
         "data": {"token": base64.b64encode(token.encode()).decode(),
                  "ca.crt": base64.b64encode(ca_pem.encode()).decode()}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {**meta, "name": INGRESS_CONTROLLER},
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http",
                             "protocol": "TCP"},
                            {"name": "https", "port": 443, "targetPort": "https",
                             "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {**meta, "name": INGRESS_CONTROLLER},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": labels},
             # The pod holds the node's ports: the old one goes before the new one starts.
             "strategy": {"type": "RollingUpdate",
                          "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {"hostNetwork": True,
                          "hostAliases": [{"ip": api_address, "hostnames": [API_SERVER_NAME]}],
                          "terminationGracePeriodSeconds": 30,
                          "containers": [controller]}}}},
    ]


async def _apply(client: Client, obj: Obj) -> None:
    meta = obj["metadata"]
    await client.request("PATCH", path_of(of(obj["apiVersion"], obj["kind"]),
                                          meta.get("namespace"), meta["name"]),
                         body=obj, content_type="application/apply-patch+yaml",
                         params={"fieldManager": FIELD_MANAGER, "force": "true"})


async def _api_endpoint(client: Client) -> tuple[str, int]:
    """Where pods reach the API server: the `kubernetes` Endpoints' address and port."""
    endpoints = await client.get(ENDPOINTS, "kubernetes", "default")
    for subset in endpoints.get("subsets") or []:
        if subset.get("addresses") and subset.get("ports"):
            return subset["addresses"][0]["ip"], int(subset["ports"][0]["port"])
    raise AddonError("the API server advertises no address to pods yet (`kubesvc kubectl "
                     "get endpoints kubernetes`): is the node up?")


def _rolled_out(deployment: Obj) -> bool:
    """`kubectl rollout status`'s test: every replica updated and available, none old."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    return bool(status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
            and status.get("updatedReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas)


async def enable_ingress(client: Client, config: ClusterConfig, *, http_port: int,
                         https_port: int, timeout: float,
                         progress: Callable[[str], None]) -> None:
    address, port = await _api_endpoint(client)
    objects = ingress_objects(api_address=address, api_port=port, token=config.pki.token(),
                              ca_pem=config.pki.ca_cert.read_text(), http_port=http_port,
                              https_port=https_port)
    progress(f"Using image {INGRESS_IMAGE}")
    for obj in objects:
        await _apply(client, obj)
    progress("Verifying ingress addon...")
    deadline = asyncio.get_running_loop().time() + timeout
    while not _rolled_out(await client.get(DEPLOYMENTS, INGRESS_CONTROLLER, INGRESS_NAMESPACE)):
        if asyncio.get_running_loop().time() > deadline:
            raise AddonError(f"the ingress controller is not ready after {timeout:.0f}s; see "
                             f"`kubesvc kubectl -n {INGRESS_NAMESPACE} describe pods`")
        await asyncio.sleep(POLL)


async def disable_ingress(client: Client, *, timeout: float) -> None:
    """Delete the namespace first, so the controller still serves its class while it stops
    (taking its address off the Ingresses), then the IngressClass."""
    try:
        await client.delete(NAMESPACES, INGRESS_NAMESPACE)
    except ApiError as err:
        if err.code != 404:
            raise
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await client.get(NAMESPACES, INGRESS_NAMESPACE)
        except ApiError as err:
            if err.code != 404:
                raise
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AddonError(f"namespace {INGRESS_NAMESPACE} is still terminating after "
                             f"{timeout:.0f}s")
        await asyncio.sleep(POLL)
    try:
        await client.delete(INGRESS_CLASSES, INGRESS_CLASS)
    except ApiError as err:
        if err.code != 404:
            raise


async def enabled(client: Client, addon: str) -> bool:
    """Whether the addon's objects are there (the ingress: its controller's Deployment)."""
    if addon != "ingress":
        raise AddonError(f"unknown addon {addon!r}")
    try:
        await client.get(DEPLOYMENTS, INGRESS_CONTROLLER, INGRESS_NAMESPACE)
    except ApiError as err:
        if err.code != 404:
            raise
        return False
    return True


async def node_ip(client: Client, config: ClusterConfig) -> str:
    """The node's InternalIP, as `minikube ip` prints it."""
    node = await client.get(NODES, config.name)
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address["address"])
    raise AddonError(f"node {config.name} has no InternalIP yet")


@dataclass(frozen=True)
class ServiceURL:
    target_port: str  # `name/port` or `port`, as minikube's table shows it
    url: str


def service_urls(service: Obj, node_address: str) -> list[ServiceURL]:
    """The URLs of a NodePort or LoadBalancer Service: the node's address with each node
    port, then each load-balancer address with each port (minikube's `service --url`)."""
    spec = service.get("spec") or {}
    meta = service["metadata"]
    if spec.get("type") not in ("NodePort", "LoadBalancer"):
        raise AddonError(f"service {meta.get('namespace')}/{meta['name']} has no node port "
                         f"(type {spec.get('type') or 'ClusterIP'})")
    ports = spec.get("ports") or []

    def label(port: Obj) -> str:
        return f"{port['name']}/{port['port']}" if port.get("name") else str(port["port"])

    urls = [ServiceURL(label(p), f"http://{node_address}:{p['nodePort']}")
            for p in ports if p.get("nodePort")]
    for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        host = ingress.get("ip") or ingress.get("hostname")
        if host:
            urls += [ServiceURL(label(p), f"http://{host}:{p['port']}") for p in ports]
    return urls


async def service(client: Client, config: ClusterConfig, name: str,
                  namespace: str) -> list[ServiceURL]:
    try:
        obj = await client.get(SERVICES, name, namespace)
    except ApiError as err:
        if err.code != 404:
            raise
        raise AddonError(f'service "{name}" was not found in "{namespace}" namespace') from None
    return service_urls(obj, await node_ip(client, config))
