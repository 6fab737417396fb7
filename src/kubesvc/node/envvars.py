"""A container's environment from its spec: envFrom, then env with valueFrom resolved against
the pod (fieldRef), ConfigMaps and Secrets, as the kubelet resolves them."""

from __future__ import annotations

import base64
import re
from typing import Any

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client.rest import Client

Obj = dict[str, Any]
CONFIGMAPS = of("v1", "ConfigMap")
SECRETS = of("v1", "Secret")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Obj, path: str, node_ip: str) -> str:
    """The downward API: what `fieldRef.fieldPath` names."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.hostIP": node_ip, "status.podIP": status.get("podIP", ""),
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "status.podIPs":
        return ",".join(i["ip"] for i in status.get("podIPs") or [])
    raise ApiError(400, "BadRequest", f'unsupported fieldPath "{path}"')


class _Sources:
    """ConfigMaps and Secrets read once per container start."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    async def data(self, kind: str, name: str) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._cache:
            try:
                obj = await self.client.get(CONFIGMAPS if kind == "ConfigMap" else SECRETS,
                                            name, self.namespace)
            except ApiError as err:
                if err.code != 404:
                    raise
                self._cache[key] = None
            else:
                raw = obj.get("data") or {}
                self._cache[key] = {k: base64.b64decode(v).decode(errors="replace")
                                    for k, v in raw.items()} if kind == "Secret" else dict(raw)
        return self._cache[key]

    async def value(self, kind: str, ref: Obj) -> str | None:
        data = await self.data(kind, ref.get("name", ""))
        value = None if data is None else data.get(ref.get("key", ""))
        if value is None and not ref.get("optional"):
            what = "configmap" if kind == "ConfigMap" else "secret"
            raise ApiError(404, "NotFound", f'couldn\'t find key {ref.get("key")} in {kind} '
                           f'{self.namespace}/{ref.get("name")}' if data is not None else
                           f'{what} "{ref.get("name")}" not found')
        return value


async def container_env(client: Client, pod: Obj, container: Obj,
                        node_ip: str) -> list[tuple[str, str]]:
    sources = _Sources(client, pod["metadata"]["namespace"])
    out: list[tuple[str, str]] = []
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = src.get(field)
            if ref is None:
                continue
            data = await sources.data(kind, ref.get("name", ""))
            if data is None and not ref.get("optional"):
                raise ApiError(404, "NotFound", f'{kind.lower()} "{ref.get("name")}" not found')
            out.extend((prefix + k, v) for k, v in sorted((data or {}).items()))
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            out.append((var["name"], str(var.get("value", ""))))
            continue
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"].get("fieldPath", ""), node_ip)
        elif "configMapKeyRef" in source:
            value = await sources.value("ConfigMap", source["configMapKeyRef"])
        elif "secretKeyRef" in source:
            value = await sources.value("Secret", source["secretKeyRef"])
        else:
            value = "0"  # resourceFieldRef: no limits are enforced, so none is reported
        if value is not None:
            out.append((var["name"], value))
    return out
