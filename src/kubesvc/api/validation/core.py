"""The rest of the core group ("v1"): ConfigMap, Secret, Namespace, Node, Event and
ServiceAccount (pkg/apis/core/validation)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kubesvc.api.validation._field import (
    NEGATIVE,
    TYPE_INVALID,
    Errors,
    Struct,
    child,
    dict_items,
    get_dict,
    get_list,
    get_str,
    get_str_list,
    get_str_map,
    index,
    key,
    opt_bool,
    render,
)
from kubesvc.api.validation._meta import (
    validate_kube_finalizer_name,
    validate_label_name,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation._strings import (
    is_config_map_key,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_valid_cidr,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
    nbytes,
    parse_quantity,
)
from kubesvc.api.validation.core_pod import TAINT_EFFECTS

MAX_SECRET_SIZE = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# ConfigMap and Secret


def _decoded_size(e: Errors, value: Any, path: str) -> int:
    if not isinstance(value, str):
        e.type_invalid(path, value, "string")
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        e.add(path, f"Invalid value: {render(value)}: illegal base64 data", TYPE_INVALID)
        return 0


def validate_config_map(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                e.forbidden("immutable", "field is immutable when `immutable` is set")
            for name in ("data", "binaryData"):
                if (obj.get(name) or {}) != (old.get(name) or {}):
                    e.forbidden(name, "field is immutable when `immutable` is set")
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    opt_bool(e, obj, "immutable", "immutable")
    data = get_str_map(e, obj, "data", "data")
    binary = get_dict(e, obj, "binaryData", "binaryData")
    total = 0
    for k, v in data.items():
        for msg in is_config_map_key(k):
            e.invalid(key("data", k), k, msg)
        if k in binary:
            e.invalid(key("data", k), k, "duplicate of key present in binaryData")
        total += nbytes(v)
    for k, v in binary.items():
        for msg in is_config_map_key(k):
            e.invalid(key("binaryData", k), k, msg)
        total += _decoded_size(e, v, key("binaryData", k))
    if total > MAX_SECRET_SIZE:
        e.too_long("", MAX_SECRET_SIZE)


SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
        e.immutable("type", obj.get("type", ""), old.get("type", ""))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                e.forbidden("immutable", "field is immutable when `immutable` is set")
            if (obj.get("data") or {}) != (old.get("data") or {}):
                e.forbidden("data", "field is immutable when `immutable` is set")
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    opt_bool(e, obj, "immutable", "immutable")
    data = get_dict(e, obj, "data", "data")
    total = 0
    for k, v in data.items():
        for msg in is_config_map_key(k):
            e.invalid(key("data", k), k, msg)
        total += _decoded_size(e, v, key("data", k))
    for k, v in get_str_map(e, obj, "stringData", "stringData").items():
        for msg in is_config_map_key(k):
            e.invalid(key("stringData", k), k, msg)
        total += nbytes(v)
    if total > MAX_SECRET_SIZE:
        e.too_long("data", MAX_SECRET_SIZE)
    kind = get_str(e, obj, "type", "type")
    present = set(data) | set(obj.get("stringData") or {})
    if kind == "kubernetes.io/service-account-token":
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        if not (annotations or {}).get("kubernetes.io/service-account.name"):
            e.required(key("metadata.annotations", "kubernetes.io/service-account.name"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in present and "password" not in present:
            e.required(key("data", "username"))
            e.required(key("data", "password"))
    elif kind in SECRET_REQUIRED_KEYS:
        for k in SECRET_REQUIRED_KEYS[kind]:
            if k not in present:
                e.required(key("data", k))
                if kind != "kubernetes.io/tls":
                    break


# ---------------------------------------------------------------------------------------------
# Namespace, Node, Event, ServiceAccount


def validate_namespace(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
        return
    validate_object_meta(e, meta, namespaced=False, name_fn=name_is_dns_label)
    spec = get_dict(e, obj, "spec", "spec")
    for f in get_str_list(e, spec, "finalizers", "spec.finalizers"):
        for msg in is_qualified_name(f):
            e.invalid("spec.finalizers", f, msg)
        validate_kube_finalizer_name(e, f, "spec.finalizers")


INTEGER_RESOURCES = ("pods", "services", "replicationcontrollers", "resourcequotas", "secrets",
                     "configmaps", "persistentvolumeclaims", "services.nodeports",
                     "services.loadbalancers")


def _validate_node_resources(e: Errors, status: dict[str, Any]) -> None:
    for list_name in ("capacity", "allocatable"):
        for name, raw in get_dict(e, status, list_name, child("status", list_name)).items():
            p = child("status", list_name, name)
            q = parse_quantity(raw) if isinstance(raw, str | int | float) else None
            if q is None:
                e.type_invalid(p, raw, "quantity")
            elif q < 0:
                e.invalid(p, str(raw), NEGATIVE)
            elif name in INTEGER_RESOURCES and q != int(q):
                e.invalid(p, str(raw), "must be an integer")


def _validate_taints(e: Errors, spec: dict[str, Any]) -> None:
    path = "metadata.taints"  # sic: Kubernetes reports spec.taints under this path
    seen: set[tuple[str, str]] = set()
    for i, taint in dict_items(e, get_list(e, spec, "taints", "spec.taints"), path):
        p = index(path, i)
        k = get_str(e, taint, "key", child(p, "key"))
        validate_label_name(e, k, child(p, "key"))
        value = get_str(e, taint, "value", child(p, "value"))
        errs = is_label_value(value)
        if errs:
            e.invalid(child(p, "value"), value, ";".join(errs))
        effect = get_str(e, taint, "effect", child(p, "effect"))
        if not effect:
            e.required(child(p, "effect"))
        elif effect not in TAINT_EFFECTS:
            e.not_supported(child(p, "effect"), effect, TAINT_EFFECTS)
        if (k, effect) in seen:
            e.duplicate(p, Struct(Key=k, Value=value, Effect=effect,
                                  TimeAdded=taint.get("timeAdded")),
                        "taints must be unique by key and effect pair")
            continue
        seen.add((k, effect))


def validate_node(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    spec = get_dict(e, obj, "spec", "spec")
    status = get_dict(e, obj, "status", "status")
    cidrs = get_str_list(e, spec, "podCIDRs", "spec.podCIDRs")
    if old is None:
        validate_object_meta(e, meta, namespaced=False, name_fn=name_is_dns_subdomain)
        _validate_taints(e, spec)
        _validate_node_resources(e, status)
        for i, cidr in enumerate(cidrs):
            is_valid_cidr(e, index("spec.podCIDRs", i), cidr)
        if len(cidrs) > 1:
            families = {":" in c for c in cidrs}
            if len(families) != 2 or len(cidrs) > 2:
                e.invalid("spec.podCIDRs", cidrs,
                          "may specify no more than one CIDR for each IP family")
            for i, cidr in enumerate(cidrs):
                if cidr in cidrs[:i]:
                    e.duplicate(index("spec.podCIDRs", i), cidr)
        return
    old_spec = get_dict(Errors(), old, "spec", "spec")
    validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    _validate_node_resources(e, status)
    seen: list[Any] = []
    for i, addr in enumerate(get_list(e, status, "addresses", "status.addresses")):
        if addr in seen:
            e.duplicate(index("status.addresses", i), addr)
        seen.append(addr)
    old_cidrs = old_spec.get("podCIDRs") or []
    if old_cidrs and old_cidrs != cidrs:
        e.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
    old_provider = old_spec.get("providerID") or ""
    if old_provider and old_provider != spec.get("providerID", ""):
        e.forbidden("spec.providerID",
                    'node updates may not change providerID except from "" to valid')
    _validate_taints(e, spec)
    if spec.get("externalID", "") != old_spec.get("externalID", ""):
        e.forbidden("spec.externalID", "may not be updated")


def validate_event(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """core/v1 Events get only the legacy checks (ValidateEventCreate for version v1)."""
    meta = get_dict(e, obj, "metadata", "metadata")
    namespace = get_str(e, meta, "namespace", "metadata.namespace")
    involved = get_dict(e, obj, "involvedObject", "involvedObject")
    involved_ns = get_str(e, involved, "namespace", "involvedObject.namespace")
    mismatch = "does not match event.namespace"
    if not obj.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                e.invalid("involvedObject.namespace", involved_ns, mismatch)
        elif namespace != involved_ns:
            e.invalid("involvedObject.namespace", involved_ns, mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            e.invalid("involvedObject.namespace", involved_ns, mismatch)
        controller = get_str(e, obj, "reportingComponent", "reportingController")
        if not controller:
            e.required("reportingController")
        for msg in is_qualified_name(controller):
            e.invalid("reportingController", controller, msg)
        for name, path, limit, required in (
                ("reportingInstance", "reportingInstance", 128, True),
                ("action", "action", 128, True), ("reason", "reason", 128, True),
                ("message", "message", 1024, False)):
            value = get_str(e, obj, name, path)
            if required and not value:
                e.required(path)
            if len(value) > limit:
                e.invalid(path, "", f"can have at most {limit} characters")
    for msg in is_dns1123_subdomain(namespace):
        e.invalid("namespace", namespace, msg)
    if len(e) == 0:
        # The API server's generic check, run once the type's own validation has passed.
        if old is None:
            validate_object_meta(e, meta, namespaced=True, name_fn=name_is_path_segment)
        else:
            validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))


def validate_service_account(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
