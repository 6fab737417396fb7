"""networking.k8s.io/v1: Ingress and IngressClass (pkg/apis/networking/validation)."""

from __future__ import annotations

from typing import Any

from kubesvc.api.validation._field import (
    Errors,
    child,
    dict_items,
    get_dict,
    get_int,
    get_list,
    get_str,
    get_str_list,
    index,
    opt_dict,
    opt_str,
)
from kubesvc.api.validation._meta import validate_object_meta, validate_object_meta_update
from kubesvc.api.validation._strings import (
    is_dns1123_subdomain,
    is_domain_prefixed_path,
    is_path_segment_name,
    is_valid_port_name,
    is_valid_port_num,
    is_wildcard_dns1123_subdomain,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    parse_ip_sloppy,
)

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _validate_typed_reference(e: Errors, ref: dict[str, Any], path: str) -> None:
    group = opt_str(e, ref, "apiGroup", child(path, "apiGroup"))
    if group is not None:
        for msg in is_dns1123_subdomain(group):
            e.invalid(child(path, "apiGroup"), group, msg)
    for name in ("kind", "name"):
        value = get_str(e, ref, name, child(path, name))
        if not value:
            e.required(child(path, name))
        for msg in is_path_segment_name(value) if value else []:
            e.invalid(child(path, name), value, msg)


def _validate_backend(e: Errors, backend: dict[str, Any], path: str,
                      relaxed_names: bool) -> None:
    resource = opt_dict(e, backend, "resource", child(path, "resource"))
    service = opt_dict(e, backend, "service", child(path, "service"))
    if resource is not None and service is not None:
        e.invalid(path, "", "cannot set both resource and service backends")
    elif resource is not None:
        _validate_typed_reference(e, resource, child(path, "resource"))
    elif service is not None:
        name_path = child(path, "service", "name")
        name = get_str(e, service, "name", name_path)
        if not name:
            e.required(name_path)
        else:
            name_fn = name_is_dns_label if relaxed_names else name_is_dns1035_label
            for msg in name_fn(name, False):
                e.invalid(name_path, name, msg)
        port = get_dict(e, service, "port", child(path, "service", "port"))
        port_name = get_str(e, port, "name", child(path, "service", "port", "name"))
        number = get_int(e, port, "number", child(path, "service", "port", "number"))
        if port_name and number:
            e.invalid(path, "", "cannot set both port name & port number")
        elif port_name:
            for msg in is_valid_port_name(port_name):
                e.invalid(child(path, "service", "port", "name"), port_name, msg)
        elif number:
            for msg in is_valid_port_num(number):
                e.invalid(child(path, "service", "port", "number"), number, msg)
        else:
            e.required(path, "port name or number is required")
    else:
        e.invalid(path, "", "resource or service backend is required")


def _validate_http_path(e: Errors, item: dict[str, Any], path: str, relaxed: bool) -> None:
    path_type = opt_str(e, item, "pathType", child(path, "pathType"))
    if path_type is None:
        e.required(child(path, "pathType"), "pathType must be specified")
        return
    value = get_str(e, item, "path", child(path, "path"))
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            e.invalid(child(path, "path"), value, "must be an absolute path")
        for seq in INVALID_PATH_SEQUENCES if value else ():
            if seq in value:
                e.invalid(child(path, "path"), value, f"must not contain '{seq}'")
        for suffix in INVALID_PATH_SUFFIXES if value else ():
            if value.endswith(suffix):
                e.invalid(child(path, "path"), value, f"cannot end with '{suffix}'")
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            e.invalid(child(path, "path"), value, "must be an absolute path")
    else:
        e.not_supported(child(path, "pathType"), path_type, PATH_TYPES)
    _validate_backend(e, get_dict(e, item, "backend", child(path, "backend")),
                      child(path, "backend"), relaxed)


def _relaxed_service_names(old: dict[str, Any] | None) -> bool:
    """An existing Ingress that already uses DNS-1123 (not 1035) Service names keeps them."""
    if old is None:
        return False
    spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    backends: list[Any] = [(spec or {}).get("defaultBackend")]
    for rule in (spec or {}).get("rules") or []:
        if isinstance(rule, dict) and isinstance(rule.get("http"), dict):
            backends += [p.get("backend") for p in rule["http"].get("paths") or []
                         if isinstance(p, dict)]
    for backend in backends:
        service = backend.get("service") if isinstance(backend, dict) else None
        name = service.get("name") if isinstance(service, dict) else None
        if isinstance(name, str) and not name_is_dns_label(name, False) and \
                name_is_dns1035_label(name, False):
            return True
    return False


