"""Ingress across the versions it is served in, as Kubernetes converts them.

Ingress is stored as networking.k8s.io/v1 and also served as networking.k8s.io/v1beta1 and
extensions/v1beta1, whose shape is older: `spec.backend` instead of `spec.defaultBackend`, and a
backend names its Service with `serviceName` and `servicePort` (a number or a port name)
instead of `service: {name, port: {number | name}}`. Every conversion goes through v1, as
Kubernetes' goes through its internal version (pkg/apis/networking/v1beta1/conversion.go and
its twin in extensions/v1beta1). Kubernetes needs no annotation to make these round trips
lossless and neither does this: v1 -> v1beta1 -> v1 gives back the same object, and v1beta1 ->
v1 -> v1beta1 gives back the original with `pathType` defaulted, as reading it back from a
real cluster shows it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

STORAGE_VERSION = "networking.k8s.io/v1"
INGRESS_VERSIONS = (STORAGE_VERSION, "networking.k8s.io/v1beta1", "extensions/v1beta1")

Backend = dict[str, Any]


def to_version(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    """`obj` as `api_version`, in a new dict; the input is left untouched.

    Any kind already in `api_version` comes back as a shallow copy. Ingress converts between
    the three versions it is served in; anything else raises ValueError.
    """
    kind, current = obj.get("kind", ""), obj.get("apiVersion", "")
    if current == api_version:
        return dict(obj)
    if kind != "Ingress" or current not in INGRESS_VERSIONS or api_version not in INGRESS_VERSIONS:
        raise ValueError(f'cannot convert {kind or "object"} from "{current}" to "{api_version}"')
    out = copy.deepcopy(obj)
    spec = out.get("spec")
    if isinstance(spec, dict):
        if current != STORAGE_VERSION:
            _convert_spec(spec, up=True)
        if api_version != STORAGE_VERSION:
            _convert_spec(spec, up=False)
    out["apiVersion"] = api_version
    return out


def _convert_spec(spec: dict[str, Any], *, up: bool) -> None:
    """Convert an IngressSpec in place: `up` is v1beta1 -> v1, otherwise v1 -> v1beta1."""
    old_key, new_key = ("backend", "defaultBackend") if up else ("defaultBackend", "backend")
    convert: Callable[[Backend], Backend] = _backend_up if up else _backend_down
    default_backend = spec.pop(old_key, None)
    if default_backend is not None:
        spec[new_key] = convert(default_backend)
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            if path.get("backend") is not None:
                path["backend"] = convert(path["backend"])
            # v1 requires pathType; v1beta1's defaulting fills it in before conversion.
            if up and path.get("pathType") is None:
                path["pathType"] = "ImplementationSpecific"


def _backend_up(backend: Backend) -> Backend:
    """serviceName/servicePort -> service: {name, port: {number | name}}; resource stays."""
    out = {k: v for k, v in backend.items() if k not in ("serviceName", "servicePort")}
    name = backend.get("serviceName") or ""
    port = backend.get("servicePort", 0)
    # As in Kubernetes: any service name or port, even an empty string port, means a service.
    if name or isinstance(port, str) or port:
        service_port = {"name": port} if isinstance(port, str) else {"number": port}
        out["service"] = {"name": name,
                          "port": {k: v for k, v in service_port.items() if v}}
    return out


def _backend_down(backend: Backend) -> Backend:
    """service: {name, port} -> serviceName/servicePort (a port name wins over a number)."""
    service = backend.get("service")
    if service is None:
        return dict(backend)
    port = service.get("port") or {}
    out: Backend = {"serviceName": service["name"]} if service.get("name") else {}
    out["servicePort"] = port["name"] if port.get("name") else port.get("number", 0)
    out.update((k, v) for k, v in backend.items() if k != "service")
    return out
