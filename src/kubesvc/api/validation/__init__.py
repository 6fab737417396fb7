"""Validation of API objects, as Kubernetes validates them (pkg/apis/*/validation).

`validate(obj, old)` is called by the API server after defaulting, with the object in its
stored version: `old` is None on create and the stored object on update. It returns the
field-level causes of a `422 Invalid`, worded, ordered and reasoned as Kubernetes words them;
an empty list means the object is valid.

Before an update is validated the caller runs `kubesvc.api.defaults.carry_over(obj, old)`, which
copies what the update may omit (a Service's allocated clusterIP and NodePorts): validate then
treats every other difference from `old` as a change the client asked for. Metadata the
server owns (uid, creationTimestamp) is compared only when the update carries it.

One module per API group (the core group in four: `core_containers`, `core_pod`,
`core_service`, `core`), then `apps`, `networking`, `discovery`, `coordination`; `_field`,
`_strings` and `_meta` hold the shared pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubesvc.api import resources
from kubesvc.api.errors import Cause
from kubesvc.api.validation._field import Errors, get_dict
from kubesvc.api.validation._meta import validate_object_meta, validate_object_meta_update
from kubesvc.api.validation._strings import name_is_path_segment
from kubesvc.api.validation.apps import validate_workload
from kubesvc.api.validation.coordination import validate_lease
from kubesvc.api.validation.core import (
    validate_config_map,
    validate_event,
    validate_namespace,
    validate_node,
    validate_secret,
    validate_service_account,
)
from kubesvc.api.validation.core_pod import validate_pod
from kubesvc.api.validation.core_service import validate_endpoints, validate_service
from kubesvc.api.validation.discovery import validate_endpoint_slice
from kubesvc.api.validation.networking import validate_ingress, validate_ingress_class

__all__ = ["validate"]

Validator = Callable[[Errors, dict[str, Any], "dict[str, Any] | None"], None]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): validate_pod,
    ("", "Service"): validate_service,
    ("", "Endpoints"): validate_endpoints,
    ("", "ConfigMap"): validate_config_map,
    ("", "Secret"): validate_secret,
    ("", "Namespace"): validate_namespace,
    ("", "Node"): validate_node,
    ("", "Event"): validate_event,
    ("", "ServiceAccount"): validate_service_account,
    ("apps", "Deployment"): validate_workload,
    ("apps", "ReplicaSet"): validate_workload,
    ("networking.k8s.io", "Ingress"): validate_ingress,
    ("networking.k8s.io", "IngressClass"): validate_ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): validate_endpoint_slice,
    ("coordination.k8s.io", "Lease"): validate_lease,
}


def _generic(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """What the API server checks for every type: names that fit in a URL path segment."""
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
        return
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    res = resources.by_kind(api_version, kind)
    validate_object_meta(e, meta, namespaced=res.namespaced if res else True,
                         name_fn=name_is_path_segment)


def validate(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """The causes that make `obj` invalid (none when it is valid)."""
    e = Errors()
    if not isinstance(obj, dict):
        e.type_invalid("", obj, "object")
        return e.causes
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    validator = _VALIDATORS.get((group, str(obj.get("kind", ""))), _generic)
    validator(e, obj, old if isinstance(old, dict) else None)
    unique: list[Cause] = []
    for cause in e.causes:
        if cause not in unique:
            unique.append(cause)
    return unique
