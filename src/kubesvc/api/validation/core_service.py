"""core/v1 Services and Endpoints (pkg/apis/core/validation: ValidateService,
ValidateEndpoints)."""

from __future__ import annotations

from typing import Any

from kubesvc.api.validation._field import (
    IMMUTABLE,
    Errors,
    Struct,
    child,
    dict_items,
    get_dict,
    get_int,
    get_list,
    get_str,
    get_str_list,
    get_str_map,
    index,
    int_or_str,
    key,
    opt_bool,
    opt_dict,
    opt_int,
    opt_str,
)
from kubesvc.api.validation._meta import (
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation._strings import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_ipv6_string,
    is_qualified_name,
    is_valid_cidr,
    is_valid_ip,
    is_valid_ip_legacy,
    is_valid_port_num,
    name_is_dns1035_label,
    name_is_dns_subdomain,
    validate_non_special_ip,
)
from kubesvc.api.validation.core_containers import validate_port_num_or_name

PROTOCOLS = ("SCTP", "TCP", "UDP")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameNode", "PreferSameZone")
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
LB_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"


def _label_errors(e: Errors, value: str, path: str) -> None:
    for msg in is_dns1123_label(value):
        e.invalid(path, value, msg)


# ---------------------------------------------------------------------------------------------
# Service


