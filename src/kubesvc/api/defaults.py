"""Defaulting, as Kubernetes applies it when it decodes a request (pkg/apis/*/v1/defaults.go and
the generated zz_generated.defaults.go), plus the update-time copies of `carry_over`.

`apply_defaults(obj)` fills in, in place, every field Kubernetes defaults for the object's kind
and version, so that what is stored and shown (`kubectl get -o yaml`) matches a real cluster:
a Pod gets `restartPolicy: Always`, `dnsPolicy: ClusterFirst`, its containers an
`imagePullPolicy`, a Service `type: ClusterIP` and `targetPort` = `port`, a Deployment its
RollingUpdate strategy, and so on. It is idempotent and never raises: values of the wrong JSON
type are left for validation to report.

It dispatches on apiVersion and kind. Ingress is stored as networking.k8s.io/v1, which has no
defaults; called on an `extensions/v1beta1` or `networking.k8s.io/v1beta1` Ingress it applies
those versions' one default (`pathType: ImplementationSpecific`), which is what lets a
converted v1beta1 Ingress pass v1's "pathType must be specified".
"""

from __future__ import annotations

import base64
import copy
from typing import Any

__all__ = ["apply_defaults", "carry_over"]

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800
DEFAULT_FILE_MODE = 0o644
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"