def validate_ingress(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    spec = get_dict(e, obj, "spec", "spec")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    relaxed = _relaxed_service_names(old)
    rules = get_list(e, spec, "rules", "spec.rules")
    default = opt_dict(e, spec, "defaultBackend", "spec.defaultBackend")
    if not rules and default is None:
        e.invalid("spec", spec.get("rules"), "either `defaultBackend` or `rules` must be specified")
    if default is not None:
        _validate_backend(e, default, "spec.defaultBackend", relaxed)
    for i, rule in dict_items(e, rules, "spec.rules"):
        p = index("spec.rules", i)
        host = get_str(e, rule, "host", child(p, "host"))
        if host:
            if parse_ip_sloppy(host) is not None:
                e.invalid(child(p, "host"), host, "must be a DNS name, not an IP address")
            check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            for msg in check(host):
                e.invalid(child(p, "host"), host, msg)
        http = opt_dict(e, rule, "http", child(p, "http"))
        if http is not None:
            paths_path = child(p, "http", "paths")
            paths = get_list(e, http, "paths", paths_path)
            if not paths:
                e.required(paths_path)
            for j, item in dict_items(e, paths, paths_path):
                _validate_http_path(e, item, index(paths_path, j), relaxed)
    for i, tls in dict_items(e, get_list(e, spec, "tls", "spec.tls"), "spec.tls"):
        p = index("spec.tls", i)
        for j, host in enumerate(get_str_list(e, tls, "hosts", child(p, "hosts"))):
            check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            for msg in check(host):
                e.invalid(index(child(p, "hosts"), j), host, msg)
        secret = get_str(e, tls, "secretName", child(p, "secretName"))
        if secret:
            for msg in name_is_dns_subdomain(secret, False):
                e.invalid(child(p, "secretName"), secret, msg)
    class_name = opt_str(e, spec, "ingressClassName", "spec.ingressClassName")
    if class_name is not None:
        for msg in name_is_dns_subdomain(class_name, False):
            e.invalid("spec.ingressClassName", class_name, msg)
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    annotation = (annotations or {}).get(INGRESS_CLASS_ANNOTATION)
    if old is None and annotation is not None and class_name is not None and \
            annotation != class_name:
        e.invalid(f"annotations.{INGRESS_CLASS_ANNOTATION}", annotation,
                  "must match `ingressClassName` when both are specified")


def validate_ingress_class(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    spec = get_dict(e, obj, "spec", "spec")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        e.immutable("spec.controller", spec.get("controller", ""),
                    (old_spec or {}).get("controller", ""))
    validate_object_meta(e, meta, namespaced=False, name_fn=name_is_dns_subdomain)
    controller = get_str(e, spec, "controller", "spec.controller")
    if not controller:
        e.required("spec.controller")
    else:
        if len(controller.encode()) > 250:
            e.too_long("spec.controller", 250)
        is_domain_prefixed_path(e, "spec.controller", controller)
    params = opt_dict(e, spec, "parameters", "spec.parameters")
    if params is None:
        return
    path = "spec.parameters"
    _validate_typed_reference(e, params, path)
    scope = opt_str(e, params, "scope", child(path, "scope"))
    namespace = opt_str(e, params, "namespace", child(path, "namespace"))
    if scope is None:
        e.required(child(path, "scope"))
    elif scope not in ("Cluster", "Namespace"):
        e.not_supported(child(path, "scope"), scope, ("Cluster", "Namespace"))
    elif scope == "Namespace":
        if namespace is None:
            e.required(child(path, "namespace"), "`parameters.scope` is set to 'Namespace'")
        else:
            for msg in name_is_dns_label(namespace, False):
                e.invalid(child(path, "namespace"), namespace, msg)
    elif namespace is not None:
        e.forbidden(child(path, "namespace"), "`parameters.scope` is set to 'Cluster'")