def _service_ports(spec: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    ports = spec.get("ports")
    if not isinstance(ports, list):
        return []
    return [(i, p) for i, p in enumerate(ports) if isinstance(p, dict)]


def _is_headless(spec: dict[str, Any]) -> bool:
    ips = spec.get("clusterIPs")
    return isinstance(ips, list) and ips == ["None"]


def _externally_accessible(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs")))


def _needs_health_check(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _validate_service_port(e: Errors, port: dict[str, Any], require_name: bool, names: set[str],
                           path: str) -> None:
    name = get_str(e, port, "name", child(path, "name"))
    if require_name and not name:
        e.required(child(path, "name"))
    elif name:
        _label_errors(e, name, child(path, "name"))
        if name in names:
            e.duplicate(child(path, "name"), name)
        names.add(name)
    number = get_int(e, port, "port", child(path, "port"))
    for msg in is_valid_port_num(number):
        e.invalid(child(path, "port"), number, msg)
    protocol = get_str(e, port, "protocol", child(path, "protocol"))
    if not protocol:
        e.required(child(path, "protocol"))
    elif protocol not in PROTOCOLS:
        e.not_supported(child(path, "protocol"), protocol, PROTOCOLS)
    validate_port_num_or_name(e, int_or_str(e, port, "targetPort", child(path, "targetPort")),
                              child(path, "targetPort"))
    app_protocol = opt_str(e, port, "appProtocol", child(path, "appProtocol"))
    if app_protocol is not None:
        for msg in is_qualified_name(app_protocol):
            e.invalid(child(path, "appProtocol"), app_protocol, msg)


def _validate_cluster_ips(e: Errors, spec: dict[str, Any]) -> None:
    """ValidateServiceClusterIPsRelatedFields."""
    if spec.get("type") == "ExternalName":
        return
    cluster_ip = get_str(e, spec, "clusterIP", "spec.clusterIP")
    ips = get_str_list(e, spec, "clusterIPs", "spec.clusterIPs")
    families = get_str_list(e, spec, "ipFamilies", "spec.ipFamilies")
    if cluster_ip:
        if not ips:
            e.required("spec.clusterIPs")
        elif ips[0] != cluster_ip:
            e.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`")
    elif ips:
        e.invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified")
    seen: set[str] = set()
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            e.not_supported(index("spec.ipFamilies", i), family, IP_FAMILIES)
        if family in seen:
            e.duplicate(index("spec.ipFamilies", i), family)
        seen.add(family)
    policy = opt_str(e, spec, "ipFamilyPolicy", "spec.ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        e.not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES)
    bad = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad = True
                e.invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
            continue
        bad = not is_valid_ip(e, index("spec.clusterIPs", i), ip) or bad
    if len(ips) > 2:
        e.invalid("spec.clusterIPs", ips, "may only hold up to 2 values")
    if bad:
        return
    if len(ips) > 1 and len({is_ipv6_string(ip) for ip in ips[:2]}) != 2:
        e.invalid("spec.clusterIPs", ips, "may specify no more than one IP for each IP family")
    if not _is_headless(spec):
        for i, (ip, family) in enumerate(zip(ips, families, strict=False)):
            if family == "IPv4" and is_ipv6_string(ip):
                e.invalid(index("spec.clusterIPs", i), ip,
                          f"expected an IPv4 value as indicated by `ipFamilies[{i}]`")
            if family == "IPv6" and not is_ipv6_string(ip):
                e.invalid(index("spec.clusterIPs", i), ip,
                          f"expected an IPv6 value as indicated by `ipFamilies[{i}]`")


def _validate_service_spec(e: Errors, meta: dict[str, Any], spec: dict[str, Any]) -> None:
    kind = get_str(e, spec, "type", "spec.type")
    headless = _is_headless(spec)
    ports_path = "spec.ports"
    port_items = get_list(e, spec, "ports", ports_path)
    if not port_items and not headless and kind != "ExternalName":
        e.required(ports_path)
    if kind in ("LoadBalancer", "NodePort") and headless:
        e.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services")
    elif kind == "ExternalName":
        if spec.get("clusterIPs"):
            e.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        if spec.get("ipFamilies"):
            e.forbidden("spec.ipFamilies", "may not be set for ExternalName services")
        if spec.get("ipFamilyPolicy") is not None:
            e.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
        cname = get_str(e, spec, "externalName", "spec.externalName").removesuffix(".")
        if cname:
            for msg in is_dns1123_subdomain(cname):
                e.invalid("spec.externalName", cname, msg)
        else:
            e.required("spec.externalName")
    ports = dict_items(e, port_items, ports_path)
    names: set[str] = set()
    for i, port in ports:
        _validate_service_port(e, port, len(port_items) > 1, names, index(ports_path, i))
    if spec.get("selector") is not None:
        validate_labels(e, get_str_map(e, spec, "selector", "spec.selector"), "spec.selector")
    affinity = get_str(e, spec, "sessionAffinity", "spec.sessionAffinity")
    if not affinity:
        e.required("spec.sessionAffinity")
    elif affinity not in SESSION_AFFINITIES:
        e.not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES)
    config_path = "spec.sessionAffinityConfig"
    config = opt_dict(e, spec, "sessionAffinityConfig", config_path)
    if affinity == "ClientIP":
        client_ip = None if config is None else opt_dict(e, config, "clientIP",
                                                         child(config_path, "clientIP"))
        timeout_path = child(config_path, "clientIP", "timeoutSeconds")
        timeout = None if client_ip is None else opt_int(e, client_ip, "timeoutSeconds",
                                                         timeout_path)
        missing = config_path if config is None else child(config_path, "clientIP") \
            if client_ip is None else timeout_path if timeout is None else ""
        if missing:
            e.required(missing, "when session affinity type is ClientIP")
        elif timeout is not None and not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            e.invalid(timeout_path, timeout, "must be greater than 0 and less than "
                                             f"{MAX_CLIENT_IP_AFFINITY_SECONDS}")
    elif affinity == "None" and config is not None:
        e.forbidden(config_path, "must not be set when session affinity is None")
    _validate_cluster_ips(e, spec)
    for i, ip in enumerate(get_str_list(e, spec, "externalIPs", "spec.externalIPs")):
        if is_valid_ip(e, index("spec.externalIPs", i), ip):
            _validate_non_special_ip(e, ip, index("spec.externalIPs", i))
    if not kind:
        e.required("spec.type")
    elif kind not in SERVICE_TYPES:
        e.not_supported("spec.type", kind, SERVICE_TYPES)
    node_ports: set[tuple[Any, Any]] = set()
    port_keys: set[tuple[Any, Any]] = set()
    for i, port in ports:
        p = index(ports_path, i)
        node_port = port.get("nodePort") or 0
        if kind == "ClusterIP" and node_port:
            e.forbidden(child(p, "nodePort"), "may not be used when `type` is 'ClusterIP'")
        if node_port:
            if (port.get("protocol"), node_port) in node_ports:
                e.duplicate(child(p, "nodePort"), node_port)
            node_ports.add((port.get("protocol"), node_port))
        port_key = (port.get("protocol"), port.get("port") or 0)
        if port_key in port_keys:
            e.duplicate(p, Struct(Name="", Protocol=port_key[0] or "", AppProtocol=None,
                                  Port=port_key[1], TargetPort=0, NodePort=0))
        port_keys.add(port_key)
    ranges = get_str_list(e, spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges")
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    if ranges:
        if kind != "LoadBalancer":
            e.forbidden("spec.LoadBalancerSourceRanges",
                        "may only be used when `type` is 'LoadBalancer'")
        for i, cidr in enumerate(ranges):
            is_valid_cidr(e, index("spec.LoadBalancerSourceRanges", i), cidr.strip())
    elif isinstance(annotations, dict) and LB_SOURCE_RANGES_ANNOTATION in annotations:
        ann_path = key("metadata.annotations", LB_SOURCE_RANGES_ANNOTATION)
        if kind != "LoadBalancer":
            e.forbidden(ann_path, "may only be used when `type` is 'LoadBalancer'")
        value = str(annotations[LB_SOURCE_RANGES_ANNOTATION]).strip()
        for cidr in value.split(",") if value else []:
            is_valid_cidr(e, ann_path, cidr.strip())
    allocate = opt_bool(e, spec, "allocateLoadBalancerNodePorts",
                        "spec.allocateLoadBalancerNodePorts")
    if allocate is not None and kind != "LoadBalancer":
        e.forbidden("spec.allocateLoadBalancerNodePorts",
                    "may only be used when `type` is 'LoadBalancer'")
    if kind == "LoadBalancer" and allocate is None:
        e.required("allocateLoadBalancerNodePorts")
    lb_class = opt_str(e, spec, "loadBalancerClass", "spec.loadBalancerClass")
    if lb_class is not None:
        if kind == "LoadBalancer":
            for msg in is_qualified_name(lb_class):
                e.invalid("spec.loadBalancerClass", lb_class, msg)
        else:
            e.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
    lb_ip = get_str(e, spec, "loadBalancerIP", "spec.loadBalancerIP")
    if lb_ip:
        is_valid_ip_legacy(e, "spec.loadBalancerIP", lb_ip)
    etp = get_str(e, spec, "externalTrafficPolicy", "spec.externalTrafficPolicy")
    if not _externally_accessible(spec):
        if etp:
            e.invalid("spec.externalTrafficPolicy", etp,
                      "may only be set for externally-accessible services")
    elif not etp:
        e.required("spec.externalTrafficPolicy")
    elif etp not in TRAFFIC_POLICIES:
        e.not_supported("spec.externalTrafficPolicy", etp, TRAFFIC_POLICIES)
    hc = get_int(e, spec, "healthCheckNodePort", "spec.healthCheckNodePort")
    if not _needs_health_check(spec):
        if hc:
            e.invalid("spec.healthCheckNodePort", hc, "may only be set when `type` is "
                                                      "'LoadBalancer' and `externalTrafficPolicy` "
                                                      "is 'Local'")
    elif hc:
        # 0 means "not allocated yet": kubesvc allocates it after validation.
        for msg in is_valid_port_num(hc):
            e.invalid("spec.healthCheckNodePort", hc, msg)
    itp = opt_str(e, spec, "internalTrafficPolicy", "spec.internalTrafficPolicy")
    if itp is None:
        if kind in ("NodePort", "LoadBalancer", "ClusterIP"):
            e.required("spec.internalTrafficPolicy")
    elif itp not in TRAFFIC_POLICIES:
        e.not_supported("spec.internalTrafficPolicy", itp, TRAFFIC_POLICIES)
    distribution = opt_str(e, spec, "trafficDistribution", "spec.trafficDistribution")
    if distribution is not None and distribution not in TRAFFIC_DISTRIBUTIONS:
        e.not_supported("spec.trafficDistribution", distribution, TRAFFIC_DISTRIBUTIONS)


def _validate_service_update(e: Errors, spec: dict[str, Any], old: dict[str, Any]) -> None:
    if "ExternalName" not in (spec.get("type"), old.get("type")):
        new_ips, old_ips = spec.get("clusterIPs") or [], old.get("clusterIPs") or []
        new_headless, old_headless = _is_headless(spec), _is_headless(old)
        if not (new_headless and old_headless):
            _validate_ip_list_change(e, new_ips, old_ips, spec, "clusterIPs", "clusterIP")
        if new_headless == old_headless and not new_headless:
            new_fam, old_fam = spec.get("ipFamilies") or [], old.get("ipFamilies") or []
            if len(new_fam) == len(old_fam):
                if new_fam != old_fam:
                    e.invalid("spec.ipFamilies[0]", new_fam, "may not change once set")
            elif len(old_fam) > len(new_fam):
                if not new_ips:
                    e.invalid("spec.ipFamilies[0]", new_fam, "primary ipFamily can not be unset")
                if new_fam and new_fam[0] != old_fam[0]:
                    e.invalid("spec.ipFamilies[0]", new_ips, "may not change once set")
                if len(new_fam) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
                    e.invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                              "must be set to 'SingleStack' when releasing the secondary "
                              "ipFamily")
            elif old_fam and new_fam[0] != old_fam[0]:
                e.invalid("spec.ipFamilies[0]", new_ips, "may not change once set")
    if spec.get("type") == "LoadBalancer" and old.get("type") == "LoadBalancer" and \
            spec.get("loadBalancerClass") != old.get("loadBalancerClass"):
        e.invalid("spec.loadBalancerClass", spec.get("loadBalancerClass"),
                  "may not change once set")
    if _needs_health_check(old) and _needs_health_check(spec) and \
            spec.get("healthCheckNodePort") != old.get("healthCheckNodePort"):
        e.forbidden("spec.healthCheckNodePort", IMMUTABLE)


def _validate_ip_list_change(e: Errors, new_ips: list[Any], old_ips: list[Any],
                             spec: dict[str, Any], plural: str, singular: str) -> None:
    path = f"spec.{plural}"
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                e.invalid(index(path, i), new_ips, "may not change once set")
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            e.invalid(index(path, 0), new_ips, f"primary {singular} can not be unset")
        elif new_ips[0] != old_ips[0]:
            e.invalid(index(path, 0), new_ips, "may not change once set")
        if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            e.invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                      f"must be set to 'SingleStack' when releasing the secondary {singular}")
    elif old_ips and new_ips[0] != old_ips[0]:
        e.invalid(index(path, 0), new_ips, "may not change once set")


def validate_service(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    spec = get_dict(e, obj, "spec", "spec")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
        _validate_service_update(e, spec, get_dict(Errors(), old, "spec", "spec"))
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns1035_label)
    _validate_service_spec(e, meta, spec)


def _validate_non_special_ip(e: Errors, ip: str, path: str) -> None:
    validate_non_special_ip(e, path, ip)


# ---------------------------------------------------------------------------------------------
# Endpoints


def _validate_endpoint_port(e: Errors, port: dict[str, Any], require_name: bool,
                            path: str) -> None:
    name = get_str(e, port, "name", child(path, "name"))
    if require_name and not name:
        e.required(child(path, "name"))
    elif name:
        _label_errors(e, name, child(path, "name"))
    number = get_int(e, port, "port", child(path, "port"))
    for msg in is_valid_port_num(number):
        e.invalid(child(path, "port"), number, msg)
    protocol = get_str(e, port, "protocol", child(path, "protocol"))
    if not protocol:
        e.required(child(path, "protocol"))
    elif protocol not in PROTOCOLS:
        e.not_supported(child(path, "protocol"), protocol, PROTOCOLS)
    app_protocol = opt_str(e, port, "appProtocol", child(path, "appProtocol"))
    if app_protocol is not None:
        for msg in is_qualified_name(app_protocol):
            e.invalid(child(path, "appProtocol"), app_protocol, msg)


def validate_endpoints(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    for i, subset in dict_items(e, get_list(e, obj, "subsets", "subsets"), "subsets"):
        p = index("subsets", i)
        ready = get_list(e, subset, "addresses", child(p, "addresses"))
        not_ready = get_list(e, subset, "notReadyAddresses", child(p, "notReadyAddresses"))
        if not ready and not not_ready:
            e.required(p, "must specify `addresses` or `notReadyAddresses`")
        for list_name, items in (("addresses", ready), ("notReadyAddresses", not_ready)):
            lp = child(p, list_name)
            for j, addr in dict_items(e, items, lp):
                ap = index(lp, j)
                ip = get_str(e, addr, "ip", child(ap, "ip"))
                is_valid_ip(e, child(ap, "ip"), ip)
                hostname = get_str(e, addr, "hostname", child(ap, "hostname"))
                if hostname:
                    _label_errors(e, hostname, child(ap, "hostname"))
                node_name = opt_str(e, addr, "nodeName", child(ap, "nodeName"))
                if node_name is not None:
                    for msg in name_is_dns_subdomain(node_name, False):
                        e.invalid(child(ap, "nodeName"), node_name, msg)
                _validate_non_special_ip(e, ip, child(ap, "ip"))
        ports = get_list(e, subset, "ports", child(p, "ports"))
        for j, port in dict_items(e, ports, child(p, "ports")):
            _validate_endpoint_port(e, port, len(ports) > 1, index(child(p, "ports"), j))