def _dict(parent: Any, name: str) -> Obj | None:
    """parent[name] when both are JSON objects, else None (validation reports bad types)."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(name)
    return value if isinstance(value, dict) else None


def _dicts(parent: Any, name: str) -> list[Obj]:
    """The objects in the list parent[name]; anything else in it is skipped."""
    if not isinstance(parent, dict):
        return []
    value = parent.get(name)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _setdefault(obj: Obj, name: str, value: Any) -> None:
    """Set obj[name] when it is absent or null (a JSON null is Go's zero value)."""
    if obj.get(name) is None:
        obj[name] = value


def _set_if_empty(obj: Obj, name: str, value: Any) -> None:
    """Set obj[name] when it is absent, null or "" (Go string fields default from "")."""
    if obj.get(name) in (None, ""):
        obj[name] = value


# ---------------------------------------------------------------------------------------------
# Pods and pod templates (core/v1 SetDefaults_Pod, SetDefaults_PodSpec, SetDefaults_Container)


def image_tag(image: str) -> str:
    """The tag parsers.ParseImageName finds: "latest" when there is neither tag nor digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest or not image else "latest"


def _default_handler(handler: Obj | None) -> None:
    http_get = _dict(handler, "httpGet")
    if http_get is not None:
        _set_if_empty(http_get, "path", "/")
        _set_if_empty(http_get, "scheme", "HTTP")
    grpc = _dict(handler, "grpc")
    if grpc is not None:
        _setdefault(grpc, "service", "")


def _default_probe(probe: Obj | None) -> None:
    if probe is None:
        return
    for name, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                        ("failureThreshold", 3)):
        if probe.get(name) in (None, 0):
            probe[name] = value
    _default_handler(probe)


def _default_field_ref(holder: Obj | None) -> None:
    ref = _dict(holder, "fieldRef")
    if ref is not None:
        _set_if_empty(ref, "apiVersion", "v1")


def _default_container(ctr: Obj) -> None:
    if ctr.get("imagePullPolicy") in (None, ""):
        image = ctr.get("image")
        tag = image_tag(image) if isinstance(image, str) else ""
        ctr["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    _set_if_empty(ctr, "terminationMessagePath", TERMINATION_MESSAGE_PATH)
    _set_if_empty(ctr, "terminationMessagePolicy", "File")
    for port in _dicts(ctr, "ports"):
        _set_if_empty(port, "protocol", "TCP")
    for env in _dicts(ctr, "env"):
        _default_field_ref(_dict(env, "valueFrom"))
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(_dict(ctr, name))
    lifecycle = _dict(ctr, "lifecycle")
    for hook in ("postStart", "preStop"):
        _default_handler(_dict(lifecycle, hook))
    # A struct, not a pointer, in Go: it is always there, empty when nothing is asked for.
    _setdefault(ctr, "resources", {})


def _default_volume(vol: Obj) -> None:
    if not any(v is not None for k, v in vol.items() if k != "name"):
        vol["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        src = _dict(vol, source)
        if src is not None:
            _setdefault(src, "defaultMode", DEFAULT_FILE_MODE)
    host_path = _dict(vol, "hostPath")
    if host_path is not None:
        _setdefault(host_path, "type", "")
    for item in _dicts(_dict(vol, "downwardAPI"), "items"):
        _default_field_ref(item)
    for projection in _dicts(_dict(vol, "projected"), "sources"):
        token = _dict(projection, "serviceAccountToken")
        if token is not None:
            _setdefault(token, "expirationSeconds", 3600)
        for item in _dicts(_dict(projection, "downwardAPI"), "items"):
            _default_field_ref(item)


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and what the generated code defaults inside a PodSpec."""
    _set_if_empty(spec, "dnsPolicy", "ClusterFirst")
    _set_if_empty(spec, "restartPolicy", "Always")
    _setdefault(spec, "securityContext", {})
    _setdefault(spec, "terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD)
    _set_if_empty(spec, "schedulerName", DEFAULT_SCHEDULER)
    for vol in _dicts(spec, "volumes"):
        _default_volume(vol)
    for name in ("initContainers", "containers", "ephemeralContainers"):
        for ctr in _dicts(spec, name):
            _default_container(ctr)


def _default_requests_from_limits(ctr: Obj) -> None:
    resources = _dict(ctr, "resources")
    limits = _dict(resources, "limits")
    if resources is None or not limits:
        return
    requests = _dict(resources, "requests")
    if requests is None:
        requests = resources["requests"] = {}
    for name, value in limits.items():
        requests.setdefault(name, copy.deepcopy(value))


def _default_pod(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    # SetDefaults_Pod: only for Pods themselves, not for the templates of workloads.
    for name in ("containers", "initContainers"):
        for ctr in _dicts(spec, name):
            _default_requests_from_limits(ctr)
    _setdefault(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for name in ("containers", "initContainers"):
            for ctr in _dicts(spec, name):
                for port in _dicts(ctr, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")
    _default_pod_spec(spec)


def _default_template(spec: Obj | None) -> None:
    template_spec = _dict(_dict(spec, "template"), "spec")
    if template_spec is not None:
        _default_pod_spec(template_spec)


# ---------------------------------------------------------------------------------------------
# apps/v1


def _default_deployment(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)
    strategy = _dict(spec, "strategy")
    if strategy is None:
        strategy = spec["strategy"] = {}
    _set_if_empty(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        if rolling is None:
            rolling = strategy["rollingUpdate"] = {}
        _setdefault(rolling, "maxUnavailable", "25%")
        _setdefault(rolling, "maxSurge", "25%")
    _setdefault(spec, "revisionHistoryLimit", 10)
    _setdefault(spec, "progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_replica_set(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)
    _default_template(spec)


# ---------------------------------------------------------------------------------------------
# Services and endpoints


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs")))


def _family(ip: Any) -> str:
    return "IPv6" if isinstance(ip, str) and ":" in ip else "IPv4"


def _default_service(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        spec = obj["spec"] = {}
    _set_if_empty(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _dict(_dict(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
    _set_if_empty(spec, "type", "ClusterIP")
    for port in _dicts(spec, "ports"):
        _set_if_empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        _set_if_empty(spec, "externalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        _setdefault(spec, "internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        _setdefault(spec, "allocateLoadBalancerNodePorts", True)
        for ingress in _dicts(_dict(_dict(obj, "status"), "loadBalancer"), "ingress"):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"
    # The registry's NormalizeClusterIPs (create): an old client sets only clusterIP.
    cluster_ip = spec.get("clusterIP")
    if isinstance(cluster_ip, str) and cluster_ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [cluster_ip]
    if spec["type"] == "ExternalName":
        return
    # The IP allocator's family defaults for a single-stack IPv4 cluster; families follow
    # the cluster IPs the client asked for, if any.
    ips = spec.get("clusterIPs") if isinstance(spec.get("clusterIPs"), list) else []
    real_ips = [ip for ip in ips or [] if ip != "None"]
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = [_family(ip) for ip in real_ips] or ["IPv4"]
    families = spec.get("ipFamilies")
    if spec.get("ipFamilyPolicy") is None and isinstance(families, list) and len(families) < 2:
        spec["ipFamilyPolicy"] = "SingleStack"


def _default_endpoints(obj: Obj) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _set_if_empty(port, "protocol", "TCP")


def _default_endpoint_slice(obj: Obj) -> None:
    for port in _dicts(obj, "ports"):
        _setdefault(port, "name", "")
        _setdefault(port, "protocol", "TCP")


# ---------------------------------------------------------------------------------------------
# The rest of core/v1


def _default_namespace(obj: Obj) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name") if meta is not None else None
    if meta is not None and isinstance(name, str) and name:
        labels = _dict(meta, "labels")
        if labels is None:
            labels = meta["labels"] = {}
        labels[METADATA_NAME_LABEL] = name
    status = _dict(obj, "status")
    if status is None:
        status = obj["status"] = {}
    _set_if_empty(status, "phase", "Active")
    # The create strategy's finalizer; never put back once deletion has begun, when the
    # namespace controller removes it.
    if meta is None or not meta.get("deletionTimestamp"):
        spec = _dict(obj, "spec")
        if spec is None:
            spec = obj["spec"] = {}
        _setdefault(spec, "finalizers", ["kubernetes"])


def _default_node(obj: Obj) -> None:
    status = _dict(obj, "status")
    capacity = _dict(status, "capacity")
    if status is not None and capacity is not None and status.get("allocatable") is None:
        status["allocatable"] = copy.deepcopy(capacity)


def _default_secret(obj: Obj) -> None:
    _set_if_empty(obj, "type", "Opaque")
    # The v1 -> internal conversion: stringData is written into data and never stored.
    string_data = obj.get("stringData")
    if isinstance(string_data, dict) and all(isinstance(v, str) for v in string_data.values()):
        data = _dict(obj, "data")
        if data is None:
            data = obj["data"] = {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(v.encode()).decode()
        del obj["stringData"]


def _default_event(obj: Obj) -> None:
    # Fields core/v1 Event always serializes (no omitempty) and clients read back.
    _setdefault(obj, "involvedObject", {})
    _setdefault(obj, "reportingComponent", "")
    _setdefault(obj, "reportingInstance", "")


# ---------------------------------------------------------------------------------------------
# networking.k8s.io


def _default_ingress_v1beta1(obj: Obj) -> None:
    for rule in _dicts(_dict(obj, "spec"), "rules"):
        for path in _dicts(_dict(rule, "http"), "paths"):
            _set_if_empty(path, "pathType", "ImplementationSpecific")


def _default_ingress_class(obj: Obj) -> None:
    params = _dict(_dict(obj, "spec"), "parameters")
    if params is not None:
        _setdefault(params, "scope", "Cluster")


_DEFAULTERS = {
    ("v1", "Pod"): _default_pod,
    ("v1", "Service"): _default_service,
    ("v1", "Endpoints"): _default_endpoints,
    ("v1", "Namespace"): _default_namespace,
    ("v1", "Node"): _default_node,
    ("v1", "Secret"): _default_secret,
    ("v1", "Event"): _default_event,
    ("apps/v1", "Deployment"): _default_deployment,
    ("apps/v1", "ReplicaSet"): _default_replica_set,
    ("discovery.k8s.io/v1", "EndpointSlice"): _default_endpoint_slice,
    ("networking.k8s.io/v1", "IngressClass"): _default_ingress_class,
    ("networking.k8s.io/v1beta1", "IngressClass"): _default_ingress_class,
    ("networking.k8s.io/v1beta1", "Ingress"): _default_ingress_v1beta1,
    ("extensions/v1beta1", "Ingress"): _default_ingress_v1beta1,
}


def apply_defaults(obj: dict[str, Any]) -> None:
    """Fill in Kubernetes' defaults for obj's apiVersion and kind, in place."""
    if not isinstance(obj, dict):
        return
    defaulter = _DEFAULTERS.get((str(obj.get("apiVersion", "")), str(obj.get("kind", ""))))
    if defaulter is not None:
        defaulter(obj)


# ---------------------------------------------------------------------------------------------
# Updates


def carry_over(obj: dict[str, Any], old: dict[str, Any]) -> None:
    """Copy into an update what the client may leave out, before it is defaulted and validated.

    The API server calls this on every update (PUT, and the result of a PATCH), with `old` the
    stored object, then `apply_defaults(obj)`, then `validate(obj, old)`. It does for Services
    what Kubernetes' service strategy does in PrepareForUpdate, so that re-applying the
    original manifest, which has no clusterIP, keeps the one allocated:

    - patchAllocatedValues: clusterIP/clusterIPs, the NodePorts (matched by port name) and
      healthCheckNodePort are copied from `old` when the update omits them and the new type
      still uses them; so are ipFamilies and ipFamilyPolicy;
    - NormalizeClusterIPs: an update that sets only clusterIP or only clears it keeps
      clusterIPs in step;
    - dropTypeDependentFields: a type change clears what the new type does not use and the
      client did not change itself (clusterIPs when becoming ExternalName, NodePorts when
      becoming ClusterIP, healthCheckNodePort, allocateLoadBalancerNodePorts,
      loadBalancerClass, externalTrafficPolicy).

    Any other kind is left alone (metadata such as uid and creationTimestamp is the caller's).
    """
    if not isinstance(obj, dict) or not isinstance(old, dict) or obj.get("kind") != "Service":
        return
    spec, old_spec = _dict(obj, "spec"), _dict(old, "spec")
    if spec is None or old_spec is None:
        return
    _patch_allocated_values(spec, old_spec)
    _normalize_cluster_ips(spec, old_spec)
    _drop_type_dependent_fields(spec, old_spec)


def _type(spec: Obj) -> Any:
    return spec.get("type") or "ClusterIP"


def _needs_cluster_ip(spec: Obj) -> bool:
    return bool(_type(spec) != "ExternalName")


def _needs_node_ports(spec: Obj) -> bool:
    return _type(spec) in ("NodePort", "LoadBalancer")


def _needs_health_check(spec: Obj) -> bool:
    return bool(_type(spec) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local")


def _node_ports(spec: Obj) -> list[Any]:
    return [p.get("nodePort") for p in _dicts(spec, "ports") if p.get("nodePort")]


def _patch_allocated_values(spec: Obj, old: Obj) -> None:
    if _needs_cluster_ip(old) and _needs_cluster_ip(spec):
        _set_if_empty(spec, "clusterIP", old.get("clusterIP"))
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = copy.deepcopy(old["clusterIPs"])
        for name in ("ipFamilies", "ipFamilyPolicy"):
            if spec.get(name) in (None, []) and old.get(name) is not None:
                spec[name] = copy.deepcopy(old[name])
        if spec.get("clusterIP") is None:
            spec.pop("clusterIP", None)
    if _needs_node_ports(old) and _needs_node_ports(spec):
        used = set(_node_ports(old)) & set(_node_ports(spec))
        by_name = {p.get("name") or "": p.get("nodePort") for p in _dicts(old, "ports")}
        for port in _dicts(spec, "ports"):
            previous = by_name.get(port.get("name") or "")
            if not port.get("nodePort") and previous and previous not in used:
                port["nodePort"] = previous
    if _needs_health_check(old) and _needs_health_check(spec) and \
            not spec.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old["healthCheckNodePort"]


def _same(a: Any, b: Any) -> bool:
    """Equal, with absent, null and empty the same (apiequality.Semantic)."""
    return bool((a or None) == (b or None))


def _normalize_cluster_ips(spec: Obj, old: Obj) -> None:
    if old.get("clusterIPs") and not spec.get("clusterIPs") and \
            spec.get("clusterIP") == old.get("clusterIP"):
        spec["clusterIPs"] = copy.deepcopy(old["clusterIPs"])
    if spec.get("clusterIP") != old.get("clusterIP") and \
            _same(spec.get("clusterIPs"), old.get("clusterIPs")):
        if old.get("clusterIP") and not spec.get("clusterIP"):
            spec.pop("clusterIPs", None)
        elif spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]


def _drop_type_dependent_fields(spec: Obj, old: Obj) -> None:
    if _needs_cluster_ip(old) and not _needs_cluster_ip(spec):
        if _same(spec.get("clusterIPs"), old.get("clusterIPs")):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for name in ("ipFamilies", "ipFamilyPolicy"):
            if _same(spec.get(name), old.get(name)):
                spec.pop(name, None)
    if _needs_node_ports(old) and not _needs_node_ports(spec) and \
            _node_ports(spec) == _node_ports(old):
        for port in _dicts(spec, "ports"):
            port.pop("nodePort", None)
    if _needs_health_check(old) and not _needs_health_check(spec) and \
            spec.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if _type(old) == "LoadBalancer" and _type(spec) != "LoadBalancer":
        new_alloc, old_alloc = spec.get("allocateLoadBalancerNodePorts"), \
            old.get("allocateLoadBalancerNodePorts")
        if new_alloc is not None and new_alloc == old_alloc:
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if _externally_accessible({**old, "type": _type(old)}) and \
            not _externally_accessible({**spec, "type": _type(spec)}) and \
            spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
