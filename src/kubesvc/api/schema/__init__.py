"""The schema of every kind kubesvc serves, written once in a small DSL (`dsl.py`), one module
per part of the API. OpenAPI (`kubesvc.api.openapi`), and through it `kubectl explain` and
`kubectl apply`, read it; so does the server's strict field validation (`unknown_fields`).
"""

from __future__ import annotations

from typing import Any

from kubesvc.api.schema import apps, coordination, core, discovery, networking, pods
from kubesvc.api.schema.dsl import Array, Map, Model, Schema
from kubesvc.api.schema.meta import DELETE_OPTIONS, STATUS, WATCH_EVENT, list_of

__all__ = ["KINDS", "model_for", "unknown_fields"]

# The kinds stored and served, each of which is also listed (`PodList`).
_SERVED = (
    core.NAMESPACE, pods.POD, core.SERVICE, core.ENDPOINTS, core.CONFIG_MAP, core.SECRET,
    core.EVENT, core.NODE, core.SERVICE_ACCOUNT, apps.DEPLOYMENT, apps.REPLICA_SET,
    discovery.ENDPOINT_SLICE, networking.INGRESS, networking.INGRESS_CLASS,
    networking.INGRESS_V1BETA1, networking.INGRESS_EXTENSIONS, coordination.LEASE,
)
# Kinds that only travel in requests and responses: subresources, options, results.
_EXCHANGED = (apps.SCALE, core.BINDING, STATUS, DELETE_OPTIONS, WATCH_EVENT)

KINDS: dict[tuple[str, str], Model] = {
    (gvk.api_version, gvk.kind): model
    for model in (*_SERVED, *map(list_of, _SERVED), *_EXCHANGED)
    for gvk in model.kinds
}


def model_for(api_version: str, kind: str) -> Model | None:
    return KINDS.get((api_version, kind))


def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """Paths of the fields in `obj` its kind's schema does not define, in document order.

    Paths are written as Kubernetes' strict decoding writes them (`spec.foo`,
    `spec.template.spec.containers[0].imagee`). Free-form values and the keys of maps are
    never unknown; an object of a kind with no schema has no unknown fields (the caller
    rejects unknown kinds on its own terms).
    """
    model = model_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    found: list[str] = []
    if model is not None:
        _walk(obj, model, "", found)
    return found


def _walk(value: Any, schema: Schema, path: str, found: list[str]) -> None:
    # A value of the wrong JSON type is not an unknown field; decoding reports it elsewhere.
    if isinstance(schema, Model) and isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            field = schema.prop(key)
            if field is None:
                found.append(where)
            else:
                _walk(item, field.schema, where, found)
    elif isinstance(schema, Array) and isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, schema.items, f"{path}[{index}]", found)
    elif isinstance(schema, Map) and isinstance(value, dict):
        for key, item in value.items():
            _walk(item, schema.values, f"{path}.{key}", found)
