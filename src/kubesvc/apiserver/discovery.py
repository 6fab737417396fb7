"""Discovery documents: `/api`, `/apis` (aggregated v2 and legacy), and per group/version lists."""

from __future__ import annotations

from typing import Any

from kubesvc.api.resources import ALL_VERBS, GROUP_VERSIONS, RESOURCES, Resource

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "log": ["get"],
    "exec": ["create", "get"],
    "portforward": ["create", "get"],
    "binding": ["create"],
}


def _sub_kind(res: Resource, sub: str) -> dict[str, str]:
    if sub == "scale":
        return {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    if sub == "binding":
        return {"group": "", "version": "v1", "kind": "Binding"}
    return {"group": res.group, "version": res.version, "kind": res.kind}


def _aggregated_resource(res: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(ALL_VERBS),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    if res.subresources:
        entry["subresources"] = [
            {"subresource": s, "responseKind": _sub_kind(res, s),
             "verbs": _SUBRESOURCE_VERBS[s]} for s in res.subresources]
    return entry


def aggregated(core: bool) -> dict[str, Any]:
    """`/api` (core=True) or `/apis` in the aggregated form kubectl asks for first."""
    items = []
    for group, versions in GROUP_VERSIONS.items():
        if (group == "") != core:
            continue
        item: dict[str, Any] = {"metadata": {"name": group} if group else {}, "versions": []}
        for version in versions:
            resources = [_aggregated_resource(r) for r in RESOURCES
                         if r.group == group and r.version == version]
            item["versions"].append(
                {"version": version, "resources": resources, "freshness": "Current"})
        items.append(item)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def api_group(group: str) -> dict[str, Any] | None:
    versions = GROUP_VERSIONS.get(group)
    if not group or not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
            "preferredVersion": gvs[0]}


def api_group_list() -> dict[str, Any]:
    groups = [api_group(g) for g in GROUP_VERSIONS if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    if version not in GROUP_VERSIONS.get(group, []):
        return None
    resources: list[dict[str, Any]] = []
    for res in RESOURCES:
        if res.group != group or res.version != version:
            continue
        entry: dict[str, Any] = {"name": res.plural, "singularName": res.singular,
                                 "namespaced": res.namespaced, "kind": res.kind,
                                 "verbs": list(ALL_VERBS)}
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        resources.append(entry)
        for sub in res.subresources:
            kind = _sub_kind(res, sub)
            resources.append({"name": f"{res.plural}/{sub}", "singularName": "",
                              "namespaced": res.namespaced, "kind": kind["kind"],
                              "verbs": _SUBRESOURCE_VERBS[sub]})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}
