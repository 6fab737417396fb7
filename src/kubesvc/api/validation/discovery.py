"""discovery.k8s.io/v1: EndpointSlice (pkg/apis/discovery/validation)."""

from __future__ import annotations

import ipaddress
from typing import Any

from kubesvc.api.validation._field import (
    Errors,
    child,
    dict_items,
    get_dict,
    get_list,
    get_str,
    get_str_list,
    get_str_map,
    index,
    opt_str,
)
from kubesvc.api.validation._meta import (
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.api.validation._strings import (
    is_dns1123_label,
    is_fully_qualified_domain_name,
    is_label_value,
    is_qualified_name,
    is_valid_ip,
    name_is_dns_subdomain,
    parse_ip_sloppy,
    validate_non_special_ip,
)

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_ADDRESSES, MAX_PORTS, MAX_ENDPOINTS, MAX_TOPOLOGY_LABELS, MAX_ZONE_HINTS = \
    100, 20000, 1000, 16, 8


def _validate_address(e: Errors, address_type: str, address: str, path: str) -> None:
    if address_type in ("IPv4", "IPv6"):
        if not is_valid_ip(e, path, address):
            return
        want = ipaddress.IPv4Address if address_type == "IPv4" else ipaddress.IPv6Address
        if not isinstance(parse_ip_sloppy(address), want):
            e.invalid(path, address, f"must be an {address_type} address")
        validate_non_special_ip(e, path, address)
    elif address_type == "FQDN":
        is_fully_qualified_domain_name(e, path, address)


def _validate_endpoints(e: Errors, obj: dict[str, Any], address_type: str) -> None:
    items = get_list(e, obj, "endpoints", "endpoints")
    if len(items) > MAX_ENDPOINTS:
        e.too_many("endpoints", len(items), MAX_ENDPOINTS)
        return
    for i, ep in dict_items(e, items, "endpoints"):
        p = index("endpoints", i)
        addresses = get_str_list(e, ep, "addresses", child(p, "addresses"))
        if not addresses:
            e.required(child(p, "addresses"), "must contain at least 1 address")
        elif len(addresses) > MAX_ADDRESSES:
            e.too_many(child(p, "addresses"), len(addresses), MAX_ADDRESSES)
        for j, address in enumerate(addresses):
            _validate_address(e, address_type, address, index(child(p, "addresses"), j))
        node_name = opt_str(e, ep, "nodeName", child(p, "nodeName"))
        if node_name is not None:
            for msg in name_is_dns_subdomain(node_name, False):
                e.invalid(child(p, "nodeName"), node_name, msg)
        topology = get_str_map(e, ep, "deprecatedTopology", child(p, "deprecatedTopology"))
        if len(topology) > MAX_TOPOLOGY_LABELS:
            e.too_many(child(p, "deprecatedTopology"), len(topology), MAX_TOPOLOGY_LABELS)
        validate_labels(e, topology, child(p, "deprecatedTopology"))
        hostname = opt_str(e, ep, "hostname", child(p, "hostname"))
        if hostname is not None:
            for msg in is_dns1123_label(hostname):
                e.invalid(child(p, "hostname"), hostname, msg)
        hints = get_dict(e, ep, "hints", child(p, "hints"))
        zones_path = child(p, "hints", "forZones")
        zones = get_list(e, hints, "forZones", zones_path)
        if len(zones) > MAX_ZONE_HINTS:
            e.too_many(zones_path, len(zones), MAX_ZONE_HINTS)
            continue
        seen: set[str] = set()
        for j, zone in dict_items(e, zones, zones_path):
            zp = child(index(zones_path, j), "name")
            name = get_str(e, zone, "name", zp)
            if name in seen:
                e.duplicate(zp, name)
            seen.add(name)
            for msg in is_label_value(name):
                e.invalid(zp, name, msg)


def _validate_ports(e: Errors, obj: dict[str, Any]) -> None:
    items = get_list(e, obj, "ports", "ports")
    if len(items) > MAX_PORTS:
        e.too_many("ports", len(items), MAX_PORTS)
        return
    names: set[str] = set()
    for i, port in dict_items(e, items, "ports"):
        p = index("ports", i)
        name = get_str(e, port, "name", child(p, "name"))
        for msg in is_dns1123_label(name) if name else []:
            e.invalid(child(p, "name"), name, msg)
        if name in names:
            e.duplicate(child(p, "name"), name)
        names.add(name)
        protocol = opt_str(e, port, "protocol", child(p, "protocol"))
        if protocol is None:
            e.required(child(p, "protocol"))
        elif protocol not in PROTOCOLS:
            e.not_supported(child(p, "protocol"), protocol, PROTOCOLS)
        app_protocol = opt_str(e, port, "appProtocol", child(p, "appProtocol"))
        if app_protocol is not None:
            for msg in is_qualified_name(app_protocol):
                e.invalid(child(p, "appProtocol"), app_protocol, msg)


def validate_endpoint_slice(e: Errors, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    meta = get_dict(e, obj, "metadata", "metadata")
    if old is not None:
        validate_object_meta_update(e, meta, get_dict(Errors(), old, "metadata", "metadata"))
    validate_object_meta(e, meta, namespaced=True, name_fn=name_is_dns_subdomain)
    address_type = get_str(e, obj, "addressType", "addressType")
    if not address_type:
        e.required("addressType")
    elif address_type not in ADDRESS_TYPES:
        e.not_supported("addressType", address_type, ADDRESS_TYPES)
    _validate_endpoints(e, obj, address_type)
    _validate_ports(e, obj)
    if old is not None:
        e.immutable("addressType", address_type, old.get("addressType", ""))
