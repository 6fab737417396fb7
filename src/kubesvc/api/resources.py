"""The table of resource types the API serves: names, scope, short names and subresources.

Everything that needs to know what kinds exist (discovery, routing, storage keys, OpenAPI,
tables) reads it from here, so adding a kind is one row.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # The apiVersion objects of this type are stored in, when another version is the stored
    # one (Ingress is served as extensions/v1beta1 and networking.k8s.io/v1beta1 too).
    storage_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """`services`, `deployments.apps`: how messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key_prefix(self, namespace: str | None = None) -> str:
        """Storage keys: `/registry/<group>/<plural>/[<namespace>/]<name>`."""
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        return self.key_prefix(namespace if self.namespaced else None) + name


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool = True,
       short: tuple[str, ...] = (), categories: tuple[str, ...] = (),
       sub: tuple[str, ...] = (), storage_version: str = "") -> Resource:
    return Resource(group, version, kind, plural, namespaced, short, categories, sub,
                    storage_version)


ALL = ("all",)

RESOURCES: tuple[Resource, ...] = (
    _r("", "v1", "Namespace", "namespaces", False, ("ns",), sub=("status",)),
    _r("", "v1", "Pod", "pods", short=("po",), categories=ALL,
       sub=("status", "log", "exec", "portforward", "binding")),
    _r("", "v1", "Service", "services", short=("svc",), categories=ALL, sub=("status",)),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "Event", "events", short=("ev",)),
    _r("", "v1", "Node", "nodes", False, ("no",), sub=("status",)),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _r("apps", "v1", "Deployment", "deployments", short=("deploy",), categories=ALL,
       sub=("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), categories=ALL,
       sub=("status", "scale")),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), sub=("status",)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1beta1", "Ingress", "ingresses", short=("ing",),
       sub=("status",), storage_version="networking.k8s.io/v1"),
    _r("extensions", "v1beta1", "Ingress", "ingresses", short=("ing",), sub=("status",),
       storage_version="networking.k8s.io/v1"),
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
)

# Preferred versions come first in discovery.
GROUP_VERSIONS: dict[str, list[str]] = {}
for _res in RESOURCES:
    _versions = GROUP_VERSIONS.setdefault(_res.group, [])
    if _res.version not in _versions:
        _versions.append(_res.version)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.group, r.version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    group, _, version = api_version.rpartition("/")
    return _BY_KIND.get((group, version, kind))


def storage_resource(res: Resource) -> Resource:
    """The resource whose version is stored (the networking.k8s.io/v1 Ingress for v1beta1)."""
    if not res.storage_version:
        return res
    stored = by_kind(res.storage_version, res.kind)
    assert stored is not None, res
    return stored


def of(api_version: str, kind: str) -> Resource:
    """A served resource by apiVersion and kind; for components naming the kinds they use."""
    res = by_kind(api_version, kind)
    if res is None:
        raise KeyError(f"{api_version} {kind} is not served")
    return res


def stored_resources() -> list[Resource]:
    """One resource per stored kind (alternate versions of the same objects left out)."""
    return [r for r in RESOURCES if not r.storage_version]
